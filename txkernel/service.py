"""KernelService: a kernel served as a Twisted ``Service``.

Add it to any service tree (several per process are fine)::

    service = KernelService(PythonKernel(namespace={"app": app}))
    service.setServiceParent(application)

Starting it binds the five sockets and starts the IOPub and heartbeat
threads; stopping it returns a Deferred that fires once everything queued on
IOPub has been sent, every socket is closed and both threads have exited.
Runs on the reactor thread.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from ._defer import branch
from .connection import (
    ConnectionFileError,
    ConnectionInfo,
    new_connection_file_path,
    read_connection_file,
    write_connection_file,
)
from .core import KernelCore, welcome_frames
from .curve import CurveError, CurveServer
from .interpreter import Interpreter
from .wire import Wire

log = Logger()

_made = itertools.count(1)


def _unique_name() -> str:
    """``txkernel`` for the first service of the process, then ``txkernel-N``."""
    n = next(_made)
    return "txkernel" if n == 1 else f"txkernel-{n}"


class KernelService(Service):
    """Serves ``kernel`` (an interpreter, see :mod:`txkernel.interpreter`) on
    ZeroMQ sockets, through a :class:`~txkernel.core.KernelCore` (``core``).

    With ``connection_file`` naming an existing file, bind what it says
    (this is how Jupyter launches kernels).  Otherwise bind free ports on
    ``ip`` (loopback by default) with a random key, and write a new
    connection file (mode 0600) at ``connection_file`` or, by default, at a
    new path in the Jupyter runtime directory; that file is written when
    the service starts and removed when it stops.  ``connection_file`` is
    known from construction on (so an application can print it before it
    starts the service); ``connection_info`` once it has started.

    ``on_shutdown(restart)`` runs after a frontend's ``shutdown_request`` has
    been answered and the service has stopped (``twistd`` stops the reactor
    there; an embedding application may do what it likes).

    ``iopub_hwm`` IOPub messages are queued per subscriber (0: no limit);
    :mod:`txkernel.iopub` says what happens to one that stops reading.

    An input request waits up to ``stdin_patience`` seconds for the asking
    frontend's stdin socket to connect, then fails with
    :class:`txkernel.kernel.StdinUnreachable`.

    ``name`` is the service's name in its parent ``MultiService``; by
    default each KernelService gets its own (``txkernel``, ``txkernel-2``,
    ``txkernel-3``, ... in the order they are made), so several kernels fit
    under one parent.

    ``curve`` (a :class:`txkernel.curve.CurveServer`, the kernel's CurveZMQ
    secret key) makes all five sockets CurveZMQ servers: traffic is
    encrypted and only clients that know the matching public key connect.
    """

    #: Seconds stopping waits for the kernel to detach (a running cell to
    #: end) before it closes the sockets anyway; None: as long as it takes.
    stop_patience: float | None = None

    def __init__(
        self,
        kernel: Interpreter,
        connection_file: str | None = None,
        connection_info: ConnectionInfo | None = None,
        ip: str = "127.0.0.1",
        transport: str = "tcp",
        on_shutdown: Callable[[bool], object] | None = None,
        iopub_hwm: int = 1000,
        reactor: Any = None,
        stdin_patience: float = 2.0,
        name: str | None = None,
        curve: CurveServer | None = None,
    ) -> None:
        self.name = name if name is not None else _unique_name()
        self.kernel = kernel
        self.core = KernelCore(kernel)
        self.connection_file = connection_file or new_connection_file_path()
        self.connection_info = connection_info
        self._ip = ip
        self._transport_name = transport
        self._on_shutdown = on_shutdown
        self._iopub_hwm = iopub_hwm
        self._stdin_patience = stdin_patience
        self.curve = curve
        self._reactor = reactor
        self._sockets: Any = None
        self._wire: Wire | None = None
        self._owns_file = False
        self._stopping: Deferred[None] | None = None

    def _resolve_info(self) -> ConnectionInfo:
        if self.connection_info is not None:
            return self.connection_info
        if self.connection_file and os.path.exists(self.connection_file):
            return read_connection_file(self.connection_file)
        return ConnectionInfo(ip=self._ip, transport=self._transport_name)

    def _curve_for(self, info: ConnectionInfo) -> CurveServer | None:
        """The CurveZMQ key given to the service, else the connection file's."""
        if self.curve is not None or not info.curve_secretkey:
            return self.curve
        try:
            return CurveServer(info.curve_secretkey.encode("ascii"))
        except CurveError as e:
            raise ConnectionFileError(f"connection file: {e}") from None

    def privilegedStartService(self) -> None:
        """Bind the sockets and write the connection file if it is ours.

        Raises ``ConnectionFileError`` (one line) when the connection file is
        unusable or a port cannot be bound.
        """
        Service.privilegedStartService(self)
        if self._sockets is not None:
            return
        from .channels import KernelSockets

        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        info = self._resolve_info()
        curve = self._curve_for(info)
        # Made before binding: a subscriber that connects between the bind
        # and startService (twistd drops privileges there) is welcomed too.
        self._wire = Wire(info.key, info.signature_scheme)
        self._stopping = None
        if curve is not None:
            # Written in the connection file too, as jupyter_client 8.10 reads it.
            info = replace(
                info,
                curve_publickey=curve.public_key.decode("ascii"),
                curve_secretkey=curve.secret_key.decode("ascii"),
            )
        sockets = KernelSockets(
            self._reactor,
            info,
            self.core.message_received,
            self._welcome,
            iopub_hwm=self._iopub_hwm,
            stdin_patience=self._stdin_patience,
            socket_options=curve.socket_options() if curve is not None else (),
        )
        self.connection_info = sockets.bind()
        self._sockets = sockets
        if self.connection_file is None or not os.path.exists(self.connection_file):
            self.connection_file = write_connection_file(
                self.connection_info, self.connection_file or new_connection_file_path()
            )
            self._owns_file = True
        elif self.connection_info != info:
            # The file left some ports to us (0): tell its readers which we chose.
            write_connection_file(self.connection_info, self.connection_file)

    def startService(self) -> None:
        """Bind (if :meth:`privilegedStartService` did not) and start serving."""
        self.privilegedStartService()
        assert self._wire is not None
        self.core.attach(self._wire, self._sockets, self._shutdown_requested)
        Service.startService(self)
        log.info(
            "Kernel {name} serving; to connect: jupyter console --existing {file}",
            name=type(self.kernel).__name__,
            file=self.connection_file,
        )

    def _welcome(self, topic: bytes) -> list[bytes] | None:
        """(IOPub thread) The ``iopub_welcome`` for a new subscriber, from the
        bind until the service stops, so it always comes before the first
        other message that subscriber gets (``status: starting`` included)."""
        wire = self._wire
        if wire is None or self._stopping is not None:
            return None
        return welcome_frames(wire, topic)

    def stopService(self) -> Deferred[None]:
        """Fires once IOPub is flushed, the sockets are closed and the threads joined."""
        if self._stopping is None:
            Service.stopService(self)
            self._stopping = self._stop()
        return branch(self._stopping)

    def _stop(self) -> Deferred[None]:
        sockets, self._sockets = self._sockets, None
        detached = maybeDeferred(self.core.detach)
        if self.stop_patience is not None and not detached.called:
            detached.addTimeout(self.stop_patience, self._reactor)
        if self._owns_file and self.connection_file:
            try:
                os.unlink(self.connection_file)
            except FileNotFoundError:
                pass
            self._owns_file = False
        if sockets is None:
            return detached.addCallback(lambda _: None)
        return detached.addBoth(lambda _: sockets.close())

    def _shutdown_requested(self, restart: bool) -> None:
        d = self.stopService()
        if self._on_shutdown is not None:
            on_shutdown = self._on_shutdown
            d.addCallback(lambda _: on_shutdown(restart))
        d.addErrback(lambda f: log.failure("Stopping after shutdown_request failed", f))
