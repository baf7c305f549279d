"""The interface between the protocol core and a language: the interpreter.

A kernel author writes an interpreter: an object with ``execute``,
``complete``, ``inspect``, ``is_complete``, ``history``, ``interrupt`` and
``shutdown``, each returning a reply content dict (or None) or a Deferred of
one.  The core (:class:`txkernel.core.KernelCore`) holds it and does the rest
of the protocol.  :class:`BaseInterpreter` gives every method a sensible
default, so a kernel need only write ``execute``::

    class Shout(BaseInterpreter):
        language_info = {"name": "shout", "mimetype": "text/plain",
                         "file_extension": ".txt"}

        def execute(self, execution):
            self.host.send_stream("stdout", execution.code.upper())
            return {"status": "ok"}

The interpreter declares where its code runs (``placement``): on the
reactor thread (``REACTOR``, the default: handlers must not block and may
return Deferreds), on worker threads of its own (``WORKER``), or on the
process's main thread while the reactor runs on another (``MAIN``, offered by
``python -m txkernel`` to interpreters that list it in ``placements``).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from .comm import CommManager
from .request import Request, RequestError

REACTOR = "reactor"
WORKER = "worker"
MAIN = "main"

#: A reply content dict, or a Deferred that fires with one.
Reply = dict[str, Any] | Deferred[dict[str, Any]]


@dataclass(frozen=True)
class Execution:
    """One ``execute_request``, as the interpreter sees it."""

    code: str
    silent: bool
    store_history: bool
    user_expressions: dict[str, str]
    allow_stdin: bool
    #: The count this execution shows (already incremented when it counts).
    execution_count: int
    request: Request

    @property
    def counted(self) -> bool:
        """Whether this execution increments ``execution_count``."""
        return self.store_history and not self.silent

    @property
    def subshell_id(self) -> str | None:
        return self.request.subshell_id


class Host(Protocol):
    """What the core offers the interpreter it holds (see ``KernelCore``)."""

    @property
    def execution_count(self) -> int: ...

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Request | None = ...,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> None: ...

    def send_stream(self, name: str, text: str, parent: Request | None = ...) -> None: ...

    def request_input(
        self, prompt: str = "", password: bool = False, request: Request | None = None
    ) -> Deferred[str]: ...

    def flush(self) -> Deferred[None]: ...

    def current_request(self) -> Request | None: ...

    def cancel_executions(self) -> None: ...


class Interpreter(Protocol):
    """A language, as the core uses it.  Subclass :class:`BaseInterpreter`."""

    implementation: str
    implementation_version: str
    language_info: dict[str, Any]
    banner: str
    help_links: list[dict[str, str]]
    placement: str
    comms: CommManager

    def start(self, host: Host) -> None: ...

    def stop(self) -> Deferred[None] | None: ...

    def execute(self, execution: Execution) -> Reply: ...

    def complete(self, code: str, cursor_pos: int) -> Reply: ...

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> Reply: ...

    def is_complete(self, code: str) -> Reply: ...

    def history(self, content: dict[str, Any]) -> Reply: ...

    def interrupt(self) -> None: ...

    def shutdown(self, restart: bool) -> Deferred[None] | None: ...

    debugger: bool

    def debug(self, request: dict[str, Any]) -> Reply: ...

    def interrupted(self) -> dict[str, Any]: ...

    def failed(self, failure: Failure) -> dict[str, Any]: ...

    def output_request(self) -> Request | None: ...

    def before_publish(self, msg_type: str) -> None: ...

    def deliver_comm(
        self, request: Request, deliver: Callable[[], object]
    ) -> Deferred[None] | None: ...

    def serve_out_of_turn(self, request: Request) -> bool: ...

    def subshell_created(self, subshell_id: str) -> None: ...

    def subshell_deleted(self, subshell_id: str) -> Deferred[None] | None: ...


class BaseInterpreter:
    """Defaults for every interpreter method; override what your language does.

    ``self.host`` (set by :meth:`start`) is the core: publish, streams,
    input requests.  ``self.comms`` is this kernel's comm manager; register
    comm targets on it at any time.
    """

    implementation = "txkernel"
    implementation_version = ""
    language_info: dict[str, Any] = {
        "name": "text",
        "mimetype": "text/plain",
        "file_extension": ".txt",
    }
    banner = ""
    help_links: list[dict[str, str]] = []
    #: Where this interpreter's code can run; the first is its default.
    placements: tuple[str, ...] = (REACTOR,)
    placement = REACTOR
    #: Where the process is the kernel's (``python -m txkernel``): route what
    #: is written to file descriptors 1 and 2 to the running cell (the Python
    #: kernel's output routing).
    capture_fds = False
    #: Whether :meth:`debug` serves the Jupyter debug protocol (DAP over control).
    debugger = False
    host: Host

    def __init__(self) -> None:
        self.comms = CommManager(self._publish_comm)

    def _publish_comm(self, msg_type: str, content: dict[str, Any], **kwargs: Any) -> None:
        host = getattr(self, "host", None)
        if host is not None:
            host.publish(msg_type, content, **kwargs)

    # -- life cycle (reactor thread) --

    def start(self, host: Host) -> None:
        """The kernel starts serving; ``host`` is the core."""
        self.host = host

    def stop(self) -> Deferred[None] | None:
        """The kernel stops serving; may return a Deferred that fires once stopped."""
        return None

    # -- requests (called on the reactor thread) --

    def execute(self, execution: Execution) -> Reply:
        """Run ``execution.code``; fire with ``{"status": "ok", ...}``."""
        raise NotImplementedError(f"{type(self).__name__} does not execute code")

    def complete(self, code: str, cursor_pos: int) -> Reply:
        """Completions at ``cursor_pos`` (code points); the default offers none."""
        return {
            "status": "ok",
            "matches": [],
            "cursor_start": cursor_pos,
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> Reply:
        """Help on the object at ``cursor_pos``; the default finds nothing."""
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}

    def is_complete(self, code: str) -> Reply:
        """Whether ``code`` is ready to run; the default does not know."""
        return {"status": "unknown"}

    def history(self, content: dict[str, Any]) -> Reply:
        """The ``history_reply`` content; the default keeps none."""
        return {"status": "ok", "history": []}

    def interrupt(self) -> None:
        """Interrupt what runs: by default, cancel the running executions' Deferreds."""
        self.host.cancel_executions()

    def shutdown(self, restart: bool) -> Deferred[None] | None:
        """Called before the ``shutdown_reply`` is sent."""
        return None

    def debug(self, request: dict[str, Any]) -> Reply:
        """Answer a ``debug_request`` (a DAP request) with the DAP response;
        DAP events go out as ``debug_event`` on IOPub (``host.publish``)."""
        raise RequestError(f"{type(self).__name__} has no debugger")

    # -- how results are reported --

    def interrupted(self) -> dict[str, Any]:
        """The error (``ename``, ``evalue``, ``traceback``) of an interrupted execution."""
        return {
            "ename": "Interrupted",
            "evalue": "the execution was interrupted",
            "traceback": ["Interrupted: the execution was interrupted"],
        }

    def failed(self, failure: Failure) -> dict[str, Any]:
        """The error (``ename``, ``evalue``, ``traceback``) for a handler's failure."""
        lines = traceback.format_exception(
            failure.type, failure.value, failure.getTracebackObject()
        )
        return {
            "ename": failure.type.__name__,
            "evalue": str(failure.value),
            "traceback": [line.rstrip("\n") for line in lines],
        }

    # -- hooks --

    def output_request(self) -> Request | None:
        """The request that output published now belongs to; None: the core decides."""
        return None

    def before_publish(self, msg_type: str) -> None:
        """Runs before every IOPub message (any thread)."""

    def deliver_comm(
        self, request: Request, deliver: Callable[[], object]
    ) -> Deferred[None] | None:
        """Deliver a frontend's comm message by calling ``deliver()``; by
        default at once, on the reactor thread."""
        deliver()
        return None

    def serve_out_of_turn(self, request: Request) -> bool:
        """Called as each shell request arrives: True means the interpreter
        has taken it to serve itself (busy/idle and reply included), out of
        its queue.  By default every request waits its turn."""
        return False

    def subshell_created(self, subshell_id: str) -> None:
        """A subshell was created; its requests come with ``subshell_id``."""

    def subshell_deleted(self, subshell_id: str) -> Deferred[None] | None:
        """A subshell was deleted; may return a Deferred that fires once its work is stopped."""
        return None
