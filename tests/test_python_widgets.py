"""Comms through the `comm` package, and ipywidgets, in the built-in Python kernel.

The frontend's side is played by the test: it reads ``comm_open`` and
``comm_msg`` on IOPub and sends ``comm_open``/``comm_msg`` on shell as
JupyterLab's widget manager does.
"""

from __future__ import annotations

import textwrap

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel.python import PythonKernel
from txkernel.testing import serve_kernel

from .helpers import blocking_client, connect, serve, wait_for
from .test_python_launched import LaunchedKernelTestCase

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class WidgetTestCase(TestCase):
    timeout = 60

    async def start(self):
        self.kernel = PythonKernel()
        self.served = await serve_kernel(self, self.kernel, client=False)
        self.service = self.served.service
        self.client = await connect(self, self.service)
        return self.client

    def execute(self, code: str, **kwargs) -> Deferred:
        return self.client.execute(textwrap.dedent(code), **kwargs)

    async def ok(self, code: str, **kwargs):
        result = await self.execute(code, **kwargs)
        self.assertEqual(result.content["status"], "ok", result.content)
        return result

    def comm_opens(self, result, target="jupyter.widget"):
        return [m for m in result.of_type("comm_open") if m["content"]["target_name"] == target]

    async def slider(self, value=5):
        """Make ``s = IntSlider(value)`` as a cell's result; returns (result, comm_id)."""
        result = await self.ok(f"import ipywidgets\ns = ipywidgets.IntSlider({value})\ns")
        opens = [m for m in self.comm_opens(result) if m["content"]["data"]["state"]["_model_name"] == "IntSliderModel"]
        self.assertEqual(len(opens), 1)
        return result, opens[0]["content"]["comm_id"]


class CommPackageTests(WidgetTestCase):
    async def test_create_comm_opens_a_comm_and_messages_flow_both_ways(self) -> None:
        await self.start()
        result = await self.ok(
            """
            import comm
            c = comm.create_comm(target_name="test.echo", data={"hello": 1})
            got = []
            c.on_msg(lambda msg: got.append(msg["content"]["data"]))
            c.send({"ping": 2})
            c.comm_id
            """
        )
        [opened] = result.of_type("comm_open")
        comm_id = opened["content"]["comm_id"]
        self.assertEqual(opened["content"]["target_name"], "test.echo")
        self.assertEqual(opened["content"]["data"], {"hello": 1})
        [sent] = result.of_type("comm_msg")
        self.assertEqual(sent["content"], {"comm_id": comm_id, "data": {"ping": 2}})
        self.client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"pong": 3}})
        check = await self.ok("got")
        self.assertEqual(check.of_type("execute_result")[0]["content"]["data"]["text/plain"], "[{'pong': 3}]")
        info = await self.client.comm_info(target_name="test.echo")
        self.assertEqual(info["content"]["comms"], {comm_id: {"target_name": "test.echo"}})

    async def test_a_target_registered_with_the_comm_manager_serves_frontend_comms(self) -> None:
        await self.start()
        await self.ok(
            """
            import comm
            opened = []
            def target(c, msg):
                opened.append(msg["content"]["data"])
                c.on_msg(lambda m: c.send({"echo": m["content"]["data"]}))
            comm.get_comm_manager().register_target("test.target", target)
            """
        )
        self.client.send(
            "shell", "comm_open", {"comm_id": "f1", "target_name": "test.target", "data": {"a": 1}}
        )
        echo = wait_for(self.client, lambda m: m["msg_type"] == "comm_msg")
        self.client.send("shell", "comm_msg", {"comm_id": "f1", "data": {"b": 2}})
        [msg] = await echo
        self.assertEqual(msg["content"], {"comm_id": "f1", "data": {"echo": {"b": 2}}})
        check = await self.ok("opened, comm.get_comm_manager().get_comm('f1').comm_id")
        self.assertEqual(
            check.of_type("execute_result")[0]["content"]["data"]["text/plain"], "([{'a': 1}], 'f1')"
        )

    async def test_a_comm_belongs_to_the_kernel_of_the_cell_that_made_it(self) -> None:
        first = await self.start()
        other_kernel = PythonKernel()
        second = await connect(self, await serve(self, other_kernel))
        code = "import comm\nc = comm.create_comm(target_name='test.which')"
        one, two = await first.execute(code), await second.execute(code)
        [a], [b] = one.of_type("comm_open"), two.of_type("comm_open")
        self.assertEqual(a["content"]["comm_id"], self.kernel.namespace["c"].comm_id)
        self.assertEqual(b["content"]["comm_id"], other_kernel.namespace["c"].comm_id)
        info = await second.comm_info(target_name="test.which")
        self.assertEqual(list(info["content"]["comms"]), [b["content"]["comm_id"]])

    async def test_closing_from_either_side(self) -> None:
        await self.start()
        result = await self.ok(
            """
            import comm
            a = comm.create_comm(target_name="test.close")
            b = comm.create_comm(target_name="test.close")
            closed = []
            b.on_close(lambda msg: closed.append(msg["content"]["data"]))
            a.close({"bye": 1})
            a.comm_id, b.comm_id
            """
        )
        [closed_a] = result.of_type("comm_close")
        self.assertEqual(closed_a["content"]["data"], {"bye": 1})
        b_id = result.of_type("comm_open")[1]["content"]["comm_id"]
        self.client.send("shell", "comm_close", {"comm_id": b_id, "data": {"gone": 2}})
        check = await self.ok("closed, b.comm_id in comm.get_comm_manager().comms")
        self.assertEqual(
            check.of_type("execute_result")[0]["content"]["data"]["text/plain"], "([{'gone': 2}], False)"
        )
        info = await self.client.comm_info(target_name="test.close")
        self.assertEqual(info["content"]["comms"], {})


