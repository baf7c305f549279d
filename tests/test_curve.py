"""CurveZMQ: key files, the keygen command, and a kernel whose five sockets
are Curve servers, reached by clients with the right key, none or a wrong one."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from dataclasses import replace

import zmq
from twisted.trial.unittest import SkipTest, TestCase

from txkernel.__main__ import main
from txkernel.client import KernelClient, KernelDied, KernelTimeout
from txkernel.connection import read_connection_file
from txkernel.curve import CurveClient, CurveError, CurveServer, read_key_file
from txkernel.echo import EchoKernel
from txkernel.testing import serve_kernel

from .helpers import REPO_ROOT, OtherThread, spawn_twistd
from .test_manager import ManagerTestCase


def keygen(base: str) -> int:
    """``python -m txkernel curve-keygen base``, its report kept out of the test output."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        with contextlib.redirect_stderr(devnull):
            return main(["curve-keygen", base])


def _needs_curve() -> None:
    if not zmq.has("curve"):
        raise SkipTest("libzmq without CurveZMQ")


class KeyFileTests(TestCase):
    def setUp(self) -> None:
        _needs_curve()
        self.base = os.path.abspath(self.mktemp())

    def test_keygen_writes_a_private_secret_and_a_public_key(self) -> None:
        self.assertEqual(keygen(self.base), 0)
        secret, public = self.base + ".key_secret", self.base + ".key"
        self.assertEqual(stat.S_IMODE(os.stat(secret).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(public).st_mode), 0o644)
        server = CurveServer.from_file(secret)
        self.assertEqual(server.public_key, read_key_file(public))
        self.assertEqual(CurveClient.from_files(public).server_key, server.public_key)

    def test_keygen_does_not_overwrite(self) -> None:
        self.assertEqual(keygen(self.base), 0)
        before = read_key_file(self.base + ".key_secret")
        self.assertEqual(keygen(self.base), 1)
        self.assertEqual(read_key_file(self.base + ".key_secret"), before)

    def test_unusable_key_files_are_refused_with_their_reason(self) -> None:
        for text, reason in [
            ("", "found 0"),
            ("short\n", "40 characters"),
            ("~" * 40 + "\n", "not a Z85 key"),
            ("a" * 40 + "\n" + "b" * 40 + "\n", "found 2"),
        ]:
            with open(self.base, "w") as f:
                f.write(text)
            with self.assertRaises(CurveError) as caught:
                read_key_file(self.base)
            self.assertIn(reason, str(caught.exception))
        with self.assertRaises(CurveError) as caught:
            read_key_file(self.base + ".missing")
        self.assertIn("No such file", str(caught.exception))

    def test_a_client_keypair_must_match(self) -> None:
        server_public, _ = zmq.curve_keypair()
        public, secret = zmq.curve_keypair()
        other, _ = zmq.curve_keypair()
        self.assertEqual(CurveClient(server_public, secret_key=secret).public_key, public)
        with self.assertRaises(CurveError):
            CurveClient(server_public, public_key=other, secret_key=secret)


