"""Kernel subshells (JEP 91): create, list, delete; concurrent queues; per-subshell rules."""

from __future__ import annotations

import threading

from twisted.internet.defer import gatherResults
from twisted.trial.unittest import TestCase

from txkernel.client import KernelError
from txkernel.python import PythonKernel
from txkernel.testing import serve_kernel, states, wait_for
from txkernel.wire import PROTOCOL_VERSION

from .helpers import blocking_client
from .kernels import ScriptedKernel


class SubshellControlTests(TestCase):
    async def test_kernel_info_declares_subshells_and_protocol_5_5(self) -> None:
        served = await serve_kernel(self, ScriptedKernel())
        info = await served.client.kernel_info(channel="control")
        self.assertEqual(PROTOCOL_VERSION, "5.5")
        self.assertEqual(info["content"]["protocol_version"], "5.5")
        self.assertIn("kernel subshells", info["content"]["supported_features"])

    async def test_create_list_and_delete(self) -> None:
        client = (await serve_kernel(self, ScriptedKernel())).client
        self.assertEqual(await client.list_subshells(), [])
        first = await client.create_subshell()
        second = await client.create_subshell()
        self.assertNotEqual(first, second)
        self.assertEqual(await client.list_subshells(), [first, second])
        await client.delete_subshell(first)
        self.assertEqual(await client.list_subshells(), [second])

    async def test_deleting_an_unknown_subshell_is_an_error_reply(self) -> None:
        client = (await serve_kernel(self, ScriptedKernel())).client
        with self.assertRaises(KernelError) as caught:
            await client.delete_subshell("no-such-subshell")
        content = caught.exception.reply["content"]
        self.assertEqual(content["status"], "error")
        self.assertIn("no-such-subshell", content["evalue"])
        await client.create_subshell()  # control still serves

    async def test_a_request_to_an_unknown_subshell_gets_an_error_between_busy_and_idle(
        self,
    ) -> None:
        client = (await serve_kernel(self, ScriptedKernel())).client
        result = await client.execute("lost", subshell_id="nowhere")
        self.assertEqual(result.content["status"], "error")
        self.assertEqual(result.content["ename"], "UnknownSubshell")
        self.assertEqual(states(result), ["busy", "idle"])
        self.assertEqual((await client.execute("parent")).stream_text(), "parent")


