"""The built-in Python kernel, served in this process on a worker thread."""

from __future__ import annotations

import textwrap

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel.python import PythonKernel

from .helpers import connect, connect_to, serve, wait_for, wait_for_stream


class PythonKernelTestCase(TestCase):
    timeout = 60

    async def start(self, namespace=None, **kwargs):
        self.kernel = PythonKernel(namespace=namespace, **kwargs)
        self.service = await serve(self, self.kernel)
        self.client = await connect(self, self.service)
        return self.client

    def execute(self, code: str, **kwargs) -> Deferred:
        """Fires with the ExecuteResult of ``code`` (dedented)."""
        return self.client.execute(textwrap.dedent(code), **kwargs)

    def result_text(self, result) -> str | None:
        results = result.of_type("execute_result")
        return results[0]["content"]["data"]["text/plain"] if results else None


class CellTests(PythonKernelTestCase):
    async def test_the_last_expression_is_the_result_and_is_kept_as_underscore(self) -> None:
        await self.start()
        result = await self.execute("x = 20\nx + 22")
        self.assertEqual(self.result_text(result), "42")
        self.assertEqual(result.of_type("execute_result")[0]["content"]["execution_count"], 1)
        again = await self.execute("_ + 1")
        self.assertEqual(self.result_text(again), "43")

    async def test_exit_and_quit_ask_the_frontend_to_end_the_session(self) -> None:
        await self.start()
        for code, keep in (("exit()", False), ("exit", False), ("quit(keep_kernel=True)", True)):
            result = await self.execute(code)
            self.assertEqual(result.content["status"], "ok")
            self.assertEqual(result.content["payload"], [{"source": "ask_exit", "keepkernel": keep}])
            self.assertIsNone(self.result_text(result))
        self.assertEqual((await self.execute("1")).content["payload"], [])

    async def test_none_and_silent_and_semicolon_give_no_result(self) -> None:
        await self.start()
        self.assertIsNone(self.result_text(await self.execute("None")))
        self.assertIsNone(self.result_text(await self.execute("1 + 1", silent=True)))
        self.assertIsNone(self.result_text(await self.execute("1 + 1;")))

    async def test_print_and_stderr_are_streams_of_the_request(self) -> None:
        await self.start()
        result = await self.execute("import sys\nprint('out')\nprint('err', file=sys.stderr)\nprint('out2')")
        streams = [(m["content"]["name"], m["content"]["text"]) for m in result.of_type("stream")]
        self.assertEqual(streams, [("stdout", "out\n"), ("stderr", "err\n"), ("stdout", "out2\n")])
        request_id = result.reply["parent_header"]["msg_id"]
        for msg in result.of_type("stream"):
            self.assertEqual(msg["parent_header"]["msg_id"], request_id)

    async def test_a_hundred_thousand_lines_arrive_intact_and_in_order(self) -> None:
        await self.start()
        result = await self.execute("for i in range(100000):\n    print(i)")
        self.assertEqual(result.content["status"], "ok")
        self.assertEqual(result.stream_text(), "".join(f"{i}\n" for i in range(100000)))
        self.assertLess(len(result.of_type("stream")), 1000, "output should be batched")

    async def test_an_exception_shows_the_users_code_only(self) -> None:
        await self.start()
        result = await self.execute(
            """
            def inner():
                raise ValueError("bad value")
            inner()
            """
        )
        self.assertEqual(result.content["status"], "error")
        self.assertEqual(result.content["ename"], "ValueError")
        self.assertEqual(result.content["evalue"], "bad value")
        text = "\n".join(result.content["traceback"])
        self.assertIn('File "<cell-1>", line 4', text)
        self.assertIn('raise ValueError("bad value")', text)
        self.assertNotIn("txkernel", text)
        [error] = result.of_type("error")
        self.assertEqual(error["content"]["traceback"], result.content["traceback"])

    async def test_a_syntax_error_is_reported(self) -> None:
        await self.start()
        result = await self.execute("x = (1,")
        self.assertEqual(result.content["ename"], "SyntaxError")
        self.assertNotIn("txkernel", "\n".join(result.content["traceback"]))

    async def test_the_namespace_is_shared_and_can_be_the_applications(self) -> None:
        app = {"answer": 41}
        await self.start(namespace=app)
        await self.execute("answer += 1\nnew_name = 'from the cell'")
        self.assertEqual(app["answer"], 42)
        self.assertEqual(app["new_name"], "from the cell")

    async def test_execution_count_and_history(self) -> None:
        await self.start()
        await self.execute("a = 1")
        await self.execute("b = 2", store_history=False)
        await self.execute("a + 1")
        reply = await self.client.history(hist_access_type="tail", n=10, output=True, raw=True)
        self.assertEqual(
            reply["content"]["history"], [[1, 1, ["a = 1", None]], [1, 2, ["a + 1", "2"]]]
        )
        search = await self.client.history(hist_access_type="search", pattern="a*", unique=True)
        self.assertEqual([h[2] for h in search["content"]["history"]], ["a = 1", "a + 1"])


