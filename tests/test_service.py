"""KernelService in an application's service tree."""

from __future__ import annotations

import os

from twisted.application.service import MultiService
from twisted.trial.unittest import TestCase

from txkernel.connection import read_connection_file
from txkernel.echo import EchoKernel
from txkernel.python import PythonKernel
from txkernel.service import KernelService
from txkernel.testing import connect


class ServiceTreeTests(TestCase):
    timeout = 30

    async def test_two_kernels_under_one_multiservice(self) -> None:
        app = MultiService()
        first = KernelService(
            PythonKernel(namespace={"who": "first"}),
            connection_file=os.path.abspath(self.mktemp()) + ".json",
        )
        second = KernelService(
            PythonKernel(namespace={"who": "second"}),
            connection_file=os.path.abspath(self.mktemp()) + ".json",
        )
        first.setServiceParent(app)
        second.setServiceParent(app)
        self.assertNotEqual(first.name, second.name)
        self.assertIs(app.getServiceNamed(second.name), second)
        app.startService()
        self.addCleanup(app.stopService)
        for service, who in ((first, "first"), (second, "second")):
            client = await connect(self, service.connection_info)
            result = await client.execute("who")
            data = result.of_type("execute_result")[0]["content"]["data"]
            self.assertEqual(data["text/plain"], repr(who))
        await app.stopService()
        self.assertFalse(first.running or second.running)

    def test_a_given_name_is_kept(self) -> None:
        service = KernelService(EchoKernel(), name="shell-for-db")
        self.assertEqual(service.name, "shell-for-db")
        app = MultiService()
        service.setServiceParent(app)
        self.assertIs(app.getServiceNamed("shell-for-db"), service)


class ConnectionFileTests(TestCase):
    timeout = 30

    async def test_the_connection_file_is_known_before_the_service_starts(self) -> None:
        import stat

        service = KernelService(EchoKernel())
        path = service.connection_file
        self.assertTrue(path.endswith(".json"))
        self.assertFalse(os.path.exists(path))
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        client = await connect(self, read_connection_file(path))
        self.assertEqual((await client.execute("hi")).stream_text(), "hi")
        await service.stopService()
        self.assertFalse(os.path.exists(path))
        self.assertEqual(service.connection_file, path)
