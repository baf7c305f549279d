"""What the debugger costs and whether control stays quick while a cell is stopped.

    python bench/debugger.py [--kernel NAME] [--repeat 3]

``--kernel`` names a kernelspec (default: txkernel's, installed for the run
into a temporary prefix; ``--kernel python3`` measures ipykernel if it is
installed).  Drives the debugger as JupyterLab does, over jupyter_client,
and prints medians over ``--repeat`` fresh kernels of:

- ``start``: debugInfo, initialize and attach, from the first request to the
  attach reply (the first run in a process starts debugpy's adapter);
- ``to stopped``: from execute_request to the ``stopped`` event of a
  breakpoint on the cell's second line;
- round trips while stopped: ``kernel_info`` on control, ``debugInfo``
  (answered by the kernel), ``stackTrace`` (answered by debugpy);
- ``continue to reply``: from the continue request to the execute reply.

A quick check of our own numbers, not the comparison benchmark.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from jupyter_client import KernelManager

CODE = "a = 1\nb = a + 1\nprint(b)\n"


class Frontend:
    """Debug requests on control and debug events from IOPub, blocking."""

    def __init__(self, kc: Any) -> None:
        self.kc = kc
        self.seq = 0

    def request(self, command: str, arguments: dict | None = None) -> dict:
        content: dict[str, Any] = {
            "seq": self.seq,
            "type": "request",
            "command": command,
        }
        if arguments is not None:
            content["arguments"] = arguments
        self.seq += 1
        msg = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(msg)
        while True:
            reply = self.kc.control_channel.get_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                response = reply["content"]
                if not response.get("success"):
                    raise RuntimeError(f"{command} failed: {response}")
                return response

    def event(self, name: str) -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = self.kc.get_iopub_msg(timeout=30)
            if msg["msg_type"] == "debug_event" and msg["content"]["event"] == name:
                return msg["content"]
        raise RuntimeError(f"no {name} event in 30 s")

    def kernel_info(self) -> None:
        msg = self.kc.session.msg("kernel_info_request", {})
        self.kc.control_channel.send(msg)
        while True:
            reply = self.kc.control_channel.get_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return


def timed(f: Any, count: int = 50) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return times


def one_kernel(name: str) -> dict[str, list[float]]:
    km = KernelManager(kernel_name=name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    results: dict[str, list[float]] = {}
    try:
        kc.wait_for_ready(timeout=60)
        lab = Frontend(kc)
        start = time.perf_counter()
        lab.request("debugInfo")
        lab.request(
            "initialize",
            {
                "clientID": "bench",
                "adapterID": "python",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
            },
        )
        lab.request("attach", {})
        results["start"] = [time.perf_counter() - start]
        path = lab.request("dumpCell", {"code": CODE})["body"]["sourcePath"]
        lab.request(
            "setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 2}]}
        )
        start = time.perf_counter()
        kc.execute(CODE)
        thread = lab.event("stopped")["body"]["threadId"]
        results["to stopped"] = [time.perf_counter() - start]
        results["kernel_info"] = timed(lab.kernel_info)
        results["debugInfo"] = timed(lambda: lab.request("debugInfo"))
        results["stackTrace"] = timed(
            lambda: lab.request("stackTrace", {"threadId": thread}), 20
        )
        start = time.perf_counter()
        lab.request("continue", {"threadId": thread})
        kc.get_shell_msg(timeout=30)
        results["continue to reply"] = [time.perf_counter() - start]
        lab.request("disconnect", {"restart": False, "terminateDebuggee": False})
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kernel", default=None, help="kernelspec name (default: txkernel)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    name = args.kernel
    if name is None:
        from txkernel import kernelspec

        prefix = tempfile.mkdtemp(prefix="txkernel-bench-")
        name = "txkernel-bench"
        kernelspec.install(name=name, prefix=prefix)
        os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    merged: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for key, values in one_kernel(name).items():
            merged.setdefault(key, []).extend(values)
    print(f"kernel: {name}  runs: {args.repeat}")
    for key, values in merged.items():
        print(
            f"{key}: median {statistics.median(values) * 1000:.2f} ms, max {max(values) * 1000:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
