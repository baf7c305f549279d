"""The Python kernel's debugger as JupyterLab drives it: DAP over control, debugpy underneath.

The kernels run in processes of their own (debugpy traces the whole process
it is started in): launched by jupyter_client through the kernelspec (cells
on the main thread) and under twistd (cells on a worker thread).  Without
debugpy these tests are skipped; the kernel then says ``debugger: false``,
which is tested in process.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txkernel.client import KernelClient
from txkernel.connection import read_connection_file
from txkernel.kernelspec import kernel_json
from txkernel.python import PythonKernel
from txkernel.python import debugger as debugger_module
from txkernel.python import kernel as kernel_module
from txkernel.python.debugcells import HASH_SEED, CellFiles, murmur2
from txkernel.python.debugger import available

from .helpers import connect, serve, spawn_twistd, wait_for_stream
from .test_python_launched import LaunchedKernelTestCase

SKIP = (
    None if available() else "debugpy is not installed (pip install txkernel[debugger])"
)
WAIT = 20

CELL = "def double(a):\n    b = a * 2\n    return b\nx = double(21)\nprint('x is', x)\n"
RAISING = "y = 1\nraise ValueError('no good')\n"
# (deferLater calls int, not a lambda of line 2: while debugging, that runs
# where debugpy stops it, and would stop at line 2's breakpoint once more.)
AWAITING = (
    "from twisted.internet import reactor, task\n"
    "v = await task.deferLater(reactor, 0, int, 1)\n"
    "print('awaited', v)\n"
)
AWAIT_FAILING = (
    "from twisted.internet import reactor, task\n"
    "v = await task.deferLater(reactor, 0, lambda: 0)\n"
    "1 / v\n"
)
CALLBACKS = (
    "from twisted.internet import defer, reactor\n"
    "def on_reactor(d):\n"
    "    d.callback(5)\n"
    "def twice(r):\n"
    "    return r * 2\n"
    "d = defer.Deferred()\n"
    "d.addCallback(twice)\n"
    "reactor.callLater(0, on_reactor, d)\n"
    "print('doubled', await d)\n"
    "print(run_in_reactor(lambda: 'from the reactor'))\n"
    "from twisted.internet import task\n"
    "async def handed_over():\n"
    "    await task.deferLater(reactor, 0, lambda: None)\n"
    "    return 'resumed on the reactor'\n"
    "print(await defer.ensureDeferred(handed_over()))\n"
)
FETCHING = (
    "from twisted.internet import reactor, task\n"
    "async def fetch(n):\n"
    "    got = await task.deferLater(reactor, 0, lambda: n)\n"
    "    return got * 10\n"
    "print('fetched', await fetch(4))\n"
)
LATER = (
    "from twisted.internet import reactor\n"
    "def later():\n"
    "    a = 20\n"
    "    b = a * 2\n"
    "    print('later', a, b)\n"
    "reactor.callLater(0, later)\n"
)
WAITING = "from twisted.internet import defer\nprint('waiting')\nawait defer.Deferred()\n"
DEFINING = "def triple(a):\n    b = a * 3\n    return b\n"
CATCHING = "try:\n    raise KeyError('k')\nexcept KeyError:\n    print('caught')\n"
LOOPING = "def inner(v):\n    w = v + 1\n    return w\nn = 0\nm = inner(n)\nwhile True:\n    n += 1\n"


class Session:
    """A frontend's debug session: DAP requests on control, DAP events from IOPub."""

    def __init__(self, client: KernelClient) -> None:
        self.client = client
        self.seq = 0
        self.events: list[dict[str, Any]] = []
        self._waiting: list[tuple[Any, Deferred[dict[str, Any]]]] = []
        client.watch_iopub(self._iopub)

    def _iopub(self, msg: dict[str, Any]) -> None:
        if msg["msg_type"] != "debug_event":
            return
        event = msg["content"]
        self.events.append(event)
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate(event):
                self._waiting.remove(entry)
                d.callback(event)

    async def request(
        self, command: str, arguments: dict[str, Any] | None = None, ok: bool = True
    ) -> dict[str, Any]:
        """Send one DAP request; returns the DAP response (checked for its DAP fields)."""
        content: dict[str, Any] = {
            "seq": self.seq,
            "type": "request",
            "command": command,
        }
        if arguments is not None:
            content["arguments"] = arguments
        self.seq += 1
        # JupyterLab waits for the request's idle status as well as its reply.
        served = await self.client.request(
            "debug_request", content, "control", timeout=WAIT, collect=True
        )
        response = served.reply["content"]
        assert response["type"] == "response", response
        assert response["request_seq"] == content["seq"], response
        assert response["command"] == command, response
        if ok:
            assert response["success"] is True, response
        return response

    def event(self, name: str, already: bool = True) -> Deferred[dict[str, Any]]:
        """Fires with the first ``name`` event (one already received counts, unless ``already`` is false)."""
        if already:
            for event in self.events:
                if event["event"] == name:
                    self.events.remove(event)
                    d: Deferred[dict[str, Any]] = Deferred()
                    d.callback(event)
                    return d
        d = Deferred()

        def matches(event: dict[str, Any]) -> bool:
            if event["event"] == name:
                self.events.remove(event)
                return True
            return False

        self._waiting.append((matches, d))
        from twisted.internet import reactor

        return d.addTimeout(WAIT, reactor)

    async def start(self) -> dict[str, Any]:
        """What JupyterLab does when the debugger is turned on; returns debugInfo's body."""
        info = await self.request(
            "debugInfo"
        )  # seq 0, no arguments: JupyterLab's first request
        assert info["body"]["isStarted"] is False, info
        await self.request(
            "initialize",
            {
                "clientID": "jupyterlab",
                "clientName": "JupyterLab",
                "adapterID": "python",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
                "supportsVariableType": True,
                "supportsVariablePaging": True,
                "supportsRunInTerminalRequest": True,
                "locale": "en-us",
            },
        )
        await self.request("attach", {})
        info = await self.request("debugInfo")
        assert info["body"]["isStarted"] is True, info
        return info["body"]

    async def break_on(self, code: str, lines: list[int]) -> str:
        """Set the breakpoints of cell ``code`` to ``lines`` (none: cleared),
        each checked as verified; returns the cell's file."""
        path = (await self.request("dumpCell", {"code": code}))["body"]["sourcePath"]
        response = await self.request(
            "setBreakpoints",
            {
                "source": {"path": path},
                "breakpoints": [{"line": line} for line in lines],
                "sourceModified": False,
            },
        )
        for breakpoint in response["body"]["breakpoints"]:
            assert breakpoint["verified"], response
        return path

    async def stack(self, thread_id: int) -> list[dict[str, Any]]:
        """The stopped thread's stack frames, innermost first."""
        response = await self.request("stackTrace", {"threadId": thread_id})
        return response["body"]["stackFrames"]

    async def step(self, command: str, thread_id: int) -> list[dict[str, Any]]:
        """``next``, ``stepIn`` or ``stepOut`` on ``thread_id``; returns its stack
        once the step has stopped it (checked: stopped by the step)."""
        stepped = self.event("stopped", already=False)
        await self.request(command, {"threadId": thread_id})
        event = await stepped
        assert event["body"]["reason"] == "step", event
        return await self.stack(thread_id)

    async def stop_at(self, code: str, line: int) -> tuple[Deferred[Any], int]:
        """Break on ``line`` of cell ``code`` and run it; returns the execution and the stopped thread."""
        await self.break_on(code, [line])
        stopped = self.event("stopped")
        execution = self.client.execute(code, timeout=60)
        event = await stopped
        return execution, event["body"]["threadId"]


