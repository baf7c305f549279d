"""What the messenger sends for each request: busy, the reply and idle, each
signed and each with that request's header as its parent, however requests
on shell and control follow each other."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase

from txkernel.core import KernelCore
from txkernel.interpreter import BaseInterpreter
from txkernel.testing import serve_kernel, states, wait_for
from txkernel.wire import DELIMITER, Wire


class Quiet(BaseInterpreter):
    language_info = {"name": "quiet", "mimetype": "text/plain", "file_extension": ".txt"}

    def execute(self, execution):
        return {"status": "ok"}


class ParentHeaderTests(TestCase):
    timeout = 30

    async def test_every_message_of_a_request_has_that_request_as_parent(self) -> None:
        served = await serve_kernel(self, Quiet())
        client = served.client
        published = []
        client.watch_iopub(published.append)

        def is_idle_of(msg_id: str):
            return lambda m: (
                m["msg_type"] == "status"
                and m["content"]["execution_state"] == "idle"
                and m["parent_header"].get("msg_id") == msg_id
            )

        for channel in ["shell", "control", "shell", "shell", "control", "control"]:
            reply = await client.kernel_info(channel)
            parent = reply["parent_header"]
            self.assertEqual(parent["msg_type"], "kernel_info_request")
            # (the client checked every message's signature on arrival)
            idle = is_idle_of(parent["msg_id"])
            if not any(idle(m) for m in published):  # not yet: wait for it
                await wait_for(client, idle)
            mine = [
                m
                for m in published
                if m["msg_type"] == "status"
                and m["parent_header"].get("msg_id") == parent["msg_id"]
            ]
            self.assertEqual(
                [m["content"]["execution_state"] for m in mine], ["busy", "idle"]
            )
            self.assertEqual([m["parent_header"] for m in mine], [parent, parent])
        execution = await client.execute("x")
        self.assertEqual(states(execution), ["busy", "idle"])
        [execute_input] = execution.of_type("execute_input")
        self.assertEqual(execute_input["content"], {"code": "x", "execution_count": 1})
        self.assertEqual(
            [m["msg_type"] for m in execution.outputs], ["status", "execute_input", "status"]
        )
        for msg in execution.outputs:
            self.assertEqual(msg["parent_header"], execution.reply["parent_header"])
        self.assertEqual(
            execution.reply["parent_header"]["msg_type"], "execute_request"
        )


class RecordingTransport:
    """Keeps what the kernel sends and publishes, as frames."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []
        self.published: list[list[bytes]] = []

    def send(self, channel: str, frames: Sequence[bytes]) -> None:
        self.sent.append(list(frames))

    def send_to_peer(self, channel: str, frames: Sequence[bytes]) -> Deferred[None]:
        self.send(channel, frames)
        return succeed(None)

    def publish(self, frames: Sequence[bytes]) -> None:
        self.published.append(list(frames))

    def drain(self, channel: str) -> None:
        pass

    def flush(self) -> Deferred[None]:
        return succeed(None)


def body(frames: list[bytes]) -> list[bytes]:
    """[header, parent_header, metadata, content] of a message's frames."""
    at = frames.index(DELIMITER)
    return frames[at + 2 : at + 6]


class ParentFrameTests(TestCase):
    """The parent header of what answers a request is the request's header
    frame as it came (not a re-packing of it) whenever that is valid UTF-8."""

    def setUp(self) -> None:
        self.interpreter = Quiet()
        # (its own, to change in place)
        self.interpreter.language_info = dict(Quiet.language_info)
        self.core = KernelCore(self.interpreter)
        self.transport = RecordingTransport()
        self.core.attach(Wire("secret"), self.transport)
        self.client = Wire("secret", username="client")
        self.transport.published.clear()  # status: starting

    def request(self, header: bytes) -> None:
        parts = [header, b"{}", b"{}", b"{}"]
        self.core.message_received(
            "shell", [b"peer", DELIMITER, self.client.sign(parts), *parts]
        )

    def test_replies_and_statuses_carry_the_header_frame_as_it_came(self) -> None:
        header = (
            b'{"msg_type":"kernel_info_request",  "msg_id": "m-1", "session": "s",'
            b' "username": "u", "version": "5.3",'
            b' "date": "2026-12-02T10:00:00.500000+00:00", "x-note": ["\\u00e9t\\u00e9"]}'
        )
        self.request(header)
        [reply] = self.transport.sent
        self.assertEqual(body(reply)[1], header)
        self.assertEqual(
            [body(frames)[1] for frames in self.transport.published], [header, header]
        )
        _, got = self.client.deserialize(reply)
        self.assertEqual(got["msg_type"], "kernel_info_reply")
        self.assertEqual(got["parent_header"]["msg_id"], "m-1")
        self.assertEqual(got["parent_header"]["x-note"], ["été"])
        self.assertEqual(
            got["parent_header"]["date"], datetime(2026, 12, 2, 10, 0, 0, 500000, UTC)
        )

    def test_a_header_that_is_not_utf8_is_packed_as_decoded(self) -> None:
        header = (
            b'{"msg_type": "kernel_info_request", "msg_id": "m-2", "session": "s",'
            b' "username": "u\xff", "version": "5.3"}'
        )
        self.request(header)
        [reply] = self.transport.sent
        parent = body(reply)[1]
        self.assertNotEqual(parent, header)
        parent.decode("utf-8")  # valid: the bad byte was replaced
        _, got = self.client.deserialize(reply)
        self.assertEqual(got["parent_header"]["username"], "u\ufffd")
        self.assertEqual(got["parent_header"]["msg_id"], "m-2")

    def test_kernel_info_follows_a_language_info_changed_in_place(self) -> None:
        def kernel_info(n: int) -> dict:
            self.request(
                b'{"msg_type": "kernel_info_request", "msg_id": "k-%d", "session": "s",'
                b' "username": "u", "version": "5.3"}' % n
            )
            return self.client.deserialize(self.transport.sent[-1])[1]["content"]

        self.assertEqual(kernel_info(1)["language_info"]["name"], "quiet")
        self.interpreter.language_info["name"] = "louder"
        self.interpreter.banner = "a new banner"
        content = kernel_info(2)
        self.assertEqual(content["language_info"]["name"], "louder")
        self.assertEqual(content["banner"], "a new banner")
        self.assertEqual(kernel_info(3), content)
