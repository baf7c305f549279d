"""Cell source in linecache: counted cells keep theirs, uncounted ones only the latest."""

from __future__ import annotations

import linecache

from twisted.trial.unittest import SynchronousTestCase

from txkernel.python import cell
from txkernel.python.cell import cell_filename, compile_cell, error_reply


class UncountedSourceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.patch(cell, "UNCOUNTED_KEPT", 5)
        self.addCleanup(cell._uncounted_names.clear)

    def run_cell(self, source: str, counted: bool) -> dict:
        name = cell_filename(7, counted)
        try:
            compile_cell(source, name).run({})
        except Exception as e:
            return {"name": name, **error_reply(e)}
        return {"name": name}

    def test_only_the_latest_uncounted_cells_keep_their_source(self) -> None:
        names = [self.run_cell(f"x = {i}", counted=False)["name"] for i in range(12)]
        kept = [name for name in names if name in linecache.cache]
        self.assertEqual(kept, names[-5:])
        self.assertEqual(linecache.getline(names[-1], 1), "x = 11")

    def test_an_error_in_the_latest_uncounted_cell_shows_its_line(self) -> None:
        for _ in range(8):
            self.run_cell("pass", counted=False)
        reply = self.run_cell("y = 1\nraise ValueError('silent')", counted=False)
        text = "\n".join(reply["traceback"])
        self.assertIn("raise ValueError('silent')", text)
        self.assertIn(f'File "{reply["name"]}", line 2', text)

    def test_counted_cells_keep_their_source(self) -> None:
        name = self.run_cell("z = 3", counted=True)["name"]
        for _ in range(8):
            self.run_cell("pass", counted=False)
        self.assertEqual(linecache.getline(name, 1), "z = 3")