class NoDeadlockTests(WidgetTestCase):
    """A cell that waits for the frontend's answer on a comm gets it."""

    def answer_the_question(self) -> Deferred:
        """Play the frontend: answer the first comm_msg ``{"question": q}``; fires with it."""

        def is_question(msg):
            return msg["msg_type"] == "comm_msg" and "question" in msg["content"]["data"]

        asked = wait_for(self.client, is_question)

        def answer(found):
            [msg] = found
            comm_id = msg["content"]["comm_id"]
            self.client.send(
                "shell", "comm_msg", {"comm_id": comm_id, "data": {"answer": msg["content"]["data"]["question"] * 2}}
            )
            return msg

        return asked.addCallback(answer)

    SETUP = textwrap.dedent(
        """
        import comm
        from twisted.internet.defer import Deferred
        c = comm.create_comm(target_name="test.ask")
        reply = Deferred()
        c.on_msg(lambda msg: reply.callback(msg["content"]["data"]["answer"]))
        c.send({"question": 21})
        """
    )

    async def test_a_cell_awaiting_a_comm_reply(self) -> None:
        await self.start()
        asked = self.answer_the_question()
        result = await self.ok(self.SETUP + "await reply\n", timeout=20)
        await asked
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "42")

    async def test_a_synchronous_cell_waiting_through_run_in_reactor(self) -> None:
        await self.start()
        asked = self.answer_the_question()
        result = await self.ok(self.SETUP + "run_in_reactor(lambda: reply)\n", timeout=20)
        await asked
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "42")

    async def test_comms_are_served_while_a_cell_waits_for_input(self) -> None:
        await self.start()
        await self.ok(
            """
            import comm
            c = comm.create_comm(target_name="test.echo")
            c.on_msg(lambda msg: c.send({"echo": msg["content"]["data"]}))
            """
        )
        comm_id = self.kernel.namespace["c"].comm_id

        def on_input(prompt, password):
            echoed = wait_for(self.client, lambda m: m["msg_type"] == "comm_msg" and "echo" in m["content"]["data"])
            self.client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"while": "asking"}})
            # The answer is typed only once the comm handler has run.
            return echoed.addCallback(lambda found: "typed after " + str(found[0]["content"]["data"]["echo"]))

        result = await self.client.execute("input('name? ')", on_input=on_input, timeout=20)
        self.assertEqual(
            result.of_type("execute_result")[0]["content"]["data"]["text/plain"],
            "\"typed after {'while': 'asking'}\"",
        )

    async def test_a_reply_that_comes_before_the_cell_waits_is_not_lost(self) -> None:
        await self.start()
        self.kernel.namespace["gate"] = gate = __import__("threading").Event()
        inbox = self.kernel.comm_inbox
        accepted: Deferred = Deferred()

        def accept(request):
            taken = type(inbox).accept(inbox, request)
            if taken and not accepted.called:
                accepted.callback(request)
            return taken

        inbox.accept = accept
        served = []
        self.client.watch_iopub(
            lambda m: served.append(m) if m["parent_header"].get("msg_type") == "comm_msg" else None
        )
        asked = self.answer_the_question()
        # The cell sends the question, then blocks (not on the reactor) until
        # the answer is in the inbox; only then does it wait on the reactor.
        running = self.execute(self.SETUP + "gate.wait(20)\nrun_in_reactor(lambda: reply)\n", timeout=20)
        await asked
        await accepted
        self.assertEqual(served, [], "not served while the cell is busy")
        gate.set()
        result = await running
        self.assertEqual(result.content["status"], "ok")
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "42")
        self.assertEqual([m["content"]["execution_state"] for m in served], ["busy", "idle"])

    async def test_a_thread_of_the_cell_waiting_on_the_reactor_does_not_let_comms_in(self) -> None:
        await self.start()
        ns = self.kernel.namespace
        threading = __import__("threading")
        ns["gate"], ns["hold"] = threading.Event(), Deferred()
        self.addCleanup(lambda: ns["hold"].called or ns["hold"].callback(None))
        inbox = self.kernel.comm_inbox
        accepted: Deferred = Deferred()

        def accept(request):
            taken = type(inbox).accept(inbox, request)
            if taken and not accepted.called:
                accepted.callback(len(inbox._pending))
            return taken

        inbox.accept = accept
        await self.ok(
            """
            import comm, threading
            seen = []
            c = comm.create_comm(target_name="test.threads")
            c.on_msg(lambda msg: seen.append(threading.current_thread().name))
            """
        )
        comm_id = ns["c"].comm_id
        ready = wait_for(self.client, lambda m: m["msg_type"] == "stream" and "ready" in m["content"]["text"])
        running = self.execute(
            """
            began = threading.Event()
            def waits():
                run_in_reactor(lambda: began.set() or hold)
            threading.Thread(target=waits, daemon=True).start()
            began.wait(10)
            print("ready", flush=True)
            gate.wait(20)
            list(seen)
            """
        )
        await ready
        self.client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {}})
        # The cell's own code is running: the message waits for it.
        self.assertEqual(await accepted, 1)
        ns["gate"].set()
        result = await running
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "[]")
        after = await self.ok("seen")
        self.assertEqual(after.of_type("execute_result")[0]["content"]["data"]["text/plain"], "['txkernel-execute']")

    async def order_comm(self) -> str:
        """Start the kernel with comm ``c`` whose messages append ``n`` to ``seen``; its id."""
        await self.start()
        await self.ok(
            """
            import comm
            seen = []
            c = comm.create_comm(target_name="test.order")
            c.on_msg(lambda msg: seen.append(msg["content"]["data"]["n"]))
            """
        )
        return self.kernel.namespace["c"].comm_id

    async def comms_around_a_cell(self, comm_id: str) -> Deferred:
        """Send comm message 1, a cell ``list(seen)``, comm message 2; once
        both comm messages have reached the kernel, the cell's execution."""
        self.client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"n": 1}})
        second = self.execute("list(seen)")
        self.client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"n": 2}})
        await self.served.received(2, "comm_msg")
        return second

    async def assert_comms_ran_between(self, first: Deferred, second: Deferred) -> None:
        """``first`` saw no comm message (``len(seen)``), ``second`` both."""
        one, two = await first, await second
        self.assertEqual(one.of_type("execute_result")[0]["content"]["data"]["text/plain"], "0")
        self.assertEqual(two.of_type("execute_result")[0]["content"]["data"]["text/plain"], "[1, 2]")

    async def test_comm_messages_during_a_busy_cell_run_after_it_and_before_the_next_cell(self) -> None:
        comm_id = await self.order_comm()
        self.kernel.namespace["gate"] = gate = __import__("threading").Event()
        first = self.execute("gate.wait(20)\nlen(seen)")
        # Wait until the cell runs, so that the messages arrive during it.
        await wait_for(self.client, lambda m: m["msg_type"] == "execute_input")
        second = await self.comms_around_a_cell(comm_id)  # all while the cell runs
        gate.set()
        await self.assert_comms_ran_between(first, second)

    async def test_comm_messages_before_a_handed_over_cell_starts_wait_for_it(self) -> None:
        # The execution thread has not taken the cell yet (here it is held by a
        # job queued before it; under load it may simply be slow to wake):
        # comm messages that arrive then still run after that cell and before
        # the next, as they would once it runs.
        comm_id = await self.order_comm()
        gate = __import__("threading").Event()
        executor = self.kernel._executors[None]
        held = executor.submit(gate.wait, 20)
        first = self.execute("len(seen)")
        await wait_for(self.client, lambda m: m["msg_type"] == "execute_input")
        second = await self.comms_around_a_cell(comm_id)
        gate.set()
        await held
        await self.assert_comms_ran_between(first, second)


