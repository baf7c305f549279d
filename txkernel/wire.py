"""Frames to messages and back: signing, verifying, the replay guard.

The layout of a Jupyter message on a ROUTER or DEALER socket::

    [identity..., b"<IDS|MSG>", signature, header, parent_header, metadata,
     content, buffer...]

The signature is the HMAC of the four JSON frames, taken over the raw bytes
as received.  ``jupyter_client.session.Session`` does the packing, signing and
replay guard underneath.  What a peer sends is checked before anything of it
is kept: the frame count and total size against :class:`Limits`, the
signature's length and value (only an authentic signature enters the replay
history), and the type of every header field the kernel relies on.  :meth:`Wire.new_message` and :meth:`Wire.serialize`
are safe from any thread; :meth:`Wire.deserialize` keeps the replay history
and belongs to the thread that reads the sockets (the reactor).
"""

from __future__ import annotations

import hmac
import itertools
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jupyter_client.session import Session

DELIMITER = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.5"

Message = dict[str, Any]


class WireError(ValueError):
    """A multipart message that cannot be accepted; ``str()`` says why."""


@dataclass(frozen=True)
class Limits:
    """How much of one incoming message the kernel accepts.

    ``max_frame_bytes`` is also set as ``ZMQ_MAXMSGSIZE`` on the kernel's
    sockets, so libzmq disconnects a peer that sends a bigger frame before
    it is ever held whole.  ``max_frames`` counts every frame, identities
    and buffers included; ``max_message_bytes`` is the sum of all frames.
    """

    max_frames: int = 1024
    max_frame_bytes: int = 64 * 1024 * 1024
    max_message_bytes: int = 128 * 1024 * 1024
    max_identities: int = 16


DEFAULT_LIMITS = Limits()

#: Header fields that must be strings when present (msg_id and msg_type must be present).
_STRING_FIELDS = ("msg_id", "msg_type", "session", "username", "version")


def check_header(header: Any, name: str = "header") -> None:
    """Raise :class:`WireError` unless ``header`` is a header the kernel can use."""
    if not isinstance(header, dict):
        raise WireError(f"{name} is not a JSON object")
    for field in ("msg_id", "msg_type"):
        if field not in header:
            raise WireError(f"{name} without a {field}")
    for field in _STRING_FIELDS:
        if field in header and not isinstance(header[field], str):
            raise WireError(
                f"{name} field {field!r} must be a string, "
                f"not {type(header[field]).__name__}"
            )
    if not header["msg_type"]:
        raise WireError(f"{name} has an empty msg_type")
    date = header.get("date")
    if date is not None and not isinstance(date, str | datetime):
        raise WireError(
            f"{name} field 'date' must be an ISO 8601 string, not {type(date).__name__}"
        )
    subshell = header.get("subshell_id")
    if subshell is not None and not isinstance(subshell, str):
        raise WireError(
            f"{name} field 'subshell_id' must be a string or null, "
            f"not {type(subshell).__name__}"
        )


class Wire:
    """Signs, packs and unpacks messages for one kernel or client session."""

    def __init__(
        self,
        key: str | bytes,
        signature_scheme: str = "hmac-sha256",
        username: str = "kernel",
        session_id: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
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
        self.limits = limits
        #: Length of a valid signature frame (hex digest), 0 without a key.
        self._signature_length = (
            2 * self._session.auth.digest_size if self._session.auth is not None else 0
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

        Raises :class:`WireError` for too many or too big frames, a missing
        delimiter, too few frames, an absent, bad or replayed signature,
        frames that are not JSON objects, or header fields of the wrong type.
        Nothing of a rejected message is kept (the replay history records only
        signatures that verified).
        """
        limits = self.limits
        if len(frames) > limits.max_frames:
            raise WireError(
                f"{len(frames)} frames, more than the limit of {limits.max_frames}"
            )
        total = sum(len(f) for f in frames)
        if total > limits.max_message_bytes:
            raise WireError(
                f"{total} bytes, more than the limit of {limits.max_message_bytes}"
            )
        try:
            split = list(frames).index(DELIMITER)
        except ValueError:
            raise WireError("no <IDS|MSG> delimiter") from None
        if split > limits.max_identities:
            raise WireError(
                f"{split} identity frames, more than the limit of {limits.max_identities}"
            )
        identities = list(frames[:split])
        body = list(frames[split + 1 :])
        if len(body) < 5:
            raise WireError(
                f"expected at least 5 frames after the delimiter, got {len(body)}"
            )
        self._verify(body)
        try:
            check_header(self._session.unpack(body[1]))
        except WireError:
            raise
        except Exception as e:
            raise WireError(f"undecodable header ({type(e).__name__}: {e})") from None
        try:
            msg = self._session.deserialize(body, content=True, copy=True)
        except ValueError as e:
            raise WireError(str(e).split(":")[0]) from None
        except Exception as e:
            raise WireError(f"undecodable message ({type(e).__name__}: {e})") from None
        if not isinstance(msg.get("parent_header"), dict):
            raise WireError("parent_header is not a JSON object")
        if not isinstance(msg.get("metadata"), dict):
            raise WireError("metadata is not a JSON object")
        if not isinstance(msg.get("content"), dict):
            raise WireError("content is not a JSON object")
        msg["buffers"] = [bytes(b) for b in msg["buffers"]]
        return identities, msg

    def _verify(self, body: list[bytes]) -> None:
        """Check the signature's length and value before the Session records it."""
        if not self._signature_length:
            return
        signature = body[0]
        if not signature:
            raise WireError("Unsigned Message")
        if len(signature) != self._signature_length:
            raise WireError(
                f"signature of {len(signature)} bytes "
                f"(the scheme's is {self._signature_length})"
            )
        if not hmac.compare_digest(signature, self._session.sign(body[1:5])):
            raise WireError("Invalid Signature")
