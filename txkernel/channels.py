"""A kernel's five sockets, bound as a connection file says.

Shell, control and stdin are ROUTER sockets read and written by the reactor
thread (through :class:`txkernel._zmq.ZmqSocket`); IOPub and the heartbeat
each run in a thread of their own.  Everything here but :meth:`publish` is
called on the reactor thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import zmq
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger

from ._defer import branch
from ._zmq import ReadLimit, ZmqSocket, make_factory
from .connection import ConnectionFileError, ConnectionInfo
from .exposure import warn_about_exposure
from .heartbeat import Heartbeat
from .iopub import DEFAULT_HWM, STALL_TIMEOUT, IOPubThread
from .ipc import choose_socket_paths, remove_socket_files
from .wire import DEFAULT_LIMITS, Limits

log = Logger()

ROUTER_CHANNELS = ("shell", "control", "stdin")

#: How long a message to a frontend's stdin socket waits for that socket to
#: finish connecting (a frontend may run ``input()`` right after it connects).
STDIN_PATIENCE = 2.0
_RETRY_EVERY = 0.01

#: Complete messages libzmq queues per peer on shell, control and stdin
#: before it stops reading that peer's connection (no message is lost: the
#: peer waits).  With :class:`txkernel.wire.Limits`, this bounds what one
#: connection can make the kernel hold.
ROUTER_RCVHWM = 1000


class PeerUnreachable(Exception):
    """The frontend a message is addressed to is not connected to that socket."""


def _port_of(endpoint: str, transport: str) -> int:
    sep = "-" if transport == "ipc" else ":"
    return int(endpoint.rsplit(sep, 1)[1])


class KernelSockets:
    """Binds and owns the sockets of one kernel.

    ``on_message(channel, frames)`` is called on the reactor thread for every
    multipart message that arrives on shell, control or stdin;
    ``welcome(topic)`` (on the IOPub thread) builds the message each new
    IOPub subscriber gets first.
    """

    def __init__(
        self,
        reactor: Any,
        info: ConnectionInfo,
        on_message: Callable[[str, list[bytes]], object],
        welcome: Callable[[bytes], Sequence[bytes] | None],
        iopub_hwm: int = DEFAULT_HWM,
        stdin_patience: float = STDIN_PATIENCE,
        limits: Limits = DEFAULT_LIMITS,
        iopub_stall_timeout: float = STALL_TIMEOUT,
        socket_options: Sequence[tuple[int, Any]] = (),
    ) -> None:
        self._reactor = reactor
        #: Set on all five sockets before binding (CurveZMQ, see txkernel.curve).
        self._socket_options = list(socket_options)
        self.stdin_patience = stdin_patience
        self.info = info
        self._on_message = on_message
        self._welcome = welcome
        self._iopub_hwm = iopub_hwm
        self._iopub_stall_timeout = iopub_stall_timeout
        self._limits = limits
        self._factory = make_factory(reactor)
        self._factory.lingerPeriod = 1000
        self._routers: dict[str, ZmqSocket] = {}
        self._iopub: IOPubThread | None = None
        self._heartbeat: Heartbeat | None = None
        self._closing: Deferred[None] | None = None
        self._ipc_directory: str | None = None
        self._ipc_bound = False

    def bind(self) -> ConnectionInfo:
        """Bind all five sockets; returns the info with the real port numbers.

        Raises :class:`ConnectionFileError` (and binds nothing) when a port
        cannot be bound.
        """
        warn_about_exposure(self.info)
        if self.info.transport == "ipc":
            self.info, self._ipc_directory = choose_socket_paths(self.info)
            self._ipc_bound = True
        ports = {}
        limits = self._limits
        read_limit = ReadLimit(limits.max_frames, limits.max_message_bytes)
        try:
            for channel in ROUTER_CHANNELS:
                sock = ZmqSocket(
                    self._factory,
                    zmq.ROUTER,
                    lambda frames, ch=channel: self._on_message(ch, frames),
                    options=[
                        (zmq.ROUTER_HANDOVER, 1),
                        # A peer sending a bigger frame is disconnected by libzmq.
                        (zmq.MAXMSGSIZE, limits.max_frame_bytes),
                        (zmq.RCVHWM, ROUTER_RCVHWM),
                    ]
                    # stdin is addressed to one frontend: know when it is absent.
                    + ([(zmq.ROUTER_MANDATORY, 1)] if channel == "stdin" else [])
                    + self._socket_options,
                    limit=read_limit,
                )
                self._routers[channel] = sock
                ports[channel] = self._bind(channel, sock.bind)
            self._iopub = IOPubThread(
                self._reactor,
                self.info.endpoint("iopub"),
                self._welcome,
                self._iopub_hwm,
                self._iopub_stall_timeout,
                socket_options=self._socket_options,
            )
            ports["iopub"] = self._bind("iopub", lambda _addr: self._iopub.start())
            self._heartbeat = Heartbeat(
                self._reactor, self.info.endpoint("hb"), self._socket_options
            )
            ports["hb"] = self._bind("hb", lambda _addr: self._heartbeat.start())
        except BaseException:
            self._abandon()
            raise
        self.info = self.info.with_ports(ports)
        return self.info

    def _bind(self, channel: str, bind: Callable[[str], str]) -> int:
        address = self.info.endpoint(channel)
        try:
            endpoint = bind(address)
        except zmq.ZMQError as e:
            raise ConnectionFileError(
                f"cannot bind the {channel} socket to {address}: {e}"
            ) from None
        return _port_of(endpoint, self.info.transport)

    def _abandon(self) -> None:
        for sock in self._routers.values():
            sock.shutdown()
        self._routers.clear()
        if self._iopub is not None and self._iopub.endpoint:
            self._iopub.stop()
        if self._heartbeat is not None and self._heartbeat.endpoint:
            self._heartbeat.stop()
        self._factory.shutdown()
        self._remove_ipc_files()

    def _remove_ipc_files(self) -> None:
        if self._ipc_bound:
            self._ipc_bound = False
            remove_socket_files(self.info, self._ipc_directory)

    def send(self, channel: str, frames: Sequence[bytes]) -> None:
        """Send on shell, control or stdin (reactor thread); a failed send is logged."""
        sock = self._routers.get(channel)
        if sock is None:
            log.warn(
                "Dropped a message on {channel}: the socket is closed", channel=channel
            )
            return
        try:
            sock.send(frames)
        except zmq.ZMQError as e:
            log.warn("Could not send on {channel}: {error}", channel=channel, error=e)

    def send_to_peer(self, channel: str, frames: Sequence[bytes]) -> Deferred[None]:
        """Send to the peer the first frame names, waiting for it to connect.

        For stdin, whose ROUTER refuses messages to unknown peers.  Fires
        with None once sent; fails with :class:`PeerUnreachable` when the peer
        has not connected within ``stdin_patience`` seconds, or the socket
        closed.  Cancelling stops the waiting.
        """
        return Deferred.fromCoroutine(
            self._send_to_peer(channel, frames, self.stdin_patience)
        )

    async def _send_to_peer(
        self, channel: str, frames: Sequence[bytes], patience: float
    ) -> None:
        deadline = self._reactor.seconds() + patience
        while True:
            sock = self._routers.get(channel)
            if sock is None:
                raise PeerUnreachable(f"the {channel} socket is closed")
            try:
                sock.send(frames)
                return
            except zmq.ZMQError as e:
                if e.errno != zmq.EHOSTUNREACH:
                    raise PeerUnreachable(f"could not send on {channel}: {e}") from e
                if self._reactor.seconds() >= deadline:
                    raise PeerUnreachable(
                        f"the frontend is not connected to {channel} "
                        f"(waited {patience:g} s)"
                    ) from None
            # Cancelling the returned Deferred cancels this wait.
            await deferLater(self._reactor, _RETRY_EVERY, lambda: None)

    def publish(self, frames: Sequence[bytes]) -> None:
        """Queue a message for IOPub (any thread)."""
        if self._iopub is not None:
            self._iopub.send(frames)

    def drain(self, channel: str) -> None:
        """Deliver every message already waiting on ``channel`` now."""
        sock = self._routers.get(channel)
        if sock is not None:
            sock.drain()

    def flush(self) -> Deferred[None]:
        """Fires once everything published so far is on the wire."""
        if self._iopub is None:
            return succeed(None)
        return self._iopub.flush()

    def close(self) -> Deferred[None]:
        """Send what is queued, close every socket and join both threads."""
        if self._closing is None:
            self._closing = self._close()
        return branch(self._closing)

    def _close(self) -> Deferred[None]:
        stopping = []
        if self._iopub is not None:
            stopping.append(self._iopub.stop())
        if self._heartbeat is not None:
            stopping.append(self._heartbeat.stop())
        for sock in self._routers.values():
            sock.shutdown()
        self._routers.clear()
        self._factory.shutdown()
        done = DeferredList(stopping, consumeErrors=True)
        done.addCallback(lambda _: self._remove_ipc_files())
        return done
