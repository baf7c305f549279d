"""Compiling and running one cell of Python, and reporting its errors.

A cell is compiled with top-level ``await`` allowed; its last expression
statement (unless the cell ends with ``;``) is compiled in ``single`` mode so
that its value reaches ``sys.displayhook``.  Source is registered in
``linecache`` under the name it is compiled as (``<cell-N>``, or the
debugger's cell file while debugpy is installed, see
:mod:`.debugcells`) so tracebacks show the user's lines (the source of the
last :data:`UNCOUNTED_KEPT` uncounted cells only: a frontend that polls with
silent executions does not make the kernel grow); tracebacks,
warnings and syntax errors name the cell by its label (``<cell-N>``) whatever
the file name, and are cut to the user's frames: from the first frame of cell code,
without the kernel's own frames (where an interrupt or an ``input()`` wait
was raised, or through which the displayhook called a failing repr).  Runs on the
execution thread (the coroutine of an async cell on the reactor thread).
"""

from __future__ import annotations

import ast
import collections
import inspect
import itertools
import linecache
import os
import traceback
from types import CodeType, TracebackType
from typing import Any

CELL_PREFIX = "<cell-"
#: File names of cell code start with one of these (the debugger adds its cell files).
CELL_FILE_PREFIXES = [CELL_PREFIX]
_KERNEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_uncounted = itertools.count(1)
#: How many uncounted cells (``silent``, or ``store_history: false``) keep
#: their source in ``linecache``: the older are forgotten.
UNCOUNTED_KEPT = 1000
_uncounted_names: collections.deque[str] = collections.deque()
#: File name a cell was compiled as -> the label users read (``<cell-N>``).
_labels: dict[str, str] = {}


def cell_filename(count: int, counted: bool) -> str:
    """``<cell-N>`` for a counted execution, a unique name otherwise."""
    if counted:
        return f"{CELL_PREFIX}{count}>"
    name = f"{CELL_PREFIX}{count}.{next(_uncounted)}>"
    _uncounted_names.append(name)
    while len(_uncounted_names) > UNCOUNTED_KEPT:
        linecache.cache.pop(_uncounted_names.popleft(), None)
    return name


class CompiledCell:
    """A cell's code objects, in the order they run."""

    def __init__(self, codes: list[CodeType]) -> None:
        self.codes = codes
        self.is_async = any(c.co_flags & inspect.CO_COROUTINE for c in codes)

    def run(self, namespace: dict[str, Any]) -> None:
        """Run a cell without top-level ``await``."""
        for code in self.codes:
            exec(code, namespace)

    async def run_async(self, namespace: dict[str, Any]) -> None:
        """Run a cell with top-level ``await`` (a coroutine for the reactor)."""
        for code in self.codes:
            result = eval(code, namespace)
            if inspect.isawaitable(result):
                await result


def label_of(filename: str) -> str:
    """How users read the file name of cell code (``<cell-N>``); other names unchanged."""
    return _labels.get(filename, filename)


def compile_cell(source: str, filename: str, label: str | None = None) -> CompiledCell:
    """Compile ``source`` as ``filename``; raises ``SyntaxError`` as Python would.

    ``label`` (``<cell-N>``) is how tracebacks name the cell when
    ``filename`` is another name (the debugger's cell file).
    """
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    if label is not None and label != filename:
        _labels[filename] = label
    # Parsed under the label, so a SyntaxError names the cell as users know it.
    tree = ast.parse(source, label or filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
        last = tree.body.pop()
    try:
        codes = [compile(tree, filename, "exec", flags=_FLAGS, dont_inherit=True)]
        if last is not None:
            interactive = ast.Interactive(body=[last])
            codes.append(compile(interactive, filename, "single", flags=_FLAGS, dont_inherit=True))
    except SyntaxError as e:  # found by the compiler ('return' outside function...)
        if label is not None and e.filename == filename:
            e.filename = label
        raise
    return CompiledCell(codes)


def _user_frames(tb: TracebackType | None, outside_cells: bool) -> TracebackType | None:
    first = tb
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(tuple(CELL_FILE_PREFIXES)):
        tb = tb.tb_next
    if tb is None and outside_cells:
        tb = first
        while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_KERNEL_DIR):
            tb = tb.tb_next
    return tb


def error_reply(exc: BaseException, outside_cells: bool = False) -> dict[str, Any]:
    """The ``status: error`` content for ``exc``, its traceback cut to the user's code.

    The traceback starts at the first frame of cell code; with
    ``outside_cells`` (an exception the kernel caught from a library's
    method, such as a repr), at the first frame not the kernel's when no
    cell code is on it.
    """
    tb = _user_frames(exc.__traceback__, outside_cells)
    if tb is None:
        lines = traceback.format_exception_only(type(exc), exc)
    else:
        report = traceback.TracebackException(type(exc), exc, tb, compact=True)
        # The first frame is the cell's; the kernel's own frames (between
        # cell code and a repr method it called, or where an interrupt or an
        # input() wait was raised) are not the user's business.
        frames = [report.stack[0]]
        frames += [f for f in report.stack[1:] if not f.filename.startswith(_KERNEL_DIR)]
        for frame in frames:
            if frame.filename in _labels:
                _ = frame.line  # read from linecache (and kept) under the file name, before relabelling
                frame.filename = _labels[frame.filename]
        report.stack = traceback.StackSummary.from_list(frames)
        lines = list(report.format())
    text = "".join(lines).rstrip("\n")
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": text.split("\n"),
    }
