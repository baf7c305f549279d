"""Execute semantics: counts, ``execute_input``, replies, errors and aborts.

The rules every kernel follows, whatever its language: ``silent`` and
``store_history: false`` do not bump ``execution_count``; ``execute_input``
is published before the code runs (not when silent); an error is published
as an ``error`` message and, with ``stop_on_error``, aborts the execute
requests already queued in the same queue; an interrupted execution is
reported as the interpreter says.  Reactor thread only.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .dispatch import Dispatcher
from .interpreter import Execution, Interpreter
from .messenger import Messenger
from .request import Request, RequestError

log = Logger()


class ExecuteHandler:
    """Serves ``execute_request`` through the interpreter; keeps the count."""

    def __init__(
        self, interpreter: Interpreter, messenger: Messenger, dispatcher: Dispatcher
    ) -> None:
        self._interpreter = interpreter
        self._messenger = messenger
        self._dispatcher = dispatcher
        self.execution_count = 0
        #: The Deferreds of the executions running now, by request.
        self.running: dict[Request, Deferred[Any]] = {}

    def cancel_running(self) -> None:
        """Cancel the Deferred of every execution running now."""
        for d in list(self.running.values()):
            if not d.called:
                d.cancel()

    def serve(self, request: Request) -> Deferred[None]:
        """Run the request's code; fires once the reply has been sent."""
        execution, stop_on_error = self._unpack(request)
        if not execution.silent:
            self._messenger.publish_owned(
                "execute_input",
                {"code": execution.code, "execution_count": execution.execution_count},
                request,
            )
        d = maybeDeferred(self._interpreter.execute, execution)
        self.running[request] = d
        d.addBoth(self._finish, execution, stop_on_error)
        return d

    def aborted(self, request: Request) -> None:
        """Answer an execute request that an earlier error aborted."""
        self._messenger.reply(
            request,
            "execute_reply",
            {"status": "aborted", "execution_count": self.execution_count},
        )

    def _abort_after(self, request: Request) -> None:
        try:
            queue = self._dispatcher.queue_of(request)
        except LookupError:  # its subshell was deleted meanwhile
            return
        self._dispatcher.abort_pending(queue)

    def _unpack(self, request: Request) -> tuple[Execution, bool]:
        content = request.content
        code = content.get("code", "")
        if not isinstance(code, str):
            raise RequestError("execute_request 'code' must be a string")
        expressions = content.get("user_expressions") or {}
        if not isinstance(expressions, dict):
            raise RequestError("execute_request 'user_expressions' must be an object")
        silent = bool(content.get("silent", False))
        store_history = bool(content.get("store_history", not silent)) and not silent
        if store_history:
            self.execution_count += 1
        execution = Execution(
            code=code,
            silent=silent,
            store_history=store_history,
            user_expressions=expressions,
            allow_stdin=bool(content.get("allow_stdin", False)),
            execution_count=self.execution_count,
            request=request,
        )
        return execution, bool(content.get("stop_on_error", True))

    def _finish(self, result: Any, execution: Execution, stop_on_error: bool) -> None:
        request = execution.request
        self.running.pop(request, None)
        if isinstance(result, Failure):
            if result.check(CancelledError):
                reply = {"status": "error", **self._interpreter.interrupted()}
            else:
                if not result.check(RequestError):
                    log.failure("Executing {request!r} failed", result, request=request)
                reply = {"status": "error", **self._interpreter.failed(result)}
        else:
            reply = dict(result or {})
            reply.setdefault("status", "ok")
        reply["execution_count"] = execution.execution_count
        if reply["status"] == "ok":
            reply.setdefault("user_expressions", {})
            reply.setdefault("payload", [])
        elif reply["status"] == "error":
            reply.setdefault("ename", "Error")
            reply.setdefault("evalue", "")
            reply.setdefault("traceback", [])
            self._messenger.publish(
                "error",
                {k: reply[k] for k in ("ename", "evalue", "traceback")},
                request,
            )
            if stop_on_error:
                self._abort_after(request)
        self._messenger.reply(request, "execute_reply", reply)
