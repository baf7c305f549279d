"""Shared helpers: serve kernels on loopback and connect real clients to them."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from txkernel.client import CHANNELS, KernelClient
from txkernel.connection import ConnectionInfo
from txkernel.service import KernelService

from .kernels import ScriptedKernel


async def serve(test, kernel=None, **kwargs: Any) -> KernelService:
    """Start a kernel service on loopback for ``test``; stopped in cleanup."""
    kernel = kernel if kernel is not None else ScriptedKernel()
    kwargs.setdefault("connection_file", os.path.abspath(test.mktemp()) + ".json")
    service = KernelService(kernel, **kwargs)
    service.startService()
    test.addCleanup(service.stopService)
    return service


async def connect(test, service: KernelService) -> KernelClient:
    """A txkernel client connected to ``service`` and ready; stopped in cleanup."""
    return await connect_to(test, service.connection_info)


async def connect_to(
    test, info: ConnectionInfo, timeout: float = 30, channels: Iterable[str] = CHANNELS
) -> KernelClient:
    """A txkernel client on ``channels`` of the kernel ``info`` names; stopped in cleanup."""
    client = KernelClient(info)
    client.start(channels)
    test.addCleanup(client.stop)
    await client.wait_for_ready(timeout=timeout)
    return client


def wait_for(client: KernelClient, predicate, count: int = 1) -> Deferred[list[dict]]:
    """Fires with the first ``count`` IOPub messages that match ``predicate``."""
    d: Deferred[list[dict]] = Deferred()
    found: list[dict] = []

    def watch(msg: dict) -> None:
        if d.called or not predicate(msg):
            return
        found.append(msg)
        if len(found) >= count:
            unwatch()
            d.callback(found)

    unwatch = client.watch_iopub(watch)
    return d


def wait_for_stream(client: KernelClient, text: str) -> Deferred[list[dict]]:
    """Fires with the stream messages whose joined text first ends with ``text``.

    Output is batched, so one ``print`` may arrive as one message or several.
    """
    d: Deferred[list[dict]] = Deferred()
    found: list[dict] = []

    def watch(msg: dict) -> None:
        if d.called or msg["msg_type"] != "stream":
            return
        found.append(msg)
        if "".join(m["content"]["text"] for m in found).endswith(text):
            unwatch()
            d.callback(found)

    unwatch = client.watch_iopub(watch)
    return d


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
