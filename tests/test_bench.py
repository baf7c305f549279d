"""bench/kernels.py --quick as a smoke test: the benchmark runs and prints its
table (its figures are not checked; speed is the benchmark's business)."""

from __future__ import annotations

import os

import zmq
from twisted.trial.unittest import TestCase

from .helpers import REPO_ROOT, spawn

KERNELS_BENCH = os.path.join(REPO_ROOT, "bench", "kernels.py")


class KernelsBenchmarkTests(TestCase):
    timeout = 120

    async def test_quick_run_takes_every_measure_and_writes_the_report(self) -> None:
        results = self.mktemp()
        proto = spawn(
            self,
            KERNELS_BENCH,
            "--quick",
            "--kernels",
            "txkernel,txkernel-twistd",
            "--results",
            results,
        )
        self.assertEqual(await proto.ended, 0, proto.output)
        table = [line for line in proto.output.splitlines() if line.startswith("| ")]
        self.assertTrue(table[0].startswith("| measure | txkernel "), proto.output)
        self.assertIn("txkernel-twistd", table[0])
        # Without --plain-venv (or --baseline) there are no such columns.
        self.assertNotIn("txkernel-plain", table[0])
        self.assertNotIn("txkernel-base", table[0])
        self.assertTrue(
            table[0].rstrip(" |").endswith(f"floor pyzmq {zmq.__version__}")
        )
        measures = [line.split(" | ")[0][2:] for line in table[1:]]
        for expected in (
            "shell kernel_info round trip",
            "control kernel_info, idle",
            "execute `pass`: the kernel process's CPU time and context switches per execute",
            "control kernel_info while a cell sleeps",
            "heartbeat while a cell holds the GIL",
            "startup to first kernel_info reply",
            "memory: idle / after the whole run (RSS)",
            "host: HTTP while a cell spins (CPU); the cell's speed",
        ):
            self.assertIn(expected, measures)
        # Every measure was taken for both txkernel columns, none failed.
        missing = [
            line
            for line in table[1:]
            for cell in line.strip(" |").split(" | ")[1:3]
            if cell.startswith(("—", "error"))
        ]
        self.assertEqual(missing, [], proto.output)
        with open(results, encoding="utf-8") as f:
            written = f.read()
        self.assertTrue(written.startswith("# Kernel benchmark"))
        for line in table:
            self.assertIn(line + "\n", written)
        self.assertIn("Command: `python bench/kernels.py --quick", written)
