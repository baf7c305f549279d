"""The one place where ZeroMQ sockets meet the reactor (reactor thread only).

A thin layer over txZMQ's ``ZmqConnection`` that fixes its sharp edges:

- ``doRead`` handles at most :attr:`ZmqSocket.readBatch` messages, or the
  first messages that reach :attr:`ZmqSocket.readBytes` together, per call
  and schedules the rest for the next reactor turn, so a flood on one socket
  (many small messages, or fewer big ones: a client reading a cell's
  output) cannot starve timers, ``callFromThread`` or the other sockets;
- every send schedules a read that re-arms the edge-triggered ``ZMQ_FD``
  (a send that raises too; otherwise input could sit unread forever),
  except that a read which finds the socket empty after the send (a reply
  sent while its request is handled) stands for it;
- whole multipart messages are sent with one call
  (:func:`txkernel._frames.send_frames`, cheaper than pyzmq's
  ``send_multipart``), with the high-water mark set explicitly per socket;
- an incoming message is read frame by frame and dropped (with a logged
  reason) as soon as it has more frames or bytes than the socket's
  :class:`ReadLimit`, so a peer cannot make the kernel hold more than that;
- the reactor is the factory's, not the module-global one.

Importing this module imports txzmq, which installs the default reactor:
only modules that run after a reactor has been chosen may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import zmq
from twisted.logger import Logger
from txzmq import ZmqConnection, ZmqFactory

from ._frames import has_input, recv_frame, send_frames

__all__ = ["ReadLimit", "ZmqFactory", "ZmqSocket", "make_factory"]

log = Logger()


@dataclass(frozen=True)
class ReadLimit:
    """The most one incoming multipart message may hold."""

    max_frames: int
    max_bytes: int


def make_factory(reactor=None) -> ZmqFactory:
    """A ZmqFactory with its own context, driven by ``reactor`` (default: global)."""
    factory = ZmqFactory()
    if reactor is not None:
        factory.reactor = reactor
    return factory


class ZmqSocket(ZmqConnection):
    """A ZeroMQ socket read and written by the reactor thread.

    ``on_message`` is called with the list of frames of each message received.
    """

    #: The most messages one ``doRead`` handles.
    readBatch = 64
    #: A ``doRead`` handles no further message once those it handled hold
    #: this many bytes (it always handles one).
    readBytes = 256 * 1024
    highWaterMark = 0

    def __init__(
        self,
        factory: ZmqFactory,
        socket_type: int,
        on_message: Callable[[list[bytes]], object],
        options: Sequence[tuple[int, int | bytes]] = (),
        limit: ReadLimit | None = None,
    ) -> None:
        self.socketType = socket_type
        self._on_message = on_message
        self._options = options
        self._limit = limit
        #: Whether :meth:`_read` is running (a send then needs no read of its own).
        self._reading = False
        super().__init__(factory)

    def _apply_options(self) -> None:
        for option, value in self._options:
            self.socket.setsockopt(option, value)
        self._options = ()

    def bind(self, address: str) -> str:
        """Bind to ``address`` (``tcp://ip:*`` picks a free port); returns the real endpoint."""
        self._apply_options()
        self.socket.bind(address)
        endpoint = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode("ascii")
        self.endpoints.append(endpoint)
        return endpoint

    def connect(self, address: str) -> None:
        """Connect to ``address``."""
        self._apply_options()
        self.socket.connect(address)
        self.endpoints.append(address)

    def messageReceived(self, message: list[bytes]) -> None:
        self._on_message(message)

    def doRead(self) -> None:
        """Read up to ``readBatch`` messages or ``readBytes`` bytes, then yield to the reactor."""
        self._unschedule_read()
        self._read(self.readBatch, self.readBytes)

    def _unschedule_read(self) -> None:
        call = self.read_scheduled
        if call is not None:
            self.read_scheduled = None
            if not call.called:
                call.cancel()

    def drain(self) -> None:
        """Read every message waiting in the socket now, without a bound."""
        self._read(None, None)

    def _read(self, limit: int | None, byte_limit: int | None) -> None:
        outer = self._reading
        self._reading = True
        try:
            self._read_messages(limit, byte_limit)
        except BaseException:
            self._schedule_read()
            raise
        finally:
            self._reading = outer

    def _read_messages(self, limit: int | None, byte_limit: int | None) -> None:
        count = 0
        size = 0
        while self.socket is not None:
            if not has_input(self.socket):
                # This look at ZMQ_EVENTS came after every send made while
                # reading (a reply sent by the handler), so it re-armed the
                # edge-triggered ZMQ_FD as a read one reactor turn later
                # would have: those sends scheduled none, and a read that
                # an earlier send scheduled is not needed either.
                self._unschedule_read()
                return
            if limit is not None and (count >= limit or size >= byte_limit):
                self._schedule_read()
                return
            try:
                message = self._recv()
            except zmq.Again:
                continue
            count += 1
            if message is None:
                continue
            if byte_limit is not None:
                size += sum(map(len, message))
            try:
                self.messageReceived(message)
            except Exception:
                log.failure("Error handling a message on {socket!r}", socket=self)

    def _recv(self) -> list[bytes] | None:
        """One whole message, or None when it was over the limit (then dropped)."""
        sock = self.socket
        frame, more = recv_frame(sock)
        frames = [frame]
        if self._limit is None:
            while more:
                frame, more = recv_frame(sock)
                frames.append(frame)
            return frames
        limit = self._limit
        size = len(frame)
        count = 1
        over = False
        # libzmq delivers a multipart message whole: the rest is there now.
        while more:
            frame, more = recv_frame(sock)
            count += 1
            size += len(frame)
            if over:
                continue
            if count > limit.max_frames or size > limit.max_bytes:
                over = True
                frames = []
            else:
                frames.append(frame)
        if over:
            log.warn(
                "Dropped a message on {socket!r}: {count} frames, {size} bytes "
                "(the limit is {frames} frames, {bytes} bytes)",
                socket=self,
                count=count,
                size=size,
                frames=limit.max_frames,
                bytes=limit.max_bytes,
            )
            return None
        return frames

    def _schedule_read(self) -> None:
        if self.read_scheduled is None and self.factory is not None:
            self.read_scheduled = self.factory.reactor.callLater(0, self.doRead)

    def send(self, message: Sequence[bytes]) -> None:
        """Send one multipart message now (non-blocking; raises ``zmq.Again`` at HWM).

        A send can take the edge of ``ZMQ_FD`` that announced new input, so
        a read follows it: the read loop's next look at ``ZMQ_EVENTS`` when
        it is sent while reading (a reply sent by the handler), else a read
        scheduled for the next reactor turn."""
        try:
            send_frames(self.socket, message)
        finally:
            if not self._reading:
                self._schedule_read()

    def shutdown(self) -> None:
        """Stop reading and close the socket (idempotent)."""
        if self.socket is not None:
            super().shutdown()

    def __repr__(self) -> str:
        return f"<ZmqSocket {zmq.Socket.__name__} {self.socketType} {self.endpoints}>"