class IpywidgetsTests(WidgetTestCase):
    async def test_a_slider_renders(self) -> None:
        await self.start()
        result, comm_id = await self.slider(5)
        [opened] = [m for m in self.comm_opens(result) if m["content"]["comm_id"] == comm_id]
        state = opened["content"]["data"]["state"]
        self.assertEqual(state["value"], 5)
        self.assertEqual(state["_model_module"], "@jupyter-widgets/controls")
        self.assertEqual(opened["metadata"]["version"].split(".")[0], "2")
        [value] = result.of_type("execute_result")
        view = value["content"]["data"][WIDGET_VIEW]
        self.assertEqual(view["model_id"], comm_id)
        self.assertIn("IntSlider", value["content"]["data"]["text/plain"])
        shown = await self.ok("display(s)")
        [display] = shown.of_type("display_data")
        self.assertEqual(display["content"]["data"][WIDGET_VIEW]["model_id"], comm_id)

    async def test_setting_the_value_in_a_later_cell_sends_an_update(self) -> None:
        await self.start()
        _, comm_id = await self.slider(5)
        result = await self.ok("s.value = 9")
        [update] = result.of_type("comm_msg")
        self.assertEqual(update["content"]["comm_id"], comm_id)
        self.assertEqual(update["content"]["data"]["method"], "update")
        self.assertEqual(update["content"]["data"]["state"], {"value": 9})

    async def test_binary_state_travels_as_buffers(self) -> None:
        await self.start()
        result = await self.ok(
            "import ipywidgets\nimg = ipywidgets.Image(value=b'abc', format='png')\nimg.value = memoryview(b'xyz')"
        )
        [opened] = [m for m in self.comm_opens(result) if m["content"]["data"]["state"]["_model_name"] == "ImageModel"]
        self.assertEqual(opened["content"]["data"]["buffer_paths"], [["value"]])
        self.assertEqual(opened["buffers"], [b"abc"])
        [update] = result.of_type("comm_msg")
        self.assertEqual(update["buffers"], [b"xyz"])

    async def test_a_button_click_runs_its_callback(self) -> None:
        await self.start()
        made = await self.ok(
            "import ipywidgets\nclicks = []\nb = ipywidgets.Button(description='go')\nb.on_click(lambda b: clicks.append(b.description))\nb"
        )
        [opened] = [m for m in self.comm_opens(made) if m["content"]["data"]["state"]["_model_name"] == "ButtonModel"]
        self.client.send(
            "shell",
            "comm_msg",
            {"comm_id": opened["content"]["comm_id"], "data": {"method": "custom", "content": {"event": "click"}}},
        )
        self.assertEqual(await self.value_of("clicks"), "['go']")

    async def value_of(self, code: str) -> str:
        result = await self.ok(code)
        return result.of_type("execute_result")[0]["content"]["data"]["text/plain"]

    async def test_the_frontend_moves_the_slider(self) -> None:
        await self.start()
        _, comm_id = await self.slider(5)
        await self.ok(
            """
            moves = []
            s.observe(lambda change: moves.append((change.old, change.new)), "value")
            """
        )
        self.client.send(
            "shell",
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "update", "state": {"value": 3}, "buffer_paths": []}},
        )
        result = await self.ok("s.value, moves")
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "(3, [(5, 3)])")

    async def test_the_control_comm_gives_every_widget_state(self) -> None:
        await self.start()
        _, comm_id = await self.slider(7)
        states = wait_for(
            self.client,
            lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update_states",
        )
        self.client.send(
            "shell",
            "comm_open",
            {"comm_id": "control-1", "target_name": "jupyter.widget.control", "data": {}},
            metadata={"version": "1.0.0"},
        )
        self.client.send("shell", "comm_msg", {"comm_id": "control-1", "data": {"method": "request_states"}})
        [msg] = await states
        self.assertEqual(msg["content"]["comm_id"], "control-1")
        full = msg["content"]["data"]["states"]
        self.assertEqual(full[comm_id]["model_name"], "IntSliderModel")
        self.assertEqual(full[comm_id]["state"]["value"], 7)
        info = await self.client.comm_info(target_name="jupyter.widget")
        self.assertIn(comm_id, info["content"]["comms"])

    async def test_an_output_widget_captures_what_a_cell_prints_and_displays(self) -> None:
        await self.start()
        made = await self.ok("import ipywidgets\nout = ipywidgets.Output()\nout")
        [opened] = [m for m in self.comm_opens(made) if m["content"]["data"]["state"]["_model_name"] == "OutputModel"]
        out_id = opened["content"]["comm_id"]
        result = await self.ok("with out:\n    print('captured')\n    display({'a': 1})\n")
        request_id = result.reply["parent_header"]["msg_id"]
        kinds = []
        for m in result.outputs:
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == out_id:
                kinds.append(("msg_id", m["content"]["data"]["state"].get("msg_id")))
            elif m["msg_type"] in ("stream", "display_data"):
                self.assertEqual(m["parent_header"]["msg_id"], request_id)
                kinds.append((m["msg_type"], None))
        # The frontend puts output of the request named by msg_id into the widget.
        self.assertEqual(
            kinds, [("msg_id", request_id), ("stream", None), ("display_data", None), ("msg_id", "")]
        )

    async def test_output_widget_errors_clearing_and_appended_displays(self) -> None:
        await self.start()
        await self.ok("import ipywidgets\nout = ipywidgets.Output()")
        result = await self.ok("with out:\n    print('before')\n    1 / 0\n")
        [error] = result.of_type("error")  # shown in the widget; the cell goes on, as in ipykernel
        self.assertEqual(error["content"]["ename"], "ZeroDivisionError")
        self.assertIn("division by zero", error["content"]["traceback"][0])
        cleared = await self.ok("out.clear_output(wait=True)")
        [clear] = cleared.of_type("clear_output")
        self.assertEqual(clear["content"], {"wait": True})
        appended = await self.ok(
            """
            from txkernel.python.display import HTML
            import IPython
            out.append_display_data(HTML("<b>hi</b>"))
            out.outputs[-1]["data"], IPython.get_ipython()
            """
        )
        self.assertEqual(
            appended.of_type("execute_result")[0]["content"]["data"]["text/plain"],
            "({'text/html': '<b>hi</b>', 'text/plain': \"HTML('<b>hi</b>')\"}, None)",
        )

    async def test_a_widget_from_a_frontend_comm_handler_and_interact_prints(self) -> None:
        await self.start()
        made = await self.ok(
            """
            import ipywidgets
            def f(x):
                print("x is", x)
            w = ipywidgets.interactive(f, x=ipywidgets.IntSlider(1))
            w
            """
        )
        self.assertIn("x is 1", made.stream_text())
        slider = [m for m in self.comm_opens(made) if m["content"]["data"]["state"]["_model_name"] == "IntSliderModel"]
        slider_id = slider[0]["content"]["comm_id"]
        printed = wait_for(self.client, lambda m: m["msg_type"] == "stream" and "x is 4" in m["content"]["text"])
        msg = self.client.send(
            "shell",
            "comm_msg",
            {"comm_id": slider_id, "data": {"method": "update", "state": {"value": 4}, "buffer_paths": []}},
        )
        done = wait_for(
            self.client,
            lambda m: m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
            and m["parent_header"].get("msg_id") == msg["header"]["msg_id"],
        )
        [stream] = await printed
        self.assertEqual(stream["parent_header"]["msg_id"], msg["header"]["msg_id"])
        await done  # the handler has finished: the kernel may stop


