"""The IOPub thread: the only user of the kernel's XPUB socket.

Any thread hands it serialized messages with :meth:`IOPubThread.send`, which
costs a ``deque.append`` and a doorbell write; the thread sends them in the
order they were queued.  New subscribers are reported to the reactor with
``callFromThread`` so it can answer with ``iopub_welcome`` (JEP 65).
:meth:`IOPubThread.flush` and :meth:`IOPubThread.stop` return Deferreds that
fire on the reactor thread.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import zmq
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ._socket_thread import SocketThread

log = Logger()

_STOP = object()


class _Doorbell:
    """Wakes the IOPub thread: an eventfd where there is one, else a pipe."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self.read_fd = self.write_fd = os.eventfd(
                0, os.EFD_NONBLOCK | os.EFD_CLOEXEC
            )
        else:  # pragma: no cover - non-Linux
            self.read_fd, self.write_fd = os.pipe()
            os.set_blocking(self.read_fd, False)

    def ring(self) -> None:
        try:
            os.write(self.write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except BlockingIOError:  # pragma: no cover - a full pipe rings already
            pass

    def reset(self) -> None:
        try:
            os.read(self.read_fd, 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.read_fd)
        if self.write_fd != self.read_fd:
            os.close(self.write_fd)


class _Flush:
    __slots__ = ("deferred",)

    def __init__(self, deferred: Deferred[None]) -> None:
        self.deferred = deferred


class IOPubThread(SocketThread):
    """Owns the XPUB socket in a thread of its own.

    ``on_subscribe(topic: bytes)`` runs on the reactor thread for each new
    subscription.  ``hwm`` is the send high-water mark per subscriber; 0 (the
    default) queues without limit, so nothing is ever dropped.
    """

    def __init__(
        self,
        reactor: Any,
        address: str,
        on_subscribe: Callable[[bytes], object],
        hwm: int = 0,
    ) -> None:
        super().__init__(reactor, "txkernel-iopub")
        self._address = address
        self._on_subscribe = on_subscribe
        self._hwm = hwm
        self._queue: deque[Any] = deque()
        self._bell = _Doorbell()
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> str:
        """Start the thread and bind; returns the bound endpoint or raises the bind error."""
        try:
            return super().start()
        except BaseException:
            self._bell.close()
            raise

    def send(self, frames: Sequence[bytes]) -> None:
        """Queue one multipart message (thread-safe, never blocks).

        Messages sent after :meth:`stop` are dropped.
        """
        with self._lock:
            if self._stopping:
                return
            self._queue.append(frames)
            self._bell.ring()

    def flush(self) -> Deferred[None]:
        """A Deferred that fires once everything queued before it has been sent."""
        d: Deferred[None] = Deferred()
        if self._exited:
            d.callback(None)
            return d
        self._queue.append(_Flush(d))
        self._bell.ring()
        return d

    def stop(self) -> Deferred[None]:
        """Send what is queued, close the socket and end the thread.

        The Deferred fires (on the reactor thread) once the thread has exited.
        """
        d = self._when_exited()
        if not d.called:
            with self._lock:
                if not self._stopping:
                    self._stopping = True
                    self._queue.append(_STOP)
                    self._bell.ring()
        return d

    def _run(self) -> None:
        context = zmq.Context()
        sock = context.socket(zmq.XPUB)
        try:
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            sock.setsockopt(zmq.SNDHWM, self._hwm)
            sock.setsockopt(zmq.LINGER, 3000)
            sock.bind(self._address)
            endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode("ascii")
        except BaseException as e:
            sock.close(0)
            context.term()
            self._bind_failed(e)
            return
        self._bound(endpoint)
        try:
            self._loop(sock)
        except Exception:
            log.failure("IOPub thread failed")
        finally:
            sock.close()
            context.term()
            with self._lock:
                self._stopping = True
                self._bell.close()
            self._reactor.callFromThread(self._thread_exited)

    def _after_exit(self) -> None:
        for item in self._queue:
            if isinstance(item, _Flush):
                item.deferred.callback(None)
        self._queue.clear()

    def _loop(self, sock: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(self._bell.read_fd, zmq.POLLIN)
        poller.register(sock, zmq.POLLIN)
        queue = self._queue
        call = self._reactor.callFromThread
        while True:
            events = dict(poller.poll())
            if sock in events:
                self._read_subscriptions(sock)
            self._bell.reset()
            while queue:
                item = queue.popleft()
                if item is _STOP:
                    return
                if isinstance(item, _Flush):
                    call(item.deferred.callback, None)
                else:
                    sock.send_multipart(item)

    def _read_subscriptions(self, sock: zmq.Socket) -> None:
        while True:
            try:
                event = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if event[:1] == b"\x01":
                self._reactor.callFromThread(self._on_subscribe, event[1:])
