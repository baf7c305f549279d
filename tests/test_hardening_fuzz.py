"""Property-based fuzzing of the wire layer and of request contents (hypothesis).

Quick by default; a long run by hand::

    TXKERNEL_FUZZ_EXAMPLES=5000 python -m twisted.trial tests.test_hardening_fuzz

(the live test then sends about 8x that many hostile messages).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txkernel.echo import EchoKernel
from txkernel.request import CONTROL_TYPES, SHELL_TYPES
from txkernel.wire import DELIMITER, Wire, WireError

from .helpers import connect, serve
from .hostile import LogWatcher, RawPeer, header, reply_on, signed_frames

EXAMPLES = int(os.environ.get("TXKERNEL_FUZZ_EXAMPLES", "120"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)

HEADER_FIELDS = (
    "msg_id",
    "msg_type",
    "session",
    "username",
    "version",
    "date",
    "subshell_id",
)
#: Every type the core serves but shutdown (which would end the kernel under
#: test), a stdin reply, and a type nobody serves.
REQUEST_TYPES = (
    *sorted((SHELL_TYPES | CONTROL_TYPES) - {"shutdown_request"}),
    "input_reply",
    "no_such_request",
)

#: A header that is well-formed, or has some fields replaced by any JSON value.
headers = st.builds(
    lambda msg_type, changes: {**header(msg_type), **changes},
    st.sampled_from(REQUEST_TYPES),
    st.dictionaries(st.sampled_from(HEADER_FIELDS), json_values, max_size=3),
)

#: Content fields the request handlers read, with any value.
CONTENT_KEYS = (
    "code",
    "silent",
    "store_history",
    "user_expressions",
    "allow_stdin",
    "stop_on_error",
    "cursor_pos",
    "detail_level",
    "hist_access_type",
    "n",
    "comm_id",
    "target_name",
    "data",
    "value",
    "restart",
    "pattern",
)
contents = (
    st.dictionaries(st.sampled_from(CONTENT_KEYS), json_values, max_size=6)
    | json_values
)


def _signed(wire: Wire, parts: list[bytes]) -> bytes:
    return wire.sign(parts)


class WireFuzzTests(SynchronousTestCase):
    """Whatever arrives, deserialize returns a usable message or raises WireError."""

    def setUp(self) -> None:
        self.sender = Wire("secret", username="client")

    @FUZZ
    @given(st.lists(st.binary(max_size=64), max_size=12), st.integers(0, 12))
    def test_random_frames_raise_only_wire_error(self, frames, at) -> None:
        frames.insert(min(at, len(frames)), DELIMITER)
        try:
            Wire("secret").deserialize(frames)
        except WireError:
            pass

    @FUZZ
    @given(
        headers,
        json_values,
        json_values,
        contents,
        st.lists(st.binary(max_size=16), max_size=3),
    )
    def test_signed_parts_of_any_shape(
        self, hdr, parent, metadata, content, buffers
    ) -> None:
        parts = [json.dumps(x).encode() for x in (hdr, parent, metadata, content)]
        frames = [b"id", DELIMITER, _signed(self.sender, parts), *parts, *buffers]
        try:
            ids, msg = Wire("secret").deserialize(frames)
        except WireError:
            return
        self.assertEqual(ids, [b"id"])
        h = msg["header"]
        self.assertIsInstance(h["msg_id"], str)
        self.assertIsInstance(h["msg_type"], str)
        for name in ("session", "username", "version"):
            self.assertIsInstance(h.get(name, ""), str)
        for name in ("parent_header", "metadata", "content"):
            self.assertIsInstance(msg[name], dict)
        self.assertEqual(msg["buffers"], buffers)

    @FUZZ
    @given(json_objects, st.lists(st.binary(max_size=64), max_size=4))
    def test_round_trip(self, content, buffers) -> None:
        receiver = Wire("secret")
        msg = self.sender.new_message("comm_msg", content, buffers=buffers)
        _, got = receiver.deserialize(self.sender.serialize(msg, [b"a"]))
        self.assertEqual(got["content"], json.loads(json.dumps(content)))
        self.assertEqual(got["buffers"], buffers)

    @FUZZ
    @given(st.binary(max_size=200))
    def test_any_other_signature_is_refused(self, signature) -> None:
        frames = self.sender.serialize(self.sender.new_message("x", {}))
        index = frames.index(DELIMITER) + 1
        if signature == frames[index]:
            return
        frames[index] = signature
        receiver = Wire("secret")
        self.assertRaises(WireError, receiver.deserialize, frames)
        self.assertEqual(len(receiver.replay_history), 0)


def generate(strategy: Any, count: int) -> list[Any]:
    """``count`` values drawn from ``strategy`` (deterministically)."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


class LiveFuzzTests(TestCase):
    """Thousands of hostile messages on shell, control and stdin, then normal work."""

    timeout = 300

    async def test_hostile_messages_then_code_runs_normally(self) -> None:
        LogWatcher(self)  # keeps the thousands of warnings out of test.log's way
        kernel = EchoKernel()
        service = await serve(self, kernel)
        client = await connect(self, service)
        info = service.connection_info
        peers = {ch: RawPeer(self, info, ch) for ch in ("shell", "control", "stdin")}
        signed = generate(
            st.tuples(headers, json_values, json_values, contents), EXAMPLES * 2
        )
        raw = generate(st.lists(st.binary(max_size=64), max_size=10), EXAMPLES)
        sent = 0
        for peer in peers.values():
            for hdr, parent, metadata, content in signed:
                if hdr.get("msg_type") == "shutdown_request":
                    continue
                peer.send(signed_frames(info, hdr, content, parent, metadata))
                sent += 1
            for frames in raw:
                peer.send([DELIMITER, *frames])
                peer.send(frames or [b"x"])
                sent += 2
            # A well-formed request with a bad signature.
            for hdr, _, _, content in signed[:EXAMPLES]:
                frames = signed_frames(info, hdr, content)
                frames[1] = b"0" * 64
                peer.send(frames)
                sent += 1
        self.assertGreaterEqual(sent, 12 * EXAMPLES)
        # Each socket delivers in order: once these are answered, every
        # hostile message sent before them on the same connections was read.
        for channel in ("shell", "control"):
            frames = signed_frames(info, header("kernel_info_request"), {})
            peers[channel].send(frames)
        result = await client.execute("after the storm", timeout=120)
        self.assertEqual(result.content["status"], "ok")
        self.assertEqual(result.stream_text(), "after the storm")
        reply = await client.kernel_info(channel="control", timeout=60)
        self.assertEqual(reply["content"]["status"], "ok")
        for channel in ("shell", "control"):
            answered = await reply_on(peers[channel], "kernel_info_reply")
            self.assertEqual(answered["content"]["status"], "ok")
        # A handler that a wrongly typed content makes raise is logged with its
        # traceback, and the request gets an error reply: expected here.
        self.flushLoggedErrors(
            TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError
        )
