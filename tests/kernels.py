"""Kernels the transport tests serve (importable by twistd: ``tests.kernels:Name``)."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from txkernel.echo import EchoKernel


class ScriptedKernel(EchoKernel):
    """An echo kernel with a few commands the tests need.

    - ``hold``: the reply waits until the test fires ``kernel.held``;
    - ``fail``: the handler raises ``ValueError("boom")``;
    - ``flood N``: publishes N numbered stdout lines;
    - ``gil SECONDS``: a thread holds the GIL in C for that long; the reply
      comes when it is done.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: Deferred[Any] | None = None
        self.queued = 0
        self._waiting: list[tuple[int, Deferred[int]]] = []

    def received(self, count: int) -> Deferred[int]:
        """Fires once ``count`` messages in all have arrived on shell."""
        d: Deferred[int] = Deferred()
        self._waiting.append((count, d))
        self._wake()
        return d

    def message_received(self, channel: str, frames: list[bytes]) -> None:
        super().message_received(channel, frames)
        if channel == "shell":
            self.queued += 1
            self._wake()

    def _wake(self) -> None:
        ready = [(n, d) for n, d in self._waiting if self.queued >= n]
        self._waiting = [(n, d) for n, d in self._waiting if self.queued < n]
        for _, d in ready:
            d.callback(self.queued)

    def do_execute(self, code, silent, store_history, user_expressions, allow_stdin):
        command, _, arg = code.partition(" ")
        if command == "hold":
            self.held = Deferred()
            return self.held.addCallback(lambda _: {"status": "ok"})
        if command == "fail":
            raise ValueError("boom")
        if command == "flood":
            for i in range(int(arg)):
                self.send_stream("stdout", f"{i}\n")
            return {"status": "ok"}
        if command == "gil":
            return hold_gil(float(arg))
        return super().do_execute(
            code, silent, store_history, user_expressions, allow_stdin
        )


def hold_gil(seconds: float) -> Deferred[dict]:
    """Hold the GIL in a C call for ``seconds`` on a thread; fires when it is released."""
    d: Deferred[dict] = Deferred()
    usleep = ctypes.PyDLL(None).usleep  # PyDLL: the GIL stays held during the call

    def run() -> None:
        usleep(int(seconds * 1_000_000))
        reactor.callFromThread(d.callback, {"status": "ok"})

    threading.Thread(target=run, daemon=True).start()
    return d
