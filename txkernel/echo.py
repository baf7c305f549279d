"""An example kernel: every cell is echoed back.

The smallest complete interpreter on the protocol core, and the one the
transport tests serve.  ``input: PROMPT`` asks the frontend for a line and
echoes it.  Runs on the reactor thread.
"""

from __future__ import annotations

from typing import Any

from . import __version__
from .interpreter import BaseInterpreter, Execution, Reply


class EchoKernel(BaseInterpreter):
    """Echoes each cell as ``stdout`` and as the cell's result."""

    implementation = "txkernel-echo"
    implementation_version = __version__
    language_info = {"name": "echo", "mimetype": "text/plain", "file_extension": ".txt"}
    banner = "txkernel echo kernel: every cell is printed back."

    def execute(self, execution: Execution) -> Reply:
        code = execution.code
        if code.startswith("input:"):
            d = self.host.request_input(
                code[len("input:") :].strip(), request=execution.request
            )
            d.addCallback(lambda value: self._echo(value, execution))
            return d
        return self._echo(code, execution)

    def _echo(self, text: str, execution: Execution) -> dict[str, Any]:
        if not execution.silent:
            self.host.send_stream("stdout", text, execution.request)
            self.host.publish(
                "execute_result",
                {
                    "execution_count": execution.execution_count,
                    "data": {"text/plain": text},
                    "metadata": {},
                },
                execution.request,
            )
        return {"status": "ok"}

    def is_complete(self, code: str) -> dict[str, Any]:
        return {"status": "complete"}