class SubshellQueueTests(TestCase):
    async def test_a_subshell_answers_while_the_parent_shell_is_held(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        subshell = await client.create_subshell()
        held = client.execute("hold")
        await served.received(1, "execute_request")
        result = await client.execute("from the subshell", subshell_id=subshell)
        self.assertEqual(result.stream_text(), "from the subshell")
        self.assertFalse(held.called)
        kernel.held.callback(None)
        self.assertEqual((await held).content["status"], "ok")

    async def test_busy_and_idle_carry_each_subshells_request(self) -> None:
        client = (await serve_kernel(self, ScriptedKernel())).client
        subshell = await client.create_subshell()
        result = await client.execute("hi", subshell_id=subshell)
        request_id = result.reply["parent_header"]["msg_id"]
        self.assertEqual(states(result), ["busy", "idle"])
        for msg in result.outputs:
            self.assertEqual(msg["parent_header"]["msg_id"], request_id)
            self.assertEqual(msg["parent_header"]["subshell_id"], subshell)

    async def test_stop_on_error_aborts_only_the_queue_it_happened_in(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        subshell = await client.create_subshell()
        held = client.execute("hold", subshell_id=subshell)
        await served.received(1, "execute_request")
        failed = client.execute("fail", subshell_id=subshell)
        aborted = client.execute("after", subshell_id=subshell)
        await served.received(3, "execute_request")
        kernel.held.callback(None)
        await held
        self.assertEqual((await failed).content["status"], "error")
        self.assertEqual((await aborted).content["status"], "aborted")
        parent = await client.execute("parent still runs")
        self.assertEqual(parent.content["status"], "ok")
        self.flushLoggedErrors(ValueError)


class PythonSubshellTests(TestCase):
    timeout = 60

    async def start(self):
        namespace = {"release": threading.Event(), "started": threading.Event()}
        self.served = await serve_kernel(self, PythonKernel(namespace=namespace))
        return self.served.client, namespace

    async def test_a_subshell_runs_code_and_completes_while_the_parent_runs_a_long_cell(
        self,
    ) -> None:
        client, namespace = await self.start()
        await client.execute("counter = 41")
        subshell = await client.create_subshell()
        # The parent's cell ends only when the subshell's cell releases it.
        running = client.execute("started.set(); release.wait(30); print('parent done')")
        await self.served.received(2, "execute_request")
        result = await client.execute(
            "started.wait(30); counter += 1; release.set(); counter", subshell_id=subshell
        )
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "42")
        completion = await client.complete("coun", subshell_id=subshell)
        self.assertIn("counter", completion["content"]["matches"])
        parent = await running
        self.assertEqual(parent.stream_text(), "parent done\n")
        self.assertTrue(namespace["release"].is_set())

    async def test_each_subshell_has_its_own_execution_thread_until_deleted(self) -> None:
        client, _ = await self.start()
        subshell = await client.create_subshell()
        here = await client.execute("import threading; threading.current_thread().name")
        there = await client.execute(
            "threading.current_thread().name", subshell_id=subshell
        )
        name = there.of_type("execute_result")[0]["content"]["data"]["text/plain"]
        self.assertNotEqual(
            here.of_type("execute_result")[0]["content"]["data"]["text/plain"], name
        )
        self.assertIn("txkernel-subshell-", name)
        await client.delete_subshell(subshell)
        alive = [t.name for t in threading.enumerate()]
        self.assertNotIn(name.strip("'"), alive)

    async def test_interrupt_reaches_every_subshell(self) -> None:
        client, _ = await self.start()
        subshell = await client.create_subshell()
        loop = "started.set()\nwhile True: pass"
        parent = client.execute(loop)
        other = client.execute("started.wait(30)\nwhile True: pass", subshell_id=subshell)
        both_busy = wait_for(
            client,
            lambda m: m["msg_type"] == "execute_input",
            count=2,
        )
        await both_busy
        await client.interrupt()
        results = await gatherResults([parent, other])
        for result in results:
            self.assertEqual(result.content["status"], "error")
            self.assertEqual(result.content["ename"], "KeyboardInterrupt")
        after = await client.execute("1 + 1", subshell_id=subshell)
        self.assertEqual(after.content["status"], "ok")


class JupyterClientSubshellTests(TestCase):
    timeout = 60

    async def test_jupyter_client_creates_a_subshell_and_executes_in_it(self) -> None:
        served = await serve_kernel(self, PythonKernel(), client=False)
        thread, client = await blocking_client(self, served.service.connection_file)

        def run():
            request = client.session.msg("create_subshell_request", {})
            client.control_channel.send(request)
            created = client.control_channel.get_msg(timeout=10)
            subshell_id = created["content"]["subshell_id"]
            execute = client.session.msg(
                "execute_request",
                {"code": "6 * 7", "silent": False, "store_history": True,
                 "user_expressions": {}, "allow_stdin": False},
            )
            execute["header"]["subshell_id"] = subshell_id
            client.shell_channel.send(execute)
            reply = client.shell_channel.get_msg(timeout=10)
            listed = client.session.msg("list_subshell_request", {})
            client.control_channel.send(listed)
            listing = client.control_channel.get_msg(timeout=10)
            return subshell_id, reply, listing

        subshell_id, reply, listing = await thread.run(run)
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(reply["parent_header"]["subshell_id"], subshell_id)
        self.assertEqual(listing["content"]["subshell_id"], [subshell_id])

