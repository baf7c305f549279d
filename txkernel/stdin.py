"""The stdin broker: input requests to frontends, answered as Deferreds.

``request_input`` sends an ``input_request`` on stdin to the frontend that
sent a shell request and returns a Deferred of the answer; ``input_reply``
messages from frontends fire them.  Reactor thread only.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from .messenger import Messenger
from .request import Request

log = Logger()


class StdinNotAllowed(Exception):
    """The request being served said ``allow_stdin: false`` (or there is none)."""


class StdinUnreachable(StdinNotAllowed):
    """The frontend that sent the request is not connected to the stdin channel."""


class InputInterrupted(Exception):
    """A pending input request was ended by an interrupt or by shutdown."""


class StdinBroker:
    """The pending input requests of one kernel."""

    def __init__(self, messenger: Messenger) -> None:
        self._messenger = messenger
        # By msg_id: the answer's Deferred and the Deferred of sending the
        # request (which may wait for the frontend's stdin socket).
        self._pending: dict[str, tuple[Deferred[str], Deferred[None]]] = {}
        self.closed = False

    def request_input(
        self, request: Request | None, prompt: str = "", password: bool = False
    ) -> Deferred[str]:
        """Ask the frontend that sent ``request`` for a line of input.

        Fires with the string the user typed.  Fails at once with
        :class:`StdinNotAllowed` when ``request`` had ``allow_stdin: false``,
        with :class:`StdinUnreachable` when that frontend's stdin socket does
        not connect in time, and with :class:`InputInterrupted` on interrupt
        or shutdown.  Cancelling the Deferred withdraws the request.
        """
        if self.closed:
            return fail(InputInterrupted("the kernel is shutting down"))
        if request is None or not request.content.get("allow_stdin", False):
            return fail(
                StdinNotAllowed("this frontend does not support input requests")
            )
        msg = self._messenger.wire.new_message(
            "input_request",
            {"prompt": str(prompt), "password": bool(password)},
            request.message,
        )
        msg_id = msg["header"]["msg_id"]
        answer: Deferred[str] = Deferred(lambda _: self._forget(msg_id))
        sending = self._messenger.send_to_peer(request, "stdin", msg)
        self._pending[msg_id] = (answer, sending)

        def unreachable(failure: Failure) -> None:
            if failure.check(CancelledError):  # the request was withdrawn
                return
            log.warn("Could not ask for input: {reason}", reason=failure.value)
            if self._forget(msg_id) is not None:
                answer.errback(StdinUnreachable(str(failure.value)))

        sending.addErrback(unreachable)
        return answer

    def input_reply(self, reply: Request) -> None:
        """Fire the pending input request that ``reply`` answers."""
        if reply.msg_type != "input_reply":
            log.warn("Ignored a {msg_type!r} message on stdin", msg_type=reply.msg_type)
            return
        parent_id = reply.message["parent_header"].get("msg_id")
        if not parent_id:
            parent_id = next(iter(self._pending), None)  # the oldest
        answer = self._forget(parent_id)
        if answer is None:
            log.warn("An input_reply that answers no pending input_request was dropped")
            return
        value = reply.content.get("value", "")
        answer.callback(value if isinstance(value, str) else str(value))

    def fail_all(self, reason: Exception) -> None:
        """Fail every pending input request with ``reason``."""
        pending, self._pending = self._pending, {}
        for answer, sending in pending.values():
            sending.cancel()
            answer.errback(Failure(reason))

    def close(self) -> None:
        """Fail what is pending and refuse new requests (shutdown)."""
        self.closed = True
        self.fail_all(InputInterrupted("the kernel is shutting down"))

    def _forget(self, msg_id: str | None) -> Deferred[str] | None:
        """Withdraw a pending request; returns its answer's Deferred, if pending."""
        entry = self._pending.pop(msg_id, None) if isinstance(msg_id, str) else None
        if entry is None:
            return None
        answer, sending = entry
        sending.cancel()  # stop waiting for the frontend, if still waiting
        return answer
