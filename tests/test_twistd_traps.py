"""``twistd txkernel`` without traps: run with the real ``twistd`` script, as a user does.

The ``twistd`` script puts its own directory first on ``sys.path``, not the
working directory, and writes ``twistd.pid`` in the working directory unless
told otherwise: these tests run it that way (no ``--pidfile``), with the
Jupyter runtime directory in a temporary directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from typing import Any

from jupyter_client import KernelManager
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient
from txkernel.connection import parse_connection_info, read_connection_file
from txkernel.interpreter import BaseInterpreter
from txkernel.python import PythonKernel
from txkernel.python.executor import ThreadExecutor
from txkernel.testing import connect, serve_kernel

from .helpers import REPO_ROOT, OtherThread, ProcessOutput, wait_for

TWISTD_SCRIPT = os.path.join(os.path.dirname(sys.executable), "twistd")


class TwistdTestCase(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.cwd = os.path.abspath(self.mktemp())
        os.makedirs(self.cwd)
        self.runtime = os.path.abspath(self.mktemp())
        os.makedirs(self.runtime)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT
        env["PYTHONUNBUFFERED"] = "1"
        env["JUPYTER_RUNTIME_DIR"] = self.runtime
        env.pop("JPY_PARENT_PID", None)
        return env

    def write(self, filename: str, text: str) -> None:
        with open(os.path.join(self.cwd, filename), "w") as f:
            f.write(textwrap.dedent(text))

    def twistd(self, *args: str, env: dict[str, str] | None = None) -> ProcessOutput:
        """``twistd -n <args>`` in ``self.cwd``; killed in cleanup if still alive."""
        proto = ProcessOutput()
        process = reactor.spawnProcess(
            proto,
            sys.executable,
            [sys.executable, TWISTD_SCRIPT, "-n", *args],
            env=env or self.env(),
            path=self.cwd,
        )

        def kill():
            if not proto.ended.called:
                process.signalProcess("KILL")
            return proto.ended

        self.addCleanup(kill)
        return proto

    async def serving(self, proto: ProcessOutput) -> tuple[str, KernelClient]:
        path = (await proto.wait_for(r"jupyter console --existing (\S+)")).group(1)
        return path, await connect(self, read_connection_file(path), timeout=20)

    async def fails(self, *args: str) -> str:
        proto = self.twistd(*args)
        self.assertNotEqual(await proto.ended, 0)
        self.assertNotIn("Traceback", proto.output)
        return proto.output


class NamespaceTests(TwistdTestCase):
    async def test_namespace_names_a_factory_in_the_working_directory(self) -> None:
        self.write(
            "inventory.py",
            """
            class Inventory:
                def __init__(self):
                    self.items = {"apples": 3}

            def namespace():
                return {"inventory": Inventory()}
            """,
        )
        proto = self.twistd("txkernel", "--namespace", "inventory:namespace")
        _, client = await self.serving(proto)
        result = await client.execute("inventory.items['apples'] += 1\ninventory.items")
        data = result.of_type("execute_result")[0]["content"]["data"]
        self.assertEqual(data["text/plain"], "{'apples': 4}")
        await client.shutdown()
        self.assertEqual(await proto.ended, 0)

    async def test_kernel_names_a_class_in_the_working_directory(self) -> None:
        self.write(
            "shout.py",
            """
            from txkernel.interpreter import BaseInterpreter

            class Shout(BaseInterpreter):
                language_info = {"name": "shout", "mimetype": "text/plain",
                                 "file_extension": ".txt"}

                def execute(self, execution):
                    self.host.send_stream("stdout", execution.code.upper())
                    return {"status": "ok"}
            """,
        )
        proto = self.twistd("txkernel", "--kernel", "shout:Shout")
        _, client = await self.serving(proto)
        self.assertEqual((await client.execute("hello")).stream_text(), "HELLO")
        await client.shutdown()
        self.assertEqual(await proto.ended, 0)

    async def test_a_kernel_without_a_namespace_is_one_line(self) -> None:
        self.write("ns.py", "def namespace():\n    return {}\n")
        output = await self.fails(
            "txkernel", "--kernel", "txkernel.echo:EchoKernel", "--namespace", "ns:namespace"
        )
        self.assertIn("--namespace: txkernel.echo:EchoKernel takes no namespace argument", output)

    async def test_a_factory_that_returns_no_dict_is_one_line(self) -> None:
        self.write("ns.py", "def namespace():\n    return ['not', 'a', 'dict']\n")
        output = await self.fails("txkernel", "--namespace", "ns:namespace")
        self.assertIn("the factory returned list, not a dict", output)

    async def test_a_missing_factory_is_one_line(self) -> None:
        self.write("ns.py", "x = 1\n")
        output = await self.fails("txkernel", "--namespace", "ns:namespace")
        self.assertIn("--namespace 'ns:namespace': ns has no namespace", output)


class PidfileTests(TwistdTestCase):
    async def test_two_kernels_in_one_directory_each_have_a_pidfile(self) -> None:
        first = self.twistd("txkernel")
        second = self.twistd("txkernel")
        paths = []
        for proto in (first, second):
            path, client = await self.serving(proto)
            self.assertEqual((await client.execute("print('up')")).stream_text(), "up\n")
            paths.append(path)
        self.assertNotEqual(paths[0], paths[1])
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "twistd.pid")))
        pids = set()
        for path in paths:
            pidfile = os.path.splitext(path)[0] + ".pid"
            with open(pidfile) as f:
                pids.add(int(f.read()))
        self.assertEqual(pids, {first.transport.pid, second.transport.pid})
        for proto in (first, second):
            proto.transport.signalProcess("INT")
            await proto.ended
        for path in paths:
            self.assertFalse(os.path.exists(os.path.splitext(path)[0] + ".pid"))

    async def test_a_given_pidfile_is_kept(self) -> None:
        proto = self.twistd("--pidfile", "mine.pid", "txkernel")
        await self.serving(proto)
        with open(os.path.join(self.cwd, "mine.pid")) as f:
            self.assertEqual(int(f.read()), proto.transport.pid)


class JupyterLaunchedTwistdTests(TwistdTestCase):
    """A hand-written kernelspec that runs twistd, driven by jupyter_client."""

    timeout = 90

    async def test_an_interrupt_while_idle_leaves_the_kernel_running(self) -> None:
        prefix = os.path.abspath(self.mktemp())
        spec_dir = os.path.join(prefix, "kernels", "txkernel-twistd-test")
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump(
                {
                    "argv": [sys.executable, TWISTD_SCRIPT, "-n", "txkernel", "-f", "{connection_file}"],
                    "display_name": "txkernel under twistd",
                    "language": "python",
                    "interrupt_mode": "signal",
                },
                f,
            )
        env = self.env()
        env["JUPYTER_PATH"] = prefix
        thread = OtherThread(self)

        def start() -> KernelManager:
            from jupyter_client.kernelspec import KernelSpecManager

            km = KernelManager(
                kernel_name="txkernel-twistd-test",
                kernel_spec_manager=KernelSpecManager(kernel_dirs=[os.path.join(prefix, "kernels")]),
            )
            # twistd logs to stdout; keep it out of trial's output.
            km.start_kernel(env=env, cwd=self.cwd, stdout=subprocess.DEVNULL)
            return km

        km = await thread.run(start)

        def stop() -> None:
            if km.is_alive():
                km.shutdown_kernel(now=False)
            km.cleanup_resources()

        self.addCleanup(thread.run, stop)
        info = parse_connection_info(km.get_connection_info(session=False))
        client = await connect(self, info, timeout=20)

        await thread.run(km.interrupt_kernel)  # idle: SIGINT
        self.assertEqual((await client.execute("'still here'")).content["status"], "ok")
        self.assertTrue(await thread.run(km.is_alive))

        started = wait_for(client, lambda m: m["msg_type"] == "stream")
        running = client.execute("print('spinning', flush=True)\nwhile True:\n    pass")
        await started
        await thread.run(km.interrupt_kernel)
        self.assertEqual((await running).content["ename"], "KeyboardInterrupt")
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "twistd.pid")))


class StartStopTests(TestCase):
    timeout = 30

    async def test_stop_service_interrupts_a_running_cell_at_once(self) -> None:
        namespace: dict = {}
        served = await serve_kernel(self, PythonKernel(namespace=namespace))
        started = wait_for(served.client, lambda m: m["msg_type"] == "stream")
        running = served.client.execute(
            "try:\n"
            "    print('spinning', flush=True)\n"
            "    while True:\n"
            "        pass\n"
            "except KeyboardInterrupt:\n"
            "    ended = 'interrupted'\n"
        )
        running.addErrback(lambda f: None)
        await started
        logged: list = []
        from twisted.logger import globalLogPublisher

        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        await served.service.stopService()
        # The cell's thread has ended (stopService waits for it), interrupted;
        # the five-second patience for cells that ignore interrupts was not used.
        self.assertEqual(namespace.get("ended"), "interrupted")
        self.assertFalse(
            [e for e in logged if "still running at shutdown" in e.get("log_format", "")]
        )

    async def test_the_first_cell_after_start_service_is_answered(self) -> None:
        service = (await serve_kernel(self, PythonKernel(), client=False)).service
        for code in ("while True: pass", "1 / 0"):
            client = await connect(self, service.connection_info)
            result = await client.execute("'first'")
            self.assertEqual(result.content["status"], "ok")
            started = wait_for(client, lambda m: m["msg_type"] == "execute_input")
            running = client.execute(code)
            queued = client.execute("'queued'")
            running.addErrback(lambda f: None)
            queued.addErrback(lambda f: None)
            await started
            await service.stopService()
            client.stop()
            service.startService()
        client = await connect(self, service.connection_info)
        result = await client.execute("'first'")
        self.assertEqual(result.content["status"], "ok")


class Stubborn(BaseInterpreter):
    """Runs ``hang`` forever, whatever interrupts it; answers anything else."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging: list[Deferred] = []

    def execute(self, execution):
        if execution.code == "hang":
            d: Deferred = Deferred()
            self.hanging.append(d)
            return d
        return {"status": "ok"}

    def interrupt(self) -> None:
        pass  # ignores interrupts


