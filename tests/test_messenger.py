"""What the messenger sends for each request: busy, the reply and idle, each
signed and each with that request's header as its parent, however requests
on shell and control follow each other."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from txkernel.interpreter import BaseInterpreter
from txkernel.testing import serve_kernel, states, wait_for


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
