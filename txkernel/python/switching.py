"""A shorter GIL switch interval while cells run (any thread).

A cell computing in pure Python holds the GIL.  Another thread that wants it
(the reactor, answering the host application's HTTP request or a control
message) gets it only when the interpreter makes the cell's thread let go,
every ``sys.getswitchinterval()`` seconds (5 ms by default), and one reactor
turn may have to wait like that several times.  While at least one cell runs,
:func:`cell_running` sets the interval to :data:`CELL_SWITCH_INTERVAL`; when
the last running cell ends, the interval set before comes back.  When no
other thread wants the GIL the interval costs nothing: it only bounds how
long a waiting thread waits.

A cell that sets the interval itself keeps its value: it is restored only
when it is still the one set here.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["CELL_SWITCH_INTERVAL", "cell_running"]

#: Seconds, while a cell runs (CPython's default is 0.005).
CELL_SWITCH_INTERVAL = 0.001

_lock = threading.Lock()
_running = 0
_saved = 0.0


@contextmanager
def cell_running() -> Iterator[None]:
    """Run the body (a cell) with the shorter switch interval."""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = sys.getswitchinterval()
            if _saved > CELL_SWITCH_INTERVAL:
                sys.setswitchinterval(CELL_SWITCH_INTERVAL)
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            # getswitchinterval() rounds to microseconds: compare loosely.
            if (
                _running == 0
                and _saved > CELL_SWITCH_INTERVAL
                and abs(sys.getswitchinterval() - CELL_SWITCH_INTERVAL) < 1e-6
            ):
                sys.setswitchinterval(_saved)
