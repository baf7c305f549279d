"""Ending a kernel whose launcher died.

Jupyter starts a kernel with ``JPY_PARENT_PID`` in its environment and
shuts it down with a message or a signal.  When the launching process dies
without doing so (killed, crashed), the kernel would be left running with no
one to talk to.  :class:`ParentWatcher` notices: the kernel is re-parented
when its parent exits, so a change of ``getppid()`` means the parent is gone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()


class ParentWatcher:
    """Calls ``on_gone()`` once, soon after the parent process has exited.

    Checks every ``interval`` seconds on ``reactor`` (any
    ``IReactorTime``, so tests can pass a ``Clock``).
    """

    def __init__(
        self,
        on_gone: Callable[[], object],
        reactor: Any = None,
        interval: float = 1.0,
        getppid: Callable[[], int] = os.getppid,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._on_gone = on_gone
        self._getppid = getppid
        self._interval = interval
        self.parent_pid = getppid()
        self._loop = LoopingCall(self._check)
        self._loop.clock = reactor

    @property
    def watching(self) -> bool:
        """Whether the watcher is running."""
        return self._loop.running

    def start(self) -> None:
        """Start checking (the first check is one interval from now)."""
        if not self._loop.running:
            self._loop.start(self._interval, now=False)

    def stop(self) -> None:
        """Stop checking."""
        if self._loop.running:
            self._loop.stop()

    def _check(self) -> None:
        if self._getppid() != self.parent_pid:
            self.stop()
            log.warn(
                "The process that launched this kernel ({pid}) has exited; shutting down",
                pid=self.parent_pid,
            )
            self._on_gone()


def launched_by_jupyter(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Jupyter launched this process and expects it to end with it."""
    return bool(environ.get("JPY_PARENT_PID", "").strip())
