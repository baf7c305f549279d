"""What the IOPub and heartbeat threads share: bind on the thread, report back.

The thread creates and binds its socket itself (ZeroMQ sockets stay on the
thread that made them).  :meth:`SocketThread.start` waits for the bind and
raises its error on the caller's thread; the thread's exit is reported to the
reactor with ``callFromThread``, where the Deferreds of
:meth:`SocketThread._when_exited` fire.
"""

from __future__ import annotations

import threading
from typing import Any

from twisted.internet.defer import Deferred


class SocketThread:
    """A daemon thread that binds one socket and serves it until stopped.

    A subclass writes ``_run`` (on the thread), which calls :meth:`_bound`
    or :meth:`_bind_failed` once, and, when it served, ends with
    ``reactor.callFromThread(self._thread_exited)``.
    """

    def __init__(self, reactor: Any, name: str) -> None:
        self._reactor = reactor
        self._ready = threading.Event()
        self._bind_error: BaseException | None = None
        self._exited = False
        self._exit_waiters: list[Deferred[None]] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        # Not the user's: debugpy neither traces nor lists it.
        self._thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
        self._thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
        self.endpoint = ""

    def start(self) -> str:
        """Start the thread and bind; returns the bound endpoint or raises the bind error."""
        self._thread.start()
        self._ready.wait()
        if self._bind_error is not None:
            self._thread.join()
            raise self._bind_error
        return self.endpoint

    def _run(self) -> None:
        raise NotImplementedError

    def _bound(self, endpoint: str) -> None:
        """(thread) The socket is bound at ``endpoint``: let :meth:`start` return."""
        self.endpoint = endpoint
        self._ready.set()

    def _bind_failed(self, error: BaseException) -> None:
        """(thread) Binding failed; the thread ends without serving."""
        self._bind_error = error
        self._exited = True
        self._ready.set()

    def _when_exited(self) -> Deferred[None]:
        """Fires on the reactor thread once the thread has exited."""
        d: Deferred[None] = Deferred()
        if self._exited:
            d.callback(None)
        else:
            self._exit_waiters.append(d)
        return d

    def _thread_exited(self) -> None:
        """(reactor) Join the thread, clean up, fire the waiters."""
        self._thread.join()
        self._exited = True
        self._after_exit()
        waiters, self._exit_waiters = self._exit_waiters, []
        for d in waiters:
            d.callback(None)

    def _after_exit(self) -> None:
        """(reactor) What a subclass releases once its thread is gone."""