class AwaitTests(PythonKernelTestCase):
    async def test_top_level_await_on_a_deferred_and_a_coroutine(self) -> None:
        await self.start()
        result = await self.execute(
            """
            from twisted.internet import reactor, task
            async def twice(x):
                value = await task.deferLater(reactor, 0, lambda: x)
                return value * 2
            await twice(21)
            """
        )
        self.assertEqual(self.result_text(result), "42")

    async def test_run_in_reactor_returns_the_result_of_a_reactor_call(self) -> None:
        await self.start()
        result = await self.execute(
            """
            import threading
            from twisted.internet import task, reactor
            on_reactor = run_in_reactor(lambda: threading.current_thread() is threading.main_thread())
            later = run_in_reactor(task.deferLater, reactor, 0, lambda: "fired")
            (on_reactor, later, threading.current_thread() is threading.main_thread())
            """
        )
        self.assertEqual(self.result_text(result), "(True, 'fired', False)")

    async def test_the_reactor_keeps_serving_while_a_cell_runs(self) -> None:
        await self.start()
        self.kernel.namespace["gate"] = gate = __import__("threading").Event()
        running = self.execute("gate.wait(30)\n'released'")
        info = await self.client.kernel_info(channel="control")
        self.assertEqual(info["content"]["status"], "ok")
        self.assertTrue(await self.client.heartbeat(timeout=5) >= 0)
        self.assertFalse(running.called)
        gate.set()
        self.assertEqual(self.result_text(await running), "'released'")


class RoutingTests(PythonKernelTestCase):
    async def test_thread_output_goes_to_the_cell_that_started_the_thread(self) -> None:
        await self.start()
        first = await self.execute(
            """
            import threading
            go = threading.Event()
            def later():
                go.wait(30)
                print("late from thread")
            threading.Thread(target=later, daemon=True).start()
            """
        )
        first_id = first.reply["parent_header"]["msg_id"]
        late = wait_for_stream(self.client, "late from thread\n")
        await self.execute("go.set()")
        msgs = await late
        self.assertEqual("".join(m["content"]["text"] for m in msgs), "late from thread\n")
        for msg in msgs:
            self.assertEqual(msg["parent_header"]["msg_id"], first_id)

    async def test_reactor_calls_a_cell_scheduled_print_to_that_cell(self) -> None:
        await self.start()
        first = await self.execute(
            """
            from twisted.internet import reactor
            later = reactor.callLater(3600, print, "late from the reactor")
            """
        )
        first_id = first.reply["parent_header"]["msg_id"]
        late = wait_for_stream(self.client, "late from the reactor\n")
        second = await self.execute("run_in_reactor(later.reset, 0)")
        msgs = await late
        self.assertEqual("".join(m["content"]["text"] for m in msgs), "late from the reactor\n")
        for msg in msgs:
            self.assertEqual(msg["parent_header"]["msg_id"], first_id)
        self.assertNotEqual(second.reply["parent_header"]["msg_id"], first_id)

    async def test_reactor_scheduling_is_restored_when_the_kernel_stops(self) -> None:
        from twisted.internet import reactor

        await self.start()
        self.assertIn("callLater", vars(reactor))
        await self.service.stopService()
        self.assertNotIn("callLater", vars(reactor))

    async def test_output_of_code_no_cell_started_goes_to_the_latest_cell(self) -> None:
        # Where the kernel owns the process (python -m txkernel); see
        # tests.test_host_output for the host's side.
        await self.start(owns_process=True)
        await self.execute("1")
        second = await self.execute("2")
        stray = wait_for_stream(self.client, "from the host application\n")
        print("from the host application")
        msgs = await stray
        self.assertEqual("".join(m["content"]["text"] for m in msgs), "from the host application\n")
        for msg in msgs:
            self.assertEqual(msg["parent_header"]["msg_id"], second.reply["parent_header"]["msg_id"])


