"""txkernel.testing, as a kernel author uses it; and the 0.1 Kernel adapter."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txkernel.interpreter import BaseInterpreter
from txkernel.stdin import StdinUnreachable
from txkernel.testing import MemoryKernel, expect_logged, serve_kernel, states

from .kernels import LegacyEchoKernel


class Shout(BaseInterpreter):
    """A whole kernel: cells are shouted back; ``ask`` asks the frontend first."""

    language_info = {"name": "shout", "mimetype": "text/plain", "file_extension": ".txt"}

    def execute(self, execution):
        if execution.code == "ask":
            d = self.host.request_input("what?", request=execution.request)
            return d.addCallback(lambda text: self.shout(text, execution))
        if execution.code == "boom":
            raise ValueError("no shouting")
        return self.shout(execution.code, execution)

    def shout(self, text, execution):
        self.host.send_stream("stdout", text.upper(), execution.request)
        return {"status": "ok"}

    def complete(self, code, cursor_pos):
        matches = [w for w in ("HELLO", "HELP") if w.startswith(code.upper())]
        return {"status": "ok", "matches": matches, "cursor_start": 0,
                "cursor_end": cursor_pos, "metadata": {}}


class ServedShoutTests(TestCase):
    async def test_the_kernel_shouts_over_real_sockets(self) -> None:
        served = await serve_kernel(self, Shout())
        result = await served.client.execute("hi")
        self.assertEqual(result.stream_text(), "HI")
        self.assertEqual(states(result), ["busy", "idle"])
        completion = await served.client.complete("he")
        self.assertEqual(completion["content"]["matches"], ["HELLO", "HELP"])


class MemoryKernelTests(TestCase):
    async def test_execute_without_sockets(self) -> None:
        kernel = MemoryKernel(Shout(), test=self)
        result = await kernel.client.execute("quiet")
        self.assertEqual(result.stream_text(), "QUIET")
        self.assertEqual(result.content["execution_count"], 1)
        self.assertIn("status", [m["msg_type"] for m in kernel.iopub])

    async def test_a_logged_failure_is_expected_not_an_error(self) -> None:
        kernel = MemoryKernel(Shout(), test=self)
        expect_logged(self, ValueError)
        result = await kernel.client.execute("boom")
        self.assertEqual(result.content["ename"], "ValueError")
        self.assertEqual(result.of_type("error")[0]["content"]["evalue"], "no shouting")

    async def test_input_is_answered_by_the_client(self) -> None:
        kernel = MemoryKernel(Shout(), test=self)
        result = await kernel.client.execute("ask", on_input=lambda prompt, pw: prompt * 2)
        self.assertEqual(result.stream_text(), "WHAT?WHAT?")

    async def test_the_stdin_wait_runs_on_a_clock(self) -> None:
        clock = Clock()
        kernel = MemoryKernel(Shout(), test=self, clock=clock, stdin_patience=2.0)
        kernel.transport.stdin_connected = False
        expect_logged(self, StdinUnreachable)
        asked = kernel.client.execute("ask", on_input=lambda prompt, pw: "late")
        await _turns(3)
        self.assertFalse(asked.called)
        clock.advance(1.9)
        kernel.transport.connect_stdin()
        self.assertEqual((await asked).stream_text(), "LATE")
        again = kernel.client.execute("ask", on_input=lambda prompt, pw: "never")
        kernel.transport.stdin_connected = False
        await _turns(3)
        clock.advance(2.0)
        result = await again
        self.assertEqual(result.content["ename"], "StdinUnreachable")
        self.assertIn("waited 2 s", result.content["evalue"])


async def _turns(count: int) -> None:
    """Let the reactor run ``count`` turns (the memory pipe delivers on later turns)."""
    from twisted.internet import reactor

    for _ in range(count):
        d: Deferred[None] = Deferred()
        reactor.callLater(0, d.callback, None)
        await d


class LegacyKernelTests(TestCase):
    async def test_a_0_1_kernel_executes_completes_asks_and_is_interrupted(self) -> None:
        kernel = LegacyEchoKernel()
        served = await serve_kernel(self, kernel)
        client = served.client
        result = await client.execute("old style")
        self.assertEqual(result.stream_text(), "old style")
        results = result.of_type("execute_result")
        self.assertEqual(results[0]["content"]["execution_count"], 1)
        completion = await client.complete("x")
        self.assertEqual(completion["content"]["matches"], ["x!"])
        answered = await client.execute("input: name?", on_input=lambda p, pw: "ok")
        self.assertEqual(answered.stream_text(), "ok")
        held = client.execute("hold")
        await served.received(3, "execute_request")
        await client.interrupt()
        interrupted = await held
        self.assertEqual(interrupted.content["ename"], "KeyboardInterrupt")