class RestartTests(TestCase):
    timeout = 30

    async def test_a_request_stuck_at_stop_does_not_hold_up_the_next_start(self) -> None:
        kernel = Stubborn()
        served = await serve_kernel(self, kernel)
        hanging = served.client.execute("hang")
        hanging.addErrback(lambda f: None)
        await served.received(1, "execute_request")
        await served.service.stopService()
        served.client.stop()
        served.service.startService()
        client = await connect(self, served.service.connection_info)
        self.assertEqual((await client.execute("after")).content["status"], "ok")
        # The old execution ends at last: it disturbs nothing.
        kernel.hanging[0].callback({"status": "ok"})
        self.assertEqual((await client.execute("again")).content["status"], "ok")


class ExecutorStopTests(TestCase):
    timeout = 30

    async def test_calls_queued_behind_the_running_one_do_not_run_after_stop(self) -> None:
        executor = ThreadExecutor(reactor)
        executor.start()
        spinning = threading.Event()
        ran: list[str] = []

        def spin() -> None:
            spinning.set()
            while True:
                pass

        failures: dict[str, Any] = {}

        def failed(name: str) -> Any:
            return lambda failure: failures.update({name: failure})

        executor.submit(spin).addErrback(failed("running"))
        queued = executor.submit(ran.append, "queued").addErrback(failed("queued"))
        await deferToThread(spinning.wait, 10)
        await executor.stop()
        await queued
        self.assertTrue(failures["running"].check(KeyboardInterrupt))
        self.assertTrue(failures["queued"].check(CancelledError))
        self.assertEqual(ran, [])


