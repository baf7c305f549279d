"""The heartbeat thread: echoes pings at C level, whatever Python is doing.

``zmq.proxy`` between a ROUTER and itself sends every ping back to the peer
it came from, inside libzmq with the GIL released, so the heartbeat keeps
answering while the reactor or a cell holds the GIL.  The socket lives in its
own ``zmq.Context`` (as in ipykernel) so that no other socket's I/O thread can
make it wait for the GIL.  Stopping terminates that context.
"""

from __future__ import annotations

import threading
from typing import Any

import zmq
from twisted.internet.defer import Deferred
from twisted.logger import Logger

log = Logger()


class Heartbeat:
    """Owns the heartbeat ROUTER socket in a thread of its own."""

    def __init__(self, reactor: Any, address: str) -> None:
        self._reactor = reactor
        self._address = address
        self._context = zmq.Context()
        self._ready = threading.Event()
        self._bind_error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="txkernel-heartbeat", daemon=True
        )
        self._exited = False
        self._waiters: list[Deferred[None]] = []
        self.endpoint = ""

    def start(self) -> str:
        """Start the thread and bind; returns the bound endpoint or raises the bind error."""
        self._thread.start()
        self._ready.wait()
        if self._bind_error is not None:
            self._thread.join()
            raise self._bind_error
        return self.endpoint

    def stop(self) -> Deferred[None]:
        """End the echo; the Deferred fires on the reactor thread once the thread exited."""
        d: Deferred[None] = Deferred()
        if self._exited:
            d.callback(None)
            return d
        self._waiters.append(d)
        if not self._context.closed:
            # term() returns once the thread has closed its socket (linger 0).
            self._context.term()
        return d

    def _run(self) -> None:
        sock = self._context.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(self._address)
            self.endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode("ascii")
        except BaseException as e:
            self._bind_error = e
            sock.close()
            self._context.term()
            self._exited = True
            self._ready.set()
            return
        self._ready.set()
        try:
            zmq.proxy(sock, sock)
        except zmq.ContextTerminated:
            pass
        except Exception:
            log.failure("Heartbeat thread failed")
        finally:
            sock.close()
            self._reactor.callFromThread(self._finished)

    def _finished(self) -> None:
        self._thread.join()
        self._exited = True
        if not self._context.closed:
            self._context.term()
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)
