"""The Python kernel as Jupyter launches it: through its kernelspec, in its own process.

jupyter_client's KernelManager starts, interrupts and stops the kernel (in a
dedicated thread, since it blocks); the txkernel client talks to it.
"""

from __future__ import annotations

import os
import signal
import sys

from jupyter_client import KernelManager
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel import kernelspec
from txkernel.client import KernelClient
from txkernel.connection import parse_connection_info, read_connection_file

from .helpers import (
    REPO_ROOT,
    OtherThread,
    ProcessOutput,
    connect_to,
    spawn,
    spawn_twistd,
    wait_for,
)


def install_spec(test, interrupt_mode: str = "signal") -> tuple[str, dict[str, str]]:
    """Install a kernelspec for this test; returns its name and an env that finds it."""
    prefix = os.path.abspath(test.mktemp())
    name = f"txkernel-test-{interrupt_mode}"
    kernelspec.install(name=name, prefix=prefix, interrupt_mode=interrupt_mode)
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return name, env


class LaunchedKernelTestCase(TestCase):
    timeout = 90
    interrupt_mode = "signal"

    async def launch(self) -> KernelClient:
        name, env = install_spec(self, self.interrupt_mode)
        self.thread = OtherThread(self)

        def start() -> KernelManager:
            saved = os.environ.get("JUPYTER_PATH")
            os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
            try:
                km = KernelManager(kernel_name=name)
                km.start_kernel(env=env)
            finally:
                if saved is None:
                    del os.environ["JUPYTER_PATH"]
                else:
                    os.environ["JUPYTER_PATH"] = saved
            return km

        self.km = await self.thread.run(start)
        self.addCleanup(self.thread.run, self._stop_kernel)
        info = parse_connection_info(self.km.get_connection_info(session=False))
        return await connect_to(self, info)

    def _stop_kernel(self) -> None:
        if self.km.is_alive():
            self.km.shutdown_kernel(now=False)
        self.km.cleanup_resources()

    async def interrupt(self) -> None:
        """Interrupt the kernel the way Jupyter does for this kernelspec."""
        await self.thread.run(self.km.interrupt_kernel)

    async def running(self, client: KernelClient, code: str) -> Deferred:
        """Start ``code``, which must print something first; returns the execution."""
        started = wait_for(client, lambda m: m["msg_type"] == "stream")
        execution = client.execute(code)
        await started
        return execution


#: A cell that says "sleeping" only once its main thread is on the sleep line,
#: so an interrupt sent when the text arrives meets the sleep, not the print.
SLEEP_ANNOUNCED = """\
import sys, threading, time
main = threading.get_ident()
def announce():
    while sys._current_frames()[main].f_lineno != 7: pass
    print('sleeping', flush=True)
threading.Thread(target=announce).start()
time.sleep(600)
"""


class SignalInterruptTests(LaunchedKernelTestCase):
    interrupt_mode = "signal"

    async def test_the_spec_declares_signal_interrupts(self) -> None:
        await self.launch()
        self.assertEqual(self.km.kernel_spec.interrupt_mode, "signal")
        self.assertEqual(self.km.kernel_spec.argv[0], sys.executable)

    async def test_sleep_is_interrupted_and_the_namespace_survives(self) -> None:
        client = await self.launch()
        await client.execute("kept = 42")
        execution = await self.running(client, SLEEP_ANNOUNCED)
        await self.interrupt()
        result = await execution
        self.assertEqual(result.content["ename"], "KeyboardInterrupt")
        shown = "\n".join(result.content["traceback"])
        self.assertIn("time.sleep(600)", shown)
        self.assertNotIn("txkernel", shown)
        after = await client.execute("kept")
        self.assertEqual(
            after.of_type("execute_result")[0]["content"]["data"]["text/plain"], "42"
        )

    async def test_a_busy_loop_is_interrupted(self) -> None:
        client = await self.launch()
        execution = await self.running(
            client, "print('spinning', flush=True)\nwhile True:\n    pass"
        )
        await self.interrupt()
        self.assertEqual((await execution).content["ename"], "KeyboardInterrupt")

    async def test_a_pending_input_is_interrupted(self) -> None:
        client = await self.launch()
        asked: Deferred[str] = Deferred()
        execution = client.execute(
            "input('waiting> ')",
            on_input=lambda p, pw: (asked.callback(p), Deferred())[1],
        )
        self.assertEqual(await asked, "waiting> ")
        await self.interrupt()
        self.assertEqual((await execution).content["ename"], "KeyboardInterrupt")
        again = await client.execute(
            "input('again> ')", on_input=lambda p, pw: "answered"
        )
        self.assertEqual(
            again.of_type("execute_result")[0]["content"]["data"]["text/plain"],
            "'answered'",
        )

    async def test_a_hundred_thousand_lines_arrive_in_order(self) -> None:
        client = await self.launch()
        result = await client.execute("for i in range(100000):\n    print(i)")
        self.assertEqual(result.stream_text(), "".join(f"{i}\n" for i in range(100000)))