class JupyterClientWidgetTests(WidgetTestCase):
    async def test_a_slider_round_trip_through_jupyter_client(self) -> None:
        service = await serve(self, PythonKernel())
        thread, client = await blocking_client(self, service.connection_file)

        def run():
            outputs = []
            client.execute_interactive(
                "import ipywidgets\ns = ipywidgets.IntSlider(2)\ns", output_hook=outputs.append, timeout=20
            )
            [opened] = [
                m for m in outputs
                if m["msg_type"] == "comm_open" and m["content"]["data"]["state"]["_model_name"] == "IntSliderModel"
            ]
            comm_id = opened["content"]["comm_id"]
            msg = client.session.msg(
                "comm_msg", {"comm_id": comm_id, "data": {"method": "update", "state": {"value": 8}, "buffer_paths": []}}
            )
            client.shell_channel.send(msg)
            later = []
            client.execute_interactive("s.value", output_hook=later.append, timeout=20)
            return outputs, later

        outputs, later = await thread.run(run)
        [value] = [m for m in outputs if m["msg_type"] == "execute_result"]
        self.assertIn(WIDGET_VIEW, value["content"]["data"])
        [result] = [m for m in later if m["msg_type"] == "execute_result"]
        self.assertEqual(result["content"]["data"]["text/plain"], "8")


