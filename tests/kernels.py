"""Kernels the transport tests serve (importable by twistd: ``tests.kernels:Name``)."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from txkernel.echo import EchoKernel
from txkernel.interpreter import Execution
from txkernel.kernel import Kernel


class ScriptedKernel(EchoKernel):
    """An echo kernel with a few commands the tests need.

    - ``hold``: the reply waits until the test fires ``kernel.held``
      (``kernel.holding`` fires when a hold starts);
    - ``fail``: the handler raises ``ValueError("boom")``;
    - ``flood N``: publishes N numbered stdout lines;
    - ``gil SECONDS``: a thread holds the GIL in C for that long; the reply
      comes when it is done.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: Deferred[Any] | None = None

    def execute(self, execution: Execution) -> Any:
        command, _, arg = execution.code.partition(" ")
        if command == "hold":
            self.held = Deferred()
            return self.held.addCallback(lambda _: {"status": "ok"})
        if command == "fail":
            raise ValueError("boom")
        if command == "flood":
            for i in range(int(arg)):
                self.host.send_stream("stdout", f"{i}\n", execution.request)
            return {"status": "ok"}
        if command == "gil":
            return hold_gil(float(arg))
        return super().execute(execution)


class LegacyEchoKernel(Kernel):
    """A kernel written against the 0.1 ``Kernel`` base class (``do_*`` methods)."""

    implementation = "legacy-echo"

    def do_execute(self, code, silent, store_history, user_expressions, allow_stdin):
        if code.startswith("input:"):
            d = self.request_input(code[len("input:") :].strip())
            return d.addCallback(lambda value: self._echo(value))
        if code == "hold":
            self.held = Deferred()
            return self.held.addCallback(lambda _: {"status": "ok"})
        return self._echo(code)

    def _echo(self, text: str) -> dict:
        self.send_stream("stdout", text)
        self.publish(
            "execute_result",
            {"execution_count": self.execution_count, "data": {"text/plain": text}, "metadata": {}},
        )
        return {"status": "ok"}

    def do_complete(self, code, cursor_pos):
        return {
            "status": "ok",
            "matches": [code + "!"],
            "cursor_start": 0,
            "cursor_end": cursor_pos,
            "metadata": {},
        }


def hold_gil(seconds: float) -> Deferred[dict]:
    """Hold the GIL in a C call for ``seconds`` on a thread; fires when it is released."""
    d: Deferred[dict] = Deferred()
    usleep = ctypes.PyDLL(None).usleep  # PyDLL: the GIL stays held during the call

    def run() -> None:
        usleep(int(seconds * 1_000_000))
        reactor.callFromThread(d.callback, {"status": "ok"})

    threading.Thread(target=run, daemon=True).start()
    return d
