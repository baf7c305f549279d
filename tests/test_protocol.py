"""The protocol core end to end: real kernels on loopback, real clients."""

from __future__ import annotations

from twisted.internet.defer import Deferred, DeferredList
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient
from txkernel.stdin import StdinNotAllowed, StdinUnreachable
from txkernel.testing import connect, serve_kernel, states, wait_for
from txkernel.wire import DELIMITER, PROTOCOL_VERSION

from .kernels import ScriptedKernel


async def client_of(test, kernel=None, **service_args) -> KernelClient:
    """A ready client of ``kernel`` (default: a ScriptedKernel) served for ``test``."""
    served = await serve_kernel(test, kernel or ScriptedKernel(), **service_args)
    return served.client


class StatusTests(TestCase):
    async def test_busy_comes_first_and_idle_last_with_the_request_as_parent(
        self,
    ) -> None:
        client = await client_of(self)
        result = await client.execute("hello")
        types = [m["msg_type"] for m in result.outputs]
        self.assertEqual(
            types, ["status", "execute_input", "stream", "execute_result", "status"]
        )
        self.assertEqual(states(result), ["busy", "idle"])
        request_id = result.reply["parent_header"]["msg_id"]
        for msg in result.outputs:
            self.assertEqual(msg["parent_header"]["msg_id"], request_id)
        self.assertEqual(result.content["status"], "ok")
        self.assertEqual(result.stream_text(), "hello")

    async def test_every_shell_request_type_is_wrapped_in_busy_and_idle(self) -> None:
        client = await client_of(self)
        for msg_type in (
            "kernel_info_request",
            "complete_request",
            "is_complete_request",
        ):
            result = await client.request(
                msg_type, {"code": "x", "cursor_pos": 1}, collect=True
            )
            self.assertEqual(states(result), ["busy", "idle"], msg_type)
            self.assertEqual(
                result.reply["msg_type"], msg_type.replace("request", "reply")
            )

    async def test_kernel_info_declares_one_protocol_version(self) -> None:
        client = await client_of(self)
        shell = await client.kernel_info()
        control = await client.kernel_info(channel="control")
        for reply in (shell, control):
            self.assertEqual(reply["content"]["protocol_version"], PROTOCOL_VERSION)
            self.assertEqual(reply["header"]["version"], PROTOCOL_VERSION)
            self.assertEqual(reply["content"]["implementation"], "txkernel-echo")
            self.assertEqual(reply["content"]["language_info"]["name"], "echo")

    async def test_reply_dates_are_utc(self) -> None:
        client = await client_of(self)
        seen = []
        client.watch_iopub(seen.append)
        await client.kernel_info()
        reply = await client.kernel_info()
        self.assertEqual(reply["header"]["date"].utcoffset().total_seconds(), 0)


class ExecutionCountTests(TestCase):
    async def test_counter_rules_for_silent_and_store_history(self) -> None:
        client = await client_of(self)
        first = await client.execute("a")
        self.assertEqual(first.content["execution_count"], 1)
        self.assertEqual(
            first.of_type("execute_input")[0]["content"]["execution_count"], 1
        )
        silent = await client.execute("b", silent=True)
        self.assertEqual(silent.content["execution_count"], 1)
        self.assertEqual(silent.of_type("execute_input"), [])
        self.assertEqual(silent.of_type("execute_result"), [])
        unstored = await client.execute("c", store_history=False)
        self.assertEqual(unstored.content["execution_count"], 1)
        second = await client.execute("d")
        self.assertEqual(second.content["execution_count"], 2)


