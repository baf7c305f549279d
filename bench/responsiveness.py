"""How the kernel Jupyter launches behaves while busy, measured with jupyter_client.

    python bench/responsiveness.py [--kernel NAME] [--repeat 5]

``--kernel`` names a kernelspec (default: txkernel's, installed for the run
into a temporary prefix; ``--kernel python3`` measures ipykernel if it is
installed).

Prints medians over ``--repeat`` runs of:

- ``print flood``: seconds from execute_request to the reply for a cell that
  prints 20,000 lines, and whether every line arrived in order;
- ``heartbeat while GIL held``: p50/p99/max heartbeat round trip while a cell
  spins in pure Python for 2 s;
- ``control while sleeping``: kernel_info round trip on control while a cell
  runs ``time.sleep(2)``;
- ``shell round trip``: an empty execute request, idle kernel;
- ``interrupt``: from interrupting ``while True: pass`` and
  ``time.sleep(60)`` (the way the kernelspec says) to the reply.

A quick check of our own numbers, not the comparison benchmark.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

import zmq
from jupyter_client import KernelManager


def _drain_until_idle(kc, msg_id: str, sink: list | None = None) -> None:
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if sink is not None and msg["msg_type"] == "stream":
            sink.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return


def _reply(kc, msg_id: str, timeout: float) -> dict:
    """The shell reply to ``msg_id``, skipping replies to earlier requests
    (wait_for_ready may leave a late kernel_info_reply behind)."""
    deadline = time.perf_counter() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.0, deadline - time.perf_counter()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def print_flood(kc, lines: int = 20000) -> tuple[float, bool]:
    texts: list[str] = []
    start = time.perf_counter()
    msg_id = kc.execute(f"for i in range({lines}):\n    print(i)")
    _reply(kc, msg_id, 60)
    elapsed = time.perf_counter() - start
    _drain_until_idle(kc, msg_id, texts)
    return elapsed, "".join(texts) == "".join(f"{i}\n" for i in range(lines))


def heartbeat_while_busy(km, kc, seconds: float = 2.0) -> list[float]:
    ctx = zmq.Context.instance()
    hb = ctx.socket(zmq.REQ)
    hb.linger = 0
    hb.connect(f"tcp://{km.ip}:{km.hb_port}")
    msg_id = kc.execute(
        f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    )
    time.sleep(0.2)  # let the cell start spinning
    rtts = []
    deadline = time.perf_counter() + seconds - 0.4
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        hb.send(b"ping")
        if not hb.poll(1000):
            raise RuntimeError("heartbeat did not answer within 1 s")
        hb.recv()
        rtts.append(time.perf_counter() - t0)
        time.sleep(0.005)
    hb.close()
    _reply(kc, msg_id, 60)
    _drain_until_idle(kc, msg_id)
    return rtts


def control_while_sleeping(km, kc, count: int = 20) -> list[float]:
    control = km.connect_control()
    session = km.session

    def kernel_info() -> float:
        t0 = time.perf_counter()
        session.send(control, "kernel_info_request", {})
        if not control.poll(5000):
            raise RuntimeError("no kernel_info_reply on control within 5 s")
        session.recv(control)
        return time.perf_counter() - t0

    kernel_info()  # connected and warm
    msg_id = kc.execute("import time\ntime.sleep(2)")
    time.sleep(0.2)
    rtts = [kernel_info() for _ in range(count)]
    control.close(linger=0)
    _reply(kc, msg_id, 60)
    _drain_until_idle(kc, msg_id)
    return rtts


def interrupt_latency(km, kc, code: str) -> float:
    """Seconds from interrupting ``code`` (as the kernelspec says) to its reply."""
    msg_id = kc.execute(code)
    time.sleep(0.3)  # running
    t0 = time.perf_counter()
    km.interrupt_kernel()
    reply = _reply(kc, msg_id, 30)
    elapsed = time.perf_counter() - t0
    if reply["content"].get("ename") != "KeyboardInterrupt":
        raise RuntimeError(f"not interrupted: {reply['content']}")
    _drain_until_idle(kc, msg_id)
    return elapsed


def shell_round_trip(kc, count: int = 200) -> float:
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        msg_id = kc.execute("", store_history=False)
        _reply(kc, msg_id, 10)
        times.append(time.perf_counter() - t0)
        _drain_until_idle(kc, msg_id)
    return statistics.median(times)


def install_txkernel_kernelspec(prefix: str, name: str = "txkernel-bench") -> str:
    """Install txkernel's kernelspec as ``name`` under ``prefix``, put that
    prefix first on this process's Jupyter search path and return ``name``."""
    from txkernel import kernelspec

    kernelspec.install(name=name, prefix=prefix)
    data = os.path.join(prefix, "share", "jupyter")
    rest = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = data + (os.pathsep + rest if rest else "")
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kernel", default=None, help="kernelspec name (default: txkernel)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    name = args.kernel
    if name is None:
        name = install_txkernel_kernelspec(tempfile.mkdtemp(prefix="txkernel-bench-"))
    floods, complete, hb, control, shell = [], [], [], [], []
    spin, sleep = [], []
    for _ in range(args.repeat):
        km = KernelManager(kernel_name=name)
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            elapsed, ok = print_flood(kc)
            floods.append(elapsed)
            complete.append(ok)
            hb.extend(heartbeat_while_busy(km, kc))
            control.extend(control_while_sleeping(km, kc))
            shell.append(shell_round_trip(kc))
            spin.append(interrupt_latency(km, kc, "while True: pass"))
            sleep.append(interrupt_latency(km, kc, "import time; time.sleep(60)"))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
    hb.sort()
    ms = 1000.0
    print(f"kernel: {name} ({' '.join(km.kernel_spec.argv[:3])})  runs: {args.repeat}")
    print(
        f"print flood (20,000 lines): median {statistics.median(floods):.3f} s, "
        f"all complete and in order: {all(complete)}"
    )
    print(
        f"heartbeat while GIL held ({len(hb)} pings): p50 {hb[len(hb) // 2] * ms:.3f} ms, "
        f"p99 {hb[int(len(hb) * 0.99)] * ms:.3f} ms, max {hb[-1] * ms:.3f} ms"
    )
    print(
        f"control kernel_info while a cell sleeps: median {statistics.median(control) * ms:.3f} ms"
    )
    print(
        f"shell round trip (empty execute): median {statistics.median(shell) * ms:.3f} ms"
    )
    print(
        f"interrupt ({km.kernel_spec.interrupt_mode} mode) to reply: "
        f"busy loop median {statistics.median(spin) * ms:.3f} ms, "
        f"time.sleep median {statistics.median(sleep) * ms:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