class DebuggerFlow:
    """The flow JupyterLab goes through, on a kernel ``connect()`` gives."""

    #: The name of the thread cells run on in this kind of kernel.
    execution_thread: str

    async def connect(self) -> KernelClient:
        raise NotImplementedError

    async def exit_status(self) -> int | None:
        """Fires with the kernel process's exit status once it has ended."""
        raise NotImplementedError

    async def locals(self, session: Session, frame_id: int) -> dict[str, str]:
        """The local variables of a frame, by name, as the variables panel shows them."""
        scopes = (await session.request("scopes", {"frameId": frame_id}))["body"][
            "scopes"
        ]
        scope = next(s for s in scopes if s["name"] == "Locals")
        response = await session.request(
            "variables", {"variablesReference": scope["variablesReference"]}
        )
        return {v["name"]: v["value"] for v in response["body"]["variables"]}

    async def test_breakpoint_step_inspect_continue(self) -> None:
        client = await self.connect()
        info = (await client.kernel_info(channel="control"))["content"]
        self.assertIs(info["debugger"], True)
        self.assertIn("debugger", info["supported_features"])
        session = Session(client)
        body = await session.start()
        self.assertEqual(body["hashMethod"], "Murmur2")
        self.assertEqual(body["tmpFileSuffix"], ".py")
        self.assertEqual(body["exceptionPaths"], ["Python Exceptions"])
        self.assertIs(body["richRendering"], True)
        self.assertIs(body["copyToGlobals"], True)
        # The cell's file name is JupyterLab's to compute.
        expected = (
            f"{body['tmpFilePrefix']}{murmur2(CELL.encode(), body['hashSeed'])}.py"
        )
        dumped = await session.request("dumpCell", {"code": CELL})
        self.assertEqual(dumped["body"]["sourcePath"], expected)
        await session.request("configurationDone")
        execution, thread_id = await session.stop_at(CELL, 2)

        # Stopped: control, the heartbeat and further debug requests are answered.
        self.assertTrue(
            (await client.kernel_info(channel="control", timeout=WAIT))["content"][
                "debugger"
            ]
        )
        await client.heartbeat(timeout=WAIT)
        info = await session.request("debugInfo")
        self.assertEqual(info["body"]["stoppedThreads"], [thread_id])
        self.assertEqual(
            info["body"]["breakpoints"],
            [{"source": expected, "breakpoints": [{"line": 2}]}],
        )
        threads = (await session.request("threads"))["body"]["threads"]
        self.assertEqual([t["name"] for t in threads], [self.execution_thread])

        frames = await session.stack(thread_id)
        self.assertEqual(
            [(f["name"], f["source"]["path"], f["line"]) for f in frames],
            [("double", expected, 2), ("<module>", expected, 4)],
        )
        self.assertEqual(await self.locals(session, frames[0]["id"]), {"a": "21"})
        evaluated = await session.request(
            "evaluate",
            {"expression": "a * 3", "frameId": frames[0]["id"], "context": "repl"},
        )
        self.assertEqual(evaluated["body"]["result"], "63")

        frames = await session.step("next", thread_id)
        self.assertEqual(
            (frames[0]["source"]["path"], frames[0]["line"]), (expected, 3)
        )
        self.assertEqual(
            await self.locals(session, frames[0]["id"]), {"a": "21", "b": "42"}
        )
        rich = await session.request(
            "richInspectVariables", {"variableName": "b", "frameId": frames[0]["id"]}
        )
        self.assertEqual(rich["body"]["data"], {"text/plain": "42"})
        await session.request("continue", {"threadId": thread_id})
        result = await execution
        self.assertEqual(result.reply["content"]["status"], "ok")
        self.assertEqual(result.stream_text(), "x is 42\n")

        # After the run: the variable explorer and rich rendering of globals.
        listed = (await session.request("inspectVariables"))["body"]["variables"]
        self.assertEqual(
            {v["name"]: (v["value"], v["type"]) for v in listed if v["name"] == "x"},
            {"x": ("42", "int")},
        )
        self.assertNotIn("kernel", [v["name"] for v in listed])
        modules = (await session.request("modules", {}))["body"]
        names = {m["name"]: m["path"] for m in modules["modules"]}
        self.assertEqual(names["txkernel.python.debugger"], debugger_module.__file__)
        self.assertEqual(modules["totalModules"], len(modules["modules"]))
        await client.execute(
            "class Card:\n    def _repr_html_(self): return '<b>card</b>'\ncard = Card()"
        )
        rich = await session.request("richInspectVariables", {"variableName": "card"})
        self.assertEqual(rich["body"]["data"]["text/html"], "<b>card</b>")
        missing = await session.request(
            "richInspectVariables", {"variableName": "nothing_here"}, ok=False
        )
        self.assertIs(missing["success"], False)

        # Exception breakpoints: a raising cell stops where it raises, on
        # "raised" and on "userUnhandled" (the exception leaves the cell for
        # the kernel), and once it has left the cell on "uncaught".  The
        # cell's traceback then names it as usual.
        for exception_filter in ["raised", "userUnhandled", "uncaught"]:
            await session.request(
                "setExceptionBreakpoints", {"filters": [exception_filter]}
            )
            stopped = session.event("stopped", already=False)
            failing = client.execute(RAISING, timeout=60)
            event = await stopped
            self.assertEqual(event["body"]["reason"], "exception")
            thread = event["body"]["threadId"]
            frames = await session.stack(thread)
            self.assertEqual(frames[0]["line"], 2)
            self.assertTrue(
                frames[0]["source"]["path"].startswith(body["tmpFilePrefix"])
            )
            # Stopped: control and the heartbeat are still answered.
            await client.kernel_info(channel="control", timeout=WAIT)
            await client.heartbeat(timeout=WAIT)
            info = await session.request("debugInfo")
            self.assertEqual(info["body"]["stoppedThreads"], [thread])
            await session.request("setExceptionBreakpoints", {"filters": []})
            await session.request("continue", {"threadId": thread})
            failed = (await failing).reply["content"]
            self.assertEqual(failed["ename"], "ValueError")
            self.assertIn(
                'File "<cell-', "\n".join(failed["traceback"]), failed["traceback"]
            )
            self.assertNotIn(body["tmpFilePrefix"], "\n".join(failed["traceback"]))
        # An exception the cell catches itself is not uncaught.
        await session.request("setExceptionBreakpoints", {"filters": ["uncaught"]})
        result = await client.execute(CATCHING, timeout=WAIT)
        self.assertEqual(result.stream_text(), "caught\n")
        self.assertEqual(result.reply["content"]["status"], "ok")
        self.assertEqual([e for e in session.events if e["event"] == "stopped"], [])
        await session.request("setExceptionBreakpoints", {"filters": []})

        # Turned off: the kernel runs cells as before, under their usual names.
        await session.request(
            "disconnect", {"restart": False, "terminateDebuggee": True}
        )
        info = await session.request("debugInfo")
        self.assertIs(info["body"]["isStarted"], False)
        result = await client.execute(CELL + "1 / 0", timeout=WAIT)
        self.assertEqual(result.stream_text(), "x is 42\n")
        self.assertIn("<cell-", "\n".join(result.reply["content"]["traceback"]))
        self.assertEqual(
            (await client.execute("print(x + 1)", timeout=WAIT)).stream_text(), "43\n"
        )

    async def test_step_in_and_out_subshell_pause_and_interrupt(self) -> None:
        client = await self.connect()
        session = Session(client)
        await session.start()
        execution, thread_id = await session.stop_at(LOOPING, 5)
        path = (await session.stack(thread_id))[0]["source"]["path"]
        source = await session.request("source", {"source": {"path": path}})
        self.assertEqual(source["body"]["content"], LOOPING)

        frames = await session.step("stepIn", thread_id)
        self.assertEqual(
            [(f["name"], f["line"]) for f in frames], [("inner", 2), ("<module>", 5)]
        )
        await session.request(
            "copyToGlobals",
            {
                "srcVariableName": "v",
                "dstVariableName": "v_copy",
                "srcFrameId": frames[0]["id"],
            },
        )
        frames = await session.step("stepOut", thread_id)
        self.assertEqual(frames[0]["name"], "<module>")

        # A subshell runs cells while the main shell is stopped.
        subshell = await client.create_subshell()
        result = await client.execute(
            "print(n, v_copy)", subshell_id=subshell, timeout=WAIT
        )
        self.assertEqual(result.stream_text(), "0 0\n")

        # Running again, then paused wherever the loop is.
        await session.request("continue", {"threadId": thread_id})
        paused = session.event("stopped", already=False)
        await session.request("pause", {"threadId": thread_id})
        self.assertEqual((await paused)["body"]["reason"], "pause")
        frames = await session.stack(thread_id)
        self.assertIn(frames[0]["line"], (6, 7))

        # An interrupt while stopped resumes the cell and interrupts it.
        reply = await client.interrupt()
        self.assertEqual(reply["content"]["status"], "ok")
        result = await execution
        self.assertEqual(result.reply["content"]["ename"], "KeyboardInterrupt")
        info = await session.request("debugInfo")
        self.assertEqual(info["body"]["stoppedThreads"], [])
        self.assertEqual(
            (await client.execute("print(n > 0, m)", timeout=WAIT)).stream_text(),
            "True 1\n",
        )

        await session.request(
            "disconnect", {"restart": False, "terminateDebuggee": True}
        )
        self.assertEqual(
            (await client.execute("print('done')", timeout=WAIT)).stream_text(),
            "done\n",
        )

    async def test_breakpoint_in_a_cell_run_before_the_debugger_started(self) -> None:
        client = await self.connect()
        await client.execute(DEFINING, timeout=WAIT)
        # Tracebacks name cells as usual, earlier cells too.
        failed = (await client.execute("triple(None)", timeout=WAIT)).reply["content"]
        text = "\n".join(failed["traceback"])
        self.assertIn('File "<cell-2>", line 1, in <module>', text)
        self.assertIn('File "<cell-1>", line 2, in triple\n    b = a * 3', text)
        self.assertNotIn("txkernel", text)

        # The debugger is turned on afterwards; the function cell 1 defined stops.
        session = Session(client)
        body = await session.start()
        path = await session.break_on(DEFINING, [2])
        self.assertEqual(
            path, f"{body['tmpFilePrefix']}{murmur2(DEFINING.encode(), body['hashSeed'])}.py"
        )
        stopped = session.event("stopped")
        caller = "t = triple(7)\nprint(t)\n"
        execution = client.execute(caller, timeout=60)
        thread_id = (await stopped)["body"]["threadId"]
        frames = await session.stack(thread_id)
        self.assertEqual(
            [(f["name"], f["source"]["path"], f["line"]) for f in frames],
            [("triple", path, 2), ("<module>", CellFiles(os.path.dirname(path)).path(caller), 1)],
        )
        self.assertEqual(await self.locals(session, frames[0]["id"]), {"a": "7"})
        await session.request("continue", {"threadId": thread_id})
        result = await execution
        self.assertEqual(result.stream_text(), "21\n")

    async def test_await_cell_steps_and_reactor_callbacks_run_on(self) -> None:
        client = await self.connect()
        session = Session(client)
        await session.start()
        # A cell with top-level await stops on its await line...
        execution, thread_id = await session.stop_at(AWAITING, 2)
        threads = (await session.request("threads"))["body"]["threads"]
        self.assertEqual([t["name"] for t in threads], [self.execution_thread])
        # ...while the reactor serves control, the heartbeat and a subshell.
        await client.kernel_info(channel="control", timeout=WAIT)
        await client.heartbeat(timeout=WAIT)
        subshell = await client.create_subshell()
        result = await client.execute(
            "from twisted.internet import task as t2, reactor as r2\n"
            "print(await t2.deferLater(r2, 0, lambda: 'reactor runs'))",
            subshell_id=subshell,
            timeout=WAIT,
        )
        self.assertEqual(result.stream_text(), "reactor runs\n")
        # Stepping over the await: the Deferred fires on the reactor, the
        # cell goes on (on its own thread) to the next line.  (Python
        # resumes the coroutine on the await's line first: a step stops
        # there once more, as with any debugger.)
        lines = []
        while 3 not in lines and len(lines) < 3:
            frames = await session.step("next", thread_id)
            self.assertEqual(frames[0]["name"], "<module>")
            lines.append(frames[0]["line"])
        self.assertIn(lines, ([3], [2, 3]))
        evaluated = await session.request(
            "evaluate",
            {"expression": "v + 1", "frameId": frames[0]["id"], "context": "repl"},
        )
        self.assertEqual(evaluated["body"]["result"], "2")
        await session.request("continue", {"threadId": thread_id})
        result = await execution
        self.assertEqual(result.stream_text(), "awaited 1\n")

        # Inside a coroutine the cell awaits, after its own await.
        execution, thread_id = await session.stop_at(FETCHING, 4)
        frames = await session.stack(thread_id)
        self.assertEqual(
            [(f["name"], f["line"]) for f in frames], [("fetch", 4), ("<module>", 5)]
        )
        self.assertEqual(
            await self.locals(session, frames[0]["id"]), {"n": "4", "got": "4"}
        )
        await session.request("continue", {"threadId": thread_id})
        self.assertEqual((await execution).stream_text(), "fetched 40\n")

        # A failing await cell stops on "uncaught" too.
        await session.request("setExceptionBreakpoints", {"filters": ["uncaught"]})
        stopped = session.event("stopped", already=False)
        failing = client.execute(AWAIT_FAILING, timeout=60)
        event = await stopped
        self.assertEqual(event["body"]["reason"], "exception")
        await session.request("setExceptionBreakpoints", {"filters": []})
        await session.request("continue", {"threadId": event["body"]["threadId"]})
        failed = (await failing).reply["content"]
        self.assertEqual(failed["ename"], "ZeroDivisionError")
        self.assertIn('File "<cell-', "\n".join(failed["traceback"]))

        # Callbacks the cell leaves to the reactor run, while debugging, on a
        # thread debugpy traces, the reactor waiting for them: their
        # breakpoints stop (a callLater'd function, a Deferred's callback it
        # fires, a coroutine resumed by deferLater), and the reactor goes on
        # while they are stopped.
        await session.break_on(CALLBACKS, [3, 5, 14])
        stopped = session.event("stopped", already=False)
        execution = client.execute(CALLBACKS, timeout=60)
        stops = []
        for _ in range(3):
            event = await stopped
            thread_id = event["body"]["threadId"]
            frames = await session.stack(thread_id)
            stops.append((frames[0]["name"], frames[0]["line"]))
            if frames[0]["name"] == "twice":
                self.assertEqual(
                    await self.locals(session, frames[0]["id"]), {"r": "5"}
                )
            if len(stops) == 1:
                threads = (await session.request("threads"))["body"]["threads"]
                self.assertIn(
                    {"id": thread_id, "name": "txkernel-reactor-calls"}, threads
                )
                await client.kernel_info(channel="control", timeout=WAIT)
                await client.heartbeat(timeout=WAIT)
            if len(stops) < 3:
                stopped = session.event("stopped", already=False)
            await session.request("continue", {"threadId": thread_id})
        self.assertEqual(stops, [("on_reactor", 3), ("twice", 5), ("handed_over", 14)])
        result = await execution
        self.assertEqual(
            result.stream_text(),
            "doubled 10\nfrom the reactor\nresumed on the reactor\n",
        )
        await session.break_on(CALLBACKS, [])

        # A function the cell leaves to the reactor stops after the cell has
        # ended, and is stepped line by line; its output goes to the cell.
        await session.break_on(LATER, [3])
        stopped = session.event("stopped", already=False)
        printed = wait_for_stream(client, "later 20 40\n")
        self.assertEqual((await client.execute(LATER, timeout=WAIT)).stream_text(), "")
        thread_id = (await stopped)["body"]["threadId"]
        for line, local in ((4, {"a": "20"}), (5, {"a": "20", "b": "40"})):
            frames = await session.step("next", thread_id)
            self.assertEqual((frames[0]["name"], frames[0]["line"]), ("later", line))
            self.assertEqual(await self.locals(session, frames[0]["id"]), local)
        await session.request("continue", {"threadId": thread_id})
        await printed
        await session.break_on(LATER, [])

        # An interrupt reaches a debugged await cell waiting for a Deferred.
        waiting: Deferred[None] = Deferred()

        def output(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream" and not waiting.called:
                waiting.callback(None)

        execution = client.execute(WAITING, timeout=60, on_output=output)
        await waiting
        await client.interrupt()
        result = await execution
        self.assertEqual(result.reply["content"]["ename"], "KeyboardInterrupt")

        await session.request(
            "disconnect", {"restart": False, "terminateDebuggee": True}
        )
        # Turned off: await cells run on the reactor as before.
        result = await client.execute(AWAITING, timeout=WAIT)
        self.assertEqual(result.stream_text(), "awaited 1\n")

    async def test_input_while_the_debugger_is_on(self) -> None:
        # input() asks the frontend through the reactor: in a plain cell, and
        # in an await cell, whose steps run while the reactor waits for them.
        client = await self.connect()
        session = Session(client)
        await session.start()
        prompts: list[str] = []

        def answer(prompt: str, password: bool) -> str:
            prompts.append(prompt)
            return f"answer {len(prompts)}"

        plain = await client.execute(
            "print('got', input('plain? '))", on_input=answer, timeout=WAIT
        )
        self.assertEqual(plain.stream_text(), "got answer 1\n")
        awaiting = await client.execute(
            "from twisted.internet import reactor, task\n"
            "await task.deferLater(reactor, 0, lambda: None)\n"
            "print('got', input('awaiting? '))\n",
            on_input=answer,
            timeout=WAIT,
        )
        self.assertEqual(awaiting.content["status"], "ok", awaiting.content)
        self.assertEqual(awaiting.stream_text(), "got answer 2\n")
        self.assertEqual(prompts, ["plain? ", "awaiting? "])

    async def test_raised_and_uncaught_together(self) -> None:
        # Both filters on, as debugpy does for a script: the cell stops where
        # the exception is raised, and once more after it has left the cell.
        client = await self.connect()
        session = Session(client)
        await session.start()
        await session.request(
            "setExceptionBreakpoints", {"filters": ["raised", "uncaught"]}
        )
        stopped = session.event("stopped", already=False)
        failing = client.execute(RAISING, timeout=60)
        for _ in range(2):
            event = await stopped
            self.assertEqual(event["body"]["reason"], "exception")
            self.assertEqual(event["body"]["text"], "ValueError")
            thread = event["body"]["threadId"]
            frames = await session.stack(thread)
            self.assertEqual(frames[0]["line"], 2)
            self.assertFalse(failing.called)
            stopped = session.event("stopped", already=False)
            await session.request("continue", {"threadId": thread})
        failed = (await failing).reply["content"]
        self.assertEqual(failed["ename"], "ValueError")
        self.assertEqual([e for e in session.events if e["event"] == "stopped"], [])
        stopped.addErrback(lambda f: None)
        stopped.cancel()

    async def test_shutdown_while_stopped(self) -> None:
        client = await self.connect()
        session = Session(client)
        await session.start()
        execution, _ = await session.stop_at(LOOPING, 5)
        execution.addErrback(
            lambda f: None
        )  # the cell may end with the kernel, unanswered
        reply = await client.shutdown(timeout=WAIT)
        self.assertEqual(reply["content"], {"status": "ok", "restart": False})
        self.assertEqual(await self.exit_status(), 0)


class LaunchedDebuggerTests(DebuggerFlow, LaunchedKernelTestCase):
    """Launched by Jupyter (``python -m txkernel``): cells on the main thread."""

    skip = SKIP
    execution_thread = "MainThread"

    async def connect(self) -> KernelClient:
        client = await self.launch()
        self.assertIs(self.km.kernel_spec.metadata["debugger"], True)
        return client

    async def exit_status(self) -> int | None:
        def wait_exit() -> int | None:
            self.km.provisioner.process.wait(timeout=WAIT)
            return self.km.provisioner.process.returncode

        return await self.thread.run(wait_exit)


class TwistdDebuggerTests(DebuggerFlow, TestCase):
    """Under twistd: the reactor has the main thread, cells a worker thread."""

    skip = SKIP
    timeout = 90
    execution_thread = "txkernel-execute"

    async def connect(self) -> KernelClient:
        proto = self.process = spawn_twistd(self, "txkernel")
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        client = KernelClient(read_connection_file(match.group(1)))
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready(timeout=WAIT)
        self.addCleanup(self._shut_down, client)
        return client

    async def _shut_down(self, client: KernelClient) -> None:
        """End the kernel as a frontend would, so it removes its cell files."""
        if not self.process.ended.called:
            await client.shutdown(timeout=WAIT)
            await self.exit_status()

    async def exit_status(self) -> int | None:
        from twisted.internet import reactor

        return await self.process.ended.addTimeout(WAIT, reactor)


class WithoutDebugpyTests(TestCase):
    """Without debugpy the kernel says it has no debugger and works as before."""

    timeout = 30

    async def test_no_debugger_without_debugpy(self) -> None:
        self.patch(kernel_module, "debugger_available", lambda: False)
        client = await connect(self, await serve(self, PythonKernel()))
        info = (await client.kernel_info())["content"]
        self.assertIs(info["debugger"], False)
        self.assertNotIn("debugger", info["supported_features"])
        reply = await client.request(
            "debug_request",
            {"seq": 0, "type": "request", "command": "debugInfo"},
            "control",
            timeout=WAIT,
        )
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual((await client.execute("print(2 + 2)")).stream_text(), "4\n")


class BadRequestTests(TestCase):
    """Malformed debug requests get a failed DAP response; the kernel keeps serving."""

    skip = SKIP
    timeout = 30

    async def test_malformed_requests(self) -> None:
        client = await connect(self, await serve(self, PythonKernel()))
        for content, seq in [
            ({}, 0),
            ({"seq": 7, "type": "request"}, 7),
            ({"seq": 3, "command": "dumpCell", "arguments": {}}, 3),
            ({"seq": 4, "command": "dumpCell", "arguments": [1]}, 4),
        ]:
            reply = await client.request(
                "debug_request", content, "control", timeout=WAIT
            )
            self.assertEqual(reply["content"]["type"], "response")
            self.assertIs(reply["content"]["success"], False)
            self.assertEqual(reply["content"]["request_seq"], seq)
            self.assertTrue(reply["content"]["message"])
        # Forwarded commands before initialize are refused, not hung.
        reply = await client.request(
            "debug_request",
            {"seq": 5, "type": "request", "command": "threads"},
            "control",
            timeout=WAIT,
        )
        self.assertIs(reply["content"]["success"], False)
        self.assertIn("initialize", reply["content"]["message"])
        self.assertEqual(
            (await client.execute("print('still here')")).stream_text(), "still here\n"
        )


class CellNameTests(TestCase):
    """With debugpy installed every cell runs as its cell file; what users read still says ``<cell-N>``."""

    skip = SKIP
    timeout = 30

    async def test_errors_warnings_and_inspection_name_the_cell(self) -> None:
        client = await connect(self, await serve(self, PythonKernel()))
        files = CellFiles()
        code = "import warnings\ndef f():\n    warnings.warn('careful')\n    return 1\nf()"
        result = await client.execute(code)
        self.assertIn("<cell-1>:3: UserWarning: careful\n", result.stream_text("stderr"))
        failed = (await client.execute("x = (1,")).reply["content"]
        self.assertEqual(failed["ename"], "SyntaxError")
        self.assertIn('File "<cell-2>", line 1', "\n".join(failed["traceback"]))
        failed = (await client.execute("return 5")).reply["content"]
        self.assertIn('File "<cell-3>", line 1', "\n".join(failed["traceback"]))
        inspected = (
            await client.request(
                "inspect_request", {"code": "f", "cursor_pos": 1, "detail_level": 1}
            )
        )["content"]
        self.assertIn("<cell-1>", inspected["data"]["text/plain"])
        # The code object itself is the cell file's, for debugpy (and for
        # what prints it as it is).
        result = await client.execute("print(f.__code__.co_filename)")
        self.assertEqual(result.stream_text(), files.path(code) + "\n")
        printing = "import traceback\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    traceback.print_exc()\n"
        result = await client.execute(printing)
        self.assertIn(f'File "{files.path(printing)}", line 3', result.stream_text("stderr"))


class CellFileTests(SynchronousTestCase):
    """Cell file names are JupyterLab's: prefix + Murmur2(code, seed) + suffix."""

    def test_murmur2_matches_the_reference(self) -> None:
        # Values of ipykernel's (and JupyterLab's) Murmur2 for the same inputs.
        cases = {
            "": (3990065800, 0),
            "a": (2167009006, 2456313694),
            "abcd": (804720481, 646393889),
            "print(1)\n": (3089598676, 3107449277),
            'x = "é✓"\n': (2490216681, 1590608976),
        }
        for text, (seeded, unseeded) in cases.items():
            self.assertEqual(murmur2(text.encode("utf-8"), HASH_SEED), seeded, text)
            self.assertEqual(murmur2(text.encode("utf-8"), 0), unseeded, text)

    def test_files_are_written_once_under_their_hash(self) -> None:
        files = CellFiles(os.path.abspath(self.mktemp()))
        path = files.write("print(1)\n")
        self.assertEqual(path, f"{files.prefix}3089598676.py")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "print(1)\n")
        self.assertTrue(files.is_cell(path))
        self.assertEqual(files.write("print(1)\n"), path)
        files.remove()
        self.assertFalse(os.path.exists(files.directory))

    def test_kernelspec_says_whether_the_debugger_is_there(self) -> None:
        self.assertIs(kernel_json()["metadata"]["debugger"], available())


