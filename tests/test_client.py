"""KernelClient additions: output as it arrives, cancel and timeout interrupt,
no requests left behind by wait_for_ready, pending requests failed on demand."""

from __future__ import annotations

import threading

from twisted.internet.defer import CancelledError
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient, KernelDied, KernelTimeout
from txkernel.python import PythonKernel
from txkernel.testing import serve_kernel, wait_for


class ClientTests(TestCase):
    timeout = 30

    async def serve(self) -> None:
        self.namespace: dict = {"gate": threading.Event()}
        self.served = await serve_kernel(self, PythonKernel(namespace=self.namespace))
        self.client = self.served.client

    async def spinning(self, **kwargs):
        started = wait_for(self.client, lambda m: m["msg_type"] == "stream")
        execution = self.client.execute(
            "print('spinning', flush=True)\nwhile True:\n    pass", **kwargs
        )
        await started
        return execution

    async def test_output_arrives_while_the_execution_runs(self) -> None:
        await self.serve()
        seen: list[tuple[str, bool]] = []

        def on_output(msg) -> None:
            seen.append((msg["msg_type"], execution.called))
            if msg["msg_type"] == "stream":
                self.namespace["gate"].set()  # the cell waits for this

        execution = self.client.execute(
            "print('first', flush=True)\ngate.wait(10)\nprint('second')", on_output=on_output
        )
        result = await execution
        self.assertEqual(result.stream_text(), "first\nsecond\n")
        self.assertEqual(seen[0], ("status", False))
        self.assertIn(("stream", False), seen)
        self.assertEqual(seen[-1], ("status", False))
        self.assertEqual([m for m, _ in seen], [m["msg_type"] for m in result.outputs])

    async def test_cancelling_an_execution_interrupts_it(self) -> None:
        await self.serve()
        execution = await self.spinning()
        execution.cancel()
        with self.assertRaises(CancelledError):
            await execution
        self.assertEqual(await self.served.received(1, "interrupt_request"), 1)
        # Sent before the interrupted cell ended, run after it: not aborted.
        self.assertEqual((await self.client.execute("'next'")).content["status"], "ok")

    async def test_a_timed_out_execution_interrupts_it(self) -> None:
        await self.serve()
        execution = await self.spinning(timeout=0.2)
        with self.assertRaises(KernelTimeout):
            await execution
        await self.served.received(1, "interrupt_request")
        self.assertEqual((await self.client.execute("'next'")).content["status"], "ok")

    async def test_wait_for_ready_leaves_no_kernel_info_requests_behind(self) -> None:
        await self.serve()
        client = KernelClient(self.served.connection_info)
        client.start()
        self.addCleanup(client.stop)
        # Asking every millisecond leaves many requests unanswered when it fires.
        await client.wait_for_ready(interval=0.001)
        self.assertEqual(client.pending_requests(), [])

    async def test_fail_pending_fails_waiting_requests(self) -> None:
        await self.serve()
        execution = await self.spinning()
        self.assertEqual(self.client.pending_requests(), ["execute_request"])
        self.client.fail_pending(KernelDied("gone"))
        with self.assertRaises(KernelDied):
            await execution
        await self.client.interrupt()


class StartFailureTests(TestCase):
    def test_a_channel_that_cannot_connect_leaves_nothing_open(self) -> None:
        import zmq
        from twisted.internet import reactor

        from txkernel.connection import ConnectionInfo

        info = ConnectionInfo(transport="tcp", ip="not an address").with_ports(
            {ch: 5555 for ch in ("shell", "control", "stdin", "iopub", "hb")}
        )
        readers = set(reactor.getReaders())
        client = KernelClient(info)
        self.assertRaises(zmq.ZMQError, client.start, ["control"])
        self.assertEqual(set(reactor.getReaders()), readers)
        client.stop()
