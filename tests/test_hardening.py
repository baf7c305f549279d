"""Hostile and careless peers against a live kernel on loopback: bad headers,
oversized frames, empty keys, exposed addresses.  Each test here failed
before the defence it checks was built (issue 14)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.trial.unittest import TestCase

from txkernel.channels import KernelSockets
from txkernel.connection import (
    ConnectionFileError,
    ConnectionInfo,
    parse_connection_info,
    read_connection_file,
)
from txkernel.wire import Limits

from .helpers import connect, serve, spawn, spawn_twistd
from .hostile import LogWatcher, RawPeer, header, reply_on, signed_frames
from .kernels import ScriptedKernel


class BadHeaderTests(TestCase):
    """Defect 1, the wire part: a signed request with wrongly typed header
    fields is dropped with a logged reason and never reaches dispatch."""

    timeout = 30

    async def test_a_list_or_dict_msg_id_is_dropped_and_shell_keeps_serving(
        self,
    ) -> None:
        logs = LogWatcher(self)
        kernel = ScriptedKernel()
        service = await serve(self, kernel)
        client = await connect(self, service)
        info = service.connection_info
        peer = RawPeer(self, info, "shell")
        for value in (["a", "list"], {"a": "dict"}):
            peer.send(signed_frames(info, header(msg_id=value), {"code": "x"}))
        # The peer's messages are read in order: once this one is answered,
        # the bad ones before it were read (and dropped).
        peer.send(signed_frames(info, header("kernel_info_request"), {}))
        await reply_on(peer, "kernel_info_reply")
        result = await client.execute("still serving", timeout=10)
        self.assertEqual(result.content["status"], "ok")
        self.assertEqual(
            len(logs.matching("header field 'msg_id' must be a string")), 2, logs.lines
        )

    async def test_each_field_of_the_wrong_type_is_dropped(self) -> None:
        logs = LogWatcher(self)
        kernel = ScriptedKernel()
        service = await serve(self, kernel)
        client = await connect(self, service)
        info = service.connection_info
        peer = RawPeer(self, info, "shell")
        control = RawPeer(self, info, "control")
        bad = [
            dict(msg_type=["execute_request"]),
            dict(session=1),
            dict(username={}),
            dict(version=5.4),
            dict(date=[2026]),
        ]
        for fields in bad:
            peer.send(signed_frames(info, header(**fields)))
            control.send(
                signed_frames(info, {**header("kernel_info_request"), **fields}, {})
            )
        for part in ("parent", "metadata", "content"):
            peer.send(signed_frames(info, header(), **{part: [1, 2]}))
        # Each connection delivers in order: once this is answered, the
        # bad messages before it on control were read.
        control.send(signed_frames(info, header("kernel_info_request"), {}))
        await reply_on(control, "kernel_info_reply")
        peer.send(signed_frames(info, header("kernel_info_request"), {}))
        await reply_on(peer, "kernel_info_reply")
        self.assertEqual(
            (await client.execute("ok", timeout=10)).content["status"], "ok"
        )
        reply = await client.kernel_info(channel="control", timeout=10)
        self.assertEqual(reply["content"]["status"], "ok")
        dropped = logs.matching("Dropped a message on")
        self.assertGreaterEqual(len(dropped), 2 * len(bad) + 3, logs.lines)


class UnauthenticatedMemoryTests(TestCase):
    """Defect 3: nothing of an unverified message is kept; frames are bounded."""

    timeout = 30

    async def test_huge_signatures_are_refused_before_anything_is_kept(self) -> None:
        logs = LogWatcher(self)
        kernel = ScriptedKernel()
        service = await serve(self, kernel)
        client = await connect(self, service)
        info = service.connection_info
        peer = RawPeer(self, info, "shell")
        history = service.core.messenger.wire.replay_history
        kept = len(history)
        for i in range(20):
            frames = signed_frames(info, header(), {"code": f"{i}"})
            frames[1] = b"%02d" % i + b"f" * (1024 * 1024)
            peer.send(frames)
        peer.send(signed_frames(info, header("kernel_info_request"), {}))
        await reply_on(peer, "kernel_info_reply")
        # Only the closing kernel_info_request, which was signed, is kept.
        self.assertEqual(len(history), kept + 1, "unverified signatures were kept")
        self.assertEqual(len(logs.matching("signature of 1048578 bytes")), 20)
        self.assertEqual(
            (await client.execute("ok", timeout=10)).content["status"], "ok"
        )


class FrameLimitTests(TestCase):
    """The sockets themselves refuse what is over the limits."""

    timeout = 30

    def setUp(self) -> None:
        self.received: list[tuple[str, list[bytes]]] = []
        self.arrived: Deferred[None] | None = None
        self.sockets = KernelSockets(
            reactor,
            ConnectionInfo(),
            self._got,
            lambda topic: None,
            limits=Limits(max_frames=8, max_frame_bytes=1000, max_message_bytes=3000),
        )
        self.info = self.sockets.bind()
        self.addCleanup(self.sockets.close)

    def _got(self, channel: str, frames: list[bytes]) -> None:
        self.received.append((channel, frames))
        if self.arrived is not None and frames[-1] == b"probe":
            d, self.arrived = self.arrived, None
            d.callback(None)

    def probe(self, peer: RawPeer) -> Deferred[None]:
        """Fires once a small message sent after the hostile one arrives."""
        self.arrived = Deferred()
        sender = LoopingCall(peer.send, [b"probe"])
        sender.start(0.01)
        return self.arrived.addBoth(lambda r: (sender.stop(), r)[1])

    async def test_too_many_frames_are_dropped_and_logged(self) -> None:
        logs = LogWatcher(self)
        peer = RawPeer(self, self.info, "shell")
        peer.send([b"f"] * 20)
        await self.probe(peer)
        self.assertTrue(all(len(f) <= 8 for _, f in self.received))
        self.assertEqual(len(logs.matching("Dropped a message")), 1, logs.lines)

    async def test_too_many_bytes_are_dropped(self) -> None:
        peer = RawPeer(self, self.info, "control")
        peer.send([b"x" * 900] * 5)
        await self.probe(peer)
        self.assertEqual([len(f) for _, f in self.received if len(f) > 2], [])

    async def test_a_frame_over_the_size_limit_disconnects_the_peer(self) -> None:
        peer = RawPeer(self, self.info, "shell")
        peer.send([b"x" * 5000])
        await self.probe(peer)
        self.assertEqual(
            [f for _, f in self.received if any(len(x) > 1000 for x in f)], []
        )


def free_ports() -> dict[str, int]:
    """Five loopback ports free a moment ago."""
    ports = {}
    listening = []
    for channel in ("shell", "control", "stdin", "iopub", "hb"):
        port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        listening.append(port)
        ports[channel] = port.getHost().port
    for port in listening:
        port.stopListening()
    return ports


def _write(test, data: dict) -> str:
    path = os.path.abspath(test.mktemp()) + ".json"
    with open(path, "w") as f:
        json.dump(data, f)
    return path


class EmptyKeyTests(TestCase):
    """Defect 4: an empty key is refused unless explicitly allowed, then warned about."""

    timeout = 60

    def test_an_empty_key_is_refused_with_a_reason(self) -> None:
        data = ConnectionInfo(key="").to_dict()
        error = self.assertRaises(
            ConnectionFileError, parse_connection_info, data, "f.json"
        )
        self.assertIn("'key' is empty", str(error))
        self.assertEqual("\n" in str(error), False)
        self.assertEqual(parse_connection_info(data, allow_empty_key=True).key, "")

    async def test_twistd_refuses_it_in_one_line(self) -> None:
        path = _write(self, ConnectionInfo(key="").to_dict())
        proto = spawn_twistd(self, "txkernel", "-f", path)
        self.assertNotEqual(await proto.ended, 0)
        self.assertIn("'key' is empty", proto.output)
        self.assertEqual(len(proto.output.strip().splitlines()), 1, proto.output)

    async def test_python_m_txkernel_refuses_it_in_one_line(self) -> None:
        path = _write(self, ConnectionInfo(key="").to_dict())
        proto = spawn(self, "-m", "txkernel", "-f", path)
        self.assertEqual(await proto.ended, 1)
        self.assertEqual(len(proto.output.strip().splitlines()), 1, proto.output)
        self.assertIn("'key' is empty", proto.output)

    async def test_allowed_explicitly_it_serves_with_a_warning(self) -> None:
        path = _write(self, ConnectionInfo(key="").with_ports(free_ports()).to_dict())
        proto = spawn(
            self,
            "-m",
            "txkernel",
            "-f",
            path,
            "--allow-empty-key",
            "--kernel",
            "tests.kernels:ScriptedKernel",
        )
        await proto.wait_for("the connection key is empty")
        client_info = read_connection_file(path, allow_empty_key=True)
        from txkernel.client import KernelClient

        client = KernelClient(client_info)
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready(timeout=20)
        self.assertEqual(
            (await client.execute("unsigned", timeout=10)).content["status"], "ok"
        )
        await client.shutdown()
        self.assertEqual(await proto.ended, 0)


class ExposureTests(TestCase):
    """Defect 5: binding beyond loopback is warned about, clearly."""

    timeout = 60

    async def _warns(self, proto) -> None:
        await proto.wait_for("jupyter console --existing")
        self.assertIn("WARNING: binding 0.0.0.0, beyond loopback", proto.output)
        self.assertIn("plain text", proto.output)

    async def test_python_m_txkernel_warns(self) -> None:
        proto = spawn(
            self,
            "-m",
            "txkernel",
            "--ip",
            "0.0.0.0",
            "--kernel",
            "tests.kernels:ScriptedKernel",
        )
        await self._warns(proto)

    async def test_twistd_warns(self) -> None:
        proto = spawn_twistd(
            self,
            "txkernel",
            "--ip",
            "0.0.0.0",
            "--kernel",
            "tests.kernels:ScriptedKernel",
        )
        await self._warns(proto)

    def test_loopback_is_quiet(self) -> None:
        from txkernel.exposure import is_loopback

        for ip in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
            self.assertTrue(is_loopback(ip), ip)
        for ip in ("0.0.0.0", "192.168.1.2", "::", "example.org"):
            self.assertFalse(is_loopback(ip), ip)


class TwistdStartupTests(TestCase):
    """Defect 7: a twistd startup error is its one-line reason, nothing else."""

    timeout = 60

    async def test_a_bad_connection_file_prints_only_the_reason(self) -> None:
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("{not json")
        proto = spawn_twistd(self, "txkernel", "-f", path)
        self.assertEqual(await proto.ended, 1)
        lines = proto.output.strip().splitlines()
        self.assertEqual(len(lines), 1, proto.output)
        self.assertIn("not valid JSON", lines[0])


class IpcTests(TestCase):
    """Defect 6: ipc sockets get private, distinct paths and are removed on exit."""

    timeout = 60

    def setUp(self) -> None:
        # Short: a socket path has at most 107 bytes.
        self.runtime = tempfile.mkdtemp(prefix="txk-test-")
        self.addCleanup(shutil.rmtree, self.runtime, True)
        self.patch(os, "environ", {**os.environ, "JUPYTER_RUNTIME_DIR": self.runtime})

    async def test_without_a_connection_file_paths_are_private_and_removed(
        self,
    ) -> None:
        service = await serve(self, transport="ipc")
        info = service.connection_info
        ports = [info.port(ch) for ch in ("shell", "control", "stdin", "iopub", "hb")]
        self.assertEqual(len(set(ports)), 5, ports)
        self.assertNotIn(0, ports)
        directory = os.path.dirname(info.ip)
        self.assertEqual(os.path.dirname(directory), self.runtime)
        self.assertEqual(stat.S_IMODE(os.stat(directory).st_mode), 0o700)
        paths = [f"{info.ip}-{p}" for p in ports]
        for path in paths:
            self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode), path)
        self.assertEqual(read_connection_file(service.connection_file), info)
        client = await connect(self, service)
        self.assertEqual((await client.execute("over ipc")).content["status"], "ok")
        client.stop()
        await service.stopService()
        self.assertEqual([p for p in paths if os.path.exists(p)], [])
        self.assertFalse(os.path.exists(directory))

    async def test_a_jupyter_ipc_file_leaves_no_sockets_after_sigterm(self) -> None:
        base = os.path.join(self.runtime, "kernel-ipc")
        info = ConnectionInfo(ip=base, transport="ipc").with_ports(
            {"shell": 1, "control": 2, "stdin": 3, "iopub": 4, "hb": 5}
        )
        path = _write(self, info.to_dict())
        proto = spawn(
            self,
            "-m",
            "txkernel",
            "-f",
            path,
            "--kernel",
            "tests.kernels:ScriptedKernel",
        )
        client = await connect_to_file(self, path)
        self.assertEqual((await client.execute("over ipc")).content["status"], "ok")
        self.assertTrue(os.path.exists(base + "-1"))
        proto.transport.signalProcess("TERM")
        self.assertEqual(await proto.ended, 0)
        self.assertEqual([n for n in range(1, 6) if os.path.exists(f"{base}-{n}")], [])

    async def test_twistd_ipc_without_a_file_removes_its_sockets(self) -> None:
        proto = spawn_twistd(
            self,
            "txkernel",
            "--transport",
            "ipc",
            "--kernel",
            "tests.kernels:ScriptedKernel",
        )
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        info = read_connection_file(match.group(1))
        client = await connect_to_file(self, match.group(1))
        await client.shutdown()
        self.assertEqual(await proto.ended, 0)
        directory = os.path.dirname(info.ip)
        self.assertTrue(directory.startswith(self.runtime), directory)
        self.assertFalse(os.path.exists(directory))


async def connect_to_file(test, path: str):
    from .helpers import connect_to

    return await connect_to(test, read_connection_file(path), timeout=20)


class TwistdSigtermTests(TestCase):
    """Defect 8: SIGTERM to twistd while a cell runs stops at once and exits 0."""

    timeout = 60

    async def test_sigterm_during_a_cell_exits_0_with_output_delivered(self) -> None:
        from .helpers import wait_for_stream

        proto = spawn_twistd(self, "txkernel")
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        path = match.group(1)
        client = await connect_to_file(self, path)
        started = wait_for_stream(client, "started\n")
        running = client.execute(
            "import time\nprint('started')\ntime.sleep(30)\nprint('never')"
        )
        running.addErrback(lambda _: None)
        await started
        began = reactor.seconds()
        proto.transport.signalProcess("TERM")
        code = await proto.ended
        elapsed = reactor.seconds() - began
        self.assertEqual((code, proto.signal), (0, None), proto.output)
        self.assertFalse(os.path.exists(path), "the connection file was left behind")
        # The kernel used to wait 5 s for the cell (a detach timeout).
        self.assertLess(elapsed, 4.0, proto.output)


class IpcPathTests(TestCase):
    def test_numbers_from_a_connection_file_keep_its_prefix(self) -> None:
        from txkernel.ipc import choose_socket_paths

        info = ConnectionInfo(ip="127.0.0.1", transport="ipc").with_ports(
            {"shell": 11, "control": 12, "stdin": 13, "iopub": 14, "hb": 15}
        )
        self.assertEqual(choose_socket_paths(info), (info, None))
