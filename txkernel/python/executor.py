"""Where cell code runs: an execution thread, never the reactor thread.

Two kinds, with one interface (``submit``, ``interrupt``, ``stop``):

- :class:`ThreadExecutor` (under twistd, or embedded in an application, where
  the reactor has the main thread): a dedicated worker thread.  An interrupt
  raises ``KeyboardInterrupt`` in it at the next Python bytecode, so Python
  loops stop at once; a blocking C call (``time.sleep``, a socket read)
  finishes first.
- :class:`MainThreadExecutor` (``python -m txkernel``, the process Jupyter
  launches): cells run on the main thread while the reactor runs on another.
  An interrupt is a real ``SIGINT`` to the main thread, so it ends
  ``time.sleep(60)`` too, exactly as in ipykernel.

``submit`` is called on the reactor thread and returns a Deferred that fires
there.  :func:`call_in_reactor` is how cell code (on the execution thread)
runs something on the reactor and waits for its result.
"""

from __future__ import annotations

import ctypes
import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.python.failure import Failure

from .._defer import branch
from .switching import cell_running

_STOP = object()
#: ``lent.lease``: the reactor lent to this thread (a debugged await cell's step, see debugasync).
lent = threading.local()


def call_in_reactor(reactor: Any, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``f(*args, **kwargs)`` on the reactor thread and return its result.

    When ``f`` returns a Deferred, wait for it.  Called from the reactor
    thread itself, ``f`` is simply called.  An interrupt while waiting
    cancels the Deferred and raises ``KeyboardInterrupt``.
    """
    from twisted.python.threadable import isInIOThread

    if isInIOThread():
        return f(*args, **kwargs)
    lease = getattr(lent, "lease", None)
    if lease is not None:
        # The reactor waits for this thread: give it back while this waits for it.
        lease.__exit__(None, None, None)
        try:
            return call_in_reactor(reactor, f, *args, **kwargs)
        finally:
            lease.__enter__()
    results: queue.SimpleQueue[Any] = queue.SimpleQueue()
    started: dict[str, Deferred[Any]] = {}

    def start() -> None:
        d = maybeDeferred(f, *args, **kwargs)
        started["d"] = d
        d.addBoth(results.put)

    reactor.callFromThread(start)
    try:
        while True:
            try:
                result = results.get(timeout=0.05)
                break
            except queue.Empty:
                # Waking up now and then lets an interrupt reach this thread.
                continue
    except KeyboardInterrupt:
        reactor.callFromThread(lambda: started["d"].cancel() if "d" in started else None)
        raise
    if isinstance(result, Failure):
        result.raiseException()
    return result


_UNSET = object()


class _Job:
    __slots__ = ("f", "args", "deferred", "result", "sent", "cell")

    def __init__(
        self, f: Callable[..., Any], args: tuple[Any, ...], deferred: Deferred[Any], cell: bool
    ) -> None:
        self.f = f
        self.args = args
        self.deferred = deferred
        self.result: Any = _UNSET
        self.sent = False
        self.cell = cell


class _Executor:
    """Runs submitted calls one at a time on one thread, in order."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        # Cells submitted and not taken by the execution thread yet, and
        # whether an interrupt came for the next of them (see interrupt()).
        self._queued_cells = 0
        self._interrupt_next = False
        self._stopped: Deferred[None] = Deferred()
        self._stopping = False

    @property
    def busy(self) -> bool:
        """Whether a submitted call is running now."""
        return self._running

    def submit(self, f: Callable[..., Any], *args: Any, cell: bool = False) -> Deferred[Any]:
        """Run ``f(*args)`` on the execution thread; fires (reactor thread) with its result.

        ``cell``: the call is a cell, which an interrupt reaches even before
        the execution thread has taken it (see :meth:`interrupt`).
        """
        d: Deferred[Any] = Deferred()
        if self._stopping:
            d.errback(RuntimeError("the executor is stopped"))
            return d
        if cell:
            with self._lock:
                self._queued_cells += 1
        self._jobs.put(_Job(f, args, d, cell))
        return d

    def stop(self) -> Deferred[None]:
        """Interrupt the running call, refuse new ones, end the thread.

        Calls submitted but not yet started do not run (they fail).  Fires
        once the execution loop has returned.
        """
        if not self._stopping:
            with self._lock:
                self._stopping = True
                if self._running:
                    self._raise_interrupt()
            self._jobs.put(_STOP)
        return branch(self._stopped)

    def interrupt(self) -> None:
        """Raise ``KeyboardInterrupt`` in the running call, if there is one.

        Otherwise a cell submitted but not started yet (the execution thread
        has not taken it, while the frontend already shows it running) is
        interrupted: it does not run, and fails with ``KeyboardInterrupt``.
        """
        with self._lock:
            if self._running:
                self._raise_interrupt()
            elif self._queued_cells:
                self._interrupt_next = True

    def _raise_interrupt(self) -> None:
        raise NotImplementedError

    def _clear_interrupt(self) -> None:
        """Forget an interrupt that arrived too late to hit the call."""

    def _loop(self) -> None:
        """The execution loop: run jobs until stopped (on the execution thread)."""
        while True:
            job: Any = None
            try:
                job = self._jobs.get()
                if job is _STOP:
                    break
                self._run(job)
            except KeyboardInterrupt:
                # An interrupt that arrived after the call returned (or before
                # it started): the call's result, if any, still goes back.
                if isinstance(job, _Job) and not job.sent:
                    result = job.result if job.result is not _UNSET else Failure(KeyboardInterrupt())
                    self._send(job, result)
        self._reactor.callFromThread(self._finished)

    def _run(self, job: _Job) -> None:
        with self._lock:
            stopping = self._stopping
            interrupted = False
            if job.cell:
                self._queued_cells -= 1
                interrupted, self._interrupt_next = self._interrupt_next, False
            self._running = not stopping and not interrupted
        if stopping:
            # Stopped before it started: it reads as interrupted at once.
            self._send(job, Failure(CancelledError("the executor stopped")))
            return
        if interrupted:
            self._send(job, Failure(KeyboardInterrupt()))
            return
        try:
            with cell_running():
                job.result = job.f(*job.args)
        except BaseException:
            job.result = Failure()
        with self._lock:
            self._running = False
            self._clear_interrupt()
        self._send(job, job.result)

    def _send(self, job: _Job, result: Any) -> None:
        job.sent = True
        self._reactor.callFromThread(_fire, job.deferred, result)

    def _finished(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                job.deferred.errback(RuntimeError("the executor stopped"))
        if not self._stopped.called:
            self._stopped.callback(None)


def _fire(d: Deferred[Any], result: Any) -> None:
    if isinstance(result, Failure):
        d.errback(result)
    else:
        d.callback(result)


class ThreadExecutor(_Executor):
    """Cells run on a dedicated worker thread (the reactor keeps the main thread)."""

    def __init__(self, reactor: Any, name: str = "txkernel-execute") -> None:
        super().__init__(reactor)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        # For debugpy this is a main thread: its debug session lasts while it
        # lives, although it is a daemon (and the reactor's thread is hidden).
        setattr(self._thread, "__pydevd_main_thread", True)
        self._interrupt_sent = False
        self._stopped.addCallback(lambda _: self._thread.join())

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def _raise_interrupt(self) -> None:
        ident = self._thread.ident
        if ident is not None:
            self._interrupt_sent = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt)
            )

    def _clear_interrupt(self) -> None:
        # On the execution thread, after a call.  An interrupt that did not
        # land is swapped for a private exception and spent here: clearing
        # it with NULL would leave Python 3.11's async-exception flag set,
        # so every thread would keep checking it (and a thread traced by
        # debugpy spins at its next function call).
        ident = self._thread.ident
        if ident is None or not self._interrupt_sent:
            return
        self._interrupt_sent = False
        try:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(_SpentInterrupt)
            )
            for _ in range(10_000):  # raised on return from the call, or at a jump
                pass
        except _SpentInterrupt:
            pass


class _SpentInterrupt(BaseException):
    """Stands in for an interrupt that arrived too late to hit its call."""


class MainThreadExecutor(_Executor):
    """Cells run on the main thread; the reactor runs on another.

    Call :meth:`run` on the main thread: it installs the SIGINT handler and
    serves jobs until :meth:`stop`.
    """

    def __init__(self, reactor: Any) -> None:
        super().__init__(reactor)
        self._main_ident = threading.main_thread().ident

    def start(self) -> None:
        """Nothing to start: :meth:`run` is the loop."""

    def run(self) -> None:
        """Serve jobs on this (the main) thread until stopped."""
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self._loop()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        # On the main thread, between two of its bytecodes: no lock here (the
        # thread may hold it).  A cell handed over but not taken yet is
        # interrupted as interrupt() would.
        if self._running:
            raise KeyboardInterrupt
        if self._queued_cells:
            self._interrupt_next = True

    def _raise_interrupt(self) -> None:
        if self._main_ident is not None:
            signal.pthread_kill(self._main_ident, signal.SIGINT)
