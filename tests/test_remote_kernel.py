"""txkernel as a remote kernel: the Enterprise Gateway launch protocol.

``python -m txkernel.remote`` is started by gateway_provisioners'
``DistributedProvisioner`` (the provisioner behind Enterprise Gateway's ssh
process proxy) inside a real Jupyter Server.  Its host list is ``localhost``,
so the provisioner starts the launcher without ssh; everything else is the
remote path: the provisioner's response manager receives the connection info
encrypted with its public key, connects to the ports the kernel bound, and
interrupts, polls and ends the kernel through the launcher's communication
port.  The protocol's own pieces (payload, listener) are checked directly too.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

from twisted.trial.unittest import SynchronousTestCase, TestCase

from txkernel import remote

from .jupyter_server import KernelChannels, start_server
from .test_jupyter_server import wait_until_ready


def gateway_spec(runtime_dir: str) -> dict[str, Any]:
    """txkernel's gateway kernelspec, for the provisioner on localhost."""
    return remote.kernel_json(
        provisioner="distributed-provisioner",
        provisioner_config={"remote_hosts": ["localhost"], "unauthorized_users": []},
        extra_argv=["--ip", "127.0.0.1", "--connection-dir", runtime_dir],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProvisionerTests(TestCase):
    timeout = 180

    async def test_launched_interrupted_restarted_and_ended_through_the_provisioner(
        self,
    ) -> None:
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        server = await start_server(
            self,
            spec=gateway_spec,
            environ={
                "GP_RESPONSE_IP": "127.0.0.1",
                "GP_RESPONSE_PORT": str(free_port()),
                "GP_KERNEL_LOG_DIR": root,
                "GP_REMOTE_HOSTS": "localhost",
            },
        )
        code, model = await server.request(
            "POST", "api/kernels", {"name": server.kernel_name}, timeout=60
        )
        self.assertEqual(code, 201, f"{model}\n{server.output.output}")
        kernel_id = model["id"]
        channels = await KernelChannels.connect(self, server, kernel_id)
        info = await wait_until_ready(channels)
        self.assertEqual(info["implementation"], "txkernel")
        (first_pid,) = server.kernel_processes()

        msg_id = channels.execute("import os\nos.getpid()")
        reply = await channels.reply_to(msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        await channels.status(msg_id, "idle")
        (result,) = [
            m for m in channels.iopub_for(msg_id) if m["msg_type"] == "execute_result"
        ]
        self.assertEqual(result["content"]["data"]["text/plain"], str(first_pid))

        # Interrupt: the provisioner sends {"signum": 2} to the launcher.
        start = len(channels.received)
        msg_id = channels.execute(
            "import time\nprint('sleeping', flush=True)\ntime.sleep(60)"
        )
        await channels.wait(
            lambda m: (
                m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id
            ),
            what="the cell to start sleeping",
            start=start,
        )
        code, _ = await server.request("POST", f"api/kernels/{kernel_id}/interrupt")
        self.assertEqual(code, 204)
        reply = await channels.reply_to(msg_id, timeout=15)
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        await channels.status(msg_id, "idle")

        # Restart: the provisioner ends the launcher and starts a new one.
        code, model = await server.request(
            "POST", f"api/kernels/{kernel_id}/restart", timeout=60
        )
        self.assertEqual(code, 200, model)
        # The new launcher bound new ports: reconnect, as JupyterLab does
        # after every restart.
        await channels.close()
        channels = await KernelChannels.connect(self, server, kernel_id)
        await wait_until_ready(channels)
        (second_pid,) = server.kernel_processes()
        self.assertNotEqual(second_pid, first_pid)
        msg_id = channels.execute("'time' in globals()")
        reply = await channels.reply_to(msg_id)
        self.assertEqual(reply["content"]["execution_count"], 1)

        code, _ = await server.request("DELETE", f"api/kernels/{kernel_id}", timeout=60)
        self.assertEqual(code, 204)
        self.assertEqual(server.kernel_processes(), [])


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
