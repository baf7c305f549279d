"""txkernel.manager.KernelManager: kernels launched from kernelspecs with
reactor.spawnProcess, against txkernel's own kernel and against ipykernel."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys

from jupyter_client.kernelspec import KernelSpecManager
from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SkipTest, TestCase

from txkernel import kernelspec
from txkernel.client import KernelClient, KernelDied, KernelTimeout
from txkernel.manager import KernelExit, KernelManager, NoSuchKernel
from txkernel.testing import wait_for

from .helpers import REPO_ROOT


class ManagerTestCase(TestCase):
    timeout = 40

    def setUp(self) -> None:
        self.kernels = os.path.join(os.path.abspath(self.mktemp()), "kernels")
        os.makedirs(self.kernels)
        self.runtime = os.path.abspath(self.mktemp())
        saved = os.environ.get("JUPYTER_RUNTIME_DIR")
        os.environ["JUPYTER_RUNTIME_DIR"] = self.runtime
        self.addCleanup(
            lambda: os.environ.pop("JUPYTER_RUNTIME_DIR")
            if saved is None
            else os.environ.__setitem__("JUPYTER_RUNTIME_DIR", saved)
        )

    def spec(self, name: str, **spec) -> None:
        os.makedirs(os.path.join(self.kernels, name))
        spec.setdefault("display_name", name)
        spec.setdefault("language", "python")
        with open(os.path.join(self.kernels, name, "kernel.json"), "w") as f:
            json.dump(spec, f)

    def txkernel_spec(self, name: str, interrupt_mode: str = "signal", kernel: str | None = None) -> None:
        argv = [sys.executable, "-m", "txkernel", "-f", "{connection_file}"]
        if kernel:
            argv += ["--kernel", kernel]
        self.spec(name, argv=argv, interrupt_mode=interrupt_mode, env={"PYTHONPATH": REPO_ROOT})

    def manager(self, name: str, **kwargs) -> KernelManager:
        manager = KernelManager(
            name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[self.kernels]), **kwargs
        )
        self.addCleanup(lambda: manager.shutdown(now=True))
        return manager

    async def running(self, client: KernelClient, code: str):
        """Start ``code`` (which must print first); returns its execution."""
        started = wait_for(client, lambda m: m["msg_type"] == "stream")
        execution = client.execute(code)
        await started
        return execution


class TxkernelManagerTests(ManagerTestCase):
    async def test_start_interrupt_restart_shutdown(self) -> None:
        self.txkernel_spec("tx")
        manager = self.manager("tx")
        self.assertFalse(manager.is_alive)
        info = await manager.start()
        self.assertEqual(info["content"]["implementation"], "txkernel")
        self.assertTrue(manager.is_alive)
        self.assertEqual(manager.interrupt_mode, "signal")
        path = manager.connection_file
        self.assertTrue(path.startswith(self.runtime + os.sep))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

        client = manager.client()
        await client.wait_for_ready()
        seen: list[str] = []
        result = await client.execute("x = 6 * 7\nprint(x)", on_output=lambda m: seen.append(m["msg_type"]))
        self.assertEqual(result.stream_text(), "42\n")
        self.assertEqual(seen, ["status", "execute_input", "stream", "status"])

        sleeping = await self.running(client, "print('sleeping', flush=True)\nimport time\ntime.sleep(60)")
        sleeping.cancel()  # SIGINT, as the spec says
        with self.assertRaises(CancelledError):
            await sleeping
        # Sent at once, but run after the interrupted cell: not aborted.
        self.assertEqual((await client.execute("x")).content["status"], "ok")

        pid = manager.pid
        pending = await self.running(client, "print('waiting', flush=True)\nimport time\ntime.sleep(60)")
        restarted = await manager.restart()
        self.assertEqual(restarted["content"]["implementation"], "txkernel")
        with self.assertRaises(KernelDied) as caught:
            await pending
        self.assertIn("restarted", str(caught.exception))
        self.assertNotEqual(manager.pid, pid)
        self.assertEqual(manager.connection_file, path)
        after = await client.execute("x")
        self.assertEqual(after.content["ename"], "NameError")

        ended = await manager.shutdown()
        self.assertEqual(ended, KernelExit(exit_code=0, signal=None, expected=True))
        self.assertFalse(manager.is_alive)
        self.assertFalse(os.path.exists(path))
        self.assertEqual(client.pending_requests(), [])

    async def test_a_killed_kernel_fails_pending_requests_and_is_reported(self) -> None:
        self.txkernel_spec("tx-message", interrupt_mode="message")
        manager = self.manager("tx-message")
        deaths: list[KernelExit] = []
        manager.on_death(deaths.append)
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()

        spinning = await self.running(client, "print('spinning', flush=True)\nwhile True:\n    pass")
        await manager.interrupt()  # an interrupt_request on control
        self.assertEqual((await spinning).content["ename"], "KeyboardInterrupt")

        stuck = await self.running(client, "print('stuck', flush=True)\nimport time\ntime.sleep(60)")
        os.kill(manager.pid, signal.SIGKILL)
        with self.assertRaises(KernelDied) as caught:
            await stuck
        self.assertEqual(str(caught.exception), "the kernel was killed by signal 9 (SIGKILL)")
        self.assertEqual(deaths, [KernelExit(exit_code=None, signal=signal.SIGKILL, expected=False)])
        self.assertFalse(manager.is_alive)

        await manager.restart()
        self.assertEqual((await client.execute("'back'")).content["status"], "ok")
        await manager.shutdown()
        self.assertEqual(len(deaths), 1)

    async def test_a_kernel_deaf_to_shutdown_is_killed_after_the_grace(self) -> None:
        self.txkernel_spec("deaf", kernel="tests.manager_kernels:DeafToShutdown")
        manager = self.manager("deaf", shutdown_grace=0.5)
        await manager.start()
        ended = await manager.shutdown()
        self.assertEqual(ended, KernelExit(exit_code=None, signal=signal.SIGKILL, expected=True))

    async def test_a_kernel_that_dies_before_ready_fails_start(self) -> None:
        self.spec(
            "broken",
            argv=[sys.executable, "-c", "import sys; sys.stderr.write('no luck\\n'); sys.exit(3)"],
        )
        manager = self.manager("broken", keep_output=4096)
        with self.assertRaises(KernelDied) as caught:
            await manager.start()
        self.assertEqual(str(caught.exception), "the kernel exited with status 3 before it was ready:\nno luck")

    async def test_a_kernel_that_never_answers_is_killed_after_the_ready_timeout(self) -> None:
        self.spec("mute", argv=[sys.executable, "-c", "import time; time.sleep(60)"])
        manager = self.manager("mute", ready_timeout=0.5)
        with self.assertRaises(KernelTimeout):
            await manager.start()
        ended = await manager.wait_for_exit()
        self.assertEqual(ended.signal, signal.SIGKILL)
        self.assertFalse(manager.is_alive)

    async def test_a_missing_program_fails_start(self) -> None:
        self.spec("missing", argv=["no-such-kernel-program-here", "{connection_file}"])
        with self.assertRaises(FileNotFoundError):
            await self.manager("missing").start()

    async def test_an_unknown_kernelspec_fails_start(self) -> None:
        with self.assertRaises(NoSuchKernel):
            await self.manager("no-such-kernel").start()

    async def test_the_installed_kernelspec_runs(self) -> None:
        prefix = os.path.abspath(self.mktemp())
        kernelspec.install(name="txkernel-manager-test", prefix=prefix)
        manager = KernelManager(
            "txkernel-manager-test",
            kernel_spec_manager=KernelSpecManager(
                kernel_dirs=[os.path.join(prefix, "share", "jupyter", "kernels")]
            ),
            env={"PYTHONPATH": REPO_ROOT},
        )
        self.addCleanup(lambda: manager.shutdown(now=True))
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()
        self.assertEqual((await client.execute("print('hi')")).stream_text(), "hi\n")
        self.assertEqual((await manager.shutdown()).exit_code, 0)


class IpykernelManagerTests(ManagerTestCase):
    #: ipykernel starts twice here, and takes 10 s or more to start on a
    #: machine running other suites beside this one (40 s ran out once).
    timeout = 120

    async def test_start_output_interrupt_restart_death_shutdown(self) -> None:
        try:
            import ipykernel  # noqa: F401
        except ImportError:
            raise SkipTest("ipykernel is not installed") from None
        self.spec("ipy", argv=["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"])
        manager = self.manager("ipy", keep_output=65536)
        deaths: list[KernelExit] = []
        manager.on_death(deaths.append)
        info = await manager.start()
        self.assertEqual(info["content"]["implementation"], "ipython")
        client = manager.client()
        await client.wait_for_ready()
        self.assertEqual(client.pending_requests(), [])
        seen: list[str] = []
        result = await client.execute("print(6 * 7)", on_output=lambda m: seen.append(m["msg_type"]))
        self.assertEqual(result.stream_text(), "42\n")
        self.assertIn("stream", seen)

        sleeping = await self.running(client, "print('sleeping', flush=True)\nimport time\ntime.sleep(60)")
        sleeping.cancel()
        with self.assertRaises(CancelledError):
            await sleeping
        self.assertEqual((await client.execute("'after'")).content["status"], "ok")

        await manager.restart()
        self.assertEqual((await client.execute("'restarted'")).content["status"], "ok")

        stuck = await self.running(client, "print('stuck', flush=True)\nimport time\ntime.sleep(60)")
        os.kill(manager.pid, signal.SIGKILL)
        with self.assertRaises(KernelDied):
            await stuck
        self.assertEqual([d.signal for d in deaths], [signal.SIGKILL])
        await manager.shutdown()
