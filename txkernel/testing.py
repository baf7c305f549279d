"""txkernel.testing: test a kernel the way txkernel tests its own.

For trial tests of any interpreter (see :mod:`txkernel.interpreter`)::

    from txkernel.testing import serve_kernel

    class ShoutTests(TestCase):
        async def test_shouts(self):
            served = await serve_kernel(self, Shout())
            result = await served.client.execute("hi")
            self.assertEqual(result.stream_text(), "HI")

- :func:`serve_kernel` serves an interpreter in process on loopback (real
  ZeroMQ sockets, a random key) and connects a ready
  :class:`~txkernel.client.KernelClient`; both are stopped when the test
  ends, leaving the reactor clean.
- :class:`MemoryKernel` serves an interpreter with no sockets at all: the
  same client API over an in-memory transport, with a ``Clock``-driven stdin
  wait, for testing a kernel's logic.
- :func:`wait_for`, :func:`wait_for_stream` and :func:`states` collect and
  read IOPub messages; :meth:`KernelClient.execute` already collects a
  request's messages until ``status: idle``.
- :func:`expect_logged` lets a test say which failures its kernel logs on
  purpose, so they do not turn the test into an ERROR.

Everything here runs on the reactor thread.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed

from .client import CHANNELS, ExecuteResult, KernelClient
from .connection import ConnectionInfo
from .core import KernelCore
from .interpreter import Interpreter
from .request import Message, Request
from .service import KernelService
from .wire import Wire

__all__ = [
    "MemoryKernel",
    "MemoryTransport",
    "ServedKernel",
    "connect",
    "expect_logged",
    "serve_kernel",
    "states",
    "wait_for",
    "wait_for_stream",
]


class ServedKernel:
    """An interpreter served on loopback for one test, with a ready client."""

    def __init__(self, service: KernelService, client: KernelClient | None) -> None:
        self.service = service
        self.core: KernelCore = service.core
        self.interpreter = service.kernel
        assert service.connection_info is not None, "the service has not started"
        self.connection_info: ConnectionInfo = service.connection_info
        self._client = client
        self._counts: dict[str | None, int] = {None: 0}
        self._waiting: list[tuple[int, str | None, Deferred[int]]] = []
        self.core.watch_requests(self._counted)

    @property
    def client(self) -> KernelClient:
        """The client connected when the kernel was served."""
        if self._client is None:
            raise RuntimeError("served with client=False")
        return self._client

    def received(self, count: int, msg_type: str | None = None) -> Deferred[int]:
        """Fires once ``count`` messages of ``msg_type`` (None: of any type)
        have arrived and been queued since the kernel was served."""
        d: Deferred[int] = Deferred()
        self._waiting.append((count, msg_type, d))
        self._wake()
        return d

    def _counted(self, request: Request) -> None:
        for key in (None, request.msg_type):
            self._counts[key] = self._counts.get(key, 0) + 1
        self._wake()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for count, msg_type, d in waiting:
            seen = self._counts.get(msg_type, 0)
            if seen >= count:
                d.callback(seen)
            else:
                self._waiting.append((count, msg_type, d))


async def serve_kernel(
    test: Any, interpreter: Interpreter, client: bool = True, **service_args: Any
) -> ServedKernel:
    """Serve ``interpreter`` on loopback for ``test`` (a trial TestCase).

    ``service_args`` go to :class:`~txkernel.service.KernelService`.  The
    service (and the client, unless ``client=False``) stop when the test ends.
    """
    service_args.setdefault("connection_file", os.path.abspath(test.mktemp()) + ".json")
    service = KernelService(interpreter, **service_args)
    service.startService()
    test.addCleanup(service.stopService)
    served = ServedKernel(service, None)
    if client:
        served._client = await connect(test, served.connection_info)
    return served


async def connect(
    test: Any, info: ConnectionInfo, channels: Iterable[str] = CHANNELS, timeout: float = 30
) -> KernelClient:
    """A client on ``channels`` of the kernel ``info`` names, ready; stopped when the test ends."""
    client = KernelClient(info)
    test.addCleanup(client.stop)
    client.start(channels)
    await client.wait_for_ready(timeout=timeout)
    return client


def wait_for(
    client: KernelClient, predicate: Callable[[Message], bool], count: int = 1
) -> Deferred[list[Message]]:
    """Fires with the first ``count`` IOPub messages that match ``predicate``."""
    d: Deferred[list[Message]] = Deferred()
    found: list[Message] = []

    def watch(msg: Message) -> None:
        if d.called or not predicate(msg):
            return
        found.append(msg)
        if len(found) >= count:
            unwatch()
            d.callback(found)

    unwatch = client.watch_iopub(watch)
    return d


def wait_for_stream(client: KernelClient, text: str) -> Deferred[list[Message]]:
    """Fires with the stream messages whose joined text first ends with ``text``
    (a kernel may batch or split output)."""
    found: list[Message] = []

    def ends_with_text(msg: Message) -> bool:
        if msg["msg_type"] != "stream":
            return False
        found.append(msg)
        return "".join(m["content"]["text"] for m in found).endswith(text)

    return wait_for(client, ends_with_text).addCallback(lambda _: found)


def states(result: ExecuteResult) -> list[str]:
    """The ``execution_state`` of each ``status`` message of a collected request."""
    return [m["content"]["execution_state"] for m in result.of_type("status")]


def expect_logged(test: Any, *exception_types: type[BaseException]) -> None:
    """Failures of these types that the kernel logs during ``test`` are expected.

    Kernels log a handler's failure before answering it with an error; trial
    would report each logged failure as an ERROR of the test.
    """
    test.addCleanup(lambda: test.flushLoggedErrors(*exception_types))


class _Pipe:
    """Delivers calls in order, each on a later reactor turn (never re-entrantly)."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._scheduled: Any = None

    def put(self, f: Callable[..., Any], *args: Any) -> None:
        self._calls.append((f, args))
        if self._scheduled is None:
            self._scheduled = self._reactor.callLater(0, self._drain)

    def _drain(self) -> None:
        self._scheduled = None
        while self._calls:
            f, args = self._calls.popleft()
            f(*args)

    def cancel(self) -> None:
        self._calls.clear()
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        self._scheduled = None


