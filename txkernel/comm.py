"""Comms: the kernel side of Jupyter's custom message channels.

A comm is a two-way channel between an object in the kernel and one in the
frontend, named by a ``comm_id`` and opened against a ``target_name``.
The frontend's ``comm_open``/``comm_msg``/``comm_close`` arrive on shell and
are delivered here on the thread the interpreter chooses (the reactor thread
by default, the Python kernel's execution thread); the kernel's own messages go out
on IOPub.  :meth:`Comm.send` and :meth:`Comm.close` may be called from any
thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.logger import Logger

log = Logger()

Message = dict[str, Any]
MessageHandler = Callable[[Message], object]


class Publish(Protocol):
    """Sends one IOPub message (the kernel's ``publish``)."""

    def __call__(
        self,
        msg_type: str,
        content: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = ...,
        buffers: Sequence[bytes] | None = ...,
    ) -> None: ...


class Comm:
    """One open comm.  Register handlers with :meth:`on_msg` and :meth:`on_close`."""

    def __init__(self, manager: CommManager, comm_id: str, target_name: str) -> None:
        self.manager = manager
        self.comm_id = comm_id
        self.target_name = target_name
        self.closed = False
        self._msg_handlers: list[MessageHandler] = []
        self._close_handlers: list[MessageHandler] = []

    def on_msg(self, handler: MessageHandler) -> None:
        """Call ``handler(message)`` for every ``comm_msg`` from the frontend."""
        self._msg_handlers.append(handler)

    def on_close(self, handler: MessageHandler) -> None:
        """Call ``handler(message)`` when the frontend closes the comm."""
        self._close_handlers.append(handler)

    def send(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> None:
        """Send a ``comm_msg`` to the frontend."""
        if self.closed:
            raise ValueError(f"comm {self.comm_id} is closed")
        self.manager.publish(
            "comm_msg", {"comm_id": self.comm_id, "data": data or {}}, metadata, buffers
        )

    def close(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> None:
        """Close the comm and tell the frontend (a second close does nothing)."""
        if self.closed:
            return
        self.closed = True
        self.manager.forget(self.comm_id)
        self.manager.publish(
            "comm_close",
            {"comm_id": self.comm_id, "data": data or {}},
            metadata,
            buffers,
        )

    def _received(self, msg: Message) -> None:
        for handler in list(self._msg_handlers):
            handler(msg)

    def _closed_by_frontend(self, msg: Message) -> None:
        self.closed = True
        for handler in list(self._close_handlers):
            handler(msg)


class CommManager:
    """The comms and comm targets of one kernel.

    A target is a callable ``target(comm, open_message)`` run when a frontend
    opens a comm with that ``target_name``.
    """

    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self.comms: dict[str, Comm] = {}
        self.targets: dict[str, Callable[[Comm, Message], object]] = {}

    def register_target(
        self, name: str, target: Callable[[Comm, Message], object]
    ) -> None:
        """Accept frontend ``comm_open`` requests for ``name``."""
        self.targets[name] = target

    def unregister_target(self, name: str) -> None:
        """Stop accepting comms for ``name`` (open comms stay open)."""
        self.targets.pop(name, None)

    def open(
        self,
        target_name: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
        comm_id: str | None = None,
    ) -> Comm:
        """Open a comm from the kernel side; returns it."""
        comm = Comm(self, comm_id or uuid.uuid4().hex, target_name)
        self.comms[comm.comm_id] = comm
        self.publish(
            "comm_open",
            {"comm_id": comm.comm_id, "target_name": target_name, "data": data or {}},
            metadata,
            buffers,
        )
        return comm

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> None:
        """Send a comm message on IOPub (any thread)."""
        self._publish(msg_type, content, metadata=metadata, buffers=buffers)

    def forget(self, comm_id: str) -> None:
        self.comms.pop(comm_id, None)

    # -- the frontend's messages (reactor thread) --

    def comm_open(self, msg: Message) -> None:
        content = msg["content"]
        comm_id = content.get("comm_id")
        target_name = content.get("target_name")
        if not isinstance(comm_id, str) or not isinstance(target_name, str):
            log.warn("comm_open without comm_id or target_name: dropped")
            return
        target = self.targets.get(target_name)
        comm = Comm(self, comm_id, target_name)
        if target is None:
            log.warn(
                "No comm target {name!r}: closing comm {id}",
                name=target_name,
                id=comm_id,
            )
            comm.close()
            return
        self.comms[comm_id] = comm
        try:
            target(comm, msg)
        except Exception:
            log.failure(
                "Comm target {name!r} failed: closing the comm", name=target_name
            )
            comm.close()

    def comm_msg(self, msg: Message) -> None:
        comm = self.comms.get(msg["content"].get("comm_id"))
        if comm is None:
            log.warn(
                "comm_msg for an unknown comm {id!r}", id=msg["content"].get("comm_id")
            )
            return
        comm._received(msg)

    def comm_close(self, msg: Message) -> None:
        comm = self.comms.pop(msg["content"].get("comm_id"), None)
        if comm is None:
            return
        comm._closed_by_frontend(msg)

    def comm_info(self, target_name: str | None = None) -> dict[str, Any]:
        """The ``comms`` field of a ``comm_info_reply``."""
        return {
            comm_id: {"target_name": comm.target_name}
            for comm_id, comm in self.comms.items()
            if target_name is None or comm.target_name == target_name
        }
