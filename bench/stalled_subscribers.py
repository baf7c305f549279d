"""Kernel memory with IOPub subscribers that never read, measured from outside.

    python bench/stalled_subscribers.py [--executes 3000] [--stalled 3] [--big-mb 50]

Launches ``python -m txkernel -f FILE`` (the built-in Python kernel, as
Jupyter launches it) and connects:

- jupyter_client's ``BlockingKernelClient``, which runs every cell with
  ``execute(code, reply=True)``: it waits for the shell reply and never reads
  IOPub, so its own IOPub subscription stalls too;
- ``--stalled`` raw SUB sockets that subscribe to everything and never read
  (receive high-water mark 1, a 4 KiB receive buffer: the kernel's own
  queue for them is what fills).

Prints the kernel's resident memory (VmRSS) after the client is ready,
after every 1,000 executes of ``print('x' * 200)``, and after a cell that
prints ``--big-mb`` MB followed by 200 small executes and 3 s of rest.  A kernel whose IOPub
queues are bounded stays flat after the first thousand executes and gives
the big print back.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

import zmq
from jupyter_client import BlockingKernelClient

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_ports(n: int) -> list[int]:
    ctx = zmq.Context.instance()
    socks = [ctx.socket(zmq.ROUTER) for _ in range(n)]
    ports = [s.bind_to_random_port("tcp://127.0.0.1") for s in socks]
    for s in socks:
        s.close(0)
    return ports


def drain(kc: BlockingKernelClient, msg_id: str) -> None:
    """Read IOPub until the request's idle status."""
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executes", type=int, default=3000)
    parser.add_argument("--stalled", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=50)
    parser.add_argument(
        "--reading",
        action="store_true",
        help="the client reads IOPub after each reply (the baseline: what the kernel "
        "grows by with no stalled subscription of its own)",
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="txkernel-bench-")
    path = os.path.join(tmp, "kernel.json")
    ports = free_ports(5)
    info = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        "key": secrets.token_hex(32),
        "signature_scheme": "hmac-sha256",
        **{
            f"{ch}_port": p
            for ch, p in zip(
                ("shell", "control", "stdin", "iopub", "hb"), ports, strict=True
            )
        },
    }
    with open(path, "w") as f:
        json.dump(info, f)
    env = dict(
        os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    kernel = subprocess.Popen([sys.executable, "-m", "txkernel", "-f", path], env=env)
    kc = BlockingKernelClient(connection_file=path)
    kc.load_connection_file()
    kc.start_channels()
    ctx = zmq.Context()
    stalled = []
    try:
        kc.wait_for_ready(timeout=30)
        for _ in range(args.stalled):
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.RCVHWM, 1)
            sub.setsockopt(zmq.RCVBUF, 4096)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(f"tcp://127.0.0.1:{info['iopub_port']}")
            stalled.append(sub)
        kc.execute("pass", reply=True, timeout=30)
        rows = [("ready", 0, rss_mib(kernel.pid))]
        start = time.perf_counter()
        for i in range(1, args.executes + 1):
            reply = kc.execute("print('x' * 200)", reply=True, timeout=60)
            assert reply["content"]["status"] == "ok", reply
            if args.reading:
                drain(kc, reply["parent_header"]["msg_id"])
            if i % 1000 == 0:
                rows.append(
                    (
                        f"after {i} executes",
                        time.perf_counter() - start,
                        rss_mib(kernel.pid),
                    )
                )
        kc.execute(f"print('x' * {args.big_mb} * 1000 * 1000)", reply=True, timeout=120)
        for _ in range(200):
            kc.execute("print('x' * 200)", reply=True, timeout=60)
        # Past the IOPub stall timeout (2 s), so a bounded kernel has let go.
        time.sleep(3)
        kc.execute("pass", reply=True, timeout=60)
        rows.append(
            (
                f"after a {args.big_mb} MB print + 200",
                time.perf_counter() - start,
                rss_mib(kernel.pid),
            )
        )
        reading = "reading IOPub" if args.reading else "not reading IOPub"
        print(
            f"{args.stalled} stalled SUB + jupyter_client blocking client {reading}; "
            f"kernel pid {kernel.pid}"
        )
        print(f"{'point':32} {'seconds':>8} {'VmRSS MiB':>10}")
        for name, seconds, rss in rows:
            print(f"{name:32} {seconds:8.1f} {rss:10.1f}")
        per_k = (rows[-2][2] - rows[1][2]) / max(1, (args.executes - 1000) / 1000)
        print(f"growth per 1,000 executes after the first 1,000: {per_k:+.2f} MiB")
        if len(rows) >= 5:
            last = (rows[-2][2] - rows[-4][2]) / 2
            print(f"growth per 1,000 executes over the last 2,000: {last:+.2f} MiB")
        print(f"big print kept: {rows[-1][2] - rows[-2][2]:+.1f} MiB")
        kc.shutdown()
        kernel.wait(30)
    finally:
        for sub in stalled:
            sub.close(0)
        ctx.term()
        kc.stop_channels()
        if kernel.poll() is None:
            kernel.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
