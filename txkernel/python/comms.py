"""The ``comm`` package, served by txkernel's Python kernels.

Libraries that talk to the frontend (ipywidgets and everything built on it)
do so through the ``comm`` package: ``comm.create_comm(...)`` and
``comm.get_comm_manager().register_target(...)``.  A kernel is expected to
replace those two functions, as ipykernel and xeus-python do; :func:`install`
does that with ones backed by :class:`txkernel.comm.CommManager`, the comms
of each served kernel.

There is one :class:`CommManager` per process (the ``comm`` API is global):
targets registered with it are registered with every kernel served, and a
comm created from a cell belongs to that cell's kernel.

This module imports ``comm``; it is only imported once someone else has
(see :mod:`txkernel.python.integrations`).  Its functions run on whichever
thread calls them: cells call them on the execution thread, the frontend's
messages reach them on the execution thread or, while a cell waits on the
reactor, on the reactor thread (see :mod:`txkernel.python.comm_inbox`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import comm as comm_package
from comm.base_comm import BaseComm
from comm.base_comm import CommManager as BaseCommManager
from twisted.logger import Logger

from .output import router

if TYPE_CHECKING:
    from .. import comm as txcomm
    from ..interpreter import BaseInterpreter as Kernel

log = Logger()

Message = dict[str, Any]


class KernelView:
    """``comm.kernel``: what libraries ask of the kernel behind a comm.

    ipywidgets' ``Output`` widget calls ``comm.kernel.get_parent()`` to learn
    which request's output to capture, and shows an exception raised in
    ``with out:`` with ``send_response(iopub_socket, "error", content)``, as
    with ipykernel.  Other attributes are the kernel's.
    """

    iopub_socket = "iopub"

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel

    def get_parent(self) -> Message:
        """The message of the request that output produced now belongs to."""
        request = self._kernel.output_request() or self._kernel.host.current_request()
        return request.message if request is not None else {}

    def send_response(self, stream: Any, msg_type: str, content: Message | None = None, **kwargs: Any) -> None:
        """Publish ``msg_type`` on IOPub as output of the current request."""
        if stream != self.iopub_socket:
            raise ValueError(f"only IOPub messages can be sent this way, not {stream!r}")
        self._kernel.host.publish(msg_type, content or {})

    def __getattr__(self, name: str) -> Any:
        kernel = self.__dict__.get("_kernel")
        if kernel is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(kernel, name)


class Comm(BaseComm):
    """A ``comm`` package comm carried by one kernel's :class:`txkernel.comm.Comm`."""

    def __init__(
        self,
        target_name: str = "comm",
        data: Message | None = None,
        metadata: Message | None = None,
        buffers: Sequence[bytes] | None = None,
        *,
        kernel: Kernel,
        channel: txcomm.Comm | None = None,
        **kwargs: Any,
    ) -> None:
        self.kernel = KernelView(kernel)
        self._kernel = kernel
        self._channel: txcomm.Comm | None = None
        if channel is not None:
            self._listen(channel)
        super().__init__(target_name, data, metadata, list(buffers) if buffers else None, **kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: Message | None = None,
        metadata: Message | None = None,
        buffers: Sequence[bytes] | None = None,
        **keys: Any,
    ) -> None:
        """Send ``comm_open``, ``comm_msg`` or ``comm_close`` through the kernel."""
        buffers = [bytes(b) for b in buffers] if buffers else None
        if msg_type == "comm_open":
            self._listen(
                self._kernel.comms.open(
                    self.target_name, data, metadata, buffers, comm_id=self.comm_id
                )
            )
            return
        channel = self._channel
        if channel is None or channel.closed:
            # The frontend closed it (or the kernel stopped): nobody to tell.
            log.debug("Dropped a {type} for the closed comm {id}", type=msg_type, id=self.comm_id)
            return
        if msg_type == "comm_msg":
            channel.send(data, metadata, buffers)
        elif msg_type == "comm_close":
            channel.close(data, metadata, buffers)
        else:
            raise ValueError(f"not a comm message type: {msg_type!r}")

    def close(
        self,
        data: Message | None = None,
        metadata: Message | None = None,
        buffers: Sequence[bytes] | None = None,
        deleting: bool = False,
    ) -> None:
        """Close the comm and tell the frontend (a second close does nothing)."""
        if self._closed:
            return
        self._closed = True
        self.publish_msg("comm_close", data if data is not None else self._close_data, metadata, buffers)
        # Our manager, even once the comm package has its own back.
        manager.unregister_comm(self)

    def handle_msg(self, msg: Message) -> None:
        """Pass a frontend ``comm_msg`` to the ``on_msg`` callback.

        (The base class would import IPython to fire its events.)
        """
        if self._msg_callback is not None:
            self._msg_callback(msg)

    def _listen(self, channel: txcomm.Comm) -> None:
        self._channel = channel
        channel.on_msg(self.handle_msg)
        channel.on_close(self._closed_by_frontend)

    def _closed_by_frontend(self, msg: Message) -> None:
        self._closed = True
        manager.comms.pop(self.comm_id, None)
        self.handle_close(msg)


