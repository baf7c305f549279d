"""txkernel as a remote kernel: the Enterprise Gateway launch protocol.

``python -m txkernel.remote`` is started by gateway_provisioners'
``DistributedProvisioner`` (the provisioner behind Enterprise Gateway's ssh
process proxy) inside a real Jupyter Server: once directly, as the
provisioner starts kernels on its own host, and once over ssh to an sshd on
127.0.0.1 that the test starts.  Either way the provisioner's response
manager receives the connection info encrypted with its public key, connects
to the ports the kernel bound, and interrupts, polls and ends the kernel
through the launcher's communication port.  The protocol's own pieces
(payload, listener, port range) are checked directly too.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

from twisted.trial.unittest import SynchronousTestCase, TestCase

from txkernel import remote
from txkernel.remote_kernelspecs import remote_kernel_json

from .gateway import exercise_remote_kernel
from .jupyter_server import start_server
from .sshd import free_port, require_sshd, start_sshd


def gateway_spec(runtime_dir: str) -> dict[str, Any]:
    """The shipped gp-distributed kernelspec, for the provisioner on this
    machine (which refuses root, as the tests run, unless told otherwise)."""
    return remote_kernel_json(
        "gp-distributed",
        remote_hosts=["localhost"],
        config={"unauthorized_users": []},
        extra_argv=["--ip", "127.0.0.1", "--connection-dir", runtime_dir],
    )


class GatewayProvisionerTests(TestCase):
    timeout = 180

    def provisioner_environ(self) -> dict[str, str]:
        logs = os.path.abspath(self.mktemp())
        os.makedirs(logs)
        return {
            "GP_RESPONSE_IP": "127.0.0.1",
            "GP_RESPONSE_PORT": str(free_port()),
            "GP_KERNEL_LOG_DIR": logs,
        }

    async def test_through_the_distributed_provisioner_on_localhost(self) -> None:
        """On localhost the provisioner starts the launcher without ssh."""
        server = await start_server(
            self, spec=gateway_spec, environ=self.provisioner_environ()
        )
        await exercise_remote_kernel(self, server)

    async def test_through_the_distributed_provisioner_over_ssh(self) -> None:
        """Over ssh, as for any other host: an sshd on 127.0.0.1 with its own
        host key and a key the test generates.  The provisioner would skip
        ssh for an address of this machine, so the server's configuration
        tells it that no address is local."""
        require_sshd(self)
        home, port, sshd = await start_sshd(self)
        environ = self.provisioner_environ()
        environ.update(
            {"HOME": home, "GP_SSH_PORT": str(port), "GP_REMOTE_USER": "root"}
        )
        server = await start_server(
            self,
            spec=gateway_spec,
            environ=environ,
            config=(
                "from gateway_provisioners.remote_provisioner import"
                " RemoteProvisionerBase\n"
                "RemoteProvisionerBase.ip_is_local = staticmethod(lambda ip: False)\n"
            ),
        )
        await exercise_remote_kernel(self, server)
        # Each launch (the first and the restart) logged in with the key.
        self.assertEqual(
            sshd.output.count("Accepted publickey for root"), 2, sshd.output
        )


class KernelJsonTests(SynchronousTestCase):
    def test_the_gateway_kernelspec(self) -> None:
        spec = remote.kernel_json(
            "/opt/py/bin/python", provisioner_config={"remote_hosts": ["a", "b"]}
        )
        self.assertEqual(
            spec["argv"],
            [
                "/opt/py/bin/python",
                "-m",
                "txkernel.remote",
                "--kernel-id",
                "{kernel_id}",
                "--port-range",
                "{port_range}",
                "--response-address",
                "{response_address}",
                "--public-key",
                "{public_key}",
            ],
        )
        self.assertEqual(
            spec["metadata"]["kernel_provisioner"],
            {
                "provisioner_name": "distributed-provisioner",
                "config": {"remote_hosts": ["a", "b"]},
            },
        )
        self.assertEqual(spec["interrupt_mode"], "signal")


class PayloadTests(SynchronousTestCase):
    """The connection info payload, decrypted as the gateways decrypt it."""

    def test_payload_decrypts_with_the_gateway_key(self) -> None:
        from Cryptodome.Cipher import AES, PKCS1_v1_5
        from Cryptodome.PublicKey import RSA
        from Cryptodome.Util.Padding import unpad

        private = RSA.generate(2048)
        public = (
            private.publickey()
            .export_key("PEM")
            .decode()
            .replace("-----BEGIN PUBLIC KEY-----", "")
            .replace("-----END PUBLIC KEY-----", "")
            .replace("\n", "")
        )
        info = {"shell_port": 1234, "key": "k", "comm_port": 99, "kernel_id": "abc"}
        payload = json.loads(
            base64.b64decode(remote.encrypt_connection_info(info, public))
        )
        self.assertEqual(payload["version"], 1)
        aes_key = PKCS1_v1_5.new(private).decrypt(
            base64.b64decode(payload["key"]), None
        )
        plain = unpad(
            AES.new(aes_key, AES.MODE_ECB).decrypt(
                base64.b64decode(payload["conn_info"])
            ),
            16,
        )
        self.assertEqual(json.loads(plain), info)

    def test_bad_public_key(self) -> None:
        self.assertRaises(
            remote.LaunchError, remote.encrypt_connection_info, {}, "bm90IGEga2V5"
        )

    def test_port_range(self) -> None:
        self.assertEqual(remote.parse_port_range("0..0"), (0, 0))
        self.assertEqual(remote.parse_port_range("{port_range}"), (0, 0))
        self.assertEqual(remote.parse_port_range("40000..40100"), (40000, 40100))
        for bad in ("40000", "a..b", "50..10", "1..70000"):
            self.assertRaises(remote.LaunchError, remote.parse_port_range, bad)
        ports = remote.choose_ports("127.0.0.1", (40000, 40999), 6)
        self.assertEqual(len(set(ports)), 6)
        self.assertTrue(all(40000 <= p <= 40999 for p in ports))


class ListenerTests(SynchronousTestCase):
    """The communication port: one JSON request per connection."""

    def send(self, port: int, data: bytes) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(data)

    def test_poll_bad_input_and_shutdown(self) -> None:
        sock = remote._bound_socket("127.0.0.1", (0, 0))
        listener = remote.Listener(sock, os.getpid())
        listener.start()
        self.addCleanup(listener.thread.join, 10)
        port = listener.port
        self.send(port, json.dumps({"signum": 0}).encode())
        self.send(port, b"not json")
        self.send(port, b"[1, 2]")
        self.send(port, b"")
        self.assertTrue(listener.thread.is_alive())
        self.send(port, json.dumps({"shutdown": 1}).encode())
        listener.thread.join(10)
        self.assertFalse(listener.thread.is_alive())
        self.assertRaises(ConnectionRefusedError, self.send, port, b"{}")
