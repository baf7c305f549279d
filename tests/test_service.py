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


class EarlySubscriberTests(TestCase):
    timeout = 30

    async def test_a_subscriber_of_a_bound_service_is_welcomed_first(self) -> None:
        # twistd binds (privilegedStartService), drops privileges, and only
        # then starts services: a frontend that subscribes in between gets
        # its welcome at once, and it comes before ``status: starting``.
        import zmq
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred

        from txkernel._zmq import ZmqSocket, make_factory
        from txkernel.wire import Wire

        service = KernelService(
            EchoKernel(), connection_file=os.path.abspath(self.mktemp()) + ".json"
        )
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        info = service.connection_info
        wire = Wire(info.key, info.signature_scheme)
        arrived: list[str] = []
        waiting: list[Deferred[None]] = []

        def received(frames: list[bytes]) -> None:
            arrived.append(wire.deserialize(frames)[1]["msg_type"])
            ready, waiting[:] = list(waiting), []
            for d in ready:
                d.callback(None)

        def next_message() -> Deferred[None]:
            d: Deferred[None] = Deferred()
            waiting.append(d)
            return d.addTimeout(10, reactor)

        factory = make_factory(reactor)
        self.addCleanup(factory.shutdown)
        sub = ZmqSocket(factory, zmq.SUB, received, options=[(zmq.SUBSCRIBE, b"")])
        self.addCleanup(sub.shutdown)
        sub.connect(info.endpoint("iopub"))
        await next_message()
        self.assertEqual(arrived, ["iopub_welcome"])
        service.startService()
        while "status" not in arrived:
            await next_message()
        self.assertEqual(arrived, ["iopub_welcome", "status"])
