"""The protocol core: what every kernel does, whatever its language.

A kernel author subclasses :class:`Kernel` and writes ``do_execute``,
``do_complete`` and friends, each returning a reply content dict or a
Deferred of one.  The core does the rest of the protocol: ``status``
busy/idle around every request, parent headers, ``execute_input``,
``execution_count``, error replies, ``stop_on_error`` aborts, ``kernel_info``,
comms, stdin, interrupts and shutdown.

Everything here runs on the reactor thread, except :meth:`Kernel.publish`,
which any thread may call.  The kernel knows nothing about sockets: it is
attached to a transport (``KernelService`` does that) that delivers frames
and sends what the kernel gives it.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    fail,
    maybeDeferred,
    succeed,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from . import __version__
from .comm import CommManager
from .wire import PROTOCOL_VERSION, Message, Wire, WireError

log = Logger()

_CURRENT: Any = object()


class StdinNotAllowed(Exception):
    """The request being served said ``allow_stdin: false`` (or there is none)."""


class StdinUnreachable(StdinNotAllowed):
    """The frontend that sent the request is not connected to the stdin channel."""


class InputInterrupted(Exception):
    """A pending input request was ended by an interrupt or by shutdown."""


class Transport(Protocol):
    """What a kernel needs from its sockets (see ``txkernel.channels.KernelSockets``)."""

    def send(self, channel: str, frames: Sequence[bytes]) -> None: ...

    def send_to_peer(self, channel: str, frames: Sequence[bytes]) -> Deferred[None]: ...

    def publish(self, frames: Sequence[bytes]) -> None: ...

    def drain(self, channel: str) -> None: ...

    def flush(self) -> Deferred[None]: ...


class Request:
    """A request as it arrived: channel, ZeroMQ identities and the message."""

    __slots__ = ("channel", "identities", "message")

    def __init__(self, channel: str, identities: list[bytes], message: Message) -> None:
        self.channel = channel
        self.identities = identities
        self.message = message

    @property
    def msg_type(self) -> str:
        return self.message["header"]["msg_type"]

    @property
    def msg_id(self) -> str:
        return self.message["header"].get("msg_id", "")

    @property
    def content(self) -> dict[str, Any]:
        return self.message["content"]

    def __repr__(self) -> str:
        return f"<Request {self.channel} {self.msg_type} {self.msg_id}>"


def error_content(failure: Failure) -> dict[str, Any]:
    """The ``status: error`` reply content describing ``failure``."""
    if failure.check(CancelledError):
        return {
            "status": "error",
            "ename": "KeyboardInterrupt",
            "evalue": "interrupted",
            "traceback": ["KeyboardInterrupt: interrupted"],
        }
    lines = traceback.format_exception(
        failure.type, failure.value, failure.getTracebackObject()
    )
    return {
        "status": "error",
        "ename": failure.type.__name__,
        "evalue": str(failure.value),
        "traceback": [line.rstrip("\n") for line in lines],
    }


class Kernel:
    """Base class of every txkernel kernel.

    Override the ``do_*`` methods; each may return its reply content or a
    Deferred that fires with it.  A handler that raises (or whose Deferred
    fails) gets a ``status: error`` reply built from the exception.
    """

    implementation = "txkernel"
    implementation_version = __version__
    language_info: dict[str, Any] = {
        "name": "text",
        "mimetype": "text/plain",
        "file_extension": ".txt",
    }
    banner = ""
    help_links: list[dict[str, str]] = []

    #: Request types served on shell (handled one at a time, in arrival order).
    shell_types = (
        "execute_request",
        "complete_request",
        "inspect_request",
        "is_complete_request",
        "history_request",
        "kernel_info_request",
        "comm_info_request",
        "comm_open",
        "comm_msg",
        "comm_close",
        "shutdown_request",
    )
    #: Request types served on control (handled while shell is busy).
    control_types = (
        "kernel_info_request",
        "shutdown_request",
        "interrupt_request",
        "comm_info_request",
        "complete_request",
        "inspect_request",
        "is_complete_request",
        "history_request",
    )

    def __init__(self) -> None:
        self.execution_count = 0
        self.comms = CommManager(self)
        self.wire: Wire | None = None
        self._transport: Transport | None = None
        self._on_shutdown: Callable[[bool], object] | None = None
        self._queues: dict[str, deque[Request]] = {"shell": deque(), "control": deque()}
        self._active = {"shell": False, "control": False}
        self._abort_ids: set[str] = set()
        # Pending input requests by msg_id: the answer's Deferred and the
        # Deferred of sending the request (which may wait for the frontend).
        self._inputs: dict[str, tuple[Deferred[str], Deferred[None]]] = {}
        self._execution: Deferred[Any] | None = None
        self._current: Request | None = None
        self._stopped = True

    # -- life cycle (reactor thread) --

    def attach(
        self,
        wire: Wire,
        transport: Transport,
        on_shutdown: Callable[[bool], object] | None = None,
    ) -> None:
        """Serve requests through ``transport``; publish ``status: starting``.

        ``on_shutdown(restart)`` is called after a ``shutdown_request`` has
        been answered.
        """
        self.wire = wire
        self._transport = transport
        self._on_shutdown = on_shutdown
        self._stopped = False
        self.publish("status", {"execution_state": "starting"}, parent=None)

    def detach(self) -> None:
        """Stop serving: pending input requests fail, queued requests are dropped."""
        self._stopped = True
        self._fail_inputs(InputInterrupted("the kernel is shutting down"))
        for queue in self._queues.values():
            queue.clear()

    # -- what subclasses override --

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, str],
        allow_stdin: bool,
    ) -> dict[str, Any] | Deferred[dict[str, Any]]:
        """Run ``code``; fire with ``{"status": "ok", ...}`` (``execution_count`` is added)."""
        raise NotImplementedError(f"{type(self).__name__} does not execute code")

    def do_complete(self, code: str, cursor_pos: int) -> Any:
        """Completions at ``cursor_pos`` (code points); the default offers none."""
        return {
            "status": "ok",
            "matches": [],
            "cursor_start": cursor_pos,
            "cursor_end": cursor_pos,
            "metadata": {},
        }

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int) -> Any:
        """Help on the object at ``cursor_pos``; the default finds nothing."""
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}

    def do_is_complete(self, code: str) -> Any:
        """Whether ``code`` is ready to run; the default does not know."""
        return {"status": "unknown"}

    def do_history(self, content: dict[str, Any]) -> Any:
        """The ``history_reply`` content for a ``history_request``; default: none kept."""
        return {"status": "ok", "history": []}

    def do_shutdown(self, restart: bool) -> Any:
        """Called before the ``shutdown_reply`` is sent; may return a Deferred."""
        return None

    def do_interrupt(self) -> None:
        """Interrupt the running execution: by default, cancel its Deferred."""
        if self._execution is not None and not self._execution.called:
            self._execution.cancel()

    @property
    def executing(self) -> bool:
        """Whether an execute request is being served now."""
        return self._execution is not None

    # -- what handlers and cell code call --

    def current_request(self) -> Request | None:
        """The shell request being served, or the last one served."""
        return self._current

    def output_request(self) -> Request | None:
        """The request that output published now belongs to (parent header)."""
        return self._current

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Request | None = _CURRENT,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
        topic: bytes | None = None,
    ) -> None:
        """Send a message on IOPub (any thread).

        ``parent`` defaults to :meth:`output_request`; ``None`` gives an empty
        parent header.
        """
        wire, transport = self.wire, self._transport
        if wire is None or transport is None or self._stopped:
            return
        if parent is _CURRENT:
            parent = self.output_request()
        msg = wire.new_message(
            msg_type, content, parent.message if parent else None, metadata, buffers
        )
        if topic is None:
            topic = f"kernel.{wire.session_id}.{msg_type}".encode()
        transport.publish(wire.serialize(msg, [topic]))

    def send_stream(
        self, name: str, text: str, parent: Request | None = _CURRENT
    ) -> None:
        """Publish ``text`` on the ``stdout`` or ``stderr`` stream (any thread)."""
        self.publish("stream", {"name": name, "text": text}, parent=parent)

    def flush(self) -> Deferred[None]:
        """Fires once everything published so far is on the wire."""
        if self._transport is None:
            return succeed(None)
        return self._transport.flush()

    def request_input(
        self, prompt: str = "", password: bool = False, request: Request | None = None
    ) -> Deferred[str]:
        """Ask the frontend that sent ``request`` (default: the current one) for input.

        Fires with the string the user typed.  Fails at once with
        :class:`StdinNotAllowed` when that request had ``allow_stdin: false``,
        and later with :class:`InputInterrupted` on interrupt or shutdown.
        Cancelling the Deferred withdraws the request.
        """
        request = request or self._current
        if self._stopped or self.wire is None or self._transport is None:
            return fail(InputInterrupted("the kernel is shutting down"))
        if request is None or not request.content.get("allow_stdin", False):
            return fail(
                StdinNotAllowed("this frontend does not support input requests")
            )
        msg = self.wire.new_message(
            "input_request",
            {"prompt": str(prompt), "password": bool(password)},
            request.message,
        )
        msg_id = msg["header"]["msg_id"]
        d: Deferred[str] = Deferred(lambda _: self._forget_input(msg_id))
        sending = self._transport.send_to_peer(
            "stdin", self.wire.serialize(msg, request.identities)
        )
        self._inputs[msg_id] = (d, sending)

        def unreachable(failure: Failure) -> None:
            if failure.check(CancelledError):  # the request was withdrawn
                return
            log.warn("Could not ask for input: {reason}", reason=failure.value)
            if self._forget_input(msg_id) is not None:
                d.errback(StdinUnreachable(str(failure.value)))

        sending.addErrback(unreachable)
        return d

    def interrupt(self) -> None:
        """Interrupt the running execution and any pending input request."""
        self.do_interrupt()
        self._fail_inputs(InputInterrupted("interrupted"))

    # -- incoming messages (reactor thread) --

    def message_received(self, channel: str, frames: list[bytes]) -> None:
        """Accept one multipart message from ``channel`` (shell, control or stdin)."""
        if self._stopped or self.wire is None:
            return
        try:
            identities, msg = self.wire.deserialize(frames)
        except WireError as e:
            log.warn(
                "Dropped a message on {channel}: {reason}", channel=channel, reason=e
            )
            return
        request = Request(channel, identities, msg)
        if channel == "stdin":
            self._input_reply(request)
            return
        if channel == "shell" and self.serve_out_of_turn(request):
            return
        self._queues[channel].append(request)
        self._pump(channel)

    def serve_out_of_turn(self, request: Request) -> bool:
        """Called as each shell request arrives; True means the kernel has taken
        it to serve itself, out of the shell queue (default: every request waits
        its turn)."""
        return False

    def subscribed(self, topic: bytes) -> None:
        """A frontend subscribed to IOPub: welcome it (JEP 65)."""
        try:
            subscription = topic.decode("utf-8")
        except UnicodeDecodeError:
            return
        self.publish(
            "iopub_welcome",
            {"subscription": subscription},
            parent=None,
            topic=topic or None,
        )

    def _pump(self, channel: str) -> None:
        queue = self._queues[channel]
        while queue and not self._active[channel] and not self._stopped:
            request = queue.popleft()
            self._active[channel] = True
            d = self._serve(request)
            if not d.called:
                d.addBoth(self._resume, channel)
                return
            self._active[channel] = False

    def _resume(self, _: object, channel: str) -> None:
        self._active[channel] = False
        self._pump(channel)

    def _serve(self, request: Request) -> Deferred[None]:
        allowed = self.shell_types if request.channel == "shell" else self.control_types
        msg_type = request.msg_type
        if msg_type not in allowed:
            log.warn(
                "Ignored a {msg_type!r} message on {channel}",
                msg_type=msg_type,
                channel=request.channel,
            )
            return succeed(None)
        if request.channel == "shell":
            self._current = request
        self._status("busy", request)
        if msg_type == "execute_request" and request.msg_id in self._abort_ids:
            self._abort_ids.discard(request.msg_id)
            d = succeed(self._send_aborted(request))
        else:
            handler = getattr(self, "_on_" + msg_type)
            d = maybeDeferred(handler, request)
            d.addErrback(self._request_failed, request)
        d.addCallback(lambda _: self._status("idle", request))
        if msg_type == "shutdown_request":
            d.addCallback(lambda _: self._shut_down(request))
        d.addErrback(
            lambda f: log.failure("Serving {request!r} failed", f, request=request)
        )
        return d

    def _status(self, state: str, request: Request) -> None:
        self.publish("status", {"execution_state": state}, parent=request)

    def reply(
        self,
        request: Request,
        msg_type: str,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Send ``content`` as the reply to ``request``, to the peer that sent it."""
        if self.wire is None or self._transport is None:
            return
        msg = self.wire.new_message(msg_type, content, request.message, metadata)
        self._transport.send(
            request.channel, self.wire.serialize(msg, request.identities)
        )

    def _request_failed(self, failure: Failure, request: Request) -> None:
        log.failure("Handler for {request!r} failed", failure, request=request)
        reply_type = request.msg_type.replace("_request", "_reply")
        if reply_type != request.msg_type:
            self.reply(request, reply_type, error_content(failure))

    def _call(
        self, request: Request, reply_type: str, handler: Callable[..., Any], *args: Any
    ) -> Deferred[None]:
        """Run ``handler(*args)`` and send what it gives as ``reply_type``."""
        d = maybeDeferred(handler, *args)
        d.addCallback(lambda content: self.reply(request, reply_type, content))
        return d

    # -- the request types --

    def kernel_info(self) -> dict[str, Any]:
        """The ``kernel_info_reply`` content."""
        return {
            "status": "ok",
            "protocol_version": PROTOCOL_VERSION,
            "implementation": self.implementation,
            "implementation_version": self.implementation_version,
            "language_info": self.language_info,
            "banner": self.banner,
            "help_links": self.help_links,
            "debugger": False,
            "supported_features": [],
        }

    def _on_kernel_info_request(self, request: Request) -> None:
        self.reply(request, "kernel_info_reply", self.kernel_info())

    def _on_execute_request(self, request: Request) -> Deferred[None]:
        content = request.content
        code = content.get("code", "")
        if not isinstance(code, str):
            raise TypeError("execute_request 'code' must be a string")
        silent = bool(content.get("silent", False))
        store_history = bool(content.get("store_history", not silent)) and not silent
        user_expressions = content.get("user_expressions") or {}
        allow_stdin = bool(content.get("allow_stdin", False))
        stop_on_error = bool(content.get("stop_on_error", True))
        if store_history:
            self.execution_count += 1
        count = self.execution_count
        if not silent:
            self.publish(
                "execute_input", {"code": code, "execution_count": count}, request
            )
        d = maybeDeferred(
            self.do_execute, code, silent, store_history, user_expressions, allow_stdin
        )
        self._execution = d

        def finish(result: Any) -> None:
            self._execution = None
            if isinstance(result, Failure):
                if not result.check(CancelledError):
                    log.failure("do_execute failed", result)
                reply = error_content(result)
            else:
                reply = dict(result or {})
                reply.setdefault("status", "ok")
            reply["execution_count"] = count
            if reply["status"] == "ok":
                reply.setdefault("user_expressions", {})
                reply.setdefault("payload", [])
            elif reply["status"] == "error":
                reply.setdefault("ename", "Error")
                reply.setdefault("evalue", "")
                reply.setdefault("traceback", [])
                self.publish(
                    "error",
                    {k: reply[k] for k in ("ename", "evalue", "traceback")},
                    request,
                )
                if stop_on_error:
                    self._abort_queued()
            self.reply(request, "execute_reply", reply)

        d.addBoth(finish)
        return d

    def _abort_queued(self) -> None:
        """Mark every execute_request already received (or waiting in the socket) as aborted."""
        if self._transport is not None:
            self._transport.drain("shell")
        for queued in self._queues["shell"]:
            if queued.msg_type == "execute_request":
                self._abort_ids.add(queued.msg_id)

    def _send_aborted(self, request: Request) -> None:
        self.reply(
            request,
            "execute_reply",
            {"status": "aborted", "execution_count": self.execution_count},
        )

    def _on_complete_request(self, request: Request) -> Deferred[None]:
        c = request.content
        code = c.get("code", "")
        return self._call(
            request,
            "complete_reply",
            self.do_complete,
            code,
            int(c.get("cursor_pos", len(code))),
        )

    def _on_inspect_request(self, request: Request) -> Deferred[None]:
        c = request.content
        code = c.get("code", "")
        return self._call(
            request,
            "inspect_reply",
            self.do_inspect,
            code,
            int(c.get("cursor_pos", len(code))),
            int(c.get("detail_level", 0)),
        )

    def _on_is_complete_request(self, request: Request) -> Deferred[None]:
        return self._call(
            request,
            "is_complete_reply",
            self.do_is_complete,
            request.content.get("code", ""),
        )

    def _on_history_request(self, request: Request) -> Deferred[None]:
        return self._call(request, "history_reply", self.do_history, request.content)

    def _on_comm_info_request(self, request: Request) -> None:
        comms = self.comms.comm_info(request.content.get("target_name"))
        self.reply(request, "comm_info_reply", {"status": "ok", "comms": comms})

    def _on_comm_open(self, request: Request) -> None:
        self.comms.comm_open(request.message)

    def _on_comm_msg(self, request: Request) -> None:
        self.comms.comm_msg(request.message)

    def _on_comm_close(self, request: Request) -> None:
        self.comms.comm_close(request.message)

    def _on_interrupt_request(self, request: Request) -> None:
        self.interrupt()
        self.reply(request, "interrupt_reply", {"status": "ok"})

    def _on_shutdown_request(self, request: Request) -> Deferred[None]:
        restart = bool(request.content.get("restart", False))
        d = maybeDeferred(self.do_shutdown, restart)
        d.addErrback(lambda f: log.failure("do_shutdown failed", f))
        d.addCallback(
            lambda _: self.reply(
                request, "shutdown_reply", {"status": "ok", "restart": restart}
            )
        )
        return d

    def _shut_down(self, request: Request) -> None:
        restart = bool(request.content.get("restart", False))
        self.detach()
        if self._on_shutdown is not None:
            self._on_shutdown(restart)

    # -- stdin --

    def _input_reply(self, request: Request) -> None:
        if request.msg_type != "input_reply":
            log.warn(
                "Ignored a {msg_type!r} message on stdin", msg_type=request.msg_type
            )
            return
        parent_id = request.message["parent_header"].get("msg_id")
        if not parent_id and self._inputs:
            parent_id = next(iter(self._inputs))  # the oldest
        answer = self._forget_input(parent_id)
        if answer is None:
            log.warn("An input_reply that answers no pending input_request was dropped")
            return
        value = request.content.get("value", "")
        answer.callback(value if isinstance(value, str) else str(value))

    def _forget_input(self, msg_id: str | None) -> Deferred[str] | None:
        """Withdraw a pending input request; returns its answer's Deferred, if pending."""
        entry = self._inputs.pop(msg_id, None) if msg_id else None
        if entry is None:
            return None
        answer, sending = entry
        sending.cancel()  # stop waiting for the frontend, if still waiting
        return answer

    def _fail_inputs(self, reason: Exception) -> None:
        pending, self._inputs = self._inputs, {}
        for d, sending in pending.values():
            sending.cancel()
            d.errback(Failure(reason))
