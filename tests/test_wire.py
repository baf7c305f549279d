"""Frames to messages and back."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from txkernel.wire import (
    DELIMITER,
    PROTOCOL_VERSION,
    Limits,
    Wire,
    WireError,
    pack,
    unpack,
)


class WireTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.sender = Wire("secret", username="client")
        self.receiver = Wire("secret")

    def test_round_trip_keeps_identities_content_and_buffers(self) -> None:
        msg = self.sender.new_message(
            "comm_msg", {"data": 1}, buffers=[b"\x00raw", b"two"]
        )
        ids, got = self.receiver.deserialize(
            self.sender.serialize(msg, [b"peer-a", b"peer-b"])
        )
        self.assertEqual(ids, [b"peer-a", b"peer-b"])
        self.assertEqual(got["content"], {"data": 1})
        self.assertEqual(got["buffers"], [b"\x00raw", b"two"])
        self.assertEqual(got["header"]["version"], PROTOCOL_VERSION)

    def test_dates_are_written_in_utc_with_z(self) -> None:
        frames = self.sender.serialize(self.sender.new_message("status", {}))
        header = frames[frames.index(DELIMITER) + 2].decode()
        self.assertRegex(header, r'"date": ?"\d{4}-\d\d-\d\dT[\d:.]+Z"')

    def test_parent_header_is_a_copy_of_the_request_header(self) -> None:
        request = self.sender.new_message("kernel_info_request", {})
        _, got = self.receiver.deserialize(self.sender.serialize(request))
        reply = self.receiver.new_message("kernel_info_reply", {}, parent=got)
        self.assertEqual(reply["parent_header"]["msg_id"], request["header"]["msg_id"])

    def test_a_bad_signature_is_rejected(self) -> None:
        frames = self.sender.serialize(self.sender.new_message("x", {}))
        frames[frames.index(DELIMITER) + 1] = b"f" * 64
        self.assertRaises(WireError, self.receiver.deserialize, frames)

    def test_another_key_is_rejected(self) -> None:
        other = Wire("not the secret")
        frames = other.serialize(other.new_message("x", {}))
        self.assertRaises(WireError, self.receiver.deserialize, frames)

    def test_an_unsigned_message_is_rejected(self) -> None:
        unsigned = Wire("")
        frames = unsigned.serialize(unsigned.new_message("x", {}))
        self.assertRaises(WireError, self.receiver.deserialize, frames)

    def test_a_replayed_message_is_rejected(self) -> None:
        frames = self.sender.serialize(self.sender.new_message("x", {}))
        self.receiver.deserialize(frames)
        error = self.assertRaises(WireError, self.receiver.deserialize, frames)
        self.assertIn("Duplicate", str(error))

    def test_malformed_frames_are_rejected(self) -> None:
        for frames in (
            [b"no delimiter"],
            [DELIMITER, b"sig", b"{}"],
            [DELIMITER, b"", b"[", b"{}", b"{}", b"{}"],
        ):
            self.assertRaises(WireError, Wire("").deserialize, frames)

    def test_without_a_key_messages_are_unsigned_and_accepted(self) -> None:
        open_wire = Wire("")
        frames = open_wire.serialize(open_wire.new_message("x", {"a": 1}))
        self.assertEqual(frames[frames.index(DELIMITER) + 1], b"")
        _, got = Wire("").deserialize(frames)
        self.assertEqual(got["content"], {"a": 1})

    def test_message_ids_are_unique(self) -> None:
        ids = {self.sender.new_message("x")["msg_id"] for _ in range(1000)}
        self.assertEqual(len(ids), 1000)


class HostileFrameTests(SynchronousTestCase):
    """What a peer sends is checked before anything of it is kept."""

    def setUp(self) -> None:
        self.sender = Wire("secret", username="client")
        self.receiver = Wire("secret")

    def frames_with_header(self, **fields) -> list[bytes]:
        msg = self.sender.new_message("execute_request", {"code": ""})
        msg["header"].update(fields)
        return self.sender.serialize(msg, [b"peer"])

    def test_header_fields_of_the_wrong_type_are_rejected(self) -> None:
        for field, value in [
            ("msg_id", ["a", "list"]),
            ("msg_id", {"a": "dict"}),
            ("msg_id", 7),
            ("msg_type", ["execute_request"]),
            ("session", 1.5),
            ("username", None),
            ("version", 5),
            ("date", 20261201),
            ("subshell_id", []),
        ]:
            error = self.assertRaises(
                WireError,
                self.receiver.deserialize,
                self.frames_with_header(**{field: value}),
            )
            self.assertIn(repr(field), str(error))

    def test_non_object_parts_are_rejected_with_their_name(self) -> None:
        for part, value in [
            ("parent_header", []),
            ("metadata", "x"),
            ("content", [1, 2]),
        ]:
            frames = self.sender.serialize(
                self.sender.new_message("execute_request", {"code": ""})
            )
            at = frames.index(DELIMITER) + 2
            index = at + ("header", "parent_header", "metadata", "content").index(part)
            frames[index] = json.dumps(value).encode()
            frames[at - 1] = self.sender.sign(frames[at : at + 4])
            error = self.assertRaises(WireError, self.receiver.deserialize, frames)
            self.assertIn(part, str(error))

    def _resigned(self, content: bytes) -> list[bytes]:
        frames = self.sender.serialize(self.sender.new_message("comm_msg", {}))
        at = frames.index(DELIMITER) + 2
        frames[at + 3] = content
        frames[at - 1] = self.sender.sign(frames[at : at + 4])
        return frames

    def test_json_frames_are_read_as_json_loads_reads_them(self) -> None:
        for raw, expected in [
            (b'{"a": [1, 2.5, null, true]}', {"a": [1, 2.5, None, True]}),
            (b'  {"a": 1}', {"a": 1}),
            (b'{"a": 1}\n\t ', {"a": 1}),
            (b'{"n": NaN, "i": -Infinity}', None),
            ('{"t": "\u00e9\\u00e8"}'.encode(), {"t": "\u00e9\u00e8"}),
            (b'{"bad": "\xff"}', {"bad": "\ufffd"}),
        ]:
            _, got = self.receiver.deserialize(self._resigned(raw))
            if expected is None:
                self.assertNotEqual(got["content"]["n"], got["content"]["n"])
                self.assertEqual(got["content"]["i"], float("-inf"))
            else:
                self.assertEqual(got["content"], expected)

    def test_a_json_frame_with_more_after_its_value_is_rejected(self) -> None:
        for raw in (b'{"a": 1} {"b": 2}', b'{"a": 1}x', b"", b"   ", b'{"a": '):
            error = self.assertRaises(
                WireError, self.receiver.deserialize, self._resigned(raw)
            )
            self.assertIn("undecodable", str(error))

    def test_a_signature_of_the_wrong_length_is_refused_and_not_kept(self) -> None:
        for signature in (b"a" * (1024 * 1024), b"ab", b"f" * 128):
            frames = self.sender.serialize(self.sender.new_message("x", {}))
            frames[frames.index(DELIMITER) + 1] = signature
            error = self.assertRaises(WireError, self.receiver.deserialize, frames)
            self.assertIn("signature of", str(error))
        self.assertEqual(len(self.receiver.replay_history), 0)

    def test_a_wrong_signature_is_not_kept_in_the_replay_history(self) -> None:
        frames = self.sender.serialize(self.sender.new_message("x", {}))
        frames[frames.index(DELIMITER) + 1] = b"f" * 64
        self.assertRaises(WireError, self.receiver.deserialize, frames)
        self.assertEqual(len(self.receiver.replay_history), 0)

    def test_the_digest_length_follows_the_scheme(self) -> None:
        sender = Wire("k", signature_scheme="hmac-sha512")
        receiver = Wire("k", signature_scheme="hmac-sha512")
        frames = sender.serialize(sender.new_message("x", {}))
        self.assertEqual(len(frames[frames.index(DELIMITER) + 1]), 128)
        receiver.deserialize(frames)

    def test_too_many_frames_are_refused(self) -> None:
        msg = self.sender.new_message("comm_msg", {}, buffers=[b"b"] * 2000)
        error = self.assertRaises(
            WireError, self.receiver.deserialize, self.sender.serialize(msg)
        )
        self.assertIn("frames, more than the limit", str(error))

    def test_too_many_identities_are_refused(self) -> None:
        msg = self.sender.new_message("x", {})
        frames = self.sender.serialize(msg, [b"id%d" % i for i in range(100)])
        error = self.assertRaises(WireError, self.receiver.deserialize, frames)
        self.assertIn("identity frames", str(error))

    def test_a_message_over_the_size_limit_is_refused(self) -> None:
        small = Wire("secret", limits=Limits(max_message_bytes=10_000))
        msg = self.sender.new_message("comm_msg", {}, buffers=[b"x" * 20_000])
        error = self.assertRaises(
            WireError, small.deserialize, self.sender.serialize(msg)
        )
        self.assertIn("bytes, more than the limit", str(error))


class NewFramesTests(SynchronousTestCase):
    """``new_frames`` packs what ``serialize(new_message(...))`` packs."""

    def test_new_frames_say_what_a_new_message_serialized_says(self) -> None:
        # Names that JSON must escape, in the session and the username.
        wire = Wire("secret", username='k"é\\', session_id="s\\1\"")
        receiver = Wire("secret")
        parent = b'{"msg_id": "p-1", "msg_type": "x_request"}'
        for content in ({"a": [1, "é"]}, b'{"b": 2}'):
            for metadata in (None, {}, {"m": 1}):
                frames = wire.new_frames(
                    "x_reply", content, [b"peer"], parent, metadata
                )
                made = wire.new_message(
                    "x_reply",
                    json.loads(content) if isinstance(content, bytes) else content,
                    metadata=metadata,
                )
                reference = wire.serialize(made, [b"peer"], parent)
                ids, got = receiver.deserialize(frames)
                _, expected = receiver.deserialize(reference)
                self.assertEqual(ids, [b"peer"])
                header, expected_header = got.pop("header"), expected.pop("header")
                del got["msg_id"], expected["msg_id"]
                self.assertEqual(got, expected)
                self.assertEqual(header.keys(), expected_header.keys())
                for key in ("msg_type", "username", "session", "version"):
                    self.assertEqual(header[key], expected_header[key])
                self.assertEqual(header["date"].utcoffset().total_seconds(), 0)
                self.assertTrue(header["msg_id"].startswith(wire.session_id + "_"))
                self.assertNotEqual(header["msg_id"], expected_header["msg_id"])
                self.assertEqual(frames[3], pack(unpack(frames[3])))  # as pack writes

    def test_without_a_parent_frame_the_parent_header_is_empty(self) -> None:
        wire = Wire("")
        _, got = Wire("").deserialize(wire.new_frames("status", {}, [b"t"], None))
        self.assertEqual(got["parent_header"], {})
        self.assertEqual(got["metadata"], {})


class PendingFramesTests(SynchronousTestCase):
    def test_pending_frames_are_the_frames_serialize_makes_made_once(self) -> None:
        from txkernel.wire import PendingFrames

        wire = Wire("secret")
        msg = wire.new_message("status", {"execution_state": "busy"})
        calls: list[None] = []

        def make() -> list[bytes]:
            calls.append(None)
            return wire.serialize(msg, [b"topic"])

        pending = PendingFrames(make)
        self.assertEqual(calls, [])
        self.assertEqual(list(pending), wire.serialize(msg, [b"topic"]))
        self.assertEqual(len(pending), 7)
        self.assertEqual(pending[0], b"topic")
        self.assertEqual(len(calls), 1)
        _, got = Wire("secret").deserialize(list(pending))
        self.assertEqual(got["content"], {"execution_state": "busy"})


class SigningAndDatesTests(SynchronousTestCase):
    def test_the_signature_is_the_hmac_of_the_four_json_frames_for_each_scheme(
        self,
    ) -> None:
        import hashlib
        import hmac

        for scheme in ("hmac-sha256", "hmac-sha512", "hmac-sha1", "hmac-md5"):
            wire = Wire("secret", scheme)
            frames = wire.serialize(wire.new_message("status", {"x": "é"}), [b"t"])
            at = frames.index(DELIMITER)
            expected = hmac.new(
                b"secret", b"".join(frames[at + 2 : at + 6]),
                getattr(hashlib, scheme.split("-")[1]),
            ).hexdigest()  # fmt: skip
            self.assertEqual(frames[at + 1].decode(), expected)
            Wire("secret", scheme).deserialize(frames)  # and it verifies

    def test_dates_anywhere_in_a_header_become_aware_datetimes(self) -> None:
        from datetime import UTC, datetime

        from txkernel.wire import extract_dates

        got = extract_dates(
            {
                "date": "2026-12-02T01:15:26.5Z",
                "nested": [{"when": "2026-12-02T01:15:26+01:00"}, "2026-12-02T01:15"],
                "not a date": "2026-13-45T99:99",
                "id": "abcd-ef",
                "n": 3,
                "none": None,
            }
        )
        self.assertEqual(got["date"], datetime(2026, 12, 2, 1, 15, 26, 500000, UTC))
        self.assertEqual(got["nested"][0]["when"].utcoffset().total_seconds(), 3600)
        self.assertIsNotNone(got["nested"][1].tzinfo)  # naive: local time
        self.assertEqual(got["not a date"], "2026-13-45T99:99")
        self.assertEqual((got["id"], got["n"], got["none"]), ("abcd-ef", 3, None))
