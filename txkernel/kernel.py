"""The kernel base class of txkernel 0.1, kept as a thin adapter.

Kernels written against it (``do_execute``, ``do_complete``, ...) keep
working: :class:`Kernel` is an interpreter (see :mod:`txkernel.interpreter`)
that forwards each request to its ``do_*`` method and offers the core's
``publish``, ``send_stream``, ``request_input`` and ``flush`` as methods.
New kernels subclass :class:`txkernel.interpreter.BaseInterpreter` instead.
Reactor thread, except ``publish`` and ``send_stream`` (any thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed

from . import __version__
from .interpreter import BaseInterpreter, Execution, Reply
from .messenger import CURRENT
from .request import Request, Transport
from .stdin import InputInterrupted, StdinNotAllowed, StdinUnreachable

__all__ = [
    "InputInterrupted",
    "Kernel",
    "Request",
    "StdinNotAllowed",
    "StdinUnreachable",
    "Transport",
]


class Kernel(BaseInterpreter):
    """Base class of txkernel 0.1 kernels: override the ``do_*`` methods.

    Each may return its reply content or a Deferred that fires with it; a
    handler that raises gets a ``status: error`` reply.
    """

    implementation_version = __version__

    # -- what subclasses override --

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, str],
        allow_stdin: bool,
    ) -> Reply:
        """Run ``code``; fire with ``{"status": "ok", ...}``."""
        raise NotImplementedError(f"{type(self).__name__} does not execute code")

    def do_complete(self, code: str, cursor_pos: int) -> Reply:
        return BaseInterpreter.complete(self, code, cursor_pos)

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int) -> Reply:
        return BaseInterpreter.inspect(self, code, cursor_pos, detail_level)

    def do_is_complete(self, code: str) -> Reply:
        return BaseInterpreter.is_complete(self, code)

    def do_history(self, content: dict[str, Any]) -> Reply:
        return BaseInterpreter.history(self, content)

    def do_shutdown(self, restart: bool) -> Any:
        return None

    def do_interrupt(self) -> None:
        """Interrupt the running execution: by default, cancel its Deferred."""
        BaseInterpreter.interrupt(self)

    # -- the interpreter interface, forwarded --

    def execute(self, execution: Execution) -> Reply:
        return self.do_execute(
            execution.code,
            execution.silent,
            execution.store_history,
            execution.user_expressions,
            execution.allow_stdin,
        )

    def complete(self, code: str, cursor_pos: int) -> Reply:
        return self.do_complete(code, cursor_pos)

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> Reply:
        return self.do_inspect(code, cursor_pos, detail_level)

    def is_complete(self, code: str) -> Reply:
        return self.do_is_complete(code)

    def history(self, content: dict[str, Any]) -> Reply:
        return self.do_history(content)

    def shutdown(self, restart: bool) -> Any:
        return self.do_shutdown(restart)

    def interrupt(self) -> None:
        self.do_interrupt()

    def interrupted(self) -> dict[str, Any]:
        # What txkernel 0.1 reported for every interrupted execution.
        return {
            "ename": "KeyboardInterrupt",
            "evalue": "interrupted",
            "traceback": ["KeyboardInterrupt: interrupted"],
        }

    # -- what handlers call --

    @property
    def execution_count(self) -> int:
        host = getattr(self, "host", None)
        return host.execution_count if host is not None else 0

    def current_request(self) -> Request | None:
        """The shell request being served, or the last one served."""
        return self.host.current_request()

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Request | None = CURRENT,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> None:
        """Send a message on IOPub (any thread)."""
        self.host.publish(msg_type, content, parent, metadata, buffers)

    def send_stream(self, name: str, text: str, parent: Request | None = CURRENT) -> None:
        """Publish ``text`` on the ``stdout`` or ``stderr`` stream (any thread)."""
        self.host.send_stream(name, text, parent)

    def request_input(
        self, prompt: str = "", password: bool = False, request: Request | None = None
    ) -> Deferred[str]:
        """Ask the frontend for input; see ``KernelCore.request_input``."""
        host = getattr(self, "host", None)
        if host is None:
            return fail(InputInterrupted("the kernel is not serving"))
        return host.request_input(prompt, password, request)

    def flush(self) -> Deferred[None]:
        """Fires once everything published so far is on the wire."""
        host = getattr(self, "host", None)
        return host.flush() if host is not None else succeed(None)

