"""Shared helpers: serve kernels on loopback and connect real clients to them."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from txkernel import testing
from txkernel.client import KernelClient
from txkernel.service import KernelService
from txkernel.testing import serve_kernel, wait_for, wait_for_stream  # noqa: F401 (re-exported)

from .kernels import ScriptedKernel


async def serve(test, kernel=None, **kwargs: Any) -> KernelService:
    """Start a kernel service on loopback for ``test``; stopped in cleanup."""
    kernel = kernel if kernel is not None else ScriptedKernel()
    served = await serve_kernel(test, kernel, client=False, **kwargs)
    return served.service


async def connect(test, service: KernelService) -> KernelClient:
    """A txkernel client connected to ``service`` and ready; stopped in cleanup."""
    return await connect_to(test, service.connection_info)


connect_to = testing.connect


class OtherThread:
    """One dedicated thread for a blocking client (jupyter_client's), so that
    its sockets are only ever used by that thread."""

    def __init__(self, test) -> None:
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="test-blocking-client")
        self._pool.start()
        test.addCleanup(self._pool.stop)

    def run(self, f, *args, **kwargs) -> Deferred[Any]:
        """Fires with ``f(*args, **kwargs)`` run in the dedicated thread."""
        return deferToThreadPool(reactor, self._pool, f, *args, **kwargs)


async def blocking_client(test, connection_file: str) -> tuple[OtherThread, Any]:
    """jupyter_client's ``BlockingKernelClient`` on the kernel ``connection_file``
    names, ready, on a dedicated thread; returns ``(thread, client)``, both
    stopped in cleanup.  Call the client only through ``thread.run``."""
    from jupyter_client import BlockingKernelClient

    thread = OtherThread(test)

    def make() -> BlockingKernelClient:
        client = BlockingKernelClient(connection_file=connection_file)
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=20)
        return client

    client = await thread.run(make)
    test.addCleanup(thread.run, client.stop_channels)
    return thread, client


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = (
    "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
)


class ProcessOutput(ProcessProtocol):
    """Collects a child's output; lets a test wait for a line or for the end."""

    def __init__(self) -> None:
        self.output = ""
        self.ended: Deferred[int] = Deferred()
        #: The signal that ended the process (``ended`` then fires with None).
        self.signal: int | None = None
        self._waiting: list[tuple[Any, Deferred[Any]]] = []

    def outReceived(self, data: bytes) -> None:
        self.output += data.decode("utf-8", "replace")
        for entry in list(self._waiting):
            match = entry[0].search(self.output)
            if match:
                self._waiting.remove(entry)
                entry[1].callback(match)

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        for _, d in self._waiting:
            d.errback(
                RuntimeError("process ended without printing the line:\n" + self.output)
            )
        self._waiting = []
        self.signal = reason.value.signal
        self.ended.callback(reason.value.exitCode)

    def wait_for(self, pattern: str) -> Deferred[Any]:
        """Fires with the first ``re.Match`` of ``pattern`` in the output."""
        regex = re.compile(pattern)
        match = regex.search(self.output)
        if match:
            return succeed(match)
        d: Deferred[Any] = Deferred()
        self._waiting.append((regex, d))
        return d


def spawn(test, *args: str, cwd: str | None = None) -> ProcessOutput:
    """Run ``python args...`` with the repo importable; killed in cleanup if still alive."""
    proto = ProcessOutput()
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    process = reactor.spawnProcess(
        proto, sys.executable, [sys.executable, *args], env=env, path=cwd
    )

    def kill() -> Deferred[int]:
        if not proto.ended.called:
            process.signalProcess("KILL")
        return proto.ended

    test.addCleanup(kill)
    return proto


def spawn_twistd(test, *args: str) -> ProcessOutput:
    """Run ``twistd -n --pidfile= <args>`` in a temporary directory."""
    cwd = test.mktemp()
    os.makedirs(cwd)
    return spawn(test, "-c", TWISTD, "-n", "--pidfile=", *args, cwd=cwd)


def numbered_reader(test, endpoint: str, expected: int) -> tuple[list[int], Deferred[None]]:
    """A reactor SUB on the IOPub ``endpoint`` that reads every message and
    keeps ``int(frames[1])`` of each; the Deferred fires once ``expected``
    arrived.  Closed in ``test``'s cleanup."""
    import zmq

    from txkernel._zmq import ZmqSocket, make_factory

    factory = make_factory(reactor)
    test.addCleanup(factory.shutdown)
    got: list[int] = []
    done: Deferred[None] = Deferred()

    def received(frames: list[bytes]) -> None:
        got.append(int(frames[1]))
        if len(got) == expected:
            done.callback(None)

    sock = ZmqSocket(factory, zmq.SUB, received, options=[(zmq.SUBSCRIBE, b"")])
    test.addCleanup(sock.shutdown)
    sock.connect(endpoint)
    return got, done


@implementer(IReadDescriptor)
class ProcessWatch:
    """A pidfd in the reactor: ``exited`` fires once process ``pid`` has
    ended (exited or killed; a zombie waiting for its parent counts as
    ended), at once if it is gone already.  Any process, not only a child."""

    def __init__(self, pid: int) -> None:
        self.exited: Deferred[None] = Deferred()
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._fd = -1
            self.exited.callback(None)
            return
        reactor.addReader(self)

    def fileno(self) -> int:
        return self._fd

    def doRead(self) -> None:
        self.close()
        if not self.exited.called:
            self.exited.callback(None)

    def close(self) -> None:
        if self._fd >= 0:
            reactor.removeReader(self)
            os.close(self._fd)
            self._fd = -1

    def connectionLost(self, reason: Any) -> None:
        self.close()

    def logPrefix(self) -> str:
        return "pidfd"
