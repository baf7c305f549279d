"""Frames to messages and back."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txkernel.wire import DELIMITER, PROTOCOL_VERSION, Wire, WireError


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
