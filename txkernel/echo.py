"""An example kernel: every cell is echoed back.

The smallest complete kernel on the protocol core, and the one the transport
tests serve.  ``input: PROMPT`` asks the frontend for a line and echoes it.
Runs on the reactor thread.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from .kernel import Kernel


class EchoKernel(Kernel):
    """Echoes each cell as ``stdout`` and as the cell's result."""

    implementation = "txkernel-echo"
    language_info = {"name": "echo", "mimetype": "text/plain", "file_extension": ".txt"}
    banner = "txkernel echo kernel: every cell is printed back."

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, str],
        allow_stdin: bool,
    ) -> dict[str, Any] | Deferred[dict[str, Any]]:
        if code.startswith("input:"):
            d = self.request_input(code[len("input:") :].strip())
            d.addCallback(lambda value: self._echo(value, silent))
            return d
        return self._echo(code, silent)

    def _echo(self, text: str, silent: bool) -> dict[str, Any]:
        if not silent:
            self.send_stream("stdout", text)
            self.publish(
                "execute_result",
                {
                    "execution_count": self.execution_count,
                    "data": {"text/plain": text},
                    "metadata": {},
                },
            )
        return {"status": "ok"}

    def do_is_complete(self, code: str) -> dict[str, Any]:
        return {"status": "complete"}
