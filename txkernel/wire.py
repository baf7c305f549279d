"""Frames to messages and back: signing, verifying, the replay guard.

The layout of a Jupyter message on a ROUTER or DEALER socket::

    [identity..., b"<IDS|MSG>", signature, header, parent_header, metadata,
     content, buffer...]

The signature is the HMAC of the four JSON frames, taken over the raw bytes
as received.  ``jupyter_client.session.Session`` does the packing, signing and
replay guard underneath.  :meth:`Wire.new_message` and :meth:`Wire.serialize`
are safe from any thread; :meth:`Wire.deserialize` keeps the replay history
and belongs to the thread that reads the sockets (the reactor).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jupyter_client.session import Session

DELIMITER = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.5"

Message = dict[str, Any]


class WireError(ValueError):
    """A multipart message that cannot be accepted; ``str()`` says why."""


class Wire:
    """Signs, packs and unpacks messages for one kernel or client session."""

    def __init__(
        self,
        key: str | bytes,
        signature_scheme: str = "hmac-sha256",
        username: str = "kernel",
        session_id: str | None = None,
    ) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        self.session_id = session_id or uuid.uuid4().hex
        self.username = username
        self._session = Session(
            key=key,
            signature_scheme=signature_scheme,
            session=self.session_id,
            username=username,
            check_pid=False,
        )
        self._ids = itertools.count(1)
        self._id_prefix = f"{self.session_id}_{os.getpid()}_"

    @property
    def bsession(self) -> bytes:
        """The session id as bytes (clients use it as their socket identity)."""
        return self.session_id.encode("ascii")

    def new_message(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> Message:
        """A new message dict; ``parent`` is the request it answers, if any."""
        header = {
            "msg_id": self._id_prefix + str(next(self._ids)),
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session_id,
            "date": datetime.now(UTC),
            "version": PROTOCOL_VERSION,
        }
        parent_header = dict(parent["header"]) if parent else {}
        return {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": msg_type,
            "parent_header": parent_header,
            "metadata": metadata if metadata is not None else {},
            "content": content if content is not None else {},
            "buffers": list(buffers) if buffers else [],
        }

    def serialize(self, msg: Message, identities: Sequence[bytes] = ()) -> list[bytes]:
        """The frames of ``msg``, led by ``identities`` (or an IOPub topic)."""
        frames = self._session.serialize(msg, list(identities))
        buffers = msg.get("buffers")
        if buffers:
            frames.extend(bytes(b) if isinstance(b, memoryview) else b for b in buffers)
        return frames

    def deserialize(self, frames: Sequence[bytes]) -> tuple[list[bytes], Message]:
        """Split, verify and decode ``frames``: returns ``(identities, message)``.

        Raises :class:`WireError` for a missing delimiter, too few frames, an
        absent, bad or replayed signature, or frames that are not JSON objects.
        """
        try:
            split = list(frames).index(DELIMITER)
        except ValueError:
            raise WireError("no <IDS|MSG> delimiter") from None
        identities = list(frames[:split])
        body = list(frames[split + 1 :])
        if len(body) < 5:
            raise WireError(
                f"expected at least 5 frames after the delimiter, got {len(body)}"
            )
        try:
            msg = self._session.deserialize(body, content=True, copy=True)
        except ValueError as e:
            raise WireError(str(e).split(":")[0]) from None
        except Exception as e:
            raise WireError(f"undecodable message ({type(e).__name__}: {e})") from None
        header = msg.get("header")
        if not isinstance(header, dict) or not isinstance(header.get("msg_type"), str):
            raise WireError("header without a msg_type")
        if not isinstance(msg.get("content"), dict):
            raise WireError("content is not a JSON object")
        if not isinstance(msg.get("parent_header"), dict) or not isinstance(
            msg.get("metadata"), dict
        ):
            raise WireError("parent_header and metadata must be JSON objects")
        msg["buffers"] = [bytes(b) for b in msg["buffers"]]
        return identities, msg
