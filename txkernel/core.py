"""The protocol core: what every kernel does, whatever its language.

:class:`KernelCore` holds an interpreter (the language, see
:mod:`txkernel.interpreter`) and is made of small parts with one job each:

- :class:`~txkernel.messenger.Messenger` builds, signs and sends messages;
- :class:`~txkernel.dispatch.Dispatcher` owns the queues (control, the
  parent shell, each subshell), wraps every request in busy/idle and keeps a
  queue serving whatever a handler does;
- :class:`~txkernel.execute.ExecuteHandler` gives ``execute_request`` its
  semantics (counts, ``execute_input``, errors, aborts);
- :class:`~txkernel.subshells.Subshells` creates, lists and deletes subshells;
- :class:`~txkernel.stdin.StdinBroker` turns input requests into Deferreds;
- :class:`~txkernel.comm.CommManager` (the interpreter's) holds the comms.

The core knows nothing about sockets: ``KernelService`` attaches it to a
transport that delivers frames and sends what the core gives it.  Everything
here runs on the reactor thread, except :meth:`KernelCore.publish` and
:meth:`KernelCore.send_stream`, which any thread may call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._defer import branch
from .dispatch import Dispatcher, Handler, serving
from .execute import ExecuteHandler
from .interpreter import Interpreter
from .messenger import CURRENT, Messenger
from .queries import QueryHandlers
from .request import CONTROL_TYPES, SHELL_TYPES, Request, RequestError, Transport
from .stdin import InputInterrupted, StdinBroker
from .subshells import Subshells
from .wire import PROTOCOL_VERSION, Wire, WireError, pack

log = Logger()

class KernelCore:
    """Serves the Jupyter protocol for ``interpreter``."""

    def __init__(self, interpreter: Interpreter) -> None:
        self.interpreter = interpreter
        self.comms = interpreter.comms
        self.messenger = Messenger(self._default_parent, interpreter.before_publish)
        self.dispatcher = Dispatcher(
            self.messenger,
            self._handler_for,
            self._request_failed,
            self._aborted,
            self._served,
        )
        self.execution = ExecuteHandler(interpreter, self.messenger, self.dispatcher)
        self.subshells = Subshells(interpreter, self.messenger, self.dispatcher)
        self.stdin = StdinBroker(self.messenger)
        self._on_shutdown: Callable[[bool], object] | None = None
        #: Answered shutdown requests, carried out after their idle status.
        self._shutdowns: set[Request] = set()
        self._stopping: Deferred[None] | None = None
        self._request_watchers: list[Callable[[Request], object]] = []
        #: The last kernel_info_reply content, and its packed JSON.
        self._kernel_info_packed: tuple[dict[str, Any], bytes] | None = None
        self._handlers: dict[str, Handler] = {
            "execute_request": self.execution.serve,
            "kernel_info_request": self._on_kernel_info,
            **QueryHandlers(interpreter, self.messenger).handlers(),
            "interrupt_request": self._on_interrupt,
            "debug_request": self._on_debug,
            "shutdown_request": self._on_shutdown_request,
            "create_subshell_request": self.subshells.on_create,
            "delete_subshell_request": self.subshells.on_delete,
            "list_subshell_request": self.subshells.on_list,
        }

    # -- life cycle --

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
        self._on_shutdown = on_shutdown
        self._stopping = None
        self.messenger.open(wire, transport)
        self.dispatcher.reopen()
        self.stdin.closed = False
        self.interpreter.start(self)
        self.messenger.publish("status", {"execution_state": "starting"}, parent=None)

    def detach(self) -> Deferred[None]:
        """Stop serving: queued requests are dropped, pending input requests
        fail, subshells are deleted; fires once the interpreter has stopped."""
        if self._stopping is None:
            self._stopping = self._detach()
        return branch(self._stopping)

    def _detach(self) -> Deferred[None]:
        self.dispatcher.close()
        self.stdin.close()
        stopping = self.subshells.delete_all()
        stopping.append(maybeDeferred(self.interpreter.stop))
        self.messenger.close()
        done = DeferredList(stopping, consumeErrors=True)
        return done.addCallback(lambda _: None)

    # -- incoming messages --

    def message_received(self, channel: str, frames: list[bytes]) -> None:
        """Accept one multipart message from ``channel`` (shell, control or stdin)."""
        if self.dispatcher.closed:
            return
        try:
            identities, msg, header_frame = self.messenger.wire.deserialize_request(
                frames
            )
        except WireError as e:
            log.warn("Dropped a message on {channel}: {reason}", channel=channel, reason=e)
            return
        request = Request(channel, identities, msg, header_frame)
        if channel == "stdin":
            self.stdin.input_reply(request)
        elif not (channel == "shell" and self.interpreter.serve_out_of_turn(request)):
            self.dispatcher.accept(request)
        for watcher in list(self._request_watchers):
            watcher(request)

    def watch_requests(self, watcher: Callable[[Request], object]) -> Callable[[], None]:
        """Call ``watcher(request)`` for every message that arrives (shell,
        control, stdin), once it is queued (or served, if that could be done
        at once); returns an unwatch function."""
        self._request_watchers.append(watcher)
        return lambda: self._request_watchers.remove(watcher)

    # -- what the interpreter calls (the Host interface) --

    @property
    def execution_count(self) -> int:
        return self.execution.execution_count

    @property
    def executing(self) -> bool:
        """Whether an execute request is being served now (in any subshell)."""
        return bool(self.execution.running)

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Request | None = CURRENT,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] | None = None,
    ) -> None:
        """Send a message on IOPub (any thread); ``parent`` defaults to the
        request the output belongs to, ``None`` gives no parent header."""
        self.messenger.publish(msg_type, content, parent, metadata, buffers)

    def send_stream(self, name: str, text: str, parent: Request | None = CURRENT) -> None:
        """Publish ``text`` on the ``stdout`` or ``stderr`` stream (any thread)."""
        self.messenger.publish("stream", {"name": name, "text": text}, parent)

    def request_input(
        self, prompt: str = "", password: bool = False, request: Request | None = None
    ) -> Deferred[str]:
        """Ask the frontend that sent ``request`` (default: the current one) for
        input; see :meth:`txkernel.stdin.StdinBroker.request_input`."""
        return self.stdin.request_input(request or self.current_request(), prompt, password)

    def flush(self) -> Deferred[None]:
        """Fires once everything published so far is on the wire."""
        return self.messenger.flush()

    def current_request(self) -> Request | None:
        """The shell request being served here and now, else the parent
        shell's current (or last) request."""
        return serving.get() or self.dispatcher.shell.current

    def cancel_executions(self) -> None:
        """Cancel the Deferreds of the executions running now."""
        self.execution.cancel_running()

    def interrupt(self) -> None:
        """Interrupt what runs (every subshell) and fail pending input requests."""
        self.interpreter.interrupt()
        self.stdin.fail_all(InputInterrupted("interrupted"))

    def kernel_info(self) -> dict[str, Any]:
        """The ``kernel_info_reply`` content."""
        interpreter = self.interpreter
        return {
            "status": "ok",
            "protocol_version": PROTOCOL_VERSION,
            "implementation": interpreter.implementation,
            "implementation_version": interpreter.implementation_version,
            "language_info": interpreter.language_info,
            "banner": interpreter.banner,
            "help_links": interpreter.help_links,
            "debugger": interpreter.debugger,
            "supported_features": ["kernel subshells"]
            + (["debugger"] if interpreter.debugger else []),
        }

    # -- serving --

    def _default_parent(self) -> Request | None:
        return self.interpreter.output_request() or self.current_request()

    def _handler_for(self, request: Request) -> Handler | None:
        allowed = SHELL_TYPES if request.channel == "shell" else CONTROL_TYPES
        if request.msg_type not in allowed:
            return None
        return self._handlers[request.msg_type]

    def _request_failed(self, request: Request, failure: Failure) -> None:
        if not failure.check(RequestError):
            log.failure("Handler for {request!r} failed", failure, request=request)
        reply_type = request.msg_type.replace("_request", "_reply")
        if reply_type != request.msg_type:
            reply = {"status": "error", **self.interpreter.failed(failure)}
            self.messenger.reply(request, reply_type, reply)

    def _aborted(self, request: Request) -> None:
        self.execution.aborted(request)

    def _on_kernel_info(self, request: Request) -> None:
        # The content seldom changes: it is packed again only when it does.
        content = self.kernel_info()
        packed = self._kernel_info_packed
        if packed is None or packed[0] != content:
            # (a copy: an interpreter may change its language_info in place)
            packed = self._kernel_info_packed = (copy.deepcopy(content), pack(content))
        self.messenger.reply(request, "kernel_info_reply", packed[1])

    def _on_debug(self, request: Request) -> Deferred[None]:
        d = maybeDeferred(self.interpreter.debug, request.content)
        d.addCallback(lambda reply: self.messenger.reply(request, "debug_reply", reply))
        return d

    def _on_interrupt(self, request: Request) -> None:
        self.interrupt()
        self.messenger.reply(request, "interrupt_reply", {"status": "ok"})

    def _on_shutdown_request(self, request: Request) -> Deferred[None]:
        restart = bool(request.content.get("restart", False))
        d = maybeDeferred(self.interpreter.shutdown, restart)
        d.addErrback(lambda f: log.failure("Shutting down the interpreter failed", f))
        d.addCallback(
            lambda _: self.messenger.reply(
                request, "shutdown_reply", {"status": "ok", "restart": restart}
            )
        )
        d.addCallback(lambda _: self._shutdowns.add(request))
        return d

    def _served(self, request: Request) -> None:
        """After a request's idle status: a shutdown happens now."""
        if request in self._shutdowns:
            self._shutdowns.clear()
            self.detach()
            if self._on_shutdown is not None:
                self._on_shutdown(bool(request.content.get("restart", False)))


def welcome_frames(wire: Wire, topic: bytes) -> list[bytes] | None:
    """The ``iopub_welcome`` (JEP 65) for a subscription to ``topic``,
    serialized by ``wire``; None for a topic that is not UTF-8 (any thread;
    the IOPub thread sends it before anything else reaches that subscriber,
    see ``KernelService``)."""
    try:
        subscription = topic.decode("utf-8")
    except UnicodeDecodeError:
        return None
    msg = wire.new_message("iopub_welcome", {"subscription": subscription}, None)
    return wire.serialize(msg, [topic])