class DebugpyVersionTests(SynchronousTestCase):
    """The debugger is on only with a debugpy its tests pass with (1.8.22 or later)."""

    def installed(self, dist_info: str | None) -> None:
        """debugpy importable from a directory beside ``dist_info`` (None: not installed)."""
        import importlib.util
        from importlib.machinery import ModuleSpec

        site = self.mktemp()
        os.makedirs(os.path.join(site, "debugpy"))
        if dist_info is not None:
            os.makedirs(os.path.join(site, dist_info))
        spec = ModuleSpec("debugpy", None, origin=os.path.join(site, "debugpy", "__init__.py"))
        self.patch(importlib.util, "find_spec", lambda name: spec if name == "debugpy" else None)

    def test_a_recent_debugpy_is_used(self) -> None:
        self.installed("debugpy-1.8.22.dist-info")
        self.assertEqual(debugger_module.debugpy_version(), (1, 8, 22))
        self.assertTrue(available())
        self.assertIsNone(debugger_module.unavailable_reason())
        self.installed("debugpy-1.9.0rc1.dist-info")
        self.assertTrue(available())

    def test_an_old_debugpy_turns_the_debugger_off_with_a_reason(self) -> None:
        self.installed("debugpy-1.8.0-py3.11.egg-info")
        self.assertFalse(available())
        self.assertEqual(
            debugger_module.unavailable_reason(),
            "debugpy 1.8.0 is installed; the debugger needs 1.8.22 or later, so it is off",
        )
        self.assertEqual(kernel_json()["metadata"]["debugger"], False)

    def test_a_debugpy_of_unknown_version_is_used(self) -> None:
        self.installed(None)
        self.assertEqual(debugger_module.debugpy_version(), ())
        self.assertTrue(available())
