"""Frames to messages and back: signing, verifying, the replay guard.

The layout of a Jupyter message on a ROUTER or DEALER socket::

    [identity..., b"<IDS|MSG>", signature, header, parent_header, metadata,
     content, buffer...]

The signature is the HMAC of the four JSON frames, taken over the raw bytes
as received.  Packing (JSON, as ``jupyter_client`` writes it: ISO 8601 dates
with ``Z``, bytes as base64), signing and the replay guard are done here with
the standard library, so a kernel answers its first request without
importing ``jupyter_client``.  What a peer sends is checked before anything of it
is kept: the frame count and total size against :class:`Limits`, the
signature's length and value (only an authentic signature enters the replay
history), and the type of every header field the kernel relies on.  :meth:`Wire.new_message` and :meth:`Wire.serialize`
are safe from any thread; :meth:`Wire.deserialize` keeps the replay history
and belongs to the thread that reads the sockets (the reactor).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import json.encoder
import math
import numbers
import os
import re
import uuid
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .replay import DEFAULT_CAPACITY, ReplayHistory

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
        self._key = key
        self._digest = _digest_name(signature_scheme)
        self.limits = limits
        #: Length of a valid signature frame (hex digest), 0 without a key.
        self._signature_length = 2 * hashlib.new(self._digest).digest_size if key else 0
        # Signing copies this keyed HMAC rather than keying a new one.
        self._mac = _keyed_hmac(key, self._digest) if key else None
        #: The replay guard: fingerprints of the last accepted signatures.
        self.replay_history = ReplayHistory(REPLAY_HISTORY_SIZE)
        self._ids = itertools.count(1)
        self._id_prefix = f"{self.session_id}_{os.getpid()}_"
        # The packed header of a new message, around its id, type and date
        # (see new_frames): the same JSON as pack(new_message(...)["header"]).
        self._header_start = '{"msg_id": ' + _quote(self._id_prefix)[:-1]
        self._header_middle = (
            f', "username": {_quote(username)}, "session": {_quote(self.session_id)}'
            ', "date": "'
        )

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

    def new_frames(
        self,
        msg_type: str,
        content: dict[str, Any] | bytes,
        identities: Sequence[bytes],
        parent_frame: bytes | None,
        metadata: dict[str, Any] | None = None,
    ) -> list[bytes]:
        """``serialize(new_message(msg_type, content, metadata=metadata),
        identities, parent_frame)``, without making the message's dicts
        (a reply or a status: nobody else sees them).  Any thread."""
        header = "".join(
            (
                self._header_start,
                str(next(self._ids)),
                '", "msg_type": ',
                _quote(msg_type),
                self._header_middle,
                datetime.now(UTC).isoformat()[:-6],  # (always "+00:00")
                _HEADER_END,
            )
        )
        return self._frames(
            header.encode("utf-8", errors="surrogateescape"),
            parent_frame,
            metadata,
            content,
            identities,
        )

    def _frames(
        self,
        header: bytes,
        parent_frame: bytes | None,
        metadata: dict[str, Any] | None,
        content: dict[str, Any] | bytes,
        identities: Sequence[bytes],
    ) -> list[bytes]:
        """The signed frames of a message whose header is packed already."""
        parts = [
            header,
            parent_frame if parent_frame is not None else _EMPTY,
            pack(metadata) if metadata else _EMPTY,
            content if isinstance(content, bytes) else pack(content),
        ]
        return [*identities, DELIMITER, self.sign(parts), *parts]

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """The signature of the four JSON frames ``parts`` (empty without a key)."""
        if self._mac is None:
            return b""
        mac = self._mac.copy()
        if sum(map(len, parts)) < _JOIN_BELOW:
            mac.update(b"".join(parts))  # one call instead of four
        else:  # a big message is not copied to be signed
            for part in parts:
                mac.update(part)
        return mac.hexdigest().encode("ascii")

    def serialize(
        self,
        msg: Message,
        identities: Sequence[bytes] = (),
        parent_frame: bytes | None = None,
    ) -> list[bytes]:
        """The frames of ``msg``, led by ``identities`` (or an IOPub topic).

        ``parent_frame``, when given, is ``pack(msg["parent_header"])``
        already made (the messenger packs a request's header once for all
        the messages that answer it).
        """
        if parent_frame is None:
            parent = msg.get("parent_header")
            parent_frame = pack(parent) if parent else _EMPTY
        frames = self._frames(
            pack(msg["header"]),
            parent_frame,
            msg.get("metadata"),
            msg.get("content", {}),
            identities,
        )
        buffers = msg.get("buffers")
        if buffers:
            frames.extend(bytes(b) if isinstance(b, memoryview) else b for b in buffers)
        return frames

    def deserialize(self, frames: Sequence[bytes]) -> tuple[list[bytes], Message]:
        """Split, verify and decode ``frames``: returns ``(identities, message)``.

        See :meth:`deserialize_request` for what it raises."""
        identities, msg, _ = self.deserialize_request(frames)
        return identities, msg

    def deserialize_request(
        self, frames: Sequence[bytes]
    ) -> tuple[list[bytes], Message, bytes | None]:
        """:meth:`deserialize`, and the header frame as it came when it can
        be sent back as the parent header of the messages that answer it
        (valid UTF-8: it then says exactly what the decoded header says),
        else None.

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
        header_frame: bytes | None = body[1]
        try:
            try:
                header = unpack_text(header_frame.decode("utf-8"))
            except UnicodeDecodeError:
                header_frame = None
                header = unpack(body[1])
            check_header(header)
            parent_header = unpack(body[2])
            metadata = unpack(body[3])
            content = unpack(body[4])
        except WireError:
            raise
        except Exception as e:
            raise WireError(f"undecodable message ({type(e).__name__}: {e})") from None
        if not isinstance(parent_header, dict):
            raise WireError("parent_header is not a JSON object")
        if not isinstance(metadata, dict):
            raise WireError("metadata is not a JSON object")
        if not isinstance(content, dict):
            raise WireError("content is not a JSON object")
        self._remember(body[0])
        header = extract_dates(header)
        return identities, {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": extract_dates(parent_header) if parent_header else {},
            "metadata": metadata,
            "content": content,
            "buffers": [bytes(b) for b in body[5:]],
        }, header_frame

    def _verify(self, body: list[bytes]) -> None:
        """Check the signature's length, value and novelty (nothing is kept yet)."""
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
        if not hmac.compare_digest(signature, self.sign(body[1:5])):
            raise WireError("Invalid Signature")
        if signature in self.replay_history:
            raise WireError("Duplicate Signature")

    def _remember(self, signature: bytes) -> None:
        """Keep an accepted message's signature (the oldest goes once full)."""
        if self._signature_length:
            self.replay_history.remember(signature)