class EncryptedKernelTests(TestCase):
    timeout = 30

    async def serve(self):
        _needs_curve()
        public, secret = zmq.curve_keypair()
        self.server_public = public
        served = await serve_kernel(self, EchoKernel(), client=False, curve=CurveServer(secret))
        self.connection_file = served.service.connection_file
        return served.connection_info

    def client(self, info, curve: CurveClient | None) -> KernelClient:
        client = KernelClient(info, curve=curve)
        client.start()
        self.addCleanup(client.stop)
        return client

    async def unanswered(self, request) -> None:
        """``request()`` gets no answer: libzmq refuses to queue it (the
        handshake failed, so there is no connection) or it times out."""
        try:
            await request()
        except (zmq.Again, KernelTimeout):
            return
        self.fail("an outsider was answered")

    async def test_a_client_with_the_server_key_runs_code(self) -> None:
        info = await self.serve()
        client = self.client(info, CurveClient(self.server_public))
        await client.wait_for_ready(timeout=10)
        result = await client.execute("hello")
        self.assertEqual(result.stream_text(), "hello")
        self.assertGreaterEqual(await client.heartbeat(timeout=5), 0)

    async def test_clients_without_keys_or_with_wrong_keys_get_nothing(self) -> None:
        info = await self.serve()
        wrong_public, _ = zmq.curve_keypair()
        plain = replace(info, curve_publickey="", curve_secretkey="")
        outsiders = [self.client(plain, None), self.client(plain, CurveClient(wrong_public))]
        heard: list[dict] = []
        for outsider in outsiders:
            outsider.watch_iopub(heard.append)

        good = self.client(info, CurveClient(self.server_public))
        await good.wait_for_ready(timeout=10)
        for outsider in outsiders:
            await self.unanswered(lambda o=outsider: o.execute("from an outsider", timeout=1))
            await self.unanswered(lambda o=outsider: o.heartbeat(timeout=0.5))
        result = await good.execute("still serving")
        self.assertEqual(result.stream_text(), "still serving")
        self.assertEqual(heard, [])
        # The outsiders' interrupts (sent when their executions timed out)
        # could not be sent either.
        self.flushLoggedErrors(zmq.Again)

    async def test_the_connection_file_carries_the_keys_for_jupyter_client(self) -> None:
        await self.serve()
        info = read_connection_file(self.connection_file)
        self.assertEqual(info.curve_publickey.encode(), self.server_public)
        # Our client needs only the file (it uses the public key)...
        ours = self.client(info, None)
        await ours.wait_for_ready(timeout=10)
        self.assertEqual((await ours.execute("ours")).stream_text(), "ours")
        # ...and so does jupyter_client (8.10 reads curve_publickey/curve_secretkey).
        thread = OtherThread(self)
        theirs, end = await thread.run(self.jupyter_client, self.connection_file)
        self.addCleanup(thread.run, end)
        reply = await thread.run(
            theirs.execute_interactive, "theirs", timeout=10, output_hook=lambda m: None
        )
        self.assertEqual(reply["content"]["status"], "ok")

    def jupyter_client(self, connection_file: str):
        """(its own thread) A ready jupyter_client blocking client in a context
        of its own (not the process-wide one), and the function that ends both."""
        from jupyter_client import BlockingKernelClient

        context = zmq.Context()
        client = BlockingKernelClient(connection_file=connection_file, context=context)
        client.load_connection_file()
        client.start_channels()

        def end() -> None:
            client.stop_channels()
            context.destroy(linger=0)

        try:
            client.wait_for_ready(timeout=20)
        except BaseException:
            end()
            raise
        return client, end


class LaunchedEncryptedKernelTests(ManagerTestCase):
    async def test_a_launched_kernel_with_a_key_file_and_a_manager_with_its_public_key(self) -> None:
        _needs_curve()
        base = os.path.abspath(self.mktemp())
        self.assertEqual(keygen(base), 0)
        argv = [sys.executable, "-m", "txkernel", "-f", "{connection_file}"]
        argv += ["--curve-secret-key", base + ".key_secret"]
        self.spec("tx-curve", argv=argv, env={"PYTHONPATH": REPO_ROOT})
        manager = self.manager("tx-curve", curve=CurveClient.from_files(base + ".key"))
        await manager.start()
        client = manager.client()
        await client.wait_for_ready()
        self.assertEqual((await client.execute("print('secret')")).stream_text(), "secret\n")
        self.assertEqual((await manager.shutdown()).exit_code, 0)

    async def test_an_unusable_key_file_stops_the_kernel_with_its_reason(self) -> None:
        _needs_curve()
        missing = os.path.abspath(self.mktemp())
        argv = [sys.executable, "-m", "txkernel", "-f", "{connection_file}"]
        self.spec("tx-bad", argv=argv + ["--curve-secret-key", missing])
        manager = self.manager("tx-bad", keep_output=4096, env={"PYTHONPATH": REPO_ROOT})
        with self.assertRaises(KernelDied) as caught:
            await manager.start()
        self.assertIn("--curve-secret-key: key file", str(caught.exception))


class TwistdEncryptedTests(TestCase):
    timeout = 60

    async def test_twistd_serves_with_a_secret_key_file(self) -> None:
        _needs_curve()
        base = os.path.abspath(self.mktemp())
        self.assertEqual(keygen(base), 0)
        proto = spawn_twistd(self, "txkernel", "--curve-secret-key", base + ".key_secret")
        path = (await proto.wait_for(r"jupyter console --existing (\S+)")).group(1)
        info = read_connection_file(path)
        self.assertEqual(info.curve_publickey.encode(), read_key_file(base + ".key"))
        client = KernelClient(replace(info, curve_publickey="", curve_secretkey=""),
                              curve=CurveClient.from_files(base + ".key"))
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready(timeout=20)
        self.assertEqual((await client.execute("print('twistd')")).stream_text(), "twistd\n")
        await client.shutdown()
        self.assertEqual(await proto.ended, 0)

    async def test_twistd_refuses_an_unusable_key_file_in_one_line(self) -> None:
        _needs_curve()
        bad = os.path.abspath(self.mktemp())
        with open(bad, "w") as f:
            f.write("not a key\n")
        proto = spawn_twistd(self, "txkernel", "--curve-secret-key", bad)
        self.assertNotEqual(await proto.ended, 0)
        self.assertIn("--curve-secret-key: key file", proto.output)
        self.assertNotIn("Traceback", proto.output)


