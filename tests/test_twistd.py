"""``twistd txkernel`` as a user runs it: a separate process, real clients."""

from __future__ import annotations

import json
import os
import stat
import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient
from txkernel.connection import (
    ConnectionInfo,
    read_connection_file,
    write_connection_file,
)

from .helpers import TWISTD, ProcessOutput, spawn_twistd


class PluginTests(TestCase):
    timeout = 60

    async def test_twistd_help_lists_the_plugin_from_anywhere(self) -> None:
        cwd = self.mktemp()
        os.makedirs(cwd)
        proto = ProcessOutput()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        reactor.spawnProcess(
            proto,
            sys.executable,
            [sys.executable, "-c", TWISTD, "--help"],
            env=env,
            path=cwd,
        )
        self.assertEqual(await proto.ended, 0)
        self.assertIn("txkernel", proto.output)


class TwistdTests(TestCase):
    timeout = 60

    async def _start(self, *args: str) -> tuple[ProcessOutput, str, KernelClient]:
        proto = spawn_twistd(self, "txkernel", *args)
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        path = match.group(1)
        client = KernelClient(read_connection_file(path))
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready(timeout=20)
        return proto, path, client

    async def test_serves_a_kernel_and_exits_on_shutdown(self) -> None:
        proto, path, client = await self._start()
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        info = read_connection_file(path)
        self.assertEqual(info.ip, "127.0.0.1")
        self.assertEqual(len(info.key), 64)
        result = await client.execute("print('hello from twistd')")
        self.assertEqual(result.stream_text(), "hello from twistd\n")
        reply = await client.shutdown()
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(await proto.ended, 0)
        self.assertFalse(os.path.exists(path))

    async def test_binds_what_the_connection_file_says(self) -> None:
        path = os.path.abspath(self.mktemp()) + ".json"
        wanted = ConnectionInfo(key="a-key-we-chose")
        # Five distinct ports: all held at once, then let go.
        listening = [
            reactor.listenTCP(0, Factory(), interface="127.0.0.1") for _ in range(5)
        ]
        channels = ("shell", "control", "stdin", "iopub", "hb")
        ports = {ch: p.getHost().port for ch, p in zip(channels, listening, strict=True)}
        for port in listening:
            await port.stopListening()
        write_connection_file(wanted.with_ports(ports), path)
        proto = spawn_twistd(self, "txkernel", "-f", path)
        client = KernelClient(read_connection_file(path))
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready(timeout=20)
        result = await client.execute("print('bound')")
        self.assertEqual(result.stream_text(), "bound\n")
        await client.shutdown()
        self.assertEqual(await proto.ended, 0)
        self.assertTrue(
            os.path.exists(path),
            "a connection file given with -f is not ours to remove",
        )

    async def test_heartbeat_answers_while_a_thread_holds_the_gil(self) -> None:
        _, _, client = await self._start("--kernel", "tests.kernels:ScriptedKernel")
        holding = client.execute("gil 2")
        rtts = []
        while not holding.called:
            rtts.append(await client.heartbeat(timeout=1.0))
        await holding
        # Every ping was answered inside heartbeat()'s 1 s timeout (a frontend
        # declares a kernel dead after 3 s); how fast is the benchmark's job
        # (bench/kernels.py, "heartbeat while the GIL is held").
        self.assertGreaterEqual(len(rtts), 20, "the pings did not span the GIL hold")
        await client.shutdown()


class StartupErrorTests(TestCase):
    timeout = 60

    async def _fails(self, *args: str) -> str:
        proto = spawn_twistd(self, "txkernel", *args)
        code = await proto.ended
        self.assertNotEqual(code, 0)
        self.assertNotIn("Traceback", proto.output)
        return proto.output

    async def test_a_missing_connection_file_is_one_line(self) -> None:
        output = await self._fails("-f", "/nonexistent/kernel.json")
        self.assertIn("connection file /nonexistent/kernel.json: no such file", output)

    async def test_bad_json_is_one_line(self) -> None:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("{not json")
        output = await self._fails("-f", path)
        self.assertIn("not valid JSON", output)

    async def test_a_missing_field_is_one_line(self) -> None:
        path = os.path.abspath(self.mktemp())
        data = ConnectionInfo().to_dict()
        del data["hb_port"]
        with open(path, "w") as f:
            json.dump(data, f)
        output = await self._fails("-f", path)
        self.assertIn("missing field 'hb_port'", output)

    async def test_a_port_in_use_is_one_line(self) -> None:
        taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(taken.stopListening)
        path = os.path.abspath(self.mktemp())
        info = ConnectionInfo().with_ports(
            {
                "shell": taken.getHost().port,
                "control": 0,
                "stdin": 0,
                "iopub": 0,
                "hb": 0,
            }
        )
        write_connection_file(info, path)
        output = await self._fails("-f", path)
        self.assertIn("cannot bind the shell socket", output)

    async def test_a_bad_kernel_class_is_one_line(self) -> None:
        output = await self._fails("--kernel", "no.such.module:Kernel")
        self.assertIn("cannot import no.such.module", output)
