"""jupyter_client's own client against txkernel kernels.

jupyter_client blocks, so it runs in one dedicated thread while the kernel
is served by the reactor in this process.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from .helpers import blocking_client, serve


class JupyterClientTests(TestCase):
    timeout = 60

    async def _client(self):
        service = await serve(self)
        return await blocking_client(self, service.connection_file)

    async def test_kernel_info_and_execute(self) -> None:
        thread, client = await self._client()

        def run():
            info = client.kernel_info(reply=True, timeout=10)
            outputs = []
            reply = client.execute_interactive(
                "from jupyter_client", output_hook=outputs.append, timeout=10
            )
            return info, reply, outputs

        info, reply, outputs = await thread.run(run)
        self.assertEqual(info["content"]["implementation"], "txkernel-echo")
        self.assertEqual(reply["content"]["status"], "ok")
        types = [m["msg_type"] for m in outputs]
        self.assertEqual(
            types, ["status", "execute_input", "stream", "execute_result", "status"]
        )
        self.assertEqual(outputs[2]["content"]["text"], "from jupyter_client")

    async def test_input_through_the_stdin_channel(self) -> None:
        thread, client = await self._client()

        def run():
            prompts = []

            def answer(msg):
                prompts.append(msg["content"]["prompt"])
                client.input("typed")

            reply = client.execute_interactive(
                "input: name?",
                allow_stdin=True,
                stdin_hook=answer,
                timeout=10,
                output_hook=lambda m: None,
            )
            return prompts, reply

        prompts, reply = await thread.run(run)
        self.assertEqual(prompts, ["name?"])
        self.assertEqual(reply["content"]["status"], "ok")

    async def test_kernel_info_on_the_control_channel(self) -> None:
        thread, client = await self._client()

        def run():
            request = client.session.msg("kernel_info_request")
            client.control_channel.send(request)
            reply = client.control_channel.get_msg(timeout=10)
            return request["header"]["msg_id"], reply

        msg_id, reply = await thread.run(run)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
