"""Soak: many executes from two clients at once, and control while a cell floods output.

Against the built-in Python kernel launched as Jupyter launches it
(``python -m txkernel -f FILE``), with its resident memory read from /proc.
Quick by default (and without a time bound on control); the full setting
of issue 14 by hand::

    TXKERNEL_SOAK_EXECUTES=10000 TXKERNEL_SOAK_OUTPUT_MB=50 TXKERNEL_SOAK_CONTROL_MS=50 \\
        python -m twisted.trial tests.test_hardening_soak

(``TXKERNEL_SOAK_KERNEL=txkernel.echo:EchoKernel`` serves another kernel class.)
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient
from txkernel.connection import ConnectionInfo, write_connection_file

from .helpers import connect_to, spawn
from .test_hardening import free_ports

EXECUTES = int(os.environ.get("TXKERNEL_SOAK_EXECUTES", "1000"))
OUTPUT_MB = int(os.environ.get("TXKERNEL_SOAK_OUTPUT_MB", "5"))
#: The kernel class served (the built-in Python kernel by default).
KERNEL = os.environ.get("TXKERNEL_SOAK_KERNEL", "txkernel.python:PythonKernel")
#: The slowest control round trip accepted during the flood (issue 14 asks
#: for 50 ms).  Unset (the suite), every request must only be answered: on a
#: shared, loaded machine a time bound would make the suite flaky.
CONTROL_MS = os.environ.get("TXKERNEL_SOAK_CONTROL_MS")
#: Requests each client keeps in flight.
WINDOW = 20


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class SoakTests(TestCase):
    timeout = 600

    async def launch(self) -> tuple[int, list[KernelClient]]:
        path = os.path.abspath(self.mktemp()) + ".json"
        info = ConnectionInfo().with_ports(free_ports())
        write_connection_file(info, path)
        self.connection_file = path
        proto = spawn(self, "-m", "txkernel", "-f", path, "--kernel", KERNEL)
        clients = [await connect_to(self, info, timeout=30) for _ in range(2)]

        async def shut_down() -> None:
            if not proto.ended.called:
                await clients[0].shutdown()
                await proto.ended

        self.addCleanup(shut_down)
        return proto.transport.pid, clients

    async def test_two_clients_execute_in_order_and_memory_stays_flat(self) -> None:
        pid, clients = await self.launch()
        per_client = EXECUTES // 2
        checkpoint = max(100, EXECUTES // 10)
        counts: list[list[int]] = [[], []]
        done_total = [0]
        at_checkpoint: Deferred[float] = Deferred()

        async def run(index: int) -> None:
            client = clients[index]
            in_flight: list[Deferred] = []
            for i in range(per_client):
                in_flight.append(client.execute(f"_soak = {i}", timeout=120))
                if len(in_flight) >= WINDOW:
                    result = await in_flight.pop(0)
                    record(index, result)
            for d in in_flight:
                record(index, await d)

        def record(index: int, result) -> None:
            self.assertEqual(result.content["status"], "ok", result.content)
            counts[index].append(result.content["execution_count"])
            done_total[0] += 1
            if done_total[0] == checkpoint:
                at_checkpoint.callback(rss_mib(pid))

        runs = DeferredList(
            [Deferred.fromCoroutine(run(0)), Deferred.fromCoroutine(run(1))],
            fireOnOneErrback=True,
            consumeErrors=True,
        )
        before = await at_checkpoint
        await runs
        after = rss_mib(pid)
        print(
            f"RSS {before:.1f} MiB after {checkpoint} executes, "
            f"{after:.1f} MiB after {2 * per_client}"
        )
        for own in counts:
            self.assertEqual(own, sorted(own), "replies out of order for one client")
        every = sorted(counts[0] + counts[1])
        self.assertEqual(every, list(range(every[0], every[0] + 2 * per_client)))
        self.assertLess(
            after - before,
            5.0,
            f"resident memory {before:.1f} MiB after {checkpoint} executes, "
            f"{after:.1f} MiB after {2 * per_client}",
        )

    async def test_control_answers_while_a_cell_floods_output(self) -> None:
        _, (asker, _) = await self.launch()
        lines = OUTPUT_MB * 1000
        # The frontend that runs the flood and reads all of it is another
        # process, so that decoding the output does not slow this one's
        # reactor, which times the control round trips.
        runner = spawn(self, "-c", FLOOD_RUNNER, self.connection_file, str(lines))
        await runner.wait_for("sent")
        rtts: list[float] = []
        while not runner.ended.called:
            start = reactor.seconds()
            reply = await asker.kernel_info(channel="control", timeout=10)
            self.assertEqual(reply["content"]["status"], "ok")
            rtts.append(reactor.seconds() - start)
            pause: Deferred[None] = Deferred()
            reactor.callLater(0.01, pause.callback, None)
            await pause
        self.assertEqual(await runner.ended, 0, runner.output)
        self.assertIn(f"received {lines * 1000} characters", runner.output)
        self.assertGreaterEqual(
            len(rtts), 2, "the flood ended before control was asked"
        )
        slowest = max(rtts)
        print(
            f"control while {OUTPUT_MB} MB printed: {len(rtts)} replies (ms)",
            sorted(round(r * 1000) for r in rtts),
        )
        if CONTROL_MS is not None:
            self.assertLess(
                slowest * 1000,
                float(CONTROL_MS),
                f"slowest control reply {slowest * 1000:.1f} ms of {len(rtts)}",
            )


FLOOD_RUNNER = """
import sys
from jupyter_client import BlockingKernelClient
kc = BlockingKernelClient(connection_file=sys.argv[1])
kc.load_connection_file()
kc.start_channels()
kc.wait_for_ready(timeout=30)
lines = int(sys.argv[2])
chunks = []
def output(msg):
    if msg["msg_type"] == "stream":
        chunks.append(msg["content"]["text"])
print("sent", flush=True)
reply = kc.execute_interactive(
    f"for _ in range({lines}):\\n    print('x' * 999)", output_hook=output, timeout=300
)
assert reply["content"]["status"] == "ok", reply
print("received", len("".join(chunks)), "characters", flush=True)
kc.stop_channels()
"""
