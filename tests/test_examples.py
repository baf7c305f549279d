"""examples/web_counter.tac run as its README says: ``twistd -ny examples/web_counter.tac``."""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody

from txkernel.connection import read_connection_file
from txkernel.testing import connect, wait_for

from .helpers import REPO_ROOT, ProcessOutput

TAC = os.path.join(REPO_ROOT, "examples", "web_counter.tac")
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class WebCounterExampleTests(TestCase):
    timeout = 60

    async def test_the_site_keeps_serving_while_a_cell_runs_and_sees_what_cells_change(self) -> None:
        runtime = os.path.abspath(self.mktemp())
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)  # twistd writes its twistd.pid here
        env = dict(os.environ, WEB_PORT="0", JUPYTER_RUNTIME_DIR=runtime, PYTHONUNBUFFERED="1")
        proto = ProcessOutput()
        process = reactor.spawnProcess(
            proto, sys.executable, [sys.executable, TWISTD, "-ny", TAC], env=env, path=cwd
        )
        self.addCleanup(
            lambda: proto.ended if proto.ended.called else (process.signalProcess("KILL"), proto.ended)[1]
        )
        path = (await proto.wait_for(r"jupyter console --existing (\S+)")).group(1)
        port = int((await proto.wait_for(r"listening on http://127\.0\.0\.1:(\d+)/")).group(1))
        self.assertTrue(path.startswith(runtime))
        url = f"http://127.0.0.1:{port}/".encode()
        agent = Agent(reactor)

        async def get() -> str:
            response = await agent.request(b"GET", url)
            return (await readBody(response)).decode()

        self.assertEqual(await get(), "Hello from Twisted (request 1)\n")
        client = await connect(self, read_connection_file(path), timeout=20)

        started = wait_for(client, lambda m: m["msg_type"] == "stream")
        busy = client.execute(
            "import time\nprint('busy', flush=True)\nt = time.time()\n"
            "while time.time() - t < 1.5:\n    pass\n'done'"
        )
        await started
        answered_while_busy = 0
        while not busy.called:
            await get()
            if not busy.called:
                answered_while_busy += 1
        self.assertEqual((await busy).content["status"], "ok")
        self.assertGreaterEqual(answered_while_busy, 3)

        await client.execute("app.message = 'Changed by a cell'")
        body = await get()
        self.assertTrue(body.startswith("Changed by a cell (request "), body)
        count = (await client.execute("app.requests")).of_type("execute_result")
        self.assertEqual(count[0]["content"]["data"]["text/plain"], body.split("request ")[1].split(")")[0])

        proto.transport.signalProcess("TERM")
        await proto.ended
        self.assertFalse(os.path.exists(path))


class RunInKernelExampleTests(TestCase):
    timeout = 60

    async def test_it_prints_the_output_of_a_fresh_kernel(self) -> None:
        from txkernel import kernelspec

        prefix = os.path.abspath(self.mktemp())
        kernelspec.install(name="txkernel-example-test", prefix=prefix)
        env = dict(
            os.environ,
            JUPYTER_PATH=os.path.join(prefix, "share", "jupyter"),
            PYTHONPATH=REPO_ROOT,
        )
        proto = ProcessOutput()
        script = os.path.join(REPO_ROOT, "examples", "run_in_kernel.py")
        reactor.spawnProcess(
            proto,
            sys.executable,
            [sys.executable, script, "txkernel-example-test", "print(6 * 7)\n'done'"],
            env=env,
        )
        self.assertEqual(await proto.ended, 0, proto.output)
        self.assertEqual(proto.output, "42\n'done'\n")
