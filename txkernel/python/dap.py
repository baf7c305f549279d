"""A Debug Adapter Protocol client over TCP, for talking to debugpy's adapter.

DAP messages are JSON bodies after a ``Content-Length`` header.  The client
numbers its own requests, so a response is matched to its request whatever
the frontend's ``seq`` was; events go to a callback.  Runs on the reactor
thread: nothing here ever blocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

_HEADER_END = b"\r\n\r\n"
_MAX_HEADER = 4096


class DAPError(Exception):
    """The adapter could not be reached, or the connection broke."""


class DAPClient(Protocol):
    """One DAP session with an adapter.

    ``on_event(event)`` receives every event the adapter sends;
    ``on_lost()`` is called once the connection is gone.
    """

    def __init__(
        self,
        on_event: Callable[[dict[str, Any]], object],
        reactor: Any,
        timeout: float = 30.0,
    ) -> None:
        self._on_event = on_event
        self._reactor = reactor
        self._timeout = timeout
        self._buffer = b""
        self._seq = 0
        self._pending: dict[int, tuple[Deferred[dict[str, Any]], Any]] = {}
        self.connected_d: Deferred[DAPClient] = Deferred()
        self.lost_d: Deferred[None] = Deferred()

    # -- requests --

    def request(
        self, command: str, arguments: dict[str, Any] | None = None
    ) -> Deferred[dict[str, Any]]:
        """Send a request; fires with the adapter's response (a dict, ``success`` may be false).

        Fails with :class:`DAPError` when the connection is lost or no
        response comes within the timeout.
        """
        d: Deferred[dict[str, Any]] = Deferred()
        if self.transport is None or self.lost_d.called:
            d.errback(DAPError("not connected to the debug adapter"))
            return d
        self._seq += 1
        seq = self._seq
        message: dict[str, Any] = {"seq": seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        timer = self._reactor.callLater(self._timeout, self._expire, seq, command)
        self._pending[seq] = (d, timer)
        body = json.dumps(message).encode("utf-8")
        self.transport.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return d

    def close(self) -> None:
        """Drop the connection (pending requests fail)."""
        if self.transport is not None:
            self.transport.loseConnection()

    def _expire(self, seq: int, command: str) -> None:
        pending = self._pending.pop(seq, None)
        if pending is not None:
            pending[0].errback(
                DAPError(
                    f"the debug adapter did not answer {command!r} in {self._timeout:g} s"
                )
            )

    # -- the wire --

    def connectionMade(self) -> None:
        self.connected_d.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                if (
                    len(self._buffer) > _MAX_HEADER
                    and b"Content-Length" not in self._buffer[:_MAX_HEADER]
                ):
                    self._broken("a header without Content-Length")
                return
            length = None
            for line in self._buffer[:end].split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        pass
            if length is None:
                self._broken("a header without Content-Length")
                return
            start = end + len(_HEADER_END)
            if len(self._buffer) < start + length:
                return
            body, self._buffer = (
                self._buffer[start : start + length],
                self._buffer[start + length :],
            )
            try:
                message = json.loads(body)
            except ValueError:
                log.warn(
                    "The debug adapter sent a body that is not JSON: {body!r}",
                    body=body[:200],
                )
                continue
            self._dispatch(message)

    def _broken(self, what: str) -> None:
        log.warn("The debug adapter sent {what}; closing the session", what=what)
        self._buffer = b""
        self.close()

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "response":
            pending = self._pending.pop(message.get("request_seq"), None)  # type: ignore[arg-type]
            if pending is None:
                log.debug("A response to no pending request: {m!r}", m=message)
                return
            d, timer = pending
            timer.cancel()
            d.callback(message)
        elif kind == "event":
            try:
                self._on_event(message)
            except Exception:
                log.failure("Handling a debug event failed")
        # Reverse requests (runInTerminal, startDebugging) do not apply to an attach session.

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            timer.cancel()
            d.errback(DAPError("the connection to the debug adapter was lost"))
        if not self.lost_d.called:
            self.lost_d.callback(None)
