"""A client's watch on a kernel's heartbeat: notices a kernel that died or hangs.

Two parts, so the timing can be tested with ``twisted.internet.task.Clock``:

- :class:`HeartbeatMonitor` (reactor thread) sends a ping every ``interval``
  seconds through any ``ping(token)`` callable and declares the kernel lost
  once ``misses`` pings in a row went unanswered for an interval each;
  an answer again later declares it back.
- :class:`HeartbeatPinger` owns the DEALER socket connected to the kernel's
  heartbeat (its echo, a ROUTER in ipykernel and txkernel) in a thread of its
  own, so no heartbeat traffic is read or written on the reactor thread: the
  reactor hands it tokens through an inproc pipe and hears each echo back with
  ``callFromThread``.  Echoes that arrived while the reactor was busy are
  delivered before its next timer runs (Twisted runs ``callFromThread``
  calls first), so a reactor blocked for a while does not make a live kernel
  look dead by itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import zmq
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

#: Pings the pinger's socket queues for an unreachable kernel before it
#: drops new ones (a kernel that comes back answers the first it reads).
_QUEUED_PINGS = 2


class HeartbeatMonitor:
    """Pings every ``interval`` seconds; ``on_lost()`` after ``misses``
    unanswered pings in a row, ``on_back()`` at the first answer after that.

    ``ping(token)`` sends a ping; whoever receives its echo calls
    :meth:`echoed` with the token on the reactor thread.  ``reactor`` gives
    the time (a ``Clock`` in tests).
    """

    def __init__(
        self,
        ping: Callable[[bytes], object],
        on_lost: Callable[[], object],
        on_back: Callable[[], object] = lambda: None,
        interval: float = 1.0,
        misses: int = 3,
        reactor: Any = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("the heartbeat interval must be positive")
        if misses < 1:
            raise ValueError("misses must be at least 1")
        if reactor is None:
            from twisted.internet import reactor
        self.interval = interval
        self.misses = misses
        self._ping = ping
        self._on_lost = on_lost
        self._on_back = on_back
        self._prefix = b"txkernel-hb-" + os.urandom(4).hex().encode() + b"-"
        self._count = 0
        self._unanswered = 0
        self._waiting = False
        #: Whether the kernel answered recently enough (True until lost).
        self.beating = True
        self._loop = LoopingCall(self._tick)
        self._loop.clock = reactor

    def start(self) -> None:
        """Send the first ping now, then one every ``interval`` seconds."""
        if not self._loop.running:
            self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        """Send no more pings (idempotent)."""
        if self._loop.running:
            self._loop.stop()

    @property
    def lost_after(self) -> float:
        """Seconds without an answer before the kernel is declared lost."""
        return self.interval * self.misses

    def _tick(self) -> None:
        if self._waiting:
            self._unanswered += 1
            if self._unanswered >= self.misses and self.beating:
                self.beating = False
                self._call(self._on_lost, "lost")
        self._count += 1
        self._waiting = True
        self._ping(self._prefix + str(self._count).encode())

    def echoed(self, token: bytes) -> None:
        """(reactor) An echo came back: the kernel is alive (any ping of ours counts)."""
        if not token.startswith(self._prefix):
            return
        self._waiting = False
        self._unanswered = 0
        if not self.beating:
            self.beating = True
            self._call(self._on_back, "back")

    def _call(self, callback: Callable[[], object], what: str) -> None:
        try:
            callback()
        except Exception:
            log.failure("A heartbeat {what} callback failed", what=what)


class HeartbeatPinger:
    """Owns a DEALER socket on ``endpoint`` in a thread of its own.

    :meth:`ping` (reactor thread) queues a token; the thread sends it and
    calls ``on_echo(token)`` on the reactor thread for every echo.
    ``options`` are socket options set before connecting (CurveZMQ keys).
    :meth:`stop` closes everything and joins the thread.
    """

    def __init__(
        self,
        reactor: Any,
        endpoint: str,
        on_echo: Callable[[bytes], object],
        options: Sequence[tuple[int, int | bytes]] = (),
    ) -> None:
        self._reactor = reactor
        self._endpoint = endpoint
        self._on_echo = on_echo
        self._options = list(options)
        self._context = zmq.Context()
        self._pipe_address = f"inproc://txkernel-hb-pinger-{id(self)}"
        # The reactor's end of the pipe: used by the reactor thread only.
        self._pipe = self._context.socket(zmq.PAIR)
        self._pipe.setsockopt(zmq.LINGER, 0)
        self._pipe.bind(self._pipe_address)
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="txkernel-client-heartbeat", daemon=True
        )
        self._thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
        self._thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
        self._thread.start()

    def ping(self, token: bytes) -> None:
        """(reactor) Have the thread send ``token`` to the kernel's heartbeat."""
        if self._stopped:
            return
        try:
            self._pipe.send(token, zmq.NOBLOCK)
        except zmq.Again:  # pragma: no cover - the thread is far behind
            pass

    def stop(self) -> None:
        """(reactor) Close both sockets and join the thread (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._pipe.close()
        # term() returns once the thread has closed its sockets.
        self._context.term()
        self._thread.join()

    def _run(self) -> None:
        pipe = dealer = None
        try:
            pipe = self._context.socket(zmq.PAIR)
            dealer = self._context.socket(zmq.DEALER)
            pipe.connect(self._pipe_address)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.setsockopt(zmq.SNDHWM, _QUEUED_PINGS)
            for option, value in self._options:
                dealer.setsockopt(option, value)
            dealer.connect(self._endpoint)
            poller = zmq.Poller()
            poller.register(pipe, zmq.POLLIN)
            poller.register(dealer, zmq.POLLIN)
            while True:
                ready = dict(poller.poll())
                if pipe in ready:
                    token = pipe.recv()
                    try:
                        dealer.send(token, zmq.NOBLOCK)
                    except zmq.Again:
                        pass  # the kernel is not reading: this ping is a miss
                if dealer in ready:
                    frames = dealer.recv_multipart()
                    self._reactor.callFromThread(self._echoed, frames[-1])
        except zmq.ContextTerminated:
            pass
        except Exception:
            log.failure("The client's heartbeat thread failed")
        finally:
            for sock in (pipe, dealer):
                if sock is not None:
                    sock.close()

    def _echoed(self, token: bytes) -> None:
        if not self._stopped:
            self._on_echo(token)
