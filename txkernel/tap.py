"""Builds the service that ``twistd txkernel`` runs.

Imported by twistd after the reactor has been chosen, so it may import the
modules that use txZMQ.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from .connection import ConnectionFileError, read_connection_file
from .interpreter import BaseInterpreter
from .service import KernelService

log = Logger()

DEFAULT_KERNEL = "txkernel.python:PythonKernel"


def load_kernel_class(spec: str) -> type[BaseInterpreter]:
    """The interpreter class named by ``package.module:Class`` (a
    :class:`~txkernel.interpreter.BaseInterpreter`, or a 0.1 ``Kernel``);
    UsageError when it is not one."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise usage.UsageError(f"--kernel {spec!r}: expected package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise usage.UsageError(
            f"--kernel {spec!r}: cannot import {module_name} ({e})"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseInterpreter)):
        raise usage.UsageError(
            f"--kernel {spec!r}: {class_name} is not a txkernel interpreter class"
        )
    return cls


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Serve a Jupyter kernel. With --connection-file, bind what the file says "
        "(as Jupyter does when it launches a kernel); without it, bind free ports on "
        "127.0.0.1 and write a new connection file in the Jupyter runtime directory."
    )
    optParameters = [
        ["connection-file", "f", None, "Connection file to bind (must exist)."],
        ["kernel", "k", DEFAULT_KERNEL, "Kernel class, as package.module:Class."],
        ["ip", None, "127.0.0.1", "Address to bind when no connection file is given."],
        ["transport", None, "tcp", "tcp or ipc, when no connection file is given."],
    ]
    optFlags = [
        ["allow-empty-key", None, "Accept a connection file whose key is empty (unsigned messages)."],
    ]

    def postOptions(self) -> None:
        """Check the options; a problem ends twistd with its reason on one line.

        (twistd would print its whole usage text before a ``UsageError``.)
        """
        try:
            self._check()
        except usage.UsageError as e:
            sys.stderr.write(f"txkernel: {e}\n")
            raise SystemExit(1) from None

    def _check(self) -> None:
        self["kernel_class"] = load_kernel_class(self["kernel"])
        path = self["connection-file"]
        if path is not None:
            try:
                self["connection_info"] = read_connection_file(
                    path, allow_empty_key=bool(self["allow-empty-key"])
                )
            except ConnectionFileError as e:
                raise usage.UsageError(str(e)) from None
        else:
            self["connection_info"] = None
        if self["transport"] not in ("tcp", "ipc"):
            raise usage.UsageError(f"--transport {self['transport']!r}: use tcp or ipc")


class TwistdKernelService(KernelService):
    """A KernelService that owns the process: it ends it when it cannot start
    or is shut down, and SIGINT interrupts a running cell (when no cell runs,
    SIGINT stops twistd as usual).  SIGTERM stops at once, without waiting for
    a running cell: queued output is sent, the connection file removed, and
    twistd exits 0."""

    def privilegedStartService(self) -> None:
        try:
            KernelService.privilegedStartService(self)
        except ConnectionFileError as e:
            log.critical("txkernel: {reason}", reason=e)
            raise SystemExit(1) from None

    def startService(self) -> None:
        KernelService.startService(self)
        from twisted.internet import reactor

        # After the reactor has installed its own handlers.
        reactor.callWhenRunning(self._install_sigint)

    def _install_sigint(self) -> None:
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum: int, frame: Any) -> None:
            if self.running and self.core.executing:
                from twisted.internet import reactor

                reactor.callFromThread(self.core.interrupt)
            elif callable(previous):
                previous(signum, frame)
            else:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(
            signal.SIGTERM, lambda signum, frame: self._reactor.callFromThread(self._terminate)
        )

    def _terminate(self) -> None:
        log.info("txkernel: SIGTERM received, shutting down")
        # The execution thread is a daemon: a cell still running is not waited for.
        self.stop_patience = 0.0
        self._reactor.stop()


def makeService(options: Options) -> KernelService:
    """The kernel service for ``twistd txkernel``."""
    from twisted.internet import reactor

    path = options["connection-file"]
    return TwistdKernelService(
        options["kernel_class"](),
        connection_file=os.path.abspath(path) if path else None,
        connection_info=options["connection_info"],
        ip=options["ip"],
        transport=options["transport"],
        on_shutdown=lambda restart: reactor.stop(),
    )