class JupyterWrittenFileTests(TestCase):
    timeout = 30

    async def test_a_kernel_uses_the_keypair_jupyter_client_wrote(self) -> None:
        _needs_curve()
        from jupyter_client.connect import write_connection_file

        public, secret = zmq.curve_keypair()
        path = os.path.abspath(self.mktemp()) + ".json"
        write_connection_file(
            path, ip="127.0.0.1", key=os.urandom(16).hex().encode(),
            curve_publickey=public, curve_secretkey=secret,
        )
        served = await serve_kernel(self, EchoKernel(), client=False, connection_file=path)
        info = read_connection_file(path)
        plain = KernelClient(replace(info, curve_publickey="", curve_secretkey=""))
        plain.start()
        self.addCleanup(plain.stop)
        ours = KernelClient(info)  # the file's public key
        ours.start()
        self.addCleanup(ours.stop)
        await ours.wait_for_ready(timeout=10)
        self.assertEqual((await ours.execute("from the file")).stream_text(), "from the file")
        try:
            await plain.kernel_info(timeout=1)
        except (zmq.Again, KernelTimeout):
            pass
        else:
            self.fail("a plain client was answered")
        self.assertEqual(served.connection_info.curve_publickey, public.decode())


class ExposureWarningTests(TestCase):
    def test_an_encrypted_kernel_beyond_loopback_is_not_called_plain_text(self) -> None:
        from twisted.logger import formatEvent, globalLogPublisher

        from txkernel.connection import ConnectionInfo
        from txkernel.exposure import warn_about_exposure

        seen: list[str] = []
        observer = lambda event: seen.append(formatEvent(event))  # noqa: E731
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        _, secret = zmq.curve_keypair() if zmq.has("curve") else (b"", b"x" * 40)
        warn_about_exposure(ConnectionInfo(ip="0.0.0.0", curve_secretkey=secret.decode()))
        warn_about_exposure(ConnectionInfo(ip="0.0.0.0"))
        self.assertEqual(len(seen), 2)
        self.assertIn("encrypted (CurveZMQ)", seen[0])
        self.assertNotIn("plain text", seen[0])
        self.assertIn("plain text", seen[1])


class LaunchedByJupyterClientTests(TestCase):
    timeout = 60

    async def test_jupyter_client_provisions_the_keys_and_the_kernel_uses_them(self) -> None:
        _needs_curve()
        import json

        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        from txkernel.connection import parse_connection_info
        from txkernel.kernelspec import kernel_json

        kernels = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(kernels, "tx-curve"))
        # The kernelspec txkernel installs, which says it supports Curve:
        # jupyter_client's "auto" policy provisions keys only then.
        spec = kernel_json(display_name="txkernel (Curve)", env={"PYTHONPATH": REPO_ROOT})
        self.assertEqual(spec["metadata"]["supported_encryption"], ["curve"])
        with open(os.path.join(kernels, "tx-curve", "kernel.json"), "w") as f:
            json.dump(spec, f)
        thread = OtherThread(self)

        def start():
            km = KernelManager(
                kernel_name="tx-curve",
                kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]),
                transport_encryption="auto",
            )
            km.start_kernel()
            return km

        km = await thread.run(start)

        def stop() -> None:
            if km.is_alive():
                km.shutdown_kernel(now=False)
            km.cleanup_resources()

        self.addCleanup(thread.run, stop)
        info = parse_connection_info(km.get_connection_info(session=False))
        self.assertTrue(info.curve_publickey)
        ours = KernelClient(info)
        ours.start()
        self.addCleanup(ours.stop)
        await ours.wait_for_ready(timeout=30)
        self.assertEqual((await ours.execute("print('provisioned')")).stream_text(), "provisioned\n")
        plain = KernelClient(replace(info, curve_publickey="", curve_secretkey=""))
        plain.start()
        self.addCleanup(plain.stop)
        try:
            await plain.kernel_info(timeout=1)
        except (zmq.Again, KernelTimeout):
            pass
        else:
            self.fail("a plain client was answered")
        await thread.run(stop)
