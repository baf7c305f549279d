"""A real notebook executed by nbclient against the installed kernelspec.

nbclient runs in a child process (it drives its own asyncio loop and finds
the kernelspec through ``JUPYTER_PATH``); the test reads the executed
notebook back and checks every cell's outputs as a notebook user sees them.
"""

from __future__ import annotations

import os
import sys

import nbformat
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from .helpers import REPO_ROOT, ProcessOutput
from .test_python_launched import install_spec

CELLS = [
    "x = 21\nprint('hello from a notebook')",
    "x * 2",
    "import sys\nprint('to stderr', file=sys.stderr)",
    (
        "class Bold:\n"
        "    def _repr_html_(self):\n"
        "        return '<b>bold</b>'\n"
        "    def __repr__(self):\n"
        "        return 'Bold()'\n"
        "display(Bold())"
    ),
    (
        "from twisted.internet import reactor, task\n"
        "await task.deferLater(reactor, 0, lambda: 'from the reactor')"
    ),
    (
        "import threading\n"
        "t = threading.Thread(target=print, args=('from a thread',))\n"
        "t.start(); t.join()"
    ),
    "1 / 0",
    "print(x)",
]

RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient

path, kernel_name = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, kernel_name=kernel_name, timeout=60, allow_errors=True).execute()
nbformat.write(nb, path)
"""


class NotebookTests(TestCase):
    timeout = 120

    async def test_a_notebook_runs_with_the_expected_outputs(self) -> None:
        name, env = install_spec(self)
        path = os.path.abspath(self.mktemp()) + ".ipynb"
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
        nbformat.write(nb, path)

        proto = ProcessOutput()
        reactor.spawnProcess(
            proto,
            sys.executable,
            [sys.executable, "-c", RUNNER, path, name],
            env=env,
            path=REPO_ROOT,
        )
        self.assertEqual(await proto.ended, 0, proto.output)

        cells = nbformat.read(path, as_version=4).cells
        self.assertEqual(
            [c.execution_count for c in cells], list(range(1, len(CELLS) + 1))
        )
        outputs = [c.outputs for c in cells]

        self.assertEqual(_streams(outputs[0]), [("stdout", "hello from a notebook\n")])
        self.assertEqual(outputs[1][0].output_type, "execute_result")
        self.assertEqual(outputs[1][0].data["text/plain"], "42")
        self.assertEqual(_streams(outputs[2]), [("stderr", "to stderr\n")])
        self.assertEqual(outputs[3][0].output_type, "display_data")
        self.assertEqual(outputs[3][0].data["text/html"], "<b>bold</b>")
        self.assertEqual(outputs[3][0].data["text/plain"], "Bold()")
        self.assertEqual(outputs[4][0].data["text/plain"], "'from the reactor'")
        self.assertEqual(_streams(outputs[5]), [("stdout", "from a thread\n")])
        self.assertEqual(outputs[6][0].output_type, "error")
        self.assertEqual(outputs[6][0].ename, "ZeroDivisionError")
        self.assertIn("1 / 0", "\n".join(outputs[6][0].traceback))
        self.assertEqual(_streams(outputs[7]), [("stdout", "21\n")])


def _streams(outputs: list) -> list[tuple[str, str]]:
    """The cell's stream outputs as (name, text), consecutive ones joined."""
    joined: list[tuple[str, str]] = []
    for out in outputs:
        if out.output_type != "stream":
            continue
        if joined and joined[-1][0] == out.name:
            joined[-1] = (out.name, joined[-1][1] + out.text)
        else:
            joined.append((out.name, out.text))
    return joined