class ErrorTests(TestCase):
    async def test_a_handler_that_raises_gets_an_error_reply_and_an_error_message(
        self,
    ) -> None:
        client = await client_of(self)
        result = await client.execute("fail")
        self.flushLoggedErrors(ValueError)
        self.assertEqual(result.content["status"], "error")
        self.assertEqual(result.content["ename"], "ValueError")
        self.assertEqual(result.content["evalue"], "boom")
        self.assertIsInstance(result.content["traceback"], list)
        self.assertEqual(result.content["execution_count"], 1)
        [error] = result.of_type("error")
        self.assertEqual(error["content"]["ename"], "ValueError")

    async def test_stop_on_error_aborts_the_execute_requests_already_queued(
        self,
    ) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        hold = client.execute("hold")
        await served.received(1, "execute_request")  # the kernel is serving "hold"
        after = [client.execute("fail"), client.execute("a"), client.execute("b")]
        info = client.kernel_info()
        await served.received(4, "execute_request")
        await served.received(1, "kernel_info_request")
        kernel.held.callback(None)
        await hold
        failed, a, b = [(await d) for d in after]
        self.flushLoggedErrors(ValueError)
        self.assertEqual(failed.content["status"], "error")
        for result in (a, b):
            self.assertEqual(result.content["status"], "aborted")
            self.assertEqual(result.content["execution_count"], 2)
            self.assertEqual(states(result), ["busy", "idle"])
            self.assertEqual(result.stream_text(), "")
        self.assertEqual((await info)["content"]["status"], "ok")
        later = await client.execute("later")
        self.assertEqual(later.content["status"], "ok")

    async def test_stop_on_error_false_lets_queued_requests_run(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        hold = client.execute("hold")
        await served.received(1, "execute_request")
        failed = client.execute("fail", stop_on_error=False)
        after = client.execute("a")
        await served.received(3, "execute_request")
        kernel.held.callback(None)
        await hold
        self.assertEqual((await failed).content["status"], "error")
        self.assertEqual((await after).content["status"], "ok")
        self.flushLoggedErrors(ValueError)


class RoutingTests(TestCase):
    async def test_replies_reach_the_client_that_asked(self) -> None:
        served = await serve_kernel(self, ScriptedKernel())
        one = served.client
        two = await connect(self, served.connection_info)
        r1, r2 = await DeferredList(
            [one.execute("from one"), two.execute("from two")], fireOnOneErrback=True
        )
        self.assertEqual(r1[1].stream_text(), "from one")
        self.assertEqual(r2[1].stream_text(), "from two")
        self.assertEqual(r1[1].reply["parent_header"]["session"], one.wire.session_id)
        self.assertEqual(r2[1].reply["parent_header"]["session"], two.wire.session_id)

    async def test_a_fresh_subscriber_is_welcomed(self) -> None:
        served = await serve_kernel(self, ScriptedKernel())
        late = KernelClient(served.connection_info)
        welcomed = wait_for(late, lambda m: m["msg_type"] == "iopub_welcome")
        late.start()
        self.addCleanup(late.stop)
        [welcome] = await welcomed
        self.assertEqual(welcome["content"], {"subscription": ""})
        self.assertEqual(welcome["parent_header"], {})

    async def test_the_welcome_comes_before_anything_else(self) -> None:
        # A subscriber that joins while IOPub is busy sending sees the
        # welcome first, not the tail of another request's output.
        served = await serve_kernel(self, ScriptedKernel())
        flooding = served.client.execute("flood 3000")
        late = KernelClient(served.connection_info)
        first: list[str] = []
        late.watch_iopub(lambda m: first.append(m["msg_type"]))
        welcomed = wait_for(late, lambda m: m["msg_type"] == "iopub_welcome")
        late.start()
        self.addCleanup(late.stop)
        await welcomed
        await flooding
        self.assertEqual(first[0], "iopub_welcome")

    async def test_unknown_message_types_are_ignored(self) -> None:
        client = await client_of(self)
        client.send("shell", "no_such_request", {})
        client.send("control", "no_such_request", {})
        result = await client.execute("still here")
        self.assertEqual(result.stream_text(), "still here")


class ControlTests(TestCase):
    timeout = 30

    async def test_control_answers_while_a_shell_request_is_pending(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        hold = client.execute("hold")
        await served.received(1, "execute_request")
        shell_info = client.kernel_info()
        info = await client.kernel_info(channel="control")
        self.assertEqual(info["content"]["status"], "ok")
        self.assertFalse(hold.called)
        self.assertFalse(shell_info.called)
        kernel.held.callback(None)
        self.assertEqual((await hold).content["status"], "ok")
        self.assertEqual((await shell_info)["content"]["status"], "ok")

    async def test_interrupt_request_cancels_the_running_execution(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        hold = client.execute("hold")
        await served.received(1, "execute_request")
        reply = await client.interrupt()
        self.assertEqual(reply["content"], {"status": "ok"})
        result = await hold
        self.assertEqual(result.content["status"], "error")
        self.assertEqual(result.content["ename"], "Interrupted")
        self.flushLoggedErrors()

    async def test_shutdown_loses_no_queued_iopub_message(self) -> None:
        served = await serve_kernel(self, ScriptedKernel())
        service, client = served.service, served.client
        lines = wait_for(client, lambda m: m["msg_type"] == "stream", count=3000)
        # The reply (on shell) overtakes the 3000 stream messages (on IOPub):
        # most of them are still queued in the kernel when shutdown arrives.
        await client.request("execute_request", {"code": "flood 3000"})
        stopped = Deferred()
        service._on_shutdown = stopped.callback
        reply = await client.shutdown()
        self.assertEqual(reply["content"], {"status": "ok", "restart": False})
        self.assertEqual(await stopped, False)
        received = await lines
        self.assertEqual(
            [m["content"]["text"] for m in received], [f"{i}\n" for i in range(3000)]
        )
        self.assertFalse(service.running)


class StdinTests(TestCase):
    async def test_input_request_fires_with_the_frontends_answer(self) -> None:
        client = await client_of(self)
        prompts = []

        def answer(prompt: str, password: bool) -> str:
            prompts.append((prompt, password))
            return "forty-two"

        result = await client.execute("input: your answer?", on_input=answer)
        self.assertEqual(prompts, [("your answer?", False)])
        self.assertEqual(result.stream_text(), "forty-two")

    async def test_input_fails_at_once_without_allow_stdin(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        result = await client.execute("input: nobody will answer", allow_stdin=False)
        self.assertEqual(result.content["status"], "error")
        self.assertEqual(result.content["ename"], StdinNotAllowed.__name__)
        self.flushLoggedErrors(StdinNotAllowed)

    async def test_interrupt_ends_a_pending_input(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        asked = Deferred()
        result = client.execute(
            "input: wait", on_input=lambda p, pw: (asked.callback(p), Deferred())[1]
        )
        await asked
        await client.interrupt()
        result = await result
        self.assertEqual(result.content["ename"], "Interrupted")
        later = await client.execute("input: again", on_input=lambda p, pw: "yes")
        self.assertEqual(later.stream_text(), "yes")


    async def _without_stdin(self, service) -> KernelClient:
        channels = ["shell", "control", "iopub", "hb"]
        return await connect(self, service.connection_info, channels=channels)

    async def test_input_waits_for_a_stdin_socket_that_connects_late(self) -> None:
        served = await serve_kernel(self, ScriptedKernel(), client=False)
        client = await self._without_stdin(served.service)
        started = wait_for(client, lambda m: m["msg_type"] == "execute_input")
        result = client.execute("input: late?", on_input=lambda p, pw: "in time")
        await started
        client.start(["stdin"])
        self.assertEqual((await result).stream_text(), "in time")

    async def test_input_fails_clearly_when_the_frontend_has_no_stdin(self) -> None:
        served = await serve_kernel(self, ScriptedKernel(), client=False, stdin_patience=0.1)
        client = await self._without_stdin(served.service)
        result = await client.execute("input: anyone?", on_input=lambda p, pw: "never")
        self.assertEqual(result.content["ename"], StdinUnreachable.__name__)
        self.assertIn("not connected to stdin", result.content["evalue"])
        self.flushLoggedErrors(StdinUnreachable)
        again = await client.execute("still serving")
        self.assertEqual(again.content["status"], "ok")


class CommTests(TestCase):
    async def test_frontend_opens_a_comm_and_messages_flow_both_ways(self) -> None:
        kernel = ScriptedKernel()
        received = []

        def target(comm, msg):
            comm.on_msg(
                lambda m: (
                    received.append(m["content"]["data"]),
                    comm.send({"echo": m["content"]["data"]}),
                )
            )

        kernel.comms.register_target("test.echo", target)
        client = await client_of(self, kernel)
        opened = client.send(
            "shell",
            "comm_open",
            {"comm_id": "c1", "target_name": "test.echo", "data": {}},
        )
        echo = wait_for(client, lambda m: m["msg_type"] == "comm_msg")
        client.send("shell", "comm_msg", {"comm_id": "c1", "data": {"x": 1}})
        [msg] = await echo
        self.assertEqual(msg["content"], {"comm_id": "c1", "data": {"echo": {"x": 1}}})
        self.assertEqual(received, [{"x": 1}])
        info = await client.comm_info()
        self.assertEqual(info["content"]["comms"], {"c1": {"target_name": "test.echo"}})
        self.assertTrue(opened)

    async def test_a_comm_to_an_unknown_target_is_closed(self) -> None:
        client = await client_of(self)
        closed = wait_for(client, lambda m: m["msg_type"] == "comm_close")
        client.send(
            "shell", "comm_open", {"comm_id": "c2", "target_name": "nobody", "data": {}}
        )
        [msg] = await closed
        self.assertEqual(msg["content"]["comm_id"], "c2")

    async def test_kernel_opens_a_comm(self) -> None:
        kernel = ScriptedKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        opened = wait_for(client, lambda m: m["msg_type"] == "comm_open")
        comm = kernel.comms.open("test.kernel-side", {"hello": 1})
        [msg] = await opened
        self.assertEqual(msg["content"]["target_name"], "test.kernel-side")
        self.assertEqual(msg["content"]["data"], {"hello": 1})
        got = Deferred()
        comm.on_msg(got.callback)
        client.send(
            "shell", "comm_msg", {"comm_id": comm.comm_id, "data": {"back": True}}
        )
        reply = await got
        self.assertEqual(reply["content"]["data"], {"back": True})


class BadInputTests(TestCase):
    async def test_bad_signature_and_garbage_are_dropped_and_the_kernel_keeps_serving(
        self,
    ) -> None:
        client = await client_of(self)
        shell = client._sockets["shell"]
        msg = client.wire.new_message("execute_request", {"code": "evil"})
        frames = client.wire.serialize(msg)
        frames[frames.index(DELIMITER) + 1] = b"0" * 64
        shell.send(frames)
        shell.send([b"garbage", b"more garbage"])
        shell.send([DELIMITER, b"sig", b"{"])
        result = await client.execute("fine")
        self.assertEqual(result.stream_text(), "fine")
        self.assertEqual(result.content["execution_count"], 1)

    async def test_a_replayed_message_is_dropped(self) -> None:
        client = await client_of(self)
        seen = []
        client.watch_iopub(
            lambda m: seen.append(m) if m["msg_type"] == "stream" else None
        )
        msg = client.wire.new_message("execute_request", {"code": "once"})
        frames = client.wire.serialize(msg)
        client._sockets["shell"].send(frames)
        client._sockets["shell"].send(frames)
        await client.execute("after")
        self.assertEqual([m["content"]["text"] for m in seen], ["once", "after"])


class ManyKernelsTests(TestCase):
    async def test_several_kernels_serve_in_one_process(self) -> None:
        served = [await serve_kernel(self, ScriptedKernel()) for _ in range(3)]
        clients = [s.client for s in served]
        results = [await c.execute(f"kernel {i}") for i, c in enumerate(clients)]
        self.assertEqual(
            [r.stream_text() for r in results], ["kernel 0", "kernel 1", "kernel 2"]
        )
        ports = {s.connection_info.shell_port for s in served}
        self.assertEqual(len(ports), 3)


class DebugRequestTests(TestCase):
    async def test_a_kernel_without_a_debugger_says_so(self) -> None:
        client = await client_of(self)
        info = await client.kernel_info(channel="control")
        self.assertFalse(info["content"]["debugger"])
        self.assertNotIn("debugger", info["content"]["supported_features"])
        reply = await client.request(
            "debug_request", {"seq": 1, "type": "request", "command": "initialize"}, "control"
        )
        self.assertEqual(reply["msg_type"], "debug_reply")
        self.assertEqual(reply["content"]["status"], "error")
        self.assertIn("no debugger", reply["content"]["evalue"])


class HostileRequestTests(TestCase):
    async def test_a_signed_request_with_odd_header_fields_leaves_shell_serving(
        self,
    ) -> None:
        client = await client_of(self)
        shell = client._sockets["shell"]
        for msg_id in (["a", "list"], {"a": "dict"}, 7):
            msg = client.wire.new_message("execute_request", {"code": "odd"})
            msg["header"]["msg_id"] = msg_id
            shell.send(client.wire.serialize(msg))
        self.flushLoggedErrors()
        result = await client.execute("still serving")
        self.assertEqual(result.stream_text(), "still serving")
        self.assertEqual((await client.execute("again")).content["status"], "ok")

    async def test_fields_of_the_wrong_type_get_error_replies_not_silence(self) -> None:
        client = await client_of(self)
        replies = [
            await client.request("complete_request", {"code": 5, "cursor_pos": 1}),
            await client.request("inspect_request", {"code": "x", "cursor_pos": "1"}),
            await client.request("execute_request", {"code": ["print"]}),
        ]
        for reply in replies:
            self.assertEqual(reply["content"]["status"], "error")
            self.assertEqual(reply["content"]["ename"], "RequestError")
        self.assertEqual((await client.execute("fine")).stream_text(), "fine")
