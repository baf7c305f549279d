"""The GIL switch interval while cells run (txkernel.python.switching)."""

from __future__ import annotations

import sys

from twisted.trial.unittest import TestCase

from txkernel.python import PythonKernel
from txkernel.python.switching import CELL_SWITCH_INTERVAL, cell_running
from txkernel.testing import serve_kernel


class CellRunningTests(TestCase):
    def setUp(self) -> None:
        saved = sys.getswitchinterval()
        self.addCleanup(sys.setswitchinterval, saved)
        sys.setswitchinterval(0.005)

    def test_shorter_while_a_cell_runs_and_restored_after(self) -> None:
        with cell_running():
            self.assertAlmostEqual(sys.getswitchinterval(), CELL_SWITCH_INTERVAL)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)

    def test_restored_when_the_last_of_several_cells_ends(self) -> None:
        first = cell_running()
        second = cell_running()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        self.assertAlmostEqual(sys.getswitchinterval(), CELL_SWITCH_INTERVAL)
        second.__exit__(None, None, None)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)

    def test_restored_when_the_cell_raises(self) -> None:
        with self.assertRaises(KeyError), cell_running():
            raise KeyError("the cell's error")
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)

    def test_a_value_the_cell_sets_is_kept(self) -> None:
        with cell_running():
            sys.setswitchinterval(0.02)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.02)

    def test_a_shorter_interval_already_set_is_left_alone(self) -> None:
        sys.setswitchinterval(0.0005)
        with cell_running():
            self.assertAlmostEqual(sys.getswitchinterval(), 0.0005)
        self.assertAlmostEqual(sys.getswitchinterval(), 0.0005)


class KernelTests(TestCase):
    async def test_a_cell_sees_the_shorter_interval_and_it_ends_with_the_cell(
        self,
    ) -> None:
        saved = sys.getswitchinterval()
        self.addCleanup(sys.setswitchinterval, saved)
        sys.setswitchinterval(0.005)
        served = await serve_kernel(self, PythonKernel())
        result = await served.client.execute(
            "import sys\nprint(round(sys.getswitchinterval(), 6))"
        )
        self.assertEqual(result.stream_text(), f"{CELL_SWITCH_INTERVAL}\n")
        self.assertAlmostEqual(sys.getswitchinterval(), 0.005)
