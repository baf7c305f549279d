"""What the launched Python kernel imports at start: not what only some requests need.

The kernel Jupyter launches (``python -m txkernel -f FILE``, through its
kernelspec) answers its first ``kernel_info_request`` and runs plain cells
without the completion and inspection machinery; the first completion,
inspection or ``obj?`` cell imports it.  Each test starts a fresh kernel
process and asks it, in a cell, which of those modules it holds.
"""

from __future__ import annotations

import ast

from txkernel.client import KernelClient
from txkernel.python.completion import BUDGET
from txkernel.python.kernel import PythonKernel

from .test_python_launched import LaunchedKernelTestCase

#: Imported by the first completion (and by inspection, which uses it).
COMPLETION = [
    "txkernel.python.cellreader",
    "txkernel.python.completion",
    "txkernel.python.modules",
]
#: Imported by the first inspection or help cell.
INSPECTION = ["txkernel.python.inspection"]

PROBE = (
    f"import sys\nprint(sorted(set({COMPLETION + INSPECTION!r}) & set(sys.modules)))"
)


async def imported(client: KernelClient) -> list[str]:
    """Which of the lazily imported modules the kernel holds now."""
    result = await client.execute(PROBE, store_history=False)
    return ast.literal_eval(result.stream_text())


class LazyImportTests(LaunchedKernelTestCase):
    async def test_start_and_plain_cells_import_no_completion_or_inspection(
        self,
    ) -> None:
        client = await self.launch()  # its first kernel_info_request answered
        await client.is_complete("for x in y:")
        await client.execute("x = 1")
        self.assertEqual(await imported(client), [])

    async def test_the_first_requests_that_need_them_import_them(self) -> None:
        client = await self.launch()
        reply = await client.complete("import o")
        self.assertIn("os", reply["content"]["matches"])
        self.assertEqual(await imported(client), COMPLETION)
        reply = await client.inspect("len")
        self.assertTrue(reply["content"]["found"])
        self.assertEqual(await imported(client), sorted(COMPLETION + INSPECTION))

    async def test_a_help_cell_imports_inspection(self) -> None:
        client = await self.launch()
        result = await client.execute("len?")
        page = result.reply["content"]["payload"][0]["data"]["text/plain"]
        self.assertIn("len(obj, /)", page)
        self.assertEqual(await imported(client), sorted(COMPLETION + INSPECTION))

    def test_the_kernel_budget_is_the_completion_default(self) -> None:
        self.assertEqual(PythonKernel.completion_budget, BUDGET)
