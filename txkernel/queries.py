"""The requests that ask the interpreter something: completion, inspection,
``is_complete``, history, and the comm messages and ``comm_info``.

Each unpacks its request (a field of the wrong type is refused with a
:class:`~txkernel.request.RequestError`), asks the interpreter, and sends
what it answers as the reply.  Reactor thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred

from .dispatch import Handler
from .interpreter import Interpreter
from .messenger import Messenger
from .request import Request, RequestError


class QueryHandlers:
    """Serves the request types that the interpreter answers directly."""

    def __init__(self, interpreter: Interpreter, messenger: Messenger) -> None:
        self._interpreter = interpreter
        self._messenger = messenger

    def handlers(self) -> dict[str, Handler]:
        """The handler of each request type, by ``msg_type``."""
        return {
            "complete_request": self._on_complete,
            "inspect_request": self._on_inspect,
            "is_complete_request": self._on_is_complete,
            "history_request": self._on_history,
            "comm_info_request": self._on_comm_info,
            "comm_open": self._on_comm,
            "comm_msg": self._on_comm,
            "comm_close": self._on_comm,
        }

    def _answer(self, request: Request, reply_type: str, f: Callable[..., Any], *args: Any) -> Deferred[None]:
        """Run ``f(*args)`` and send what it gives as ``reply_type``."""
        d = maybeDeferred(f, *args)
        d.addCallback(lambda content: self._messenger.reply(request, reply_type, content))
        return d

    def _on_complete(self, request: Request) -> Deferred[None]:
        code, cursor = _code_and_cursor(request)
        return self._answer(request, "complete_reply", self._interpreter.complete, code, cursor)

    def _on_inspect(self, request: Request) -> Deferred[None]:
        code, cursor = _code_and_cursor(request)
        level = _integer(request.content.get("detail_level", 0), "detail_level")
        return self._answer(
            request, "inspect_reply", self._interpreter.inspect, code, cursor, level
        )

    def _on_is_complete(self, request: Request) -> Deferred[None]:
        code, _ = _code_and_cursor(request)
        return self._answer(request, "is_complete_reply", self._interpreter.is_complete, code)

    def _on_history(self, request: Request) -> Deferred[None]:
        return self._answer(request, "history_reply", self._interpreter.history, request.content)

    def _on_comm_info(self, request: Request) -> None:
        target_name = request.content.get("target_name")
        comms = self._interpreter.comms.comm_info(target_name if isinstance(target_name, str) else None)
        self._messenger.reply(request, "comm_info_reply", {"status": "ok", "comms": comms})

    def _on_comm(self, request: Request) -> Deferred[None]:
        deliver = getattr(self._interpreter.comms, request.msg_type)
        return maybeDeferred(
            self._interpreter.deliver_comm, request, lambda: deliver(request.message)
        )


def _code_and_cursor(request: Request) -> tuple[str, int]:
    code = request.content.get("code", "")
    if not isinstance(code, str):
        raise RequestError(f"{request.msg_type} 'code' must be a string")
    return code, _integer(request.content.get("cursor_pos", len(code)), "cursor_pos")


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name!r} must be an integer")
    return value

