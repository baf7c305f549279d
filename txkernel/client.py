"""A Twisted-native Jupyter kernel client: every request returns a Deferred.

Talks to any kernel (txkernel's, ipykernel, ...) from its connection info::

    client = KernelClient(read_connection_file(path))
    client.start()
    info = await client.wait_for_ready()
    result = await client.execute("1 + 1")
    result.reply["content"]["status"], result.outputs

All sockets are read and written on the reactor thread, but for the
heartbeat monitor's (:meth:`KernelClient.monitor_heartbeat`), which has a
thread of its own (``txkernel.heartbeat_monitor``).  With ``curve`` (a
:class:`txkernel.curve.CurveClient`) every socket is a CurveZMQ client of a
kernel started with the matching server key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import zmq
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    fail,
    maybeDeferred,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._defer import branch
from ._zmq import ZmqSocket, make_factory
from .connection import ConnectionInfo
from .curve import CurveClient
from .heartbeat_monitor import HeartbeatMonitor, HeartbeatPinger
from .wire import Message, Wire, WireError

#: The five channels of a kernel connection.
CHANNELS = ("shell", "control", "stdin", "iopub", "hb")

log = Logger()

InputHandler = Callable[[str, bool], "str | Deferred[str]"]
#: Called with each IOPub message of one request as it arrives.
OutputHandler = Callable[[Message], object]


class KernelTimeout(Exception):
    """The kernel did not answer in time."""


class KernelDied(Exception):
    """The kernel process ended (or was restarted) before answering."""


class KernelError(Exception):
    """The kernel answered a request with ``status: error``."""

    def __init__(self, reply: Message) -> None:
        content = reply["content"]
        super().__init__(f"{content.get('ename', 'Error')}: {content.get('evalue', '')}")
        self.reply = reply


def _ok(reply: Message) -> dict[str, Any]:
    """The content of ``reply``; KernelError when its status is not ok."""
    if reply["content"].get("status") != "ok":
        raise KernelError(reply)
    return reply["content"]


@dataclass
class ExecuteResult:
    """What one ``execute_request`` produced."""

    reply: Message
    outputs: list[Message] = field(default_factory=list)

    @property
    def content(self) -> dict[str, Any]:
        """The ``execute_reply`` content."""
        return self.reply["content"]

    def of_type(self, msg_type: str) -> list[Message]:
        """The IOPub messages of ``msg_type``, in order."""
        return [m for m in self.outputs if m["msg_type"] == msg_type]

    def stream_text(self, name: str = "stdout") -> str:
        """All text written to the ``name`` stream."""
        return "".join(
            m["content"]["text"]
            for m in self.of_type("stream")
            if m["content"]["name"] == name
        )


class _Pending:
    """A request waiting for its reply and (optionally) its ``status: idle``."""

    def __init__(
        self,
        collect: bool,
        on_input: InputHandler | None,
        msg_type: str = "",
        on_output: OutputHandler | None = None,
        canceller: Callable[[Deferred[Any]], None] | None = None,
    ) -> None:
        self.deferred: Deferred[Any] = Deferred(canceller)
        self.collect = collect
        self.on_input = on_input
        self.msg_type = msg_type
        self.on_output = on_output
        #: Whether cancelling or timing out interrupts the kernel.
        self.interrupt = False
        #: Fires once the kernel has answered a request cancelled with an
        #: interrupt (its ``deferred`` has already failed): with None, or with
        #: the exception that ended the wait.  None when not cancelled so.
        self.drained: Deferred[Exception | None] | None = None
        self.reply: Message | None = None
        self.outputs: list[Message] = []
        self.idle = False
        self.timer: Any = None


class KernelClient:
    """Connects to a kernel's five sockets and speaks the Jupyter protocol.

    ``curve`` (a :class:`txkernel.curve.CurveClient`: the kernel's public key
    and this client's keypair) encrypts every channel with CurveZMQ; a
    kernel serving with a server key answers no client without it.
    """

    def __init__(
        self,
        info: ConnectionInfo,
        reactor: Any = None,
        username: str = "txkernel",
        curve: CurveClient | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.info = info
        if curve is None and info.curve_publickey:
            # A connection file with a Curve keypair (jupyter_client 8.10's
            # fields): its public key, and a fresh keypair of our own.
            curve = CurveClient(info.curve_publickey.encode("ascii"))
        self.curve = curve
        self._curve_options = curve.socket_options() if curve is not None else []
        self._monitor: HeartbeatMonitor | None = None
        self._pinger: HeartbeatPinger | None = None
        self._death_watchers: list[Callable[[KernelDied], object]] = []
        self.wire = Wire(info.key, info.signature_scheme, username=username)
        self._factory: Any = None
        self._sockets: dict[str, ZmqSocket] = {}
        self._pending: dict[str, _Pending] = {}
        self._iopub_watchers: list[Callable[[Message], object]] = []
        self._hb_waiting: dict[bytes, tuple[Deferred[float], float, Any]] = {}
        self._hb_count = 0
        #: What cancelling (or timing out) an :meth:`execute` calls to stop
        #: the code: by default an ``interrupt_request`` on control; a
        #: :class:`~txkernel.manager.KernelManager` sets its own (SIGINT or
        #: message, as the kernelspec says).
        self.interrupter: Callable[[], object] = self.interrupt

    # -- life cycle --

    def start(self, channels: Iterable[str] = CHANNELS) -> None:
        """Connect the sockets of ``channels`` (default: all five).

        Returns at once (see :meth:`wait_for_ready`).  Calling it again
        connects channels not yet connected, as jupyter_client's
        ``start_channels`` does.
        """
        if self._factory is None:
            self._factory = make_factory(self._reactor)
            self._factory.lingerPeriod = 0
        ident = self.wire.bsession
        plan = {
            "shell": (zmq.DEALER, [(zmq.IDENTITY, ident)]),
            "control": (zmq.DEALER, []),
            "stdin": (zmq.DEALER, [(zmq.IDENTITY, ident)]),
            "iopub": (zmq.SUB, [(zmq.SUBSCRIBE, b"")]),
            "hb": (zmq.DEALER, []),
        }
        unknown = set(channels) - set(plan)
        if unknown:
            raise ValueError(f"unknown channels: {', '.join(sorted(unknown))}")
        for channel in channels:
            if channel in self._sockets:
                continue
            kind, options = plan[channel]
            sock = ZmqSocket(
                self._factory,
                kind,
                lambda frames, ch=channel: self._received(ch, frames),
                options=options + self._curve_options,
            )
            try:
                sock.connect(self.info.endpoint(channel))
            except BaseException:
                sock.shutdown()
                raise
            self._sockets[channel] = sock

    def stop(self) -> None:
        """Close every socket (and the heartbeat monitor's thread); pending
        requests fail with ``KernelTimeout``."""
        self._stop_monitor()
        self.fail_pending(KernelTimeout("client stopped"))
        for sock in self._sockets.values():
            sock.shutdown()
        self._sockets.clear()
        if self._factory is not None:
            self._factory.shutdown()
            self._factory = None

    def fail_pending(self, reason: Exception) -> None:
        """Fail every request and heartbeat waiting for an answer with ``reason``
        (a :class:`KernelManager` does so with :class:`KernelDied` when the
        kernel process ends); the sockets stay connected."""
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if p.timer is not None and p.timer.active():
                p.timer.cancel()
            if p.drained is not None:
                p.drained.callback(reason)
            else:
                p.deferred.errback(reason)
        hb, self._hb_waiting = self._hb_waiting, {}
        for d, _, timer in hb.values():
            if timer.active():
                timer.cancel()
            d.errback(reason)

    # -- watching the heartbeat --

    def monitor_heartbeat(self, interval: float = 1.0, misses: int = 3) -> None:
        """Ping the kernel's heartbeat every ``interval`` seconds (from a thread
        of its own) and declare the kernel dead once ``misses`` pings in a row
        went unanswered: pending requests then fail with :class:`KernelDied`
        and :meth:`on_death` watchers are called.  A kernel that answers
        again is watched again (and reported again if it stops again).

        For a client on a kernel this program did not start; a
        :class:`~txkernel.manager.KernelManager` knows when its kernel
        process ends without it.  :meth:`stop` ends the monitoring.
        """
        if self._monitor is not None:
            raise RuntimeError("the heartbeat is already monitored")
        monitor = HeartbeatMonitor(
            lambda token: pinger.ping(token),
            on_lost=self._heartbeat_lost,
            on_back=lambda: log.info("The kernel answers its heartbeat again"),
            interval=interval,
            misses=misses,
            reactor=self._reactor,
        )
        pinger = HeartbeatPinger(
            self._reactor, self.info.endpoint("hb"), monitor.echoed, self._curve_options
        )
        self._monitor, self._pinger = monitor, pinger
        monitor.start()

    @property
    def beating(self) -> bool:
        """False once :meth:`monitor_heartbeat` has declared the kernel dead
        (until it answers again); True otherwise."""
        return self._monitor is None or self._monitor.beating

    def on_death(self, watcher: Callable[[KernelDied], object]) -> Callable[[], None]:
        """Call ``watcher(reason)`` (a :class:`KernelDied`) each time the heartbeat
        monitor declares the kernel dead; returns an unwatch function."""
        self._death_watchers.append(watcher)
        return lambda: (
            self._death_watchers.remove(watcher) if watcher in self._death_watchers else None
        )

    def _heartbeat_lost(self) -> None:
        assert self._monitor is not None
        reason = KernelDied(
            f"the kernel stopped answering its heartbeat "
            f"({self._monitor.misses} pings unanswered in {self._monitor.lost_after:g} s)"
        )
        log.warn("{reason}", reason=reason)
        self.fail_pending(reason)
        for watcher in list(self._death_watchers):
            try:
                watcher(reason)
            except Exception:
                log.failure("A kernel death watcher failed")

    def _stop_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None
        if self._pinger is not None:
            self._pinger.stop()
            self._pinger = None

    def pending_requests(self) -> list[str]:
        """The message types of the requests waiting for an answer, oldest first."""
        return [p.msg_type for p in self._pending.values() if p.drained is None]

    # -- requests --

    def send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Send one message as is (no reply tracking); returns it.

        ``subshell_id`` addresses a shell message to that subshell.
        """
        msg = self.wire.new_message(msg_type, content or {}, parent, metadata)
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self._socket(channel).send(self.wire.serialize(msg))
        return msg

    def _socket(self, channel: str) -> ZmqSocket:
        sock = self._sockets.get(channel)
        if sock is None:
            raise RuntimeError(f"the {channel} channel is not connected (see start())")
        return sock

    def request(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        channel: str = "shell",
        timeout: float | None = None,
        collect: bool = False,
        on_input: InputHandler | None = None,
        subshell_id: str | None = None,
        on_output: OutputHandler | None = None,
        interrupt_on_cancel: bool = False,
    ) -> Deferred[Any]:
        """Send a request (to subshell ``subshell_id``, if given); fires with the reply message.

        Fails at once with :class:`KernelDied`, sending nothing, while
        :meth:`monitor_heartbeat` holds the kernel for dead.

        With ``collect``, waits for ``status: idle`` too and fires with an
        :class:`ExecuteResult` carrying the IOPub messages of the request.
        ``on_output(msg)`` sees each IOPub message of the request as it
        arrives.  Fails with :class:`KernelTimeout` after ``timeout``
        seconds; cancelling the Deferred forgets the request (a late reply
        is ignored).  With ``interrupt_on_cancel``, either also calls
        :attr:`interrupter` to stop what the request started.
        """
        if channel not in self._sockets:
            return fail(RuntimeError("the client is not started"))
        if not self.beating:
            return fail(
                KernelDied("the kernel is not answering its heartbeat; nothing was sent")
            )
        msg = self.wire.new_message(msg_type, content or {})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        msg_id = msg["header"]["msg_id"]
        pending = _Pending(
            collect,
            on_input,
            msg_type,
            on_output,
            lambda _: self._cancelled(msg_id, interrupt_on_cancel),
        )
        pending.interrupt = interrupt_on_cancel
        try:
            # zmq.Again: no connection takes it (as with a failed CurveZMQ handshake).
            self._socket(channel).send(self.wire.serialize(msg))
        except zmq.ZMQError as e:
            return fail(e)
        self._pending[msg_id] = pending
        if timeout is not None:
            pending.timer = self._reactor.callLater(
                timeout, self._timed_out, msg_id, msg_type
            )
        return pending.deferred

    def _cancelled(self, msg_id: str, interrupt: bool) -> None:
        pending = self._pending.get(msg_id)
        if pending is None:
            return
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        if interrupt:
            self._interrupt_for(pending)
        else:
            del self._pending[msg_id]

    def _interrupt_for(self, pending: _Pending) -> None:
        """Interrupt what ``pending`` started and keep track of it until the
        kernel has answered it, so that executions sent meanwhile wait
        (the kernel would answer them ``aborted``, queued behind an error)."""
        pending.drained = Deferred()
        self._interrupt_quietly()

    def _after_interrupted(self, send: Callable[[], Deferred[Any]]) -> Deferred[Any]:
        """``send()`` once every interrupted request has been answered; a
        Deferred of its result."""
        waits = [branch(p.drained) for p in self._pending.values() if p.drained is not None]
        if not waits:
            return send()
        sent: list[Deferred[Any]] = []

        def cancel(_: Deferred[Any]) -> None:
            if sent:
                sent[0].cancel()

        outer: Deferred[Any] = Deferred(cancel)

        def relay(result: Any) -> None:
            if not outer.called:
                (outer.errback if isinstance(result, Failure) else outer.callback)(result)

        def go(results: list[tuple[bool, Exception | None]]) -> None:
            reasons = [reason for _, reason in results if reason is not None]
            if reasons:
                relay(Failure(reasons[0]))
            elif not outer.called:
                sent.append(send())
                sent[0].addBoth(relay)

        DeferredList(waits).addCallback(go)
        return outer

    def _interrupt_quietly(self) -> None:
        d = maybeDeferred(self.interrupter)
        d.addErrback(
            lambda f: None
            if f.check(CancelledError, KernelTimeout, KernelDied)
            else log.failure("Interrupting the kernel failed", f)
        )

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        on_input: InputHandler | None = None,
        timeout: float | None = None,
        subshell_id: str | None = None,
        on_output: OutputHandler | None = None,
    ) -> Deferred[ExecuteResult]:
        """Run ``code``; fires with an :class:`ExecuteResult` once the kernel is idle again.

        ``on_input(prompt, password)`` answers input requests (a string or a
        Deferred of one); stdin is allowed when it is given.
        ``on_output(msg)`` is called with each IOPub message of this
        execution (``stream``, ``display_data``, ``execute_result``,
        ``error``, ``status``...) as it arrives, as jupyter_client's
        ``execute_interactive`` output hook is.

        Cancelling the Deferred, or ``timeout`` seconds passing, interrupts
        the kernel (through :attr:`interrupter`); the Deferred then fails
        with ``CancelledError`` or :class:`KernelTimeout` at once.  When a
        :class:`~txkernel.manager.KernelManager` made this client, it fails
        with :class:`KernelDied` if the kernel process ends first.
        """
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": on_input is not None if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }
        return self._after_interrupted(
            lambda: self.request(
                "execute_request",
                content,
                timeout=timeout,
                collect=True,
                on_input=on_input,
                subshell_id=subshell_id,
                on_output=on_output,
                interrupt_on_cancel=True,
            )
        )

    def kernel_info(
        self,
        channel: str = "shell",
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Deferred[Message]:
        """Fires with the ``kernel_info_reply`` message."""
        return self.request(
            "kernel_info_request", {}, channel, timeout, subshell_id=subshell_id
        )

    def complete(
        self, code: str, cursor_pos: int | None = None, subshell_id: str | None = None
    ) -> Deferred[Message]:
        """Fires with the ``complete_reply`` message."""
        pos = len(code) if cursor_pos is None else cursor_pos
        return self.request(
            "complete_request",
            {"code": code, "cursor_pos": pos},
            subshell_id=subshell_id,
        )

    def inspect(
        self, code: str, cursor_pos: int | None = None, detail_level: int = 0
    ) -> Deferred[Message]:
        """Fires with the ``inspect_reply`` message."""
        pos = len(code) if cursor_pos is None else cursor_pos
        return self.request(
            "inspect_request",
            {"code": code, "cursor_pos": pos, "detail_level": detail_level},
        )

    def is_complete(self, code: str) -> Deferred[Message]:
        """Fires with the ``is_complete_reply`` message."""
        return self.request("is_complete_request", {"code": code})

    def history(self, **content: Any) -> Deferred[Message]:
        """Fires with the ``history_reply`` message (fields as in the spec)."""
        return self.request("history_request", content)

    def comm_info(self, target_name: str | None = None) -> Deferred[Message]:
        """Fires with the ``comm_info_reply`` message."""
        content = {} if target_name is None else {"target_name": target_name}
        return self.request("comm_info_request", content)

    async def create_subshell(self) -> str:
        """Create a kernel subshell (JEP 91); fires with its ``subshell_id``."""
        reply = await self.request("create_subshell_request", {}, "control")
        return _ok(reply)["subshell_id"]

    async def delete_subshell(self, subshell_id: str) -> None:
        """Delete a subshell; fails with :class:`KernelError` if there is none such."""
        reply = await self.request(
            "delete_subshell_request", {"subshell_id": subshell_id}, "control"
        )
        _ok(reply)

    async def list_subshells(self) -> list[str]:
        """Fires with the ids of the kernel's subshells."""
        reply = await self.request("list_subshell_request", {}, "control")
        return list(_ok(reply)["subshell_id"])

    def interrupt(self) -> Deferred[Message]:
        """Send ``interrupt_request`` on control; fires with the reply."""
        return self.request("interrupt_request", {}, "control")

    def shutdown(
        self, restart: bool = False, timeout: float | None = None
    ) -> Deferred[Message]:
        """Send ``shutdown_request`` on control; fires with the reply."""
        return self.request(
            "shutdown_request", {"restart": restart}, "control", timeout
        )

    def wait_for_ready(
        self, timeout: float = 30.0, interval: float = 0.1
    ) -> Deferred[Message]:
        """Fires with a ``kernel_info_reply`` once IOPub is known to be subscribed.

        Sends ``kernel_info_request`` until an IOPub message (the kernel's
        welcome or a status) has arrived, as jupyter_client does; the
        requests left unanswered are forgotten once it fires, so none stay
        pending.  Fails with :class:`KernelTimeout` after ``timeout`` seconds.
        """
        state: dict[str, Any] = {"seen": False, "reply": None}
        asked: list[Deferred[Message]] = []

        def forget_asked() -> None:
            for d in asked:
                if not d.called:
                    d.cancel()

        def cancel(_: Deferred[Message]) -> None:
            if seen in self._iopub_watchers:
                self._iopub_watchers.remove(seen)
            for timer in (loop, deadline):
                if timer.active():
                    timer.cancel()
            forget_asked()

        done: Deferred[Message] = Deferred(cancel)

        def seen(_msg: Message) -> None:
            state["seen"] = True
            maybe_done()

        def maybe_done() -> None:
            if state["seen"] and state["reply"] is not None and not done.called:
                self._iopub_watchers.remove(seen)
                loop.cancel() if loop.active() else None
                deadline.cancel() if deadline.active() else None
                forget_asked()
                done.callback(state["reply"])

        def got(reply: Message) -> None:
            state["reply"] = reply
            maybe_done()

        def ask() -> None:
            nonlocal loop
            d = self.kernel_info()
            asked.append(d)
            d.addCallback(got).addErrback(lambda f: None)
            loop = self._reactor.callLater(interval, ask)

        def expire() -> None:
            if not done.called:
                self._iopub_watchers.remove(seen)
                if loop.active():
                    loop.cancel()
                forget_asked()
                done.errback(KernelTimeout(f"no kernel answered within {timeout} s"))

        self._iopub_watchers.append(seen)
        loop = self._reactor.callLater(0, ask)
        deadline = self._reactor.callLater(timeout, expire)
        return done

    def watch_iopub(self, callback: Callable[[Message], object]) -> Callable[[], None]:
        """Call ``callback(msg)`` for every IOPub message; returns an unwatch function."""
        self._iopub_watchers.append(callback)
        return lambda: (
            self._iopub_watchers.remove(callback)
            if callback in self._iopub_watchers
            else None
        )

    def heartbeat(self, timeout: float = 1.0) -> Deferred[float]:
        """Ping the heartbeat; fires with the round trip in seconds."""
        sock = self._socket("hb")
        self._hb_count += 1
        token = b"ping-%d-" % self._hb_count + os.urandom(4).hex().encode()
        try:
            sock.send([token])
        except zmq.ZMQError as e:
            return fail(e)
        d: Deferred[float] = Deferred()
        timer = self._reactor.callLater(timeout, self._hb_timed_out, token)
        self._hb_waiting[token] = (d, self._reactor.seconds(), timer)
        return d

    # -- incoming --

    def _timed_out(self, msg_id: str, msg_type: str) -> None:
        pending = self._pending.get(msg_id)
        if pending is None:
            return
        if pending.interrupt:
            self._interrupt_for(pending)
        else:
            del self._pending[msg_id]
        pending.deferred.errback(KernelTimeout(f"no reply to {msg_type}"))

    def _hb_timed_out(self, token: bytes) -> None:
        entry = self._hb_waiting.pop(token, None)
        if entry is not None:
            entry[0].errback(KernelTimeout("no heartbeat"))

    def _received(self, channel: str, frames: list[bytes]) -> None:
        if channel == "hb":
            entry = self._hb_waiting.pop(frames[0], None)
            if entry is not None:
                d, sent, timer = entry
                timer.cancel()
                d.callback(self._reactor.seconds() - sent)
            return
        try:
            _, msg = self.wire.deserialize(frames)
        except WireError as e:
            log.warn(
                "Client dropped a message on {channel}: {reason}",
                channel=channel,
                reason=e,
            )
            return
        if channel == "iopub":
            self._iopub(msg)
        elif channel == "stdin":
            self._input_request(msg)
        else:
            self._reply(msg)

    def _pending_for(self, msg: Message) -> tuple[str, _Pending] | None:
        """The request ``msg`` answers, if this client is waiting for it."""
        parent_id = msg["parent_header"].get("msg_id")
        if not isinstance(parent_id, str):
            return None
        pending = self._pending.get(parent_id)
        return (parent_id, pending) if pending is not None else None

    def _reply(self, msg: Message) -> None:
        found = self._pending_for(msg)
        if found is None:
            return
        parent_id, pending = found
        pending.reply = msg
        self._maybe_done(parent_id, pending)

    def _iopub(self, msg: Message) -> None:
        for watcher in list(self._iopub_watchers):
            watcher(msg)
        found = self._pending_for(msg)
        if found is None:
            return
        pending = found[1]
        if pending.on_output is not None:
            try:
                pending.on_output(msg)
            except Exception:
                log.failure("An output handler failed on {msg_type}", msg_type=msg["msg_type"])
        if not pending.collect:
            return
        parent_id, pending = found
        pending.outputs.append(msg)
        if (
            msg["msg_type"] == "status"
            and msg["content"].get("execution_state") == "idle"
        ):
            pending.idle = True
            self._maybe_done(parent_id, pending)

    def _maybe_done(self, msg_id: str, pending: _Pending) -> None:
        if pending.reply is None or (pending.collect and not pending.idle):
            return
        del self._pending[msg_id]
        if pending.drained is not None:
            pending.drained.callback(None)
            return
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        if pending.collect:
            pending.deferred.callback(ExecuteResult(pending.reply, pending.outputs))
        else:
            pending.deferred.callback(pending.reply)

    def _input_request(self, msg: Message) -> None:
        found = self._pending_for(msg)
        pending = found[1] if found is not None else None
        if pending is None or pending.on_input is None:
            log.warn("Input request with nobody to answer it")
            return
        content = msg["content"]
        d = maybeDeferred(
            pending.on_input, content.get("prompt", ""), bool(content.get("password"))
        )
        d.addCallback(
            lambda value: self.send(
                "stdin", "input_reply", {"value": value}, parent=msg
            )
        )
        d.addErrback(lambda f: log.failure("Answering an input request failed", f))
