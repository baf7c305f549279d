"""``python -m txkernel.remote`` as a plain process, answering a stand-in gateway.

The test plays the gateway's part of the launch protocol itself: it listens
on a response address, gives the launcher an RSA public key, decrypts the
connection info that comes back, connects a client to the kernel, and ends
it through the launcher's communication port.  So are checked: the
Kubernetes recipe's container command (the Dockerfile's ``CMD``) with the
environment that ``kernel-pod.yaml.j2`` gives the pod, as rendered by the
shipped ``launch_pod.py``; and the ipc transport (a private 0700 directory,
socket files removed on exit).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from typing import Any

import yaml
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from txkernel import remote_kernelspecs
from txkernel.connection import ConnectionInfo
from txkernel.testing import connect

from .gateway import gateway_python
from .helpers import REPO_ROOT, ProcessOutput
from .jupyter_server import bounded, observe

DOCKERFILE = os.path.join(REPO_ROOT, "txkernel", "kubernetes", "Dockerfile")


class _Receive(Protocol):
    """Reads one connection to its end (the launcher writes, then closes)."""

    def connectionMade(self) -> None:
        self.data = b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any = None) -> None:
        received = self.factory.received  # type: ignore[attr-defined]
        if not received.called:
            received.callback(self.data)


class StandInGateway:
    """The gateway's side of the launch protocol: a key pair and a response
    address that receives one payload (``received`` fires with it)."""

    def __init__(self, test: TestCase) -> None:
        from Cryptodome.PublicKey import RSA

        self.private = RSA.generate(2048)
        self.public_key = base64.b64encode(
            self.private.publickey().export_key("DER")
        ).decode("ascii")
        factory = Factory.forProtocol(_Receive)
        self.received: Deferred[bytes] = Deferred()
        factory.received = self.received  # type: ignore[attr-defined]
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        test.addCleanup(self.port.stopListening)
        self.response_address = f"127.0.0.1:{self.port.getHost().port}"

    async def connection_info(self) -> dict[str, Any]:
        """Fires with the launcher's connection info, decrypted."""
        from Cryptodome.Cipher import AES, PKCS1_v1_5
        from Cryptodome.Util.Padding import unpad

        payload = json.loads(
            base64.b64decode(
                await bounded(observe(self.received), 30, "the connection info")
            )
        )
        aes_key = PKCS1_v1_5.new(self.private).decrypt(
            base64.b64decode(payload["key"]), None
        )
        sealed = base64.b64decode(payload["conn_info"])
        plain = unpad(AES.new(aes_key, AES.MODE_ECB).decrypt(sealed), 16)
        return dict(json.loads(plain))


def tell_launcher(info: dict[str, Any], request: dict[str, Any]) -> None:
    """Send one request to the launcher's communication port."""
    with socket.create_connection(("127.0.0.1", info["comm_port"]), timeout=10) as s:
        s.sendall(json.dumps(request).encode())


def container_command() -> list[str]:
    """The Dockerfile's ``CMD``, with this Python for the image's ``python``."""
    with open(DOCKERFILE) as f:
        (line,) = [line for line in f if line.startswith("CMD ")]
    command = json.loads(line[4:])
    assert command[0] == "python", command
    return [sys.executable, *command[1:]]


