"""A standalone KernelClient watching the kernel's heartbeat: the timing with a
Clock, then a real kernel killed with SIGKILL."""

from __future__ import annotations

import os
import signal

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient, KernelDied
from txkernel.heartbeat_monitor import HeartbeatMonitor

from .test_manager import ManagerTestCase


class MonitorTimingTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.sent: list[bytes] = []
        self.events: list[str] = []
        self.monitor = HeartbeatMonitor(
            self.sent.append,
            on_lost=lambda: self.events.append("lost"),
            on_back=lambda: self.events.append("back"),
            interval=1.0,
            misses=3,
            reactor=self.clock,
        )
        self.monitor.start()
        self.addCleanup(self.monitor.stop)

    def answer(self) -> None:
        self.monitor.echoed(self.sent[-1])

    def test_pings_every_interval(self) -> None:
        self.assertEqual(len(self.sent), 1)
        self.answer()
        self.clock.advance(0.99)
        self.assertEqual(len(self.sent), 1)
        self.clock.advance(0.01)
        self.assertEqual(len(self.sent), 2)
        self.assertEqual(len(set(self.sent)), 2)

    def test_lost_after_misses_unanswered_intervals(self) -> None:
        self.answer()
        self.clock.advance(1)  # ping 2, never answered
        self.clock.advance(1)  # miss 1
        self.clock.advance(1)  # miss 2
        self.assertEqual(self.events, [])
        self.assertTrue(self.monitor.beating)
        self.clock.advance(1)  # miss 3
        self.assertEqual(self.events, ["lost"])
        self.assertFalse(self.monitor.beating)
        self.clock.advance(10)  # lost once, not once per ping
        self.assertEqual(self.events, ["lost"])

    def test_an_answer_resets_the_count(self) -> None:
        for _ in range(10):
            self.clock.advance(1)  # the previous ping unanswered: a miss
            self.clock.advance(1)
            self.answer()  # late, but before the third miss
        self.assertEqual(self.events, [])

    def test_a_late_echo_of_an_older_ping_counts(self) -> None:
        self.clock.advance(1)
        self.clock.advance(1)
        self.monitor.echoed(self.sent[0])
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.events, [])

    def test_foreign_echoes_do_not_count(self) -> None:
        for _ in range(3):
            self.clock.advance(1)
            self.monitor.echoed(b"someone-else")
        self.assertEqual(self.events, ["lost"])

    def advance(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.advance(1)

    def test_back_at_the_first_answer_after_lost(self) -> None:
        self.advance(3)
        self.assertEqual(self.events, ["lost"])
        self.answer()
        self.assertEqual(self.events, ["lost", "back"])
        self.advance(3)  # a new ping, then two misses
        self.assertEqual(self.events, ["lost", "back"])
        self.advance(1)
        self.assertEqual(self.events, ["lost", "back", "lost"])

    def test_a_blocked_reactor_counts_one_miss_not_one_per_interval(self) -> None:
        self.answer()
        self.clock.advance(1)
        self.clock.advance(30)  # the reactor could not run for 30 s
        self.assertEqual(self.events, [])
        self.answer()
        self.advance(3)
        self.assertEqual(self.events, [])

    def test_stop_sends_no_more(self) -> None:
        self.monitor.stop()
        self.clock.advance(10)
        self.assertEqual(len(self.sent), 1)
        self.assertEqual(self.events, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bad_settings_are_refused(self) -> None:
        with self.assertRaises(ValueError):
            HeartbeatMonitor(self.sent.append, lambda: None, interval=0, reactor=self.clock)
        with self.assertRaises(ValueError):
            HeartbeatMonitor(self.sent.append, lambda: None, misses=0, reactor=self.clock)


class RealKernelTests(ManagerTestCase):
    async def standalone_client(self) -> tuple[object, KernelClient]:
        """A kernel launched by a manager, and a client the manager knows nothing of."""
        self.txkernel_spec("tx")
        manager = self.manager("tx")
        await manager.start()
        client = KernelClient(manager.connection_info)
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready()
        return manager, client

    async def test_a_killed_kernel_fails_pending_requests_and_fires_on_death(self) -> None:
        manager, client = await self.standalone_client()
        client.monitor_heartbeat(interval=0.2, misses=3)
        died: Deferred[KernelDied] = Deferred()
        client.on_death(died.callback)
        stuck = await self.running(client, "print('stuck', flush=True)\nimport time\ntime.sleep(60)")
        queued = client.execute("'queued behind the sleep'")
        os.kill(manager.pid, signal.SIGKILL)
        reason = await died
        self.assertIn("heartbeat", str(reason))
        for pending in (stuck, queued):
            with self.assertRaises(KernelDied):
                await pending
        self.assertEqual(client.pending_requests(), [])
        self.assertFalse(client.beating)
        # What is asked after the death fails at once, not after a timeout.
        with self.assertRaises(KernelDied):
            await client.execute("'asked after the death'")
        self.assertEqual(client.pending_requests(), [])

    async def test_a_long_cell_is_not_mistaken_for_death(self) -> None:
        manager, client = await self.standalone_client()
        client.monitor_heartbeat(interval=0.1, misses=5)
        client.on_death(lambda reason: self.fail(f"declared dead: {reason}"))
        result = await client.execute("import time\nt = time.time()\nwhile time.time() - t < 1:\n    pass\nprint('done')")
        self.assertEqual(result.stream_text(), "done\n")
        self.assertTrue(client.beating)

    async def test_stop_joins_the_heartbeat_thread(self) -> None:
        manager, client = await self.standalone_client()
        client.monitor_heartbeat(interval=0.05)
        client.stop()
        import threading

        self.assertNotIn("txkernel-client-heartbeat", [t.name for t in threading.enumerate()])
