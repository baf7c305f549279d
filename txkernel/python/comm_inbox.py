"""Comm messages that arrive while a cell runs: served without waiting for it.

The core serves shell requests one at a time, so a ``comm_msg`` that arrives
while a cell runs would wait for the end of the cell.  A cell that waits for
a reply from a widget in the page (``await reply`` where a comm handler
fires ``reply``) would then never end.  The Python kernel therefore takes the
comm messages (``comm_open``, ``comm_msg``, ``comm_close``) that arrive
while its execution thread runs a job (a cell or a comm handler), or has
been handed one it has not started yet, out of the shell queue and into
this inbox, which serves them:

- at once, on the reactor thread, while the job *waits on the reactor*: a
  top-level ``await`` (the cell's coroutine runs on the reactor), a
  ``run_in_reactor(...)`` call, or ``input()``.  The execution thread is then
  parked, so handlers never run alongside the user's code, and on the same
  thread as the awaiting coroutine, which their Deferreds can wake;
- otherwise right after the job, on the execution thread, before any shell
  request that arrived after them, so a cell that does not wait sees them
  in the same order as it would without the inbox.

Every message served here gets ``status: busy``/``idle`` as usual.
:meth:`CommInbox.accept` and the calls :meth:`CommInbox.waiting` wraps run on
the reactor thread; :meth:`CommInbox.run` and :meth:`CommInbox.waiting` on
the execution thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from ..comm import CommManager
from ..request import Request

log = Logger()

COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})

#: ``run_in_cell(request, call)``: run ``call()`` with ``request`` as the
#: context of its output (the Python kernel's wrapper of comm handlers).
RunInCell = Callable[[Request, Callable[[], object]], object]


class CommInbox:
    """The comm messages taken out of turn for one kernel."""

    def __init__(
        self,
        comms: CommManager,
        publish: Callable[..., object],
        run_in_cell: RunInCell,
    ) -> None:
        self._comms = comms
        self._publish = publish
        self._run_in_cell = run_in_cell
        self._lock = threading.Lock()
        self._pending: deque[Request] = deque()
        self._open = False  # a job runs on the execution thread
        self._runner: int | None = None  # that thread's ident
        self._waiting = 0  # that job waits on the reactor (reactor thread only)

    # -- reactor thread --

    def expect(self) -> None:
        """A job has been handed to the execution thread (which may not have
        started it yet): from now on comm messages wait for it here, as
        they would once it runs."""
        with self._lock:
            self._open = True

    def accept(self, request: Request) -> bool:
        """Take ``request`` if it is a comm message and a job is running."""
        if request.msg_type not in COMM_TYPES:
            return False
        with self._lock:
            if not self._open:
                return False
            self._pending.append(request)
        if self._waiting:
            self._serve_while_waiting()
        return True

    def waiting(self, f: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``f``, which the calling thread will run on the reactor and wait for.

        Called on the execution thread, while it runs a job: while the
        Deferred of the wrapped call is pending, comm messages are served on
        the reactor thread as they come.  Called on any other thread (one a
        cell started goes on alongside it), ``f`` is returned as it is.
        """
        if threading.get_ident() != self._runner:
            return f

        def wait_on_reactor(*args: Any, **kwargs: Any) -> Deferred[Any]:
            self._waiting += 1
            self._serve_while_waiting()
            d = maybeDeferred(f, *args, **kwargs)
            d.addBoth(self._done_waiting)
            return d

        return wait_on_reactor

    def _done_waiting(self, result: Any) -> Any:
        self._waiting -= 1
        return result

    def _serve_while_waiting(self) -> None:
        while self._waiting:
            with self._lock:
                if not self._pending:
                    return
                request = self._pending.popleft()
            self._serve(request)

    # -- execution thread --

    def run(self, f: Callable[..., Any], *args: Any) -> Any:
        """Run the job ``f(*args)``; then serve what arrived and was not served yet."""
        with self._lock:
            self._open = True
            self._runner = threading.get_ident()
        try:
            return f(*args)
        finally:
            self._serve_rest()

    def _serve_rest(self) -> None:
        # The inbox stays open while these run: one of them may wait too.
        while True:
            with self._lock:
                if not self._pending:
                    self._open = False
                    self._runner = None
                    return
                request = self._pending.popleft()
            self._serve(request)

    # -- either thread --

    def _serve(self, request: Request) -> None:
        comms = self._comms
        handler = {
            "comm_open": comms.comm_open,
            "comm_msg": comms.comm_msg,
            "comm_close": comms.comm_close,
        }[request.msg_type]
        self._publish("status", {"execution_state": "busy"}, parent=request)
        try:
            self._run_in_cell(request, lambda: handler(request.message))
        except Exception:
            log.failure("Serving {request!r} failed", request=request)
        finally:
            self._publish("status", {"execution_state": "idle"}, parent=request)