class DisplayTests(PythonKernelTestCase):
    async def test_rich_results_and_display(self) -> None:
        await self.start()
        result = await self.execute(
            """
            from txkernel.python.display import HTML
            class Rich:
                def _repr_html_(self):
                    return "<b>rich</b>"
                def _repr_markdown_(self):
                    return "**rich**"
            display(HTML("<i>shown</i>"))
            Rich()
            """
        )
        [shown] = result.of_type("display_data")
        self.assertEqual(shown["content"]["data"]["text/html"], "<i>shown</i>")
        self.assertIn("text/plain", shown["content"]["data"])
        [value] = result.of_type("execute_result")
        self.assertEqual(value["content"]["data"]["text/html"], "<b>rich</b>")
        self.assertEqual(value["content"]["data"]["text/markdown"], "**rich**")
        self.assertIn("text/plain", value["content"]["data"])

    async def test_display_id_updates_and_clear_output(self) -> None:
        await self.start()
        result = await self.execute(
            """
            handle = display("first", display_id=True)
            handle.update("second")
            clear_output(wait=True)
            """
        )
        [shown] = result.of_type("display_data")
        [updated] = result.of_type("update_display_data")
        display_id = shown["content"]["transient"]["display_id"]
        self.assertEqual(updated["content"]["transient"]["display_id"], display_id)
        self.assertEqual(updated["content"]["data"]["text/plain"], "'second'")
        [cleared] = result.of_type("clear_output")
        self.assertEqual(cleared["content"], {"wait": True})
        self.assertIsNone(self.result_text(result))


class IntrospectionTests(PythonKernelTestCase):
    async def test_complete_inspect_and_is_complete(self) -> None:
        await self.start()
        await self.execute("import os\nsettings = {'alpha': 1}")
        completion = (await self.client.complete("os.pa"))["content"]
        self.assertIn("path", completion["matches"])
        self.assertEqual((completion["cursor_start"], completion["cursor_end"]), (3, 5))
        keys = (await self.client.complete('settings["al'))["content"]
        self.assertIn('"alpha"', keys["matches"])
        inspected = (await self.client.inspect("os.path.join"))["content"]
        self.assertTrue(inspected["found"])
        self.assertIn("Signature", inspected["data"]["text/plain"])
        self.assertEqual((await self.client.is_complete("for i in x:"))["content"]["status"], "incomplete")
        self.assertEqual((await self.client.is_complete("x = 1"))["content"]["status"], "complete")
        self.assertEqual((await self.client.is_complete("x = )"))["content"]["status"], "invalid")

    async def test_question_mark_shows_help_as_a_page(self) -> None:
        await self.start()
        result = await self.execute("len?")
        [page] = result.content["payload"]
        self.assertEqual(page["source"], "page")
        self.assertIn("Return the number of items", page["data"]["text/plain"])

    async def test_cursor_positions_are_code_points(self) -> None:
        await self.start()
        await self.execute("naïve_名前 = 1")
        code = "x = 'é😀'; naïve_"
        completion = (await self.client.complete(code))["content"]
        self.assertIn("naïve_名前", completion["matches"])
        self.assertEqual(completion["cursor_start"], len(code) - len("naïve_"))
        self.assertEqual(completion["cursor_end"], len(code))