class PendingFrames(Sequence[bytes]):
    """The frames of a message, serialized when first read (any thread).

    For messages whose content nobody else holds (the kernel's own
    ``status`` and ``execute_input``): the messenger builds the message
    (header, date, parent) when it publishes, and packing and signing wait
    until the IOPub thread sends it, after the reply (or the cell) that
    follows it is on its way.  Reading it
    from two threads at once may serialize it twice, to the same frames.
    """

    __slots__ = ("_make", "_frames")

    def __init__(self, make: Callable[[], list[bytes]]) -> None:
        self._make = make
        self._frames: list[bytes] | None = None

    def frames(self) -> list[bytes]:
        """The frames (serialized now if they were not yet)."""
        frames = self._frames
        if frames is None:
            frames = self._frames = self._make()
        return frames

    def __len__(self) -> int:
        return len(self.frames())

    def __getitem__(self, index: Any) -> Any:
        return self.frames()[index]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.frames())


#: An empty JSON object, packed.
_EMPTY = b"{}"

#: How the header new_frames packs ends.
_HEADER_END = f'Z", "version": "{PROTOCOL_VERSION}"}}'

#: Frames are joined to be signed in one call while they are smaller.
_JOIN_BELOW = 64 * 1024


#: How many signatures the replay guard keeps (as jupyter_client does).
REPLAY_HISTORY_SIZE = DEFAULT_CAPACITY