class ExecutorInterruptTests(TestCase):
    timeout = 30

    async def test_an_interrupt_before_the_thread_takes_the_call_interrupts_it(
        self,
    ) -> None:
        # The frontend shows a cell as running from the moment it is handed
        # over; an interrupt that comes before the execution thread has taken
        # it (here: the thread is not started yet) interrupts that cell.
        executor = ThreadExecutor(reactor)
        ran: list[str] = []
        handed = executor.submit(ran.append, "handed over", cell=True)
        executor.interrupt()
        executor.start()
        self.addCleanup(executor.stop)
        await self.assertFailure(handed, KeyboardInterrupt)
        self.assertEqual(ran, [])
        # Only that cell: the next one runs.
        await executor.submit(ran.append, "next", cell=True)
        self.assertEqual(ran, ["next"])

    async def test_a_job_that_is_no_cell_is_not_interrupted_before_it_starts(
        self,
    ) -> None:
        # (a comm message's handler: skipping it would lose the message)
        executor = ThreadExecutor(reactor)
        ran: list[str] = []
        handed = executor.submit(ran.append, "comm")
        executor.interrupt()
        executor.start()
        self.addCleanup(executor.stop)
        await handed
        self.assertEqual(ran, ["comm"])

    async def test_an_interrupt_with_nothing_submitted_is_forgotten(self) -> None:
        executor = ThreadExecutor(reactor)
        executor.start()
        self.addCleanup(executor.stop)
        executor.interrupt()
        ran: list[str] = []
        await executor.submit(ran.append, "later", cell=True)
        self.assertEqual(ran, ["later"])

    async def test_a_sigint_before_the_main_thread_takes_the_cell_interrupts_it(
        self,
    ) -> None:
        # The same for SIGINT (the kernel Jupyter launches): its handler runs
        # on the main thread, here called as the signal would call it, with
        # the execution loop on a thread of the test's.
        from txkernel.python.executor import MainThreadExecutor

        executor = MainThreadExecutor(reactor)
        ran: list[str] = []
        handed = executor.submit(ran.append, "handed over", cell=True)
        executor._on_sigint(signal.SIGINT, None)
        loop = threading.Thread(target=executor._loop)
        loop.start()
        self.addCleanup(loop.join, 10)
        self.addCleanup(executor.stop)
        await self.assertFailure(handed, KeyboardInterrupt)
        await executor.submit(ran.append, "next", cell=True)
        self.assertEqual(ran, ["next"])

