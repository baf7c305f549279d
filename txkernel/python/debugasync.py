"""Cells with top-level ``await`` while the debugger is on: stepped on the execution thread.

Without the debugger such a cell is a coroutine the reactor runs
(``Deferred.fromCoroutine``), on the reactor's thread, which debugpy does not
trace: stopping it there would stop control, the heartbeat's reports and the
host.  While a frontend is debugging, :func:`run` drives the coroutine on the
execution thread instead, so its breakpoints stop and it can be stepped:

- each step (the cell's code from one ``await`` to the next) runs on the
  execution thread while the reactor thread waits for it in a call of its
  own (the reactor is *lent* to the step, see :class:`Lease`), so the
  Twisted calls the step makes (``callLater``, ``connectTCP``, firing a
  Deferred) are made as safely as from the reactor thread;
- each awaited Deferred is waited for with the reactor running, and the
  coroutine goes on on the execution thread once it has fired;
- when debugpy stops the step (a breakpoint, a step, an exception stop), the
  reactor is given back at once: control, IOPub and the host go on while the
  user looks.  The rest of that step, once resumed, runs beside the reactor
  (its Twisted calls are then made from the execution thread, see the
  docs); the next step is lent the reactor again.
- a step that waits for the reactor itself (``run_in_reactor``, through
  :func:`.executor.call_in_reactor`) gives the reactor back while it waits
  and takes it again after.

Calls the cell leaves to the reactor (a ``callLater``, and the Deferred
callbacks it runs) are stepped on a thread of their own the same way, see
:mod:`.debugcalls`; a protocol's methods still run on the reactor's thread,
so breakpoints in them do not stop.  Runs on the execution thread, except
the reactor's side of :class:`Lease`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import CancelledError, Deferred

from . import executor


def suspended(thread: threading.Thread) -> bool:
    """Whether debugpy holds ``thread`` stopped (in its wait loop) now."""
    info = getattr(thread, "additional_info", None)
    return bool(getattr(info, "is_in_wait_loop", False))


class Lease:
    """The reactor lent to one thread: the reactor thread waits while the borrower runs.

    ``with lease:`` on the borrowing thread returns once the reactor thread
    is waiting in a call of the lease's; leaving the block lets it go on.
    The reactor stops waiting early when ``given_back()`` says so (debugpy
    stopped the borrower).
    """

    def __init__(self, reactor: Any, given_back: Callable[[], bool]) -> None:
        self._reactor = reactor
        self._given_back = given_back
        self._done: threading.Event | None = None

    def __enter__(self) -> Lease:
        held, done = threading.Event(), threading.Event()
        self._done = done

        def lent() -> None:  # reactor thread
            held.set()
            while not done.wait(0.005):
                if self._given_back():
                    return

        self._reactor.callFromThread(lent)
        try:
            while not held.wait(0.05):  # short waits let an interrupt in
                pass
        except BaseException:
            done.set()
            raise
        executor.lent.lease = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        executor.lent.lease = None
        if self._done is not None:
            self._done.set()
            self._done = None


def _fired(d: Deferred[Any]) -> Deferred[None]:
    """Fires (with None) once ``d`` has a result, leaving the result in ``d``.

    Cancelling it (an interrupt) cancels ``d``, whose coroutine is then
    closed rather than resumed: the CancelledError is nobody's to report.
    """

    def cancel(_: Deferred[None]) -> None:
        d.cancel()
        d.addErrback(lambda f: f.trap(CancelledError) and None)

    done: Deferred[None] = Deferred(cancel)

    def passed(result: Any) -> Any:
        if not done.called:
            done.callback(None)
        return result

    d.addBoth(passed)
    return done


def run(
    reactor: Any,
    coroutine: Coroutine[Any, Any, Any],
    wait: Callable[..., Any],
) -> Any:
    """Run ``coroutine`` to its end on this thread; returns its value or raises its exception.

    ``wait(f)`` runs ``f`` on the reactor thread and waits for the Deferred
    it returns (the kernel's ``run_in_reactor``).  An interrupt while an
    awaited Deferred is pending cancels it and closes the coroutine.
    """
    thread = threading.current_thread()
    lease = Lease(reactor, lambda: suspended(thread))
    value: Any = None
    while True:
        with lease:
            try:
                yielded = coroutine.send(value)
            except StopIteration as stop:
                return stop.value
        value = None
        if isinstance(yielded, Deferred):
            try:
                # The Deferred's own iterator reads its result when the
                # coroutine goes on (and raises its failure there).
                wait(_fired, yielded)
            except BaseException:
                with lease:
                    coroutine.close()
                raise
        else:
            # Anything else yielded goes straight back, as in inlineCallbacks.
            value = yielded