class MemoryTransport:
    """A :class:`~txkernel.request.Transport` with no sockets.

    What the kernel sends goes to ``deliver(channel, frames)``.  Input
    requests go out at once while ``stdin_connected`` is true; otherwise
    they wait for :meth:`connect_stdin` for ``stdin_patience`` seconds of
    ``clock`` time, then fail.
    """

    def __init__(
        self,
        deliver: Callable[[str, list[bytes]], object],
        clock: Any,
        stdin_patience: float = 2.0,
    ) -> None:
        self._deliver = deliver
        self._clock = clock
        self.stdin_patience = stdin_patience
        self.stdin_connected = True
        self._waiting: list[tuple[Deferred[None], list[bytes], Any]] = []

    def send(self, channel: str, frames: Sequence[bytes]) -> None:
        self._deliver(channel, list(frames))

    def send_to_peer(self, channel: str, frames: Sequence[bytes]) -> Deferred[None]:
        if self.stdin_connected:
            self.send(channel, frames)
            return succeed(None)
        entry: tuple[Deferred[None], list[bytes], Any]

        def cancel(_: Deferred[None]) -> None:
            if entry in self._waiting:
                self._waiting.remove(entry)
                entry[2].cancel()

        def give_up() -> None:
            self._waiting.remove(entry)
            d.errback(
                ConnectionError(
                    f"the frontend is not connected to {channel} "
                    f"(waited {self.stdin_patience:g} s)"
                )
            )

        d: Deferred[None] = Deferred(cancel)
        entry = (d, list(frames), self._clock.callLater(self.stdin_patience, give_up))
        self._waiting.append(entry)
        return d

    def connect_stdin(self) -> None:
        """The frontend's stdin socket connects: waiting input requests go out."""
        self.stdin_connected = True
        waiting, self._waiting = self._waiting, []
        for d, frames, timer in waiting:
            timer.cancel()
            self.send("stdin", frames)
            d.callback(None)

    def publish(self, frames: Sequence[bytes]) -> None:
        self._deliver("iopub", list(frames))

    def drain(self, channel: str) -> None:
        """Nothing waits in a memory transport."""

    def flush(self) -> Deferred[None]:
        return succeed(None)


class _MemorySocket:
    """Stands in for one of a client's sockets: frames go to the kernel."""

    def __init__(self, send: Callable[[list[bytes]], object]) -> None:
        self.send = send

    def shutdown(self) -> None:
        pass


class MemoryKernel:
    """``interpreter`` served by a :class:`~txkernel.core.KernelCore` with no sockets.

    ``client`` is a :class:`~txkernel.client.KernelClient` wired to it in
    memory (``execute``, ``complete``, ``interrupt``, ... as over ZeroMQ);
    ``iopub`` lists every IOPub message the kernel published.  Messages are
    delivered on later turns of ``reactor`` (default: the global one), never
    re-entrantly; ``clock`` (default: ``reactor``) times the stdin wait.
    Call :meth:`stop` (or let ``test`` do it) to detach the kernel.
    """

    def __init__(
        self,
        interpreter: Interpreter,
        test: Any = None,
        reactor: Any = None,
        clock: Any = None,
        stdin_patience: float = 2.0,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._pipe = _Pipe(reactor)
        info = ConnectionInfo()
        self.core = KernelCore(interpreter)
        self.interpreter = interpreter
        self.client = KernelClient(info, reactor=reactor)
        self.iopub: list[Message] = []
        self.transport = MemoryTransport(
            self._to_client, clock if clock is not None else reactor, stdin_patience
        )
        sockets: dict[str, Any] = self.client._sockets
        for channel in ("shell", "control", "stdin"):
            sockets[channel] = _MemorySocket(self._to_kernel(channel))
        self.client.watch_iopub(self.iopub.append)
        self.core.attach(Wire(info.key, info.signature_scheme), self.transport)
        if test is not None:
            test.addCleanup(self.stop)

    def _to_kernel(self, channel: str) -> Callable[[list[bytes]], None]:
        identity = self.client.wire.bsession

        def send(frames: list[bytes]) -> None:
            self._pipe.put(self.core.message_received, channel, [identity, *frames])

        return send

    def _to_client(self, channel: str, frames: list[bytes]) -> None:
        if channel != "iopub":
            frames = frames[1:]  # the ROUTER's identity frame
        self._pipe.put(self.client._received, channel, frames)

    def stop(self) -> Deferred[None]:
        """Detach the kernel; fires once its interpreter has stopped."""
        self._pipe.cancel()
        self.client._sockets.clear()
        self.client.stop()
        return self.core.detach()
