"""The messenger: builds, signs and sends a kernel's messages.

Replies go back on the channel and to the identities of the request they
answer (reactor thread); IOPub messages may be published from any thread and
carry, by default, the parent that ``default_parent`` names when they are
published.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed

from .request import Message, Request, Transport
from .wire import PendingFrames, Wire, pack

#: ``parent=CURRENT`` (the default): the request that ``default_parent`` names.
CURRENT: Any = object()


class Messenger:
    """Sends the messages of one kernel through ``transport``, signed by ``wire``.

    It sends nothing until :meth:`open` and after :meth:`close`.
    ``default_parent()`` names the request an IOPub message belongs to when
    the caller does not say; ``before_publish(msg_type)`` runs before every
    IOPub message (the Python kernel sends buffered stream text there, so
    output keeps its order).  Both may be called on any thread.
    """

    wire: Wire
    _transport: Transport

    def __init__(
        self,
        default_parent: Callable[[], Request | None],
        before_publish: Callable[[str], object] | None = None,
    ) -> None:
        self._default_parent = default_parent
        self._before_publish = before_publish
        self.closed = True
        # (request header, its packed JSON): busy, the reply, idle and any
        # output of one request share their parent header; it is packed once.
        self._parent_packed: tuple[dict[str, Any], bytes] | None = None
        self._status_topic = b""

    def open(self, wire: Wire, transport: Transport) -> None:
        """Send through ``transport``, signed by ``wire``, from now on."""
        self.wire = wire
        self._transport = transport
        self._status_topic = f"kernel.{wire.session_id}.status".encode()
        self.closed = False

    def close(self) -> None:
        """Send nothing more (what was published is still delivered)."""
        self.closed = True

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Request | None = CURRENT,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
        topic: bytes | None = None,
    ) -> None:
        """Send a message on IOPub (any thread); ``parent=None``: no parent header."""
        if self.closed:
            return
        if self._before_publish is not None:
            self._before_publish(msg_type)
        if parent is CURRENT:
            parent = self._default_parent()
        wire = self.wire
        msg = wire.new_message(
            msg_type, content, parent.message if parent else None, metadata, buffers
        )
        if topic is None:
            topic = f"kernel.{wire.session_id}.{msg_type}".encode()
        self._transport.publish(
            wire.serialize(msg, [topic], self._parent_frame(parent))
        )

    def status(self, state: str, request: Request | None) -> None:
        """Publish ``status: state`` for ``request`` (see :meth:`publish_owned`)."""
        self.publish_owned("status", {"execution_state": state}, request)

    def publish_owned(
        self, msg_type: str, content: dict[str, Any], parent: Request | None
    ) -> None:
        """Publish a message whose ``content`` the messenger now owns (nobody
        changes it afterwards): the kernel's own ``status`` and
        ``execute_input``.

        It takes its place in the IOPub queue now; its header (and date) is
        made, and it is packed and signed, when the IOPub thread sends it
        (see :class:`~txkernel.wire.PendingFrames`), so a request's reply
        (or its cell) is not held up by the messages published before it.
        """
        if self.closed:
            return
        if self._before_publish is not None:
            self._before_publish(msg_type)
        wire = self.wire
        topic = (
            self._status_topic
            if msg_type == "status"
            else f"kernel.{wire.session_id}.{msg_type}".encode()
        )

        def serialize() -> list[bytes]:
            return wire.new_frames(msg_type, content, [topic], self._parent_frame(parent))

        self._transport.publish(PendingFrames(serialize))

    def _parent_frame(self, request: Request | None) -> bytes | None:
        """``request``'s header packed as a parent header (any thread): the
        frame it came in, or else packed once for all that answer it."""
        if request is None:
            return None
        if request.header_frame is not None:
            return request.header_frame
        header = request.message["header"]
        packed = self._parent_packed
        if packed is not None and packed[0] is header:
            return packed[1]
        frame = pack(header)
        self._parent_packed = (header, frame)
        return frame

    def reply(
        self,
        request: Request,
        msg_type: str,
        content: dict[str, Any] | bytes,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Send ``content`` (a dict, or its packed JSON) as the reply to
        ``request``, to the peer that sent it."""
        if self.closed:
            return
        self._transport.send(
            request.channel,
            self.wire.new_frames(
                msg_type,
                content,
                request.identities,
                self._parent_frame(request),
                metadata,
            ),
        )

    def send_to_peer(self, request: Request, channel: str, msg: Message) -> Deferred[None]:
        """Send ``msg`` on ``channel`` to the frontend that sent ``request``.

        Fires once sent; fails when that frontend is not connected to
        ``channel`` in time (see :meth:`Transport.send_to_peer`).
        """
        return self._transport.send_to_peer(
            channel, self.wire.serialize(msg, request.identities)
        )

    def drain(self, channel: str) -> None:
        """Deliver every message already waiting on ``channel`` now."""
        if not self.closed:
            self._transport.drain(channel)

    def flush(self) -> Deferred[None]:
        """Fires once everything published so far is on the wire."""
        if self.closed:
            return succeed(None)
        return self._transport.flush()