class StdinTests(PythonKernelTestCase):
    async def test_input_and_getpass_ask_the_frontend(self) -> None:
        await self.start()
        asked = []

        def answer(prompt: str, password: bool) -> str:
            asked.append((prompt, password))
            return "secret" if password else "Ada"

        result = await self.execute(
            "import getpass\nname = input('Name: ')\npw = getpass.getpass('Password: ')\n(name, pw)",
            on_input=answer,
        )
        self.assertEqual(asked, [("Name: ", False), ("Password: ", True)])
        self.assertEqual(self.result_text(result), "('Ada', 'secret')")

    async def test_input_without_allow_stdin_raises_a_clear_error(self) -> None:
        await self.start()
        result = await self.execute("input('?')", allow_stdin=False)
        self.assertEqual(result.content["ename"], "StdinNotImplementedError")
        self.assertIn("allow_stdin", result.content["evalue"])


    async def test_input_without_a_stdin_connection_raises_a_clear_error(self) -> None:
        self.kernel = PythonKernel()
        service = await serve(self, self.kernel, stdin_patience=0.1)
        channels = ["shell", "control", "iopub", "hb"]
        self.client = await connect_to(self, service.connection_info, channels=channels)
        result = await self.execute("input('?')", on_input=lambda p, pw: "unheard")
        self.assertEqual(result.content["ename"], "StdinNotImplementedError")
        self.assertIn("not connected to stdin", result.content["evalue"])


class InterruptTests(PythonKernelTestCase):
    def assertUserTraceback(self, traceback: list[str], line: str) -> None:
        """The traceback shows the cell's ``line`` and no kernel frame."""
        text = "\n".join(traceback)
        self.assertIn(line, text)
        self.assertNotIn("txkernel", text)
        self.assertTrue(text.endswith("KeyboardInterrupt"), text)

    async def test_interrupt_request_stops_a_busy_loop_and_the_namespace_survives(self) -> None:
        await self.start()
        await self.execute("kept = 'still here'")
        started = wait_for(self.client, lambda m: m["msg_type"] == "stream")
        looping = self.execute("print('looping', flush=True)\nwhile True:\n    pass")
        await started
        await self.client.interrupt()
        result = await looping
        self.assertEqual(result.content["ename"], "KeyboardInterrupt")
        self.assertUserTraceback(result.content["traceback"], "while True")
        self.assertEqual(self.result_text(await self.execute("kept")), "'still here'")

    async def test_interrupt_request_ends_a_pending_input(self) -> None:
        await self.start()
        asked: Deferred[str] = Deferred()
        waiting = self.execute("input('never answered')", on_input=lambda p, pw: (asked.callback(p), Deferred())[1])
        await asked
        await self.client.interrupt()
        result = await waiting
        self.assertEqual(result.content["ename"], "KeyboardInterrupt")
        self.assertUserTraceback(result.content["traceback"], "input('never answered')")
        self.assertEqual(self.result_text(await self.execute("1 + 1")), "2")


class CommTests(PythonKernelTestCase):
    async def test_comms_from_the_frontend_and_from_cell_code(self) -> None:
        await self.start()
        await self.execute(
            """
            def target(comm, msg):
                comm.on_msg(lambda m: comm.send({"echo": m["content"]["data"]}))
            kernel.comms.register_target("test.echo", target)
            """
        )
        echoed = wait_for(self.client, lambda m: m["msg_type"] == "comm_msg")
        self.client.send("shell", "comm_open", {"comm_id": "f1", "target_name": "test.echo", "data": {}})
        self.client.send("shell", "comm_msg", {"comm_id": "f1", "data": {"n": 1}})
        [msg] = await echoed
        self.assertEqual(msg["content"]["data"], {"echo": {"n": 1}})

        result = await self.execute(
            """
            received = []
            comm = kernel.comms.open("test.from-kernel", {"hello": "frontend"})
            comm.on_msg(lambda m: received.append(m["content"]["data"]))
            comm.comm_id
            """
        )
        [opened] = result.of_type("comm_open")
        self.assertEqual(opened["content"]["data"], {"hello": "frontend"})
        comm_id = opened["content"]["comm_id"]
        self.client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"back": 2}})
        check = await self.execute("received")
        self.assertEqual(self.result_text(check), "[{'back': 2}]")


class KernelInfoTests(PythonKernelTestCase):
    async def test_language_info_describes_python(self) -> None:
        await self.start()
        info = (await self.client.kernel_info())["content"]
        language = info["language_info"]
        self.assertEqual(language["name"], "python")
        self.assertEqual(language["file_extension"], ".py")
        self.assertEqual(language["mimetype"], "text/x-python")
        for key in ("version", "pygments_lexer", "codemirror_mode", "nbconvert_exporter"):
            self.assertIn(key, language)
        self.assertEqual(info["implementation"], "txkernel")
        self.assertIn("Python", info["banner"])
        self.assertTrue(info["help_links"])
