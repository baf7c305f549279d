"""Builds the service that ``twistd txkernel`` runs.

Imported by twistd after the reactor has been chosen, so it may import the
modules that use txZMQ.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from .connection import (
    ConnectionFileError,
    new_connection_file_path,
    read_connection_file,
)
from .interpreter import BaseInterpreter
from .loading import LoadError, load_namespace, load_object
from .parent import launched_by_jupyter
from .service import KernelService

log = Logger()

DEFAULT_KERNEL = "txkernel.python:PythonKernel"


def load_kernel_class(spec: str) -> type[BaseInterpreter]:
    """The interpreter class named by ``package.module:Class`` (a
    :class:`~txkernel.interpreter.BaseInterpreter`, or a 0.1 ``Kernel``);
    UsageError when it is not one.  Modules in the working directory are
    importable."""
    try:
        cls = load_object(spec, "--kernel")
    except LoadError as e:
        raise usage.UsageError(str(e)) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseInterpreter)):
        raise usage.UsageError(
            f"--kernel {spec!r}: {spec.partition(':')[2]} is not a txkernel interpreter class"
        )
    return cls


def _takes_namespace(cls: type) -> bool:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "namespace" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


#: twistd's own default pidfile, which several kernels in one directory would share.
TWISTD_PIDFILE = "twistd.pid"


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Serve a Jupyter kernel. With --connection-file, bind what the file says "
        "(as Jupyter does when it launches a kernel); without it, bind free ports on "
        "127.0.0.1 and write a new connection file in the Jupyter runtime directory. "
        "Unless twistd's --pidfile is given, the pidfile is the connection file's "
        "path with .pid for .json, so several kernels can run from one directory."
    )
    optParameters = [
        ["connection-file", "f", None, "Connection file to bind (must exist)."],
        ["kernel", "k", DEFAULT_KERNEL, "Kernel class, as package.module:Class."],
        [
            "namespace",
            None,
            None,
            "A function, as package.module:function, that returns the dict cells "
            "run in (for kernels that take a namespace, such as the Python kernel).",
        ],
        ["ip", None, "127.0.0.1", "Address to bind when no connection file is given."],
        ["transport", None, "tcp", "tcp or ipc, when no connection file is given."],
        [
            "curve-secret-key",
            None,
            None,
            "CurveZMQ secret key file (see `python -m txkernel curve-keygen`): "
            "encrypt all five sockets; clients need the public key.",
        ],
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
            self["connection_path"] = os.path.abspath(path)
        else:
            self["connection_info"] = None
            # Chosen now, so the pidfile can be named after it.
            self["connection_path"] = new_connection_file_path()
        if self["transport"] not in ("tcp", "ipc"):
            raise usage.UsageError(f"--transport {self['transport']!r}: use tcp or ipc")
        self["namespace_dict"] = self._namespace()
        self["curve"] = curve_option(self["curve-secret-key"], usage.UsageError)
        self._choose_pidfile()

    def _namespace(self) -> dict[str, Any] | None:
        spec = self["namespace"]
        if spec is None:
            return None
        if not _takes_namespace(self["kernel_class"]):
            raise usage.UsageError(
                f"--namespace: {self['kernel']} takes no namespace argument"
            )
        try:
            return load_namespace(spec)
        except LoadError as e:
            raise usage.UsageError(str(e)) from None

    def _choose_pidfile(self) -> None:
        """One pidfile per kernel instead of twistd's shared ``twistd.pid``."""
        twistd = self.parent
        if twistd is not None and twistd.get("pidfile") == TWISTD_PIDFILE:
            twistd["pidfile"] = os.path.splitext(self["connection_path"])[0] + ".pid"


def curve_option(path: str | None, error: type[Exception]) -> Any:
    """The :class:`~txkernel.curve.CurveServer` a ``--curve-secret-key`` file
    gives (None without one); ``error(reason)`` when it is unusable."""
    if path is None:
        return None
    from .curve import CurveError, CurveServer

    try:
        return CurveServer.from_file(path)
    except CurveError as e:
        raise error(f"--curve-secret-key: {e}") from None


class TwistdKernelService(KernelService):
    """A KernelService that owns the process: it ends it when it cannot start
    or is shut down, and SIGINT interrupts a running cell.  When no cell
    runs, SIGINT stops twistd as usual, unless Jupyter launched the process
    (``JPY_PARENT_PID``): Jupyter's interrupt of an idle kernel is then
    ignored, as ``python -m txkernel`` and ipykernel do.  SIGTERM stops at
    once, without waiting for a running cell: queued output is sent, the
    connection file removed, and twistd exits 0."""

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
        from_jupyter = launched_by_jupyter()

        def on_sigint(signum: int, frame: Any) -> None:
            if self.running and self.core.executing:
                from twisted.internet import reactor

                reactor.callFromThread(self.core.interrupt)
            elif from_jupyter:
                log.info("SIGINT with no cell running: nothing to interrupt")
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

    kernel_class = options["kernel_class"]
    namespace = options["namespace_dict"]
    kernel = kernel_class() if namespace is None else kernel_class(namespace=namespace)
    return TwistdKernelService(
        kernel,
        connection_file=options["connection_path"],
        connection_info=options["connection_info"],
        ip=options["ip"],
        transport=options["transport"],
        on_shutdown=lambda restart: reactor.stop(),
        curve=options["curve"],
    )