class LauncherTests(TestCase):
    timeout = 90

    def base_environ(self, runtime: str = "") -> dict[str, str]:
        """A bare environment, as a container has, with a runtime directory."""
        if not runtime:
            runtime = os.path.abspath(self.mktemp())
            os.makedirs(runtime)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": runtime,
            "JUPYTER_RUNTIME_DIR": runtime,
            "PYTHONPATH": REPO_ROOT,
        }

    async def run_launcher(
        self, argv: list[str], environ: dict[str, str]
    ) -> ProcessOutput:
        output = ProcessOutput()
        process = reactor.spawnProcess(output, argv[0], argv, env=environ)

        async def end() -> None:
            if not output.ended.called:
                process.signalProcess("KILL")
                await bounded(observe(output.ended), 30, "the launcher to die")

        self.addCleanup(end)
        return output

    async def finish(self, output: ProcessOutput, info: dict[str, Any]) -> None:
        """End the kernel as a gateway does (SIGTERM through the
        communication port); it exits with status 0."""
        tell_launcher(info, {"signum": 0})
        tell_launcher(info, {"signum": 15})
        code = await bounded(observe(output.ended), 30, "the kernel to exit")
        self.assertEqual(code, 0, output.output)

    def render_pod(
        self, gateway: StandInGateway, kernel_id: str, python: str = sys.executable
    ) -> dict[str, Any]:
        """The pod manifest the shipped launch_pod.py renders for the gateway,
        run by ``python`` (the gateway's)."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        spec = remote_kernelspecs.remote_kernel_json(
            "eg-kubernetes", image="registry.example/txkernel:1"
        )
        remote_kernelspecs.write_remote_kernelspec(directory, "eg-kubernetes", spec)
        # The gateway formats the spec's argv: its own Python, the
        # kernelspec's directory and the launch values.
        values = {
            "resource_dir": directory,
            "kernel_id": kernel_id,
            "port_range": "0..0",
            "response_address": gateway.response_address,
            "public_key": gateway.public_key,
        }
        argv = [python] + [a.format(**values) for a in spec["argv"][1:]]
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "KERNEL_POD_NAME": f"alice-{kernel_id}",
            "KERNEL_NAMESPACE": "notebooks",
            "KERNEL_USERNAME": 'alice: "x"\n- y',
            "KERNEL_UID": "1000",
            "KERNEL_IMAGE": spec["metadata"]["process_proxy"]["config"]["image_name"],
        }
        rendered = subprocess.run(
            [*argv, "--dry-run"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return dict(yaml.safe_load(rendered.stdout))

    async def test_pod_manifest_in_the_gateways_environment(self) -> None:
        """Enterprise Gateway runs launch_pod.py with its own Python (its
        virtualenv here): the manifest is the same there."""
        python = await gateway_python()
        gateway = StandInGateway(self)
        kernel_id = "5d7c1f2a-3b4e-4f60-8a9b-0c1d2e3f4a5b"
        self.assertEqual(
            self.render_pod(gateway, kernel_id, python),
            self.render_pod(gateway, kernel_id),
        )

    async def test_pod_command_with_the_pod_environment(self) -> None:
        """The kernel pod the recipe describes: the manifest names the image,
        the labels the gateway looks for and the launch values; the image's
        command, run with exactly the pod's environment, answers the gateway
        and serves the kernel on the ports it reported."""
        gateway = StandInGateway(self)
        kernel_id = "0c4b3c67-8c0e-4c0d-9a4b-2f0e6f1d9a10"
        pod = self.render_pod(gateway, kernel_id)
        self.assertEqual(pod["kind"], "Pod")
        self.assertEqual(pod["metadata"]["name"], f"alice-{kernel_id}")
        self.assertEqual(pod["metadata"]["namespace"], "notebooks")
        self.assertEqual(pod["metadata"]["labels"]["kernel_id"], kernel_id)
        self.assertEqual(pod["metadata"]["labels"]["component"], "kernel")
        self.assertEqual(pod["spec"]["securityContext"]["runAsUser"], 1000)
        (container,) = pod["spec"]["containers"]
        self.assertEqual(container["image"], "registry.example/txkernel:1")
        pod_env = {e["name"]: e["value"] for e in container["env"]}
        self.assertEqual(pod_env["KERNEL_ID"], kernel_id)
        self.assertEqual(pod_env["RESPONSE_ADDRESS"], gateway.response_address)
        self.assertEqual(pod_env["PUBLIC_KEY"], gateway.public_key)
        # A client's value stays one string, whatever YAML it holds.
        self.assertEqual(pod_env["KERNEL_USERNAME"], 'alice: "x"\n- y')

        output = await self.run_launcher(
            container_command(), {**self.base_environ(), **pod_env}
        )
        info = await gateway.connection_info()
        self.assertEqual(info["kernel_id"], kernel_id)
        self.assertEqual(info["transport"], "tcp")
        # Bound on every address of the pod; the gateway connects to the
        # pod's own address (here: loopback).
        self.assertEqual(info["ip"], "0.0.0.0")
        ports = {k: v for k, v in info.items() if k.endswith("_port")}
        ports.pop("comm_port")
        client = await connect(
            self,
            ConnectionInfo(
                ip="127.0.0.1",
                key=info["key"],
                signature_scheme=info["signature_scheme"],
                **ports,
            ),
        )
        result = await client.execute("import os\nprint(os.environ['KERNEL_ID'])")
        self.assertEqual(result.stream_text(), kernel_id + "\n")
        client.stop()
        await self.finish(output, info)

    def ipc_argv(self, gateway: StandInGateway) -> list[str]:
        return [
            sys.executable,
            "-m",
            "txkernel.remote",
            "--kernel-id",
            "k-ipc",
            "--response-address",
            gateway.response_address,
            "--public-key",
            gateway.public_key,
            "--transport",
            "ipc",
            "--ip",
            "127.0.0.1",
        ]

    async def test_ipc_transport(self) -> None:
        """With --transport ipc the sockets are files in a private (0700)
        directory of the runtime directory, named in the connection info;
        the kernel serves on them and they are gone once it exits."""
        gateway = StandInGateway(self)
        # A socket's path must be short (107 bytes): not under _trial_temp.
        runtime = tempfile.mkdtemp(prefix="txkernel-test-")
        self.addCleanup(shutil.rmtree, runtime, True)
        environ = self.base_environ(runtime)
        argv = self.ipc_argv(gateway)
        output = await self.run_launcher(argv, environ)
        info = await gateway.connection_info()
        self.assertEqual(info["transport"], "ipc")
        directory = os.path.dirname(info["ip"])
        self.assertEqual(
            os.path.dirname(directory), environ["JUPYTER_RUNTIME_DIR"], info
        )
        self.assertEqual(stat.S_IMODE(os.stat(directory).st_mode), 0o700)
        ports = {
            k: v for k, v in info.items() if k.endswith("_port") and k != "comm_port"
        }
        client = await connect(
            self,
            ConnectionInfo(
                ip=info["ip"],
                transport="ipc",
                key=info["key"],
                signature_scheme=info["signature_scheme"],
                **ports,
            ),
        )
        for port in ports.values():
            self.assertTrue(
                stat.S_ISSOCK(os.lstat(f"{info['ip']}-{port}").st_mode), port
            )
        result = await client.execute("6 * 7")
        self.assertEqual(
            result.of_type("execute_result")[0]["content"]["data"]["text/plain"],
            "42",
        )
        client.stop()
        await self.finish(output, info)
        self.assertFalse(os.path.exists(directory))
        self.assertEqual(os.listdir(environ["JUPYTER_RUNTIME_DIR"]), [])

    async def test_ipc_path_too_long(self) -> None:
        """A runtime directory too deep for socket paths: a one-line error
        before anything is sent to the gateway, and nothing left behind."""
        gateway = StandInGateway(self)
        environ = self.base_environ()
        deep = os.path.join(environ["JUPYTER_RUNTIME_DIR"], "d" * 90)
        os.makedirs(deep)
        environ["JUPYTER_RUNTIME_DIR"] = deep
        output = await self.run_launcher(self.ipc_argv(gateway), environ)
        code = await bounded(observe(output.ended), 30, "the launcher to exit")
        self.assertEqual(code, 1)
        self.assertIn("set JUPYTER_RUNTIME_DIR to a shorter directory", output.output)
        self.assertEqual(len(output.output.strip().splitlines()), 1, output.output)
        self.assertFalse(gateway.received.called)
        self.assertEqual(os.listdir(deep), [])

    async def test_gateway_unreachable(self) -> None:
        """No gateway at the response address: a one-line error, exit status
        1, and the connection file is gone."""
        gateway = StandInGateway(self)
        closed = gateway.response_address
        await gateway.port.stopListening()
        environ = self.base_environ()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        argv = self.ipc_argv(gateway)[:-4] + ["--connection-dir", directory]
        argv[argv.index("--response-address") + 1] = closed
        output = await self.run_launcher(argv, environ)
        code = await bounded(observe(output.ended), 30, "the launcher to exit")
        self.assertEqual(code, 1)
        self.assertIn("Connection refused", output.output)
        self.assertEqual(len(output.output.strip().splitlines()), 1, output.output)
        self.assertEqual(os.listdir(directory), [])
