"""A request as it arrived, and the small types every part of the core shares.

Nothing here touches a socket or a thread: these are plain values passed
between the dispatcher, the messenger and the interpreter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from twisted.internet.defer import Deferred

Message = dict[str, Any]

#: Requests served on shell (per subshell) and on control.
SHELL_TYPES = frozenset(
    {
        "execute_request",
        "complete_request",
        "inspect_request",
        "is_complete_request",
        "history_request",
        "kernel_info_request",
        "comm_info_request",
        "comm_open",
        "comm_msg",
        "comm_close",
        "shutdown_request",
    }
)
CONTROL_TYPES = frozenset(
    {
        "kernel_info_request",
        "shutdown_request",
        "interrupt_request",
        "comm_info_request",
        "complete_request",
        "inspect_request",
        "is_complete_request",
        "history_request",
        "debug_request",
        "create_subshell_request",
        "delete_subshell_request",
        "list_subshell_request",
    }
)


class Request:
    """A request as it arrived: channel, ZeroMQ identities and the message.

    ``header_frame`` is the header's JSON as it came, when the messages that
    answer the request may carry it as their parent header unchanged (see
    :meth:`txkernel.wire.Wire.deserialize_request`), else None.
    """

    __slots__ = ("channel", "identities", "message", "header_frame")

    def __init__(
        self,
        channel: str,
        identities: list[bytes],
        message: Message,
        header_frame: bytes | None = None,
    ) -> None:
        self.channel = channel
        self.identities = identities
        self.message = message
        self.header_frame = header_frame

    @property
    def msg_type(self) -> str:
        return self.message["header"]["msg_type"]

    @property
    def msg_id(self) -> str:
        return self.message["header"].get("msg_id", "")

    @property
    def content(self) -> dict[str, Any]:
        return self.message["content"]

    @property
    def subshell_id(self) -> str | None:
        """The subshell this shell request is addressed to (None: the parent shell)."""
        subshell_id = self.message["header"].get("subshell_id")
        return subshell_id if isinstance(subshell_id, str) else None

    def __repr__(self) -> str:
        return f"<Request {self.channel} {self.msg_type} {self.msg_id}>"


class RequestError(Exception):
    """A request the kernel refuses: its reply says why (``status: error``).

    Raised by a handler, it is answered without being logged as a failure of
    the kernel.
    """


class Transport(Protocol):
    """What a kernel needs from its sockets (see ``txkernel.channels.KernelSockets``)."""

    def send(self, channel: str, frames: Sequence[bytes]) -> None: ...

    def send_to_peer(self, channel: str, frames: Sequence[bytes]) -> Deferred[None]: ...

    def publish(self, frames: Sequence[bytes]) -> None: ...

    def drain(self, channel: str) -> None: ...

    def flush(self) -> Deferred[None]: ...
