"""The IOPub thread: the only user of the kernel's XPUB socket.

Any thread hands it serialized messages with :meth:`IOPubThread.send`, which
costs a ``deque.append`` and a doorbell write; the thread sends them in the
order they were queued.  The kernel's own ``status`` and ``execute_input``
come as :class:`~txkernel.wire.PendingFrames`, which this thread packs and
signs when their turn comes (after the reactor's turn that queued them).
On the reactor thread the doorbell rings once per reactor turn (or every
:data:`RING_EVERY` messages) rather than once per message: waking the IOPub
thread hands it the GIL, and a request's ``busy`` would otherwise take it
away from the reactor just before the reply is sent.
Subscriptions are applied by hand (``XPUB_MANUAL``): the thread subscribes
the new peer and at once sends it the ``iopub_welcome`` (JEP 65) that
``welcome(topic)`` builds, so the welcome is the first message a subscriber
sees, before any ``status``.
:meth:`IOPubThread.flush` and :meth:`IOPubThread.stop` return Deferreds that
fire on the reactor thread.

What a subscriber that does not keep up costs (the README's "Security and
limits" says the same for users):

- libzmq queues at most ``hwm`` messages for each subscriber (1,000 by
  default) and the socket runs with ``XPUB_NODROP``: when one subscriber's
  queue is full, the thread keeps the message and retries, so a subscriber
  that reads, however slowly, loses nothing, ``status`` messages included.
  Producers never wait: :meth:`IOPubThread.send` only appends to a deque.
- A subscriber that makes no room for ``stall_timeout`` seconds (2 by
  default), or messages waiting behind it past ``max_queued_bytes`` (16 MiB),
  is stalled: from then on each message that a full queue refuses is sent
  with drops allowed, so the subscribers with room get it at once and only
  those with a full queue miss it.  The first message every subscriber
  accepts again ends that (and is logged).  Once :meth:`IOPubThread.stop`
  is called, a full subscriber is waited for at most ``stall_timeout``
  seconds in all, so a reader still gets what was queued before the stop
  and a stalled one holds the stop back no longer than that.
- ``hwm=0`` queues without limit per subscriber (and never drops).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import zmq
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadable import isInIOThread

from ._frames import NOBLOCK, send_frames
from ._socket_thread import SocketThread
from .wire import PendingFrames

log = Logger()

_STOP = object()

#: Messages libzmq queues for one subscriber before that subscriber is "full".
DEFAULT_HWM = 1000
#: Seconds a full subscriber may go without making room before it is stalled.
STALL_TIMEOUT = 2.0
#: Bytes that may wait in the kernel's own queue behind a full subscriber.
MAX_QUEUED_BYTES = 16 * 1024 * 1024
#: Longest subscription topic accepted (libzmq disconnects a peer sending more).
MAX_TOPIC_BYTES = 64 * 1024
_RETRY_MS = 5
#: Messages the reactor thread queues in one turn before it rings anyway.
RING_EVERY = 64


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

    ``welcome(topic: bytes)`` runs on this thread for each new subscription
    and returns the serialized message to send first (or None for none).
    ``hwm`` is the number of messages queued per subscriber (0: no limit);
    ``stall_timeout`` and ``max_queued_bytes`` say when a full subscriber is
    left behind (see the module docstring).
    """

    def __init__(
        self,
        reactor: Any,
        address: str,
        welcome: Callable[[bytes], Sequence[bytes] | None],
        hwm: int = DEFAULT_HWM,
        stall_timeout: float = STALL_TIMEOUT,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        socket_options: Sequence[tuple[int, Any]] = (),
    ) -> None:
        super().__init__(reactor, "txkernel-iopub")
        self._address = address
        self._welcome = welcome
        self._socket_options = list(socket_options)
        self._hwm = hwm
        self._stall_timeout = stall_timeout
        self._max_queued_bytes = max_queued_bytes
        self._queue: deque[Any] = deque()
        self._bell = _Doorbell()
        self._lock = threading.Lock()
        self._stopping = False
        # (monotonic) When stop() was called; full subscribers are waited for
        # until stall_timeout after it.
        self._stopped_at: float | None = None
        # Bytes ever queued (written under the lock) and ever sent (by the thread).
        self._bytes_in = 0
        self._bytes_out = 0
        #: Messages sent with drops allowed because a subscriber was stalled.
        self.lossy_sends = 0
        # (reactor thread) The ring due at the end of this turn, and the
        # messages queued since the last ring.
        self._ring_call: Any = None
        self._unrung = 0

    def start(self) -> str:
        """Start the thread and bind; returns the bound endpoint or raises the bind error."""
        try:
            return super().start()
        except BaseException:
            self._bell.close()
            raise

    def send(self, frames: Sequence[bytes]) -> None:
        """Queue one multipart message (thread-safe, never blocks).

        Messages sent after :meth:`stop` are dropped.  ``frames`` may be
        :class:`~txkernel.wire.PendingFrames`: they are serialized on this
        thread when their turn comes, and count no bytes towards
        ``max_queued_bytes`` (only the kernel's ``status`` and
        ``execute_input`` come so: a few hundred bytes, or the code their
        request holds anyway).
        """
        size = 0 if type(frames) is PendingFrames else sum(len(f) for f in frames)
        with self._lock:
            if self._stopping:
                return
            self._bytes_in += size
            self._queue.append(frames)
            if not isInIOThread():
                self._bell.ring()
                return
            self._unrung += 1
            if self._unrung >= RING_EVERY:
                self._unrung = 0
                self._bell.ring()
                return
        if self._ring_call is None:
            self._ring_call = self._reactor.callLater(0, self._ring_queued)

    def _ring_queued(self) -> None:
        """(reactor) Ring for what this turn queued (stop() rings for itself)."""
        self._ring_call = None
        with self._lock:
            self._unrung = 0
            if not self._stopping:
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
        if self._ring_call is not None and self._ring_call.active():
            self._ring_call.cancel()
        self._ring_call = None
        if not d.called:
            with self._lock:
                if not self._stopping:
                    self._stopping = True
                    self._stopped_at = time.monotonic()
                    self._queue.append(_STOP)
                    self._bell.ring()
        return d

    def _run(self) -> None:
        context = zmq.Context()
        sock = context.socket(zmq.XPUB)
        try:
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            sock.setsockopt(zmq.XPUB_MANUAL, 1)
            sock.setsockopt(zmq.XPUB_NODROP, 1)
            sock.setsockopt(zmq.SNDHWM, self._hwm)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_TOPIC_BYTES)
            sock.setsockopt(zmq.LINGER, 3000)
            for option, value in self._socket_options:  # CurveZMQ
                sock.setsockopt(option, value)
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
        self._blocked_since: float | None = None
        self._dropping = False
        while True:
            # While a full subscriber holds the head message, retry soon.
            events = dict(
                poller.poll(None if self._blocked_since is None else _RETRY_MS)
            )
            if sock in events:
                self._read_subscriptions(sock)
            self._bell.reset()
            while queue:
                item = queue[0]
                if item is _STOP:
                    return
                if isinstance(item, _Flush):
                    queue.popleft()
                    call(item.deferred.callback, None)
                    continue
                if type(item) is PendingFrames:
                    try:
                        frames = item.frames()
                    except Exception:
                        queue.popleft()
                        call(log.failure, "IOPub: could not serialize a message", Failure())
                        continue
                    if not self._send(sock, frames):
                        break
                    queue.popleft()
                    continue
                if not self._send(sock, item):
                    break
                queue.popleft()
                self._bytes_out += sum(len(f) for f in item)

    def _send(self, sock: zmq.Socket, frames: Sequence[bytes]) -> bool:
        """(thread) Send one message; False when a full subscriber holds it back."""
        try:
            send_frames(sock, frames, NOBLOCK)
        except zmq.Again:
            pass
        else:
            self._blocked_since = None
            if self._dropping:
                self._dropping = False
                self._reactor.callFromThread(
                    log.info,
                    "IOPub: every subscriber has room again; nothing is dropped",
                )
            return True
        now = time.monotonic()
        if self._blocked_since is None:
            self._blocked_since = now
        if not self._dropping:
            waited = now - self._blocked_since
            queued = self._bytes_in - self._bytes_out
            stopped_at = self._stopped_at
            stopping_too_long = (
                stopped_at is not None and now - stopped_at >= self._stall_timeout
            )
            if (
                waited < self._stall_timeout
                and queued <= self._max_queued_bytes
                and not stopping_too_long
            ):
                return False
            self._dropping = True
            self._reactor.callFromThread(
                log.warn,
                "IOPub: a subscriber has read nothing for {waited:.1f} s "
                "({queued} bytes waiting{stopping}); messages are dropped for "
                "subscribers whose queue is full ({hwm} messages) until they "
                "read again",
                waited=waited,
                queued=queued,
                stopping=", the kernel is stopping" if stopping_too_long else "",
                hwm=self._hwm,
            )
        sock.setsockopt(zmq.XPUB_NODROP, 0)
        try:
            send_frames(sock, frames, NOBLOCK)
        finally:
            sock.setsockopt(zmq.XPUB_NODROP, 1)
        self.lossy_sends += 1
        return True

    def _read_subscriptions(self, sock: zmq.Socket) -> None:
        """(thread) Apply each (un)subscription; welcome each new subscriber."""
        while True:
            try:
                event = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            kind, topic = event[:1], event[1:]
            if kind == b"\x01":
                sock.setsockopt(zmq.SUBSCRIBE, topic)
                frames = self._welcome(topic)
                if frames is not None:
                    self._send_welcome(sock, frames)
            elif kind == b"\x00":
                sock.setsockopt(zmq.UNSUBSCRIBE, topic)

    def _send_welcome(self, sock: zmq.Socket, frames: Sequence[bytes]) -> None:
        """(thread) Send a welcome now, ahead of the queue.

        The new subscriber's queue is empty; a full one elsewhere must not
        hold it back, so it goes with drops allowed (the others do not need it).
        """
        sock.setsockopt(zmq.XPUB_NODROP, 0)
        try:
            send_frames(sock, frames, NOBLOCK)
        finally:
            sock.setsockopt(zmq.XPUB_NODROP, 1)
