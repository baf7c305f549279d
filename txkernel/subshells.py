"""Kernel subshells (JEP 91): ``create``, ``delete`` and ``list`` on control.

A subshell is a queue of shell requests of its own (see
:mod:`txkernel.dispatch`), served concurrently with the parent shell and
every other subshell; the interpreter is told when one is created or deleted
so it can give it an execution thread.  Reactor thread only.
"""

from __future__ import annotations

import uuid
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred

from .dispatch import Dispatcher
from .interpreter import Interpreter
from .messenger import Messenger
from .request import Request, RequestError


class Subshells:
    """Serves the three subshell requests of the control channel."""

    def __init__(
        self, interpreter: Interpreter, messenger: Messenger, dispatcher: Dispatcher
    ) -> None:
        self._interpreter = interpreter
        self._messenger = messenger
        self._dispatcher = dispatcher

    def ids(self) -> list[str]:
        """The ids of the subshells that exist now, oldest first."""
        return [sid for sid in self._dispatcher.shells if sid is not None]

    def create(self) -> str:
        """Create a subshell; returns its id."""
        subshell_id = str(uuid.uuid4())
        self._dispatcher.add_subshell(subshell_id)
        self._interpreter.subshell_created(subshell_id)
        return subshell_id

    def delete(self, subshell_id: Any) -> Deferred[None]:
        """Delete a subshell; fires once the interpreter has let go of it.

        Fails with RequestError when there is no such subshell.
        """
        if not isinstance(subshell_id, str) or subshell_id not in self._dispatcher.shells:
            raise RequestError(f"no subshell with id {subshell_id!r}")
        self._dispatcher.remove_subshell(subshell_id)
        return maybeDeferred(self._interpreter.subshell_deleted, subshell_id)

    def delete_all(self) -> list[Deferred[None]]:
        """Delete every subshell (shutdown); one Deferred per subshell."""
        return [self.delete(sid) for sid in self.ids()]

    # -- the control requests --

    def on_create(self, request: Request) -> None:
        subshell_id = self.create()
        self._messenger.reply(
            request, "create_subshell_reply", {"status": "ok", "subshell_id": subshell_id}
        )

    def on_delete(self, request: Request) -> Deferred[None]:
        d = self.delete(request.content.get("subshell_id"))
        d.addCallback(
            lambda _: self._messenger.reply(
                request, "delete_subshell_reply", {"status": "ok"}
            )
        )
        return d

    def on_list(self, request: Request) -> None:
        self._messenger.reply(
            request, "list_subshell_reply", {"status": "ok", "subshell_id": self.ids()}
        )
