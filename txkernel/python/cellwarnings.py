"""Warnings a cell raises appear in that cell, on stderr.

Python decides whether a warning is shown (the filters: by default once per
location, DeprecationWarning only from ``__main__``, which cell code is) and
then calls ``warnings._showwarnmsg`` to show it.  While Python kernels serve,
:func:`install` wraps that hook: a warning raised by code running for a cell
(in its context, a thread it started, a reactor call it scheduled: see
:mod:`.output`) is written to the cell's stderr; any other warning goes on to
whatever shows warnings in this process, which under twistd is the log (the
host's warnings stay the host's).

:func:`new_cell` forgets where the previous cells warned from, so each run of
a cell shows its warnings (once per location, by default), as ipykernel does.

Wrapping ``_showwarnmsg`` rather than ``warnings.showwarning`` keeps the
host's own ``showwarning`` (``twisted.logger`` installs one when logging
begins, possibly after the kernel started) in charge of everything that is
not a cell's.  Runs on whichever thread warns.
"""

from __future__ import annotations

import linecache
import threading
import warnings
from typing import Any

__all__ = ["install", "new_cell", "uninstall"]

_lock = threading.Lock()
_saved: Any = None


def install() -> None:
    """Show cells' warnings in their cells (once per process; see :func:`uninstall`)."""
    global _saved
    with _lock:
        original = getattr(warnings, "_showwarnmsg", None)
        if _saved is not None or original is None:
            return
        _saved = original
        warnings._showwarnmsg = _show  # type: ignore[attr-defined]


def uninstall() -> None:
    """Put the process's own way of showing warnings back."""
    global _saved
    with _lock:
        if _saved is None:
            return
        if getattr(warnings, "_showwarnmsg", None) is _show:
            warnings._showwarnmsg = _saved  # type: ignore[attr-defined]
        _saved = None


def new_cell(namespace: dict[str, Any]) -> None:
    """A cell starts in ``namespace``: its warnings show again, once per location.

    Python remembers the locations it warned from in the module's
    ``__warningregistry__``; for cells that is the kernel's namespace, so
    without this a cell run again would stay silent (ipykernel shows the
    warnings of each run too).
    """
    registry = namespace.get("__warningregistry__")
    if isinstance(registry, dict):
        registry.clear()


def _show(message: Any) -> None:
    from .output import router

    cell = router.cell(explicit_only=True)
    output = cell.kernel.output if cell is not None else None
    recording = not _writes_to_stderr(getattr(warnings, "_showwarnmsg_impl", None))
    if cell is None or output is None or message.file is not None or recording:
        # Not a cell's, written to a file the caller chose, or recorded by
        # catch_warnings(record=True): as before.
        original = _saved or getattr(warnings, "_showwarnmsg_impl", None)
        if original is not None:
            original(message)
        return
    message = _labelled(message)
    try:
        text = warnings._formatwarnmsg(message)  # type: ignore[attr-defined]
    except Exception:  # a formatwarning replaced by something broken
        text = f"{message.category.__name__}: {message.message}\n"
    output.write("stderr", text, cell.request)


def _labelled(message: Any) -> Any:
    """``message`` naming cell code as ``<cell-N>`` rather than its debugger file."""
    from .cell import label_of

    shown = label_of(message.filename)
    if shown == message.filename:
        return message
    line = message.line
    if line is None:
        line = linecache.getline(message.filename, message.lineno)
    return warnings.WarningMessage(
        message.message, message.category, shown, message.lineno, message.file, line, message.source
    )


def _writes_to_stderr(impl: Any) -> bool:
    """Whether ``impl`` is Python's own ``warnings._showwarnmsg_impl``.

    ``catch_warnings(record=True)`` replaces it with a list's ``append``
    while it records (whenever this module was imported).
    """
    return (
        getattr(impl, "__module__", None) == "warnings"
        and getattr(impl, "__name__", None) == "_showwarnmsg_impl"
    )