class LaunchedWidgetTests(LaunchedKernelTestCase):
    """In the process Jupyter launches (cells on the main thread)."""

    async def test_a_slider_and_a_cell_awaiting_the_frontend(self) -> None:
        client = await self.launch()
        made = await client.execute("import ipywidgets\ns = ipywidgets.IntSlider(1)\ns")
        [opened] = [
            m for m in made.of_type("comm_open")
            if m["content"]["data"]["state"]["_model_name"] == "IntSliderModel"
        ]
        comm_id = opened["content"]["comm_id"]
        client.send(
            "shell",
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "update", "state": {"value": 6}, "buffer_paths": []}},
        )
        moved = wait_for(client, lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"].get("question"))
        waiting = client.execute(
            textwrap.dedent(
                """
                import comm
                from twisted.internet.defer import Deferred
                reply = Deferred()
                c = comm.create_comm(target_name="test.ask")
                c.on_msg(lambda msg: reply.callback(msg["content"]["data"]["answer"]))
                c.send({"question": s.value})
                await reply
                """
            ),
            timeout=30,
        )
        [question] = await moved
        client.send(
            "shell",
            "comm_msg",
            {"comm_id": question["content"]["comm_id"], "data": {"answer": question["content"]["data"]["question"] * 7}},
        )
        result = await waiting
        self.assertEqual(result.content["status"], "ok", result.content)
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "42")
