"""txkernel.manager.KernelManager supervising its kernel: the kernel's process
group (a cell's subprocesses share its fate) and the automatic restarter."""

from __future__ import annotations

import os
import signal

from twisted.internet.defer import CancelledError, Deferred
from twisted.trial.unittest import SkipTest

from txkernel.client import KernelClient, KernelDied
from txkernel.manager import KernelExit

from .helpers import ProcessWatch
from .test_manager import ManagerTestCase


async def child_of_cell(test, client: KernelClient, name: str) -> ProcessWatch:
    """Start ``sleep 60`` from a cell as ``name``; a watch on its end."""
    result = await client.execute(
        f"import subprocess\n{name} = subprocess.Popen(['sleep', '60'])\nprint({name}.pid)"
    )
    pid = int(result.stream_text())
    watch = ProcessWatch(pid)
    test.addCleanup(watch.close)
    return watch


class ProcessGroupTests(ManagerTestCase):
    def setUp(self) -> None:
        super().setUp()
        if not hasattr(os, "pidfd_open"):
            raise SkipTest("needs os.pidfd_open to watch a process it did not start")

    async def test_interrupt_and_shutdown_reach_what_a_cell_started(self) -> None:
        self.txkernel_spec("tx")
        manager = self.manager("tx")
        await manager.start()
        self.assertEqual(os.getpgid(manager.pid), manager.pid)
        client = manager.client()
        await client.wait_for_ready()

        interrupted = await child_of_cell(self, client, "first")
        sleeping = await self.running(client, "print('sleeping', flush=True)\nimport time\ntime.sleep(60)")
        sleeping.cancel()  # SIGINT to the kernel's group
        with self.assertRaises(CancelledError):
            await sleeping
        await interrupted.exited
        waited = await client.execute("print(first.wait(10))")
        self.assertEqual(waited.stream_text(), f"{-signal.SIGINT}\n")

        left = await child_of_cell(self, client, "second")
        ended = await manager.shutdown()  # the kernel exits by itself...
        self.assertEqual(ended.exit_code, 0)
        await left.exited  # ...and what it left behind is killed

    async def test_killing_the_kernel_kills_what_a_cell_started(self) -> None:
        self.txkernel_spec("tx")
        manager = self.manager("tx")
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()
        child = await child_of_cell(self, client, "child")
        ended = await manager.shutdown(now=True)
        self.assertEqual(ended, KernelExit(exit_code=None, signal=signal.SIGKILL, expected=True))
        await child.exited

    async def test_a_kernel_killed_from_outside_leaves_no_child(self) -> None:
        self.txkernel_spec("tx")
        manager = self.manager("tx")
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()
        child = await child_of_cell(self, client, "child")
        os.kill(manager.pid, signal.SIGKILL)
        ended = await manager.wait_for_exit()
        self.assertEqual(ended.signal, signal.SIGKILL)
        await child.exited


class RestarterTests(ManagerTestCase):
    async def restarted_after_kill(self, manager, client: KernelClient) -> KernelExit:
        """Kill -9 the kernel during a cell; fires with what on_restart heard."""
        restarted: Deferred[KernelExit] = Deferred()
        unwatch = manager.on_restart(restarted.callback)
        stuck = await self.running(client, "print('stuck', flush=True)\nimport time\ntime.sleep(60)")
        killed = manager.pid
        os.kill(killed, signal.SIGKILL)
        with self.assertRaises(KernelDied):
            await stuck
        ended = await restarted
        unwatch()
        self.assertTrue(manager.is_alive)
        self.assertNotEqual(manager.pid, killed)
        return ended

    async def test_a_killed_kernel_is_restarted_until_it_dies_too_quickly_too_often(self) -> None:
        self.txkernel_spec("tx")
        manager = self.manager("tx", autorestart=True, restart_limit=1, stable_start_time=600)
        deaths: list[KernelExit] = []
        manager.on_death(deaths.append)
        dead: Deferred[KernelExit] = Deferred()
        manager.on_dead(dead.callback)
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()
        await client.execute("x = 1")

        ended = await self.restarted_after_kill(manager, client)
        self.assertEqual(ended, KernelExit(exit_code=None, signal=signal.SIGKILL, expected=False))
        back = await client.execute("print('back')\nx")
        self.assertEqual(back.stream_text(), "back\n")
        self.assertEqual(back.content["ename"], "NameError")  # a new kernel

        # Dead again within stable_start_time: one quick restart was the limit.
        os.kill(manager.pid, signal.SIGKILL)
        self.assertEqual((await dead).signal, signal.SIGKILL)
        self.assertFalse(manager.is_alive)
        self.assertEqual([d.signal for d in deaths], [signal.SIGKILL, signal.SIGKILL])

        # Started by hand, it runs (and is restarted again when killed).
        await manager.restart()
        await self.restarted_after_kill(manager, client)
        self.assertEqual((await client.execute("'ok'")).content["status"], "ok")
        self.assertEqual((await manager.shutdown()).exit_code, 0)

    async def test_a_kernel_that_ran_stably_is_restarted_past_the_limit(self) -> None:
        self.txkernel_spec("tx")
        manager = self.manager("tx", autorestart=True, restart_limit=1, stable_start_time=0)
        manager.on_dead(lambda ended: self.fail(f"gave up after {ended}"))
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()
        await self.restarted_after_kill(manager, client)
        await self.restarted_after_kill(manager, client)
        ended = await manager.shutdown()
        self.assertTrue(ended.expected)

    async def test_ipykernel_is_restarted(self) -> None:
        try:
            import ipykernel  # noqa: F401
        except ImportError:
            raise SkipTest("ipykernel is not installed") from None
        self.spec("ipy", argv=["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"])
        manager = self.manager("ipy", autorestart=True)
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()
        ended = await self.restarted_after_kill(manager, client)
        self.assertEqual(ended.signal, signal.SIGKILL)
        self.assertEqual((await client.execute("print('back')")).stream_text(), "back\n")
        await manager.shutdown()


#: Runs the kernel the first time, fails at once every later time (a marker
#: file tells them apart): a kernel that cannot be started again.
_ONCE = (
    "import os, sys\n"
    "marker = sys.argv[1]\n"
    "if os.path.exists(marker):\n"
    "    sys.exit('not again')\n"
    "open(marker, 'w').close()\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'txkernel', '-f', sys.argv[2]])\n"
)


class RestartFailureTests(ManagerTestCase):
    async def test_a_restart_that_fails_counts_and_the_manager_gives_up(self) -> None:
        import sys

        from .helpers import REPO_ROOT

        marker = os.path.abspath(self.mktemp())
        self.spec(
            "once",
            argv=[sys.executable, "-c", _ONCE, marker, "{connection_file}"],
            env={"PYTHONPATH": REPO_ROOT},
        )
        manager = self.manager("once", autorestart=True, restart_limit=1, stable_start_time=600)
        manager.on_restart(lambda ended: self.fail("restarted a kernel that cannot start"))
        dead: Deferred[KernelExit] = Deferred()
        manager.on_dead(dead.callback)
        await manager.start()
        os.kill(manager.pid, signal.SIGKILL)
        ended = await dead  # the one restart allowed failed: no second try
        self.assertEqual(ended.exit_code, 1)
        self.assertFalse(manager.is_alive)