class CommManager(BaseCommManager):
    """The process's ``comm.get_comm_manager()``: targets for every kernel served."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: list[Kernel] = []
        self._lock = threading.Lock()

    def add_kernel(self, kernel: Kernel) -> None:
        """Serve the registered targets on ``kernel`` too."""
        with self._lock:
            if kernel in self.kernels:
                return
            self.kernels.append(kernel)
            names = list(self.targets)
        for name in names:
            kernel.comms.register_target(name, self._opener(kernel, name))

    def remove_kernel(self, kernel: Kernel) -> None:
        """Forget ``kernel`` and its comms."""
        with self._lock:
            if kernel in self.kernels:
                self.kernels.remove(kernel)
            for comm_id, c in list(self.comms.items()):
                if isinstance(c, Comm) and c._kernel is kernel:
                    del self.comms[comm_id]
        for name in list(self.targets):
            kernel.comms.unregister_target(name)

    def register_target(self, target_name: str, f: Callable[[BaseComm, Message], None] | str) -> None:
        """Call ``f(comm, open_message)`` when a frontend opens a comm to ``target_name``."""
        super().register_target(target_name, f)  # resolves "module.name" strings
        for kernel in list(self.kernels):
            kernel.comms.register_target(target_name, self._opener(kernel, target_name))

    def unregister_target(self, target_name: str, f: Any = None) -> Any:
        """Stop accepting comms for ``target_name``; returns its callable."""
        target = self.targets.pop(target_name, None)
        for kernel in list(self.kernels):
            kernel.comms.unregister_target(target_name)
        return target

    def unregister_comm(self, comm: BaseComm) -> None:
        self.comms.pop(comm.comm_id, None)

    def _opener(self, kernel: Kernel, name: str) -> Callable[[txcomm.Comm, Message], None]:
        def open_from_frontend(channel: txcomm.Comm, msg: Message) -> None:
            target = self.targets.get(name)
            if target is None:
                raise LookupError(f"the comm target {name!r} was unregistered")
            c = Comm(
                target_name=name,
                comm_id=channel.comm_id,
                primary=False,
                kernel=kernel,
                channel=channel,
            )
            self.register_comm(c)
            try:
                target(c, msg)
            except BaseException:
                self.unregister_comm(c)
                raise  # the kernel logs it and closes the comm

        return open_from_frontend

    def kernel_for_caller(self) -> Kernel | None:
        """The kernel of the cell running now (or of the latest cell)."""
        cell = router.cell()
        with self._lock:
            if cell is not None and cell.kernel in self.kernels:
                return cell.kernel
            if len(self.kernels) == 1:
                return self.kernels[0]
        return None


manager = CommManager()
_saved: dict[str, Any] = {}


def create_comm(*args: Any, **kwargs: Any) -> BaseComm:
    """``comm.create_comm``: a comm to the frontend of the calling cell's kernel.

    Outside any kernel it is the ``comm`` package's own (a comm that sends
    nothing).
    """
    kernel = manager.kernel_for_caller()
    if kernel is None:
        return _saved.get("create_comm", comm_package._create_comm)(*args, **kwargs)
    return Comm(*args, kernel=kernel, **kwargs)


def get_comm_manager() -> CommManager:
    """``comm.get_comm_manager``: the process's :class:`CommManager`."""
    return manager


def install(kernels: Sequence[Kernel]) -> None:
    """Make the ``comm`` package use the kernels' comms."""
    if not _saved:
        _saved["create_comm"] = comm_package.create_comm
        _saved["get_comm_manager"] = comm_package.get_comm_manager
    comm_package.create_comm = create_comm
    comm_package.get_comm_manager = get_comm_manager
    for kernel in kernels:
        manager.add_kernel(kernel)


def uninstall() -> None:
    """Give the ``comm`` package its own functions back (no kernel is served)."""
    for kernel in list(manager.kernels):
        manager.remove_kernel(kernel)
    if comm_package.create_comm is create_comm:
        comm_package.create_comm = _saved["create_comm"]
    if comm_package.get_comm_manager is get_comm_manager:
        comm_package.get_comm_manager = _saved["get_comm_manager"]
