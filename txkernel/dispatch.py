"""The dispatcher: one queue of requests per channel and per subshell.

Requests on control form one queue; shell requests form one queue per
subshell (the parent shell is subshell ``None``).  Each queue serves its
requests one at a time, in arrival order, and the queues run independently
of each other, so control answers while shell is busy and a subshell answers
while the parent shell runs a long cell.  Every request a queue serves is
wrapped in ``status: busy`` and ``status: idle``; whatever goes wrong while
serving it, the queue goes on with the next.  Reactor thread only.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Iterator
from types import CoroutineType
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .messenger import Messenger
from .request import Request, RequestError

log = Logger()

Handler = Callable[[Request], Any]

#: The request whose handler is running now, for code the handler calls.
serving: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "txkernel_serving", default=None
)


class UnknownSubshell(RequestError, LookupError):
    """A shell request named a subshell that does not exist."""


class RequestQueue:
    """The pending requests of one channel or subshell, served in order."""

    __slots__ = ("subshell_id", "pending", "active", "current", "aborted")

    def __init__(self, subshell_id: str | None = None) -> None:
        self.subshell_id = subshell_id
        self.pending: deque[Request] = deque()
        self.active = False
        #: The request being served, or the last one served.
        self.current: Request | None = None
        #: Queued execute requests to answer ``aborted`` (stop_on_error).
        self.aborted: set[Request] = set()


class Dispatcher:
    """Routes requests to their queue and serves each queue.

    ``handler_for(request)`` gives the callable that serves a request (it
    may return a Deferred) or None for a type that channel does not serve;
    ``on_failure(request, failure)`` answers a request whose handler failed;
    ``on_aborted(request)`` answers an execute request aborted by an error;
    ``on_served(request)`` runs after a request's idle status.
    """

    def __init__(
        self,
        messenger: Messenger,
        handler_for: Callable[[Request], Handler | None],
        on_failure: Callable[[Request, Failure], object],
        on_aborted: Callable[[Request], object],
        on_served: Callable[[Request], object],
    ) -> None:
        self._messenger = messenger
        self._handler_for = handler_for
        self._on_failure = on_failure
        self._on_aborted = on_aborted
        self._on_served = on_served
        self.control = RequestQueue()
        self.shells: dict[str | None, RequestQueue] = {None: RequestQueue()}
        self.closed = False

    @property
    def shell(self) -> RequestQueue:
        """The parent shell's queue."""
        return self.shells[None]

    def queues(self) -> Iterator[RequestQueue]:
        """Every queue: control, the parent shell and each subshell."""
        yield self.control
        yield from self.shells.values()

    def queue_of(self, request: Request) -> RequestQueue:
        """The queue that serves ``request``; UnknownSubshell if it names none."""
        if request.channel == "control":
            return self.control
        queue = self.shells.get(request.subshell_id)
        if queue is None:
            raise UnknownSubshell(f"no subshell with id {request.subshell_id!r}")
        return queue

    def add_subshell(self, subshell_id: str) -> None:
        self.shells[subshell_id] = RequestQueue(subshell_id)

    def remove_subshell(self, subshell_id: str) -> None:
        queue = self.shells.pop(subshell_id, None)
        if queue is not None:
            for request in queue.pending:
                log.warn("Dropped {request!r}: its subshell was deleted", request=request)
            queue.pending.clear()

    def accept(self, request: Request) -> None:
        """Queue ``request`` and serve its queue if it is idle."""
        if self.closed:
            return
        try:
            queue = self.queue_of(request)
        except UnknownSubshell as e:
            self._refuse(request, e)
            return
        queue.pending.append(request)
        self._pump(queue)

    def abort_pending(self, queue: RequestQueue) -> None:
        """Mark the execute requests queued in ``queue`` (or waiting in the
        socket for it) to be answered ``aborted``."""
        self._messenger.drain("shell")
        for request in queue.pending:
            if request.msg_type == "execute_request":
                queue.aborted.add(request)

    def close(self) -> None:
        """Stop serving; queued requests are dropped."""
        self.closed = True
        for queue in self.queues():
            queue.pending.clear()
            queue.aborted.clear()

    def reopen(self) -> None:
        """Serve again after :meth:`close`, with fresh queues: a request still
        being served when the dispatcher closed (a cell that ignored its
        interrupt) no longer holds up the requests that come after."""
        self.closed = False
        self.control = RequestQueue()
        self.shells = {None: RequestQueue()}

    def _pump(self, queue: RequestQueue) -> None:
        while queue.pending and not queue.active and not self.closed:
            request = queue.pending.popleft()
            queue.active = True
            d = self._serve(request, queue)
            if d is not None and not d.called:
                d.addBoth(self._resume, queue)
                return
            queue.active = False

    def _resume(self, _: object, queue: RequestQueue) -> None:
        queue.active = False
        self._pump(queue)

    def _serve(self, request: Request, queue: RequestQueue) -> Deferred[None] | None:
        """Serve one request: None once it is done (most requests are served
        at once), or a Deferred that fires (never fails) when it is done."""
        try:
            if request in queue.aborted:
                queue.aborted.discard(request)
                handler: Handler | None = self._on_aborted
            else:
                handler = self._handler_for(request)
            if handler is None:
                log.warn(
                    "Ignored a {msg_type!r} message on {channel}",
                    msg_type=request.msg_type,
                    channel=request.channel,
                )
                return None
            if request.channel == "shell":
                queue.current = request
            self._messenger.status("busy", request)
            token = serving.set(request)
            try:
                result = handler(request)
            except BaseException:  # as maybeDeferred would
                result = Failure(captureVars=Deferred.debug)
            finally:
                serving.reset(token)
        except Exception:
            log.failure("Could not serve {request!r}: dropped", request=request)
            return None
        if isinstance(result, Deferred | CoroutineType):
            d = ensureDeferred(result)
            d.addErrback(self._failed, request)
            d.addBoth(self._finished, request)
            return d
        if isinstance(result, Failure):
            self._failed(result, request)
        self._finished(None, request)
        return None

    def _failed(self, failure: Failure, request: Request) -> None:
        try:
            self._on_failure(request, failure)
        except Exception:
            log.failure("Could not answer the failed {request!r}", request=request)

    def _finished(self, result: object, request: Request) -> None:
        if isinstance(result, Failure):
            log.failure("Serving {request!r} failed", result, request=request)
        try:
            self._messenger.status("idle", request)
            self._on_served(request)
        except Exception:
            log.failure("Could not finish {request!r}", request=request)

    def _refuse(self, request: Request, reason: Exception) -> None:
        """Answer a request no queue can take with an error (busy and idle around it)."""
        log.warn("Refused {request!r}: {reason}", request=request, reason=reason)
        try:
            self._messenger.status("busy", request)
            self._on_failure(request, Failure(reason))
            self._messenger.status("idle", request)
        except Exception:
            log.failure("Could not refuse {request!r}", request=request)
