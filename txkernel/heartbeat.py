"""The heartbeat thread: echoes pings at C level, whatever Python is doing.

``zmq.proxy`` between a ROUTER and itself sends every ping back to the peer
it came from, inside libzmq with the GIL released, so the heartbeat keeps
answering while the reactor or a cell holds the GIL.  The socket lives in its
own ``zmq.Context`` (as in ipykernel) so that no other socket's I/O thread can
make it wait for the GIL.  Stopping terminates that context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import zmq
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ._socket_thread import SocketThread

log = Logger()

#: The biggest ping accepted; libzmq disconnects a peer that sends more.
MAX_PING_BYTES = 64 * 1024


class Heartbeat(SocketThread):
    """Owns the heartbeat ROUTER socket in a thread of its own."""

    def __init__(
        self, reactor: Any, address: str, socket_options: Sequence[tuple[int, Any]] = ()
    ) -> None:
        super().__init__(reactor, "txkernel-heartbeat")
        self._address = address
        self._socket_options = list(socket_options)
        self._context = zmq.Context()

    def stop(self) -> Deferred[None]:
        """End the echo; the Deferred fires on the reactor thread once the thread exited."""
        d = self._when_exited()
        if not self._context.closed:
            # term() returns once the thread has closed its socket (linger 0).
            self._context.term()
        return d

    def _run(self) -> None:
        sock = self._context.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_PING_BYTES)
            for option, value in self._socket_options:  # CurveZMQ
                sock.setsockopt(option, value)
            sock.bind(self._address)
            endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode("ascii")
        except BaseException as e:
            sock.close()
            self._context.term()
            self._bind_failed(e)
            return
        self._bound(endpoint)
        try:
            zmq.proxy(sock, sock)
        except zmq.ContextTerminated:
            pass
        except Exception:
            log.failure("Heartbeat thread failed")
        finally:
            sock.close()
            self._reactor.callFromThread(self._thread_exited)

    def _after_exit(self) -> None:
        if not self._context.closed:
            self._context.term()
