"""Calls a cell left to the reactor, run where debugpy can stop them, while a frontend debugs.

A call a cell schedules on the reactor (``reactor.callLater``,
``callFromThread``, and so what Twisted schedules for it: ``deferLater``, a
``LoopingCall``, the callbacks of a Deferred such a call fires) runs on the
reactor's thread, which debugpy does not trace: a breakpoint there would
stop control, IOPub and the host.  While a frontend is debugging,
:class:`ReactorCalls` runs each such call on a thread of its own
(``txkernel-reactor-calls``), which debugpy traces, while the reactor thread
waits for it inside the call.  The reactor is *lent* to that thread, as to
a debugged await cell's step (:mod:`.debugasync`), so the Twisted calls it
makes are made as safely as on the reactor thread.

When debugpy stops the call (a breakpoint, a step, an exception stop), the
reactor goes on at once: control, IOPub, the heartbeat's reports and the host
are served while the user looks.  Once resumed, the rest of that call runs
beside the reactor (as the rest of a stopped await step does); an exception
it raises is logged.  Until it has ended, further calls run on the reactor's
thread as without the debugger, as do the kernel's own calls and every call
while no frontend debugs.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from . import executor
from .debugasync import Lease, suspended

log = Logger()

_STOP = object()
#: How often the waiting reactor looks whether debugpy stopped the call (s).
_LOOK_EVERY = 0.005


def kernels_own(f: Callable[..., Any]) -> bool:
    """Whether ``f`` is the kernel's own (it never runs on the calls thread)."""
    module = getattr(f, "__module__", None)
    return isinstance(module, str) and module.startswith("txkernel.")


class _Call:
    __slots__ = ("f", "args", "kwargs", "context", "done", "given_back", "lock", "result", "failure", "detached")

    def __init__(self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.f = f
        self.args = args
        self.kwargs = kwargs
        # The reactor thread's context: the cell the call runs for, among others.
        self.context = contextvars.copy_context()
        self.done = threading.Event()
        self.given_back = threading.Event()
        self.lock = threading.Lock()
        self.result: Any = None
        self.failure: Failure | None = None
        #: Whether the reactor went on before the call ended.
        self.detached = False


class _Lent:
    """``executor.lent.lease`` while a call runs on the calls thread.

    ``call_in_reactor`` leaves it (the reactor must run what it asks for),
    and enters it again when it has its result: at first the reactor waits
    inside the call itself, which leaving ends (the rest of the call runs
    beside the reactor); after that, an ordinary :class:`Lease` lends it.
    """

    def __init__(self, call: _Call, lease: Lease) -> None:
        self._call = call
        self._lease = lease
        self._leased = False

    def __exit__(self, *exc_info: object) -> None:
        executor.lent.lease = None
        if self._leased:
            self._leased = False
            self._lease.__exit__(*exc_info)
        else:
            self._call.given_back.set()

    def __enter__(self) -> _Lent:
        self._lease.__enter__()
        self._leased = True
        executor.lent.lease = self
        return self

    def release(self) -> None:
        """The call has ended: let the reactor go on if it waits for it."""
        if self._leased:
            self._leased = False
            self._lease.__exit__(None, None, None)


class ReactorCalls:
    """The thread that runs, while a frontend debugs, the calls cells left to the reactor."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        #: Whether a call is on the thread now.  Set by the reactor thread;
        #: cleared by whichever thread sees the call end (the reactor, or
        #: the calls thread when the reactor went on before).
        self._busy = False

    def run(self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """(reactor thread) Run ``f(*args, **kwargs)`` on the calls thread and
        return its result (or raise its exception), the reactor waiting; None
        at once if debugpy stops it first.  While another call has not ended
        (stopped, or going on beside the reactor), ``f`` runs here instead.
        """
        if self._busy:
            return f(*args, **kwargs)
        thread = self._thread
        if thread is None:
            thread = self._thread = threading.Thread(
                target=self._loop, name="txkernel-reactor-calls", daemon=True
            )
            thread.start()
        call = _Call(f, args, kwargs)
        self._busy = True
        self._calls.put(call)
        while not call.done.wait(_LOOK_EVERY):
            if call.given_back.is_set() or suspended(thread):
                with call.lock:
                    if not call.done.is_set():
                        call.detached = True  # the calls thread clears _busy
                        return None
                break
        self._busy = False
        if call.failure is not None:
            call.failure.raiseException()
        return call.result

    def stop(self) -> None:
        """End the thread once its call (if any) has ended; does not wait for it."""
        if self._thread is not None:
            self._calls.put(_STOP)
            self._thread = None

    def _loop(self) -> None:
        thread = threading.current_thread()
        while True:
            call = self._calls.get()
            if call is _STOP:
                return
            lent = _Lent(call, Lease(self._reactor, lambda: suspended(thread)))
            executor.lent.lease = lent
            try:
                call.result = call.context.run(call.f, *call.args, **call.kwargs)
            except BaseException:
                call.failure = Failure()
            finally:
                executor.lent.lease = None
                lent.release()
            with call.lock:
                call.done.set()
                detached = call.detached
            if detached:
                self._busy = False
                if call.failure is not None:
                    self._reactor.callFromThread(
                        log.failure,
                        "A call a cell left to the reactor failed after the debugger stopped it",
                        call.failure,
                    )