_ISO8601 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def _keyed_hmac(key: bytes, digest: str) -> Any:
    """A keyed HMAC to copy for each signature: OpenSSL's own object where
    there is one (its ``copy``, ``update`` and ``hexdigest`` are C calls;
    :class:`hmac.HMAC` wraps each in Python), else :func:`hmac.new`'s."""
    try:
        import _hashlib

        return _hashlib.hmac_new(key, digestmod=digest)
    except (ImportError, AttributeError, ValueError):
        return hmac.new(key, digestmod=digest)


def _digest_name(scheme: str) -> str:
    """The hashlib name of a signature scheme such as ``hmac-sha256``."""
    kind, _, name = scheme.partition("-")
    if kind != "hmac" or name not in hashlib.algorithms_available:
        raise ValueError(f"unsupported signature scheme {scheme!r}")
    return name


def _json_default(obj: Any) -> Any:
    if obj.__class__ is datetime and obj.tzinfo is UTC:  # every header's date
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = obj.astimezone()  # a naive time is local time
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return b2a_base64(obj, newline=False).decode("ascii")
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    if isinstance(obj, Iterable):
        return list(obj)
    raise TypeError(f"{obj!r} is not JSON serializable")


def _json_clean(obj: Any) -> Any:
    """``obj`` with what JSON cannot say made sayable (NaN and infinity as text)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_json_clean(v) for v in obj]
    return obj


def _make_encode() -> Callable[[Any], str]:
    """``json.dumps(obj, default=_json_default, ensure_ascii=False,
    allow_nan=False)`` with the encoder built once rather than per call
    (most of the cost of packing a small frame)."""
    c_make_encoder = json.encoder.c_make_encoder
    if c_make_encoder is None:  # pragma: no cover - a Python without _json
        return json.JSONEncoder(
            default=_json_default, ensure_ascii=False, allow_nan=False
        ).encode
    # No circular-reference markers: a cycle raises RecursionError, as
    # pack's retry through _json_clean always did.
    encode = c_make_encoder(
        None, _json_default, json.encoder.encode_basestring,
        None, ": ", ", ", False, False, False,
    )  # fmt: skip
    return lambda obj: "".join(encode(obj, 0))


_encode = _make_encode()

#: A string as a JSON string, quotes included (as pack writes it).
_quote = json.encoder.encode_basestring


def pack(obj: Any) -> bytes:
    """``obj`` as UTF-8 JSON, as Jupyter frontends read it."""
    try:
        text = _encode(obj)
    except ValueError:  # NaN or infinity somewhere
        text = _encode(_json_clean(obj))
    return text.encode("utf-8", errors="surrogateescape")


#: The C scanner behind ``json.loads``, called directly: for a frame that is
#: one JSON value with nothing around it (what every peer sends), this skips
#: ``json.loads``'s Python layers (type checks, two whitespace regexes), about
#: a microsecond per frame, four frames per request.
_scan_once = json.JSONDecoder().scan_once


def unpack(data: bytes) -> Any:
    """The JSON value of one frame."""
    if data == _EMPTY:  # most parent headers, metadata and contents of requests
        return {}
    return unpack_text(data.decode("utf-8", "replace"))


def unpack_text(text: str) -> Any:
    """The JSON value of one frame's text."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:  # leading whitespace, or not JSON: json.loads says
        return json.loads(text)
    if end != len(text):  # trailing whitespace is fine; anything else raises
        return json.loads(text)
    return value


def extract_dates(obj: Any) -> Any:
    """``obj`` with its ISO 8601 strings as timezone-aware datetimes (headers)."""
    if isinstance(obj, dict):
        # (a header's values are mostly plain strings: those are looked at
        # here, without a call each)
        out = {}
        for k, v in obj.items():
            if v.__class__ is str:
                out[k] = _date_or_text(v) if v[4:5] == "-" else v
            else:
                out[k] = extract_dates(v)
        return out
    if isinstance(obj, list):
        return [extract_dates(v) for v in obj]
    # (the cheap test first: most strings are no date)
    if isinstance(obj, str) and obj[4:5] == "-":
        return _date_or_text(obj)
    return obj


def _date_or_text(text: str) -> Any:
    """``text`` as an aware datetime if it is an ISO 8601 date, else itself."""
    if not _ISO8601.match(text):
        return text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    return parsed if parsed.tzinfo is not None else parsed.astimezone()
