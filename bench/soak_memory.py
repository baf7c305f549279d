"""Resident memory of a kernel between 1,000 and N executes from two clients.

The soak of issue 14 (``tests/test_hardening_soak.py``) for any kernel, so
that txkernel and ipykernel are measured the same way: two jupyter_client
clients each keep 20 ``_soak = i`` executes in flight and read IOPub as
they go; the kernel's VmRSS is read after the first 1,000 executes and at
the end.  ``--trace`` runs the kernel under tracemalloc and prints where
the Python heap grew in between (snapshots taken by silent executes in the
kernel itself; the built-in Python kernel and ipykernel only)::

    python bench/soak_memory.py --kernel txkernel --executes 10000
    python bench/soak_memory.py --kernel ipykernel --executes 10000 --trace
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

WINDOW = 20
KERNELS = {
    "txkernel": ["-m", "txkernel"],
    "echo": ["-m", "txkernel", "--kernel", "txkernel.echo:EchoKernel"],
    # IPython's history in memory, as txkernel keeps it (no sqlite file).
    "ipykernel": ["-m", "ipykernel_launcher", "--HistoryManager.hist_file=:memory:"],
    "ipykernel-file": ["-m", "ipykernel_launcher"],
}

SNAPSHOT = "import tracemalloc as _tm, gc as _gc; _gc.collect(); _S1 = _tm.take_snapshot()"
DIFF = r"""
_gc.collect()
_f = [_tm.Filter(False, _tm.__file__)]
_d = _tm.take_snapshot().filter_traces(_f).compare_to(_S1.filter_traces(_f), "traceback")
print("Python heap: %+d bytes in %+d blocks" % (
    sum(s.size_diff for s in _d), sum(s.count_diff for s in _d)))
for _s in _d[:12]:
    print("%+d B %+d blocks" % (_s.size_diff, _s.count_diff))
    for _l in _s.traceback.format()[-6:]:
        print("   ", _l)
"""


class Soak:
    def __init__(self, kernel: str, trace: bool) -> None:
        directory = tempfile.mkdtemp()
        self.connection_file = os.path.join(directory, "kernel.json")
        write_connection_file(
            self.connection_file, ip="127.0.0.1", key=uuid.uuid4().hex.encode()
        )
        env = dict(os.environ)
        if trace:
            env["PYTHONTRACEMALLOC"] = "6"
        args = [sys.executable, *KERNELS[kernel], "-f", self.connection_file]
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.clients = [self._client() for _ in range(2)]

    def _client(self) -> BlockingKernelClient:
        client = BlockingKernelClient(connection_file=self.connection_file)
        client.load_connection_file()
        client.start_channels()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.wait_for_ready(timeout=60)
                return client
            except RuntimeError:  # not beating yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def drain_iopub(self) -> list[dict]:
        messages = []
        for client in self.clients:
            while client.iopub_channel.msg_ready():
                messages.append(client.get_iopub_msg())
        return messages

    def execute(self, start: int, stop: int) -> None:
        pending: list[list[str]] = [[], []]
        for i in range(start, stop):
            own = i % 2
            pending[own].append(self.clients[own].execute(f"_soak = {i}"))
            if i % 10 == 0:
                self.drain_iopub()
            for index in (0, 1):
                while len(pending[index]) >= WINDOW:
                    self._reply(index, pending[index])
        for index in (0, 1):
            while pending[index]:
                self._reply(index, pending[index])
        self.drain_iopub()

    def _reply(self, index: int, pending: list[str]) -> None:
        reply = self.clients[index].get_shell_msg(timeout=120)
        msg_id = reply["parent_header"].get("msg_id")
        if msg_id not in pending:  # kernel_info from wait_for_ready, run_quietly
            return
        if reply["content"]["status"] != "ok":
            raise RuntimeError(reply["content"])
        pending.remove(msg_id)

    def run_quietly(self, code: str) -> str:
        """Run ``code`` without counting it; returns what it printed."""
        client = self.clients[0]
        msg_id = client.execute(code, silent=False, store_history=False)
        printed = []
        while True:
            msg = client.get_iopub_msg(timeout=300)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                printed.append("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(printed)

    def close(self) -> None:
        self.clients[0].shutdown()
        for client in self.clients:
            client.stop_channels()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", choices=sorted(KERNELS), default="txkernel")
    parser.add_argument("--executes", type=int, default=10000)
    parser.add_argument("--trace", action="store_true")
    options = parser.parse_args()
    soak = Soak(options.kernel, options.trace)
    try:
        soak.execute(0, 1000)
        if options.trace:
            soak.run_quietly(SNAPSHOT)
        before = soak.rss_mib()
        soak.execute(1000, options.executes)
        after = soak.rss_mib()
        per = (after - before) * 1024 * 1024 / (options.executes - 1000)
        print(
            f"{options.kernel}: RSS {before:.1f} MiB after 1000 executes, "
            f"{after:.1f} MiB after {options.executes}: "
            f"{after - before:+.2f} MiB, {per:.0f} bytes an execute"
        )
        if options.trace:
            print(soak.run_quietly(DIFF))
    finally:
        soak.close()


if __name__ == "__main__":
    main()