class JupyterClientTests(LaunchedKernelTestCase):
    """jupyter_client's own blocking client against the launched kernel."""

    async def test_password_input_thread_output_and_rich_display(self) -> None:
        await self.launch()
        code = (
            "import getpass, threading\n"
            "name = input('name: ')\n"
            "pw = getpass.getpass('password: ')\n"
            "t = threading.Thread(target=lambda: print('thread says', name))\n"
            "t.start(); t.join()\n"
            "class Card:\n"
            "    def _repr_html_(self): return '<i>card</i>'\n"
            "    def _repr_markdown_(self): return '*card*'\n"
            "    def __repr__(self): return 'Card()'\n"
            "display(Card())\n"
            "len(pw)"
        )

        def drive() -> tuple[dict, list[dict], list[tuple[str, bool]]]:
            kc = self.km.client()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=30)
                asked: list[tuple[str, bool]] = []
                outputs: list[dict] = []

                def stdin_hook(msg: dict) -> None:
                    password = msg["content"]["password"]
                    asked.append((msg["content"]["prompt"], password))
                    kc.input("s3cret" if password else "ann")

                reply = kc.execute_interactive(
                    code,
                    output_hook=outputs.append,
                    stdin_hook=stdin_hook,
                    allow_stdin=True,
                    timeout=30,
                )
                return reply, outputs, asked
            finally:
                kc.stop_channels()

        reply, outputs, asked = await self.thread.run(drive)
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(asked, [("name: ", False), ("password: ", True)])
        text = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")
        self.assertEqual(text, "thread says ann\n")
        [shown] = [m["content"]["data"] for m in outputs if m["msg_type"] == "display_data"]
        self.assertEqual(
            shown, {"text/plain": "Card()", "text/html": "<i>card</i>", "text/markdown": "*card*"}
        )
        [result] = [m for m in outputs if m["msg_type"] == "execute_result"]
        self.assertEqual(result["content"]["data"]["text/plain"], "6")
        self.assertNotIn("s3cret", repr(outputs))


class MessageInterruptTests(LaunchedKernelTestCase):
    interrupt_mode = "message"

    async def test_interrupt_request_reaches_sleep_and_busy_loops(self) -> None:
        client = await self.launch()
        self.assertEqual(self.km.kernel_spec.interrupt_mode, "message")
        for code in (
            "import time\nprint('s', flush=True)\ntime.sleep(600)",
            "print('l', flush=True)\nwhile True: pass",
        ):
            execution = await self.running(client, code)
            await self.interrupt()
            self.assertEqual((await execution).content["ename"], "KeyboardInterrupt")
        self.assertEqual((await client.execute("1 + 1")).content["status"], "ok")


class ShutdownTests(LaunchedKernelTestCase):
    async def test_shutdown_request_ends_the_process(self) -> None:
        client = await self.launch()
        reply = await client.shutdown()
        self.assertEqual(reply["content"], {"status": "ok", "restart": False})

        def wait_exit() -> int | None:
            self.km.provisioner.process.wait(timeout=30)
            return self.km.provisioner.process.returncode

        self.assertEqual(await self.thread.run(wait_exit), 0)


class MainModuleTests(TestCase):
    """``python -m txkernel`` run by hand."""

    timeout = 60

    async def test_it_serves_and_sigterm_stops_it_cleanly(self) -> None:
        proto = spawn(self, "-m", "txkernel")
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        connection_file = match.group(1)
        client = await connect_to(self, read_connection_file(connection_file))
        result = await client.execute("import threading\nthreading.current_thread().name")
        self.assertEqual(
            result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "'MainThread'"
        )
        proto.transport.signalProcess("TERM")
        self.assertEqual(await proto.ended, 0, proto.output)
        self.assertFalse(os.path.exists(connection_file))


    async def test_a_sigint_while_it_starts_interrupts_nothing(self) -> None:
        # jupyter_client sends SIGINT before every shutdown_request, so one can
        # come while the kernel is still starting.  Here it is made pending
        # before the kernel runs (blocked, then sent; both survive exec), so
        # it arrives exactly when the kernel first lets signals in.
        proto = spawn(self, "-c", SIGINT_PENDING, "-m", "txkernel")
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        client = await connect_to(self, read_connection_file(match.group(1)))
        result = await client.execute("6 * 7")
        self.assertEqual(
            result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "42"
        )
        await client.shutdown()
        self.assertEqual(await proto.ended, 0, proto.output)
        self.assertNotIn("KeyboardInterrupt", proto.output)


#: ``python -c SIGINT_PENDING args...``: runs ``python args...`` with a SIGINT
#: pending and blocked.
SIGINT_PENDING = """\
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
os.kill(os.getpid(), signal.SIGINT)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


class TwistdInterruptTests(TestCase):
    """Under twistd the reactor has the main thread and cells run on a worker."""

    timeout = 90

    async def test_sigint_interrupts_a_cell_and_stops_twistd_when_idle(self) -> None:
        proto = spawn_twistd(self, "txkernel")
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        connection_file = match.group(1)
        client = await connect_to(self, read_connection_file(connection_file))
        started = wait_for(client, lambda m: m["msg_type"] == "stream")
        execution = client.execute(
            "print('spinning', flush=True)\nwhile True:\n    pass"
        )
        await started
        proto.transport.signalProcess("INT")
        self.assertEqual((await execution).content["ename"], "KeyboardInterrupt")
        self.assertEqual((await client.execute("'alive'")).content["status"], "ok")
        proto.transport.signalProcess("INT")
        # Idle, SIGINT stops twistd cleanly; twistd then ends itself with the
        # signal that stopped it, as Twisted does for every twistd program.
        await proto.ended
        self.assertEqual(proto.signal, signal.SIGINT)
        self.assertIn("Main loop terminated", proto.output)
        self.assertFalse(os.path.exists(connection_file))


class ConformanceTests(TestCase):
    timeout = 300

    async def test_jupyter_kernel_test_passes(self) -> None:
        name, env = install_spec(self)
        env["TXKERNEL_TEST_KERNEL"] = name
        proto = ProcessOutput()
        reactor.spawnProcess(
            proto,
            sys.executable,
            [sys.executable, "-m", "unittest", "-v", "tests.conformance_kernel"],
            env=env,
            path=REPO_ROOT,
        )
        code = await proto.ended
        self.assertEqual(code, 0, proto.output)
        self.assertRegex(proto.output, r"Ran \d+ tests")
