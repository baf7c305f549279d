"""A kernel Jupyter launched ends when its launcher dies."""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txkernel.connection import read_connection_file
from txkernel.parent import ParentWatcher, launched_by_jupyter

from .helpers import REPO_ROOT, ProcessOutput, ProcessWatch, connect_to


class ParentWatcherTests(TestCase):
    def test_on_gone_is_called_once_after_the_parent_changes(self) -> None:
        clock = Clock()
        parent = [4242]
        gone: list[None] = []
        watcher = ParentWatcher(
            lambda: gone.append(None), clock, 1.0, lambda: parent[0]
        )
        watcher.start()
        clock.advance(5)
        self.assertEqual(gone, [])
        parent[0] = 1
        clock.advance(1)
        self.assertEqual(gone, [None])
        self.assertFalse(watcher.watching)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stop_ends_the_checks(self) -> None:
        clock = Clock()
        watcher = ParentWatcher(lambda: None, clock, 1.0, lambda: 7)
        watcher.start()
        self.assertTrue(watcher.watching)
        watcher.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_only_a_jupyter_launch_is_watched(self) -> None:
        self.assertTrue(launched_by_jupyter({"JPY_PARENT_PID": "123"}))
        self.assertFalse(launched_by_jupyter({}))
        self.assertFalse(launched_by_jupyter({"JPY_PARENT_PID": ""}))


LAUNCHER = """
import os, subprocess, sys
from jupyter_client.connect import write_connection_file
path, _ = write_connection_file(fname=sys.argv[1], key=os.urandom(32).hex().encode())
env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
kernel = subprocess.Popen([sys.executable, "-m", "txkernel", "-f", path], env=env)
print("kernel pid", kernel.pid, flush=True)
kernel.wait()
"""


class OrphanTests(TestCase):
    timeout = 60

    async def test_the_kernel_exits_when_its_launcher_is_killed(self) -> None:
        path = os.path.abspath(self.mktemp()) + ".json"
        proto = ProcessOutput()
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        launcher = reactor.spawnProcess(
            proto, sys.executable, [sys.executable, "-c", LAUNCHER, path], env=env
        )
        match = await proto.wait_for(r"kernel pid (\d+)")
        kernel_pid = int(match.group(1))
        self.addCleanup(_kill_quietly, kernel_pid)
        client = await connect_to(self, read_connection_file(path))
        self.assertEqual((await client.execute("1 + 1")).content["status"], "ok")
        client.stop()

        kernel_ended = ProcessWatch(kernel_pid)
        self.addCleanup(kernel_ended.close)
        launcher.signalProcess("KILL")
        # The kernel shares the launcher's output pipes: they close once the
        # kernel has let go of them, which may come a moment before it exits.
        await proto.ended
        await kernel_ended.exited
        self.assertIn("has exited; shutting down", proto.output)
        self.assertFalse(_alive(kernel_pid))


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (an exited child nobody reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _kill_quietly(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, 9)
