"""Callbacks run after each cell and comm handler, on the execution thread.

Optional integrations (the inline matplotlib backend) register here what
must happen when a cell ends; the Python kernel calls :func:`cell_ended`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

log = Logger()

_cell_end: list[Callable[[Any], object]] = []


def on_cell_end(callback: Callable[[Any], object]) -> None:
    """Call ``callback(cell)`` after each cell and comm handler (execution thread)."""
    if callback not in _cell_end:
        _cell_end.append(callback)


def cell_ended(cell: Any) -> None:
    """Run the cell-end callbacks for ``cell``; one that raises is logged."""
    for callback in list(_cell_end):
        try:
            callback(cell)
        except Exception:
            log.failure("A cell-end callback failed")
