"""Hostile and careless peers for the hardening tests: raw pyzmq sockets that
send whatever frames a test builds, signed or not, and a log watcher."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import zmq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import formatEvent, globalLogPublisher

from txkernel.connection import ConnectionInfo
from txkernel.wire import DELIMITER


def header(msg_type: str = "execute_request", **fields: Any) -> dict[str, Any]:
    """A well-formed request header; ``fields`` override or add fields."""
    h: dict[str, Any] = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": "hostile",
        "username": "hostile",
        "date": datetime.now(UTC).isoformat(),
        "version": "5.4",
    }
    h.update(fields)
    return h


def sign(key: str, scheme: str, parts: list[bytes]) -> bytes:
    """The hex HMAC of ``parts`` as a Jupyter peer computes it."""
    if not key:
        return b""
    mac = hmac.new(key.encode(), digestmod=getattr(hashlib, scheme.split("-", 1)[1]))
    for part in parts:
        mac.update(part)
    return mac.hexdigest().encode()


def signed_frames(
    info: ConnectionInfo,
    hdr: Any,
    content: Any = None,
    parent: Any = None,
    metadata: Any = None,
    buffers: list[bytes] = (),  # type: ignore[assignment]
) -> list[bytes]:
    """``[<IDS|MSG>, signature, header, parent, metadata, content, buffers...]``,
    signed with the kernel's key whatever the parts hold."""
    parts = [
        json.dumps(x).encode()
        for x in (
            hdr,
            {} if parent is None else parent,
            {} if metadata is None else metadata,
            {"code": "", "silent": False} if content is None else content,
        )
    ]
    return [DELIMITER, sign(info.key, info.signature_scheme, parts), *parts, *buffers]


class RawPeer:
    """A DEALER (or SUB) socket of its own on one of the kernel's channels."""

    def __init__(
        self, test, info: ConnectionInfo, channel: str, kind: int = zmq.DEALER
    ) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(kind)
        self.socket.linger = 0
        self.socket.connect(info.endpoint(channel))
        test.addCleanup(self.close)

    def send(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def close(self) -> None:
        if not self.socket.closed:
            self.socket.close(0)
            self.context.term()


class LogWatcher:
    """Collects the text of every log event while a test runs."""

    def __init__(self, test) -> None:
        self.lines: list[str] = []
        globalLogPublisher.addObserver(self._observe)
        test.addCleanup(globalLogPublisher.removeObserver, self._observe)

    def _observe(self, event: dict) -> None:
        text = formatEvent(event)
        if text:
            self.lines.append(text)

    def matching(self, needle: str) -> list[str]:
        return [line for line in self.lines if needle in line]


def reply_on(peer: RawPeer, msg_type: str, patience: float = 60.0) -> Deferred[dict]:
    """Fires with the first ``msg_type`` reply the raw peer reads (others are
    skipped); the peer's socket is read on the reactor thread, which made it."""
    d: Deferred[dict] = Deferred()
    deadline = reactor.seconds() + patience

    def poll() -> None:
        while peer.socket.poll(0):
            frames = peer.socket.recv_multipart()
            body = frames[frames.index(DELIMITER) + 1 :]
            hdr = json.loads(body[1])
            if hdr["msg_type"] == msg_type:
                loop.stop()
                d.callback({"header": hdr, "content": json.loads(body[4])})
                return
        if reactor.seconds() > deadline:
            loop.stop()
            d.errback(AssertionError(f"no {msg_type} within {patience:g} s"))

    loop = LoopingCall(poll)
    loop.start(0.01)
    return d
