"""The host's own output stays the host's when a kernel is embedded or under twistd.

Output of code no cell started (the application's reactor callbacks, its
threads) goes where it went before the kernel existed: the application's
stdout, the twistd log.  Only where the kernel owns the process does it go
to the latest cell (see tests.test_python_kernel).
"""

from __future__ import annotations

import io
import os
import sys
import threading

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient
from txkernel.connection import read_connection_file
from txkernel.python import PythonKernel
from txkernel.testing import serve_kernel

from .helpers import spawn_twistd

HERE = os.path.dirname(os.path.abspath(__file__))


def stream_texts(client: KernelClient) -> list[str]:
    """Collects the text of every stream message ``client`` sees from now on."""
    texts: list[str] = []
    client.watch_iopub(
        lambda msg: texts.append(msg["content"]["text"]) if msg["msg_type"] == "stream" else None
    )
    return texts


class EmbeddedHostOutputTests(TestCase):
    timeout = 30

    async def test_the_hosts_prints_stay_on_its_stdout_after_a_cell_ran(self) -> None:
        host_stdout = io.StringIO()
        self.patch(sys, "stdout", host_stdout)
        served = await serve_kernel(self, PythonKernel())
        seen = stream_texts(served.client)
        result = await served.client.execute("print('from a cell')")
        self.assertEqual(result.stream_text(), "from a cell\n")

        print("host: on the reactor thread")
        await deferLater(reactor, 0, print, "host: in a reactor callback")
        thread = threading.Thread(target=lambda: print("host: in a thread of its own"))
        thread.start()
        await deferLater(reactor, 0, thread.join)
        # Anything misrouted to the cell would be published before this reply.
        await served.client.execute("None")

        self.assertEqual(
            host_stdout.getvalue(),
            "host: on the reactor thread\n"
            "host: in a reactor callback\n"
            "host: in a thread of its own\n",
        )
        self.assertEqual("".join(seen), "from a cell\n")

    async def test_a_kernel_that_owns_the_process_takes_stray_output(self) -> None:
        host_stdout = io.StringIO()
        self.patch(sys, "stdout", host_stdout)
        served = await serve_kernel(self, PythonKernel(owns_process=True))
        await served.client.execute("1")
        print("stray")
        result = await served.client.execute("None")
        self.assertEqual(host_stdout.getvalue(), "")
        self.assertNotIn("stray", result.stream_text())


class TwistdHostOutputTests(TestCase):
    timeout = 60

    async def test_the_hosts_prints_stay_in_the_twistd_log_after_a_cell_ran(self) -> None:
        proto = spawn_twistd(self, "-y", os.path.join(HERE, "printing_host.tac"))
        path = (await proto.wait_for(r"jupyter console --existing (\S+)")).group(1)
        port = int((await proto.wait_for(r"host listening on port (\d+)")).group(1))
        client = KernelClient(read_connection_file(path))
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready(timeout=20)
        seen = stream_texts(client)
        result = await client.execute("print('from a cell')")
        self.assertEqual(result.stream_text(), "from a cell\n")

        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), Protocol())
        await proto.wait_for(r"\[stdout#info\] host: a client connected")
        await client.execute("None")
        self.assertEqual("".join(seen), "from a cell\n")
        proto.transport.signalProcess("TERM")
        await proto.ended
        self.assertIn("Server Shut Down", proto.output)


class OwnershipTests(TestCase):
    def test_the_process_is_the_kernels_when_cells_run_on_the_main_thread(self) -> None:
        from txkernel.interpreter import MAIN

        self.assertTrue(PythonKernel(placement=MAIN).owns_process)  # python -m txkernel
        self.assertFalse(PythonKernel().owns_process)  # twistd, embedded
        self.assertTrue(PythonKernel(owns_process=True).owns_process)
