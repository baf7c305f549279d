"""Output written to file descriptors 1 and 2, brought to the cell that ran it.

``print`` goes through ``sys.stdout`` and is routed by :mod:`.output`; but
``os.system("echo hi")``, a ``subprocess`` that inherits the kernel's output,
``faulthandler`` and C extensions write to the file descriptors directly.
When the kernel owns its process (``python -m txkernel``), :class:`FdCapture`
points fds 1 and 2 at pipes and a reader thread (``txkernel-fd-capture``)
hands what arrives to the running cell (else the latest cell; before any
cell, to the terminal).  The original descriptors are kept (duplicated) for
the kernel's own logging: :meth:`FdCapture.terminal`.

Under twistd or embedded in an application the host owns fds 1 and 2 and
nothing is captured; ``sys.stdout.fileno()`` then gives the host's stream's
descriptor (:func:`stream_fileno`), so ``faulthandler.enable()`` and the like
work and write where the host's own output goes.

:func:`drain` (any thread) delivers everything written to the captured
descriptors so far, after flushing C stdio buffers; the kernel calls it at
the end of each cell (:func:`cell_finished`), and at its start
(:func:`cell_started`) delivers what the pipes hold without flushing C stdio
(the previous cell's end did); both also say which cell is running, silent
ones included.  Which pipes hold anything is asked with one zero-timeout
``poll`` that keeps the GIL (:class:`_ReadyCheck`): a cell's start and end
do not hand the GIL to another thread for a system call that cannot block.  Before each piece of Python stream text the routed
streams call :func:`drain_if_due`, a cheaper check at most every 100 µs, so
``print(1); os.system("echo 2"); print(3)`` shows 1, 2, 3 in order.
"""

from __future__ import annotations

import codecs
import ctypes
import io
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from twisted.logger import Logger

__all__ = [
    "FdCapture",
    "active",
    "cell_finished",
    "cell_started",
    "drain",
    "drain_if_due",
    "start",
    "stop",
    "stream_fileno",
]

if TYPE_CHECKING:
    from .output import Cell

log = Logger()

#: Called with ``("stdout" | "stderr", text)`` for captured output.
Deliver = Callable[[str, str], None]

_NAMES = {1: "stdout", 2: "stderr"}

#: Signals the reader thread leaves to the main thread.
_PROCESS_SIGNALS = {
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
}

#: Python stream text looks for descriptor output at most this often.
_DRAIN_INTERVAL_NS = 100_000

try:
    _libc: Any = ctypes.CDLL(None)
    _fflush = _libc.fflush
    _fflush.argtypes = [ctypes.c_void_p]
except (OSError, AttributeError):  # no C library to flush (not a POSIX libc)
    _fflush = None


class _PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


try:
    # PyDLL: called with the GIL held.  A zero timeout never blocks, so no
    # other thread needs to run meanwhile, and none is handed the GIL.
    _poll: Any = ctypes.PyDLL(None).poll
    _poll.argtypes = [ctypes.POINTER(_PollFd), ctypes.c_ulong, ctypes.c_int]
except (OSError, AttributeError):  # pragma: no cover - no C poll()
    _poll = None


class _ReadyCheck:
    """Which of some descriptors can be read now, asked without releasing the GIL."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds
        self._array = (_PollFd * len(fds))(*[_PollFd(fd, select.POLLIN, 0) for fd in fds])

    def ready(self) -> list[int]:
        """The descriptors with input (or hung up) now."""
        if _poll is None:  # pragma: no cover
            return select.select(self._fds, [], [], 0)[0]
        if _poll(self._array, len(self._fds), 0) <= 0:
            return []
        return [p.fd for p in self._array if p.revents]


class _Captured:
    """One captured descriptor: its pipe, its saved original, its decoder."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.saved = os.dup(fd)  # OSError if ``fd`` is not open
        self.read_end, write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        os.dup2(write_end, fd)
        os.close(write_end)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def restore(self) -> None:
        os.dup2(self.saved, self.fd)

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.saved)


class FdCapture:
    """Captures the descriptors ``fds`` (1 and 2 by default) until :meth:`stop`.

    ``deliver`` is called (on the reader thread, or the thread calling
    :meth:`drain`) with each piece of text, one piece at a time; by default
    the text goes to the cell output belongs to (:meth:`to_cells`).
    """

    def __init__(
        self, deliver: Deliver | None = None, fds: dict[int, str] | None = None
    ) -> None:
        self._deliver = deliver if deliver is not None else self.to_cells
        # Reentrant: delivering may log, and logging may write to a routed stream.
        self._lock = threading.RLock()
        self._captured: list[_Captured] = []
        try:
            for fd, name in (fds or _NAMES).items():
                self._captured.append(_Captured(fd, name))
        except OSError:
            for captured in self._captured:  # put back what was taken
                captured.restore()
                captured.close()
            raise
        self._read_ends = [c.read_end for c in self._captured]
        self._ready = _ReadyCheck(self._read_ends)
        self.last_drain = 0
        self._wake_read, self._wake_write = os.pipe()
        self._stopped = False
        self._terminals: dict[str, IO[str]] = {}
        self._thread = threading.Thread(
            target=self._read_loop, name="txkernel-fd-capture", daemon=True
        )
        # Not the user's: debugpy neither traces nor lists it.
        self._thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
        self._thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
        self._thread.start()

    def fileno(self, name: str) -> int | None:
        """The captured descriptor written for stream ``name``, if captured."""
        for captured in self._captured:
            if captured.name == name:
                return captured.fd
        return None

    def terminal(self, name: str) -> IO[str]:
        """A text stream on the original (uncaptured) descriptor of ``name``."""
        if name not in self._terminals:
            [captured] = [c for c in self._captured if c.name == name]
            self._terminals[name] = open(  # closed by stop(close_terminals=True)
                os.dup(captured.saved),
                "w",
                encoding="utf-8",
                errors="replace",
                buffering=1,
                closefd=True,
            )
        return self._terminals[name]

    def to_cells(self, name: str, text: str) -> None:
        """Deliver to the running (else the latest) cell; before any, to the terminal."""
        from .output import router

        cell = _running or router.cell()
        output = cell.kernel.output if cell is not None else None
        if cell is not None and output is not None:
            output.write(name, text, cell.request)
        else:
            self.terminal(name).write(text)

    def drain_if_due(self) -> None:
        """:meth:`drain` without flushing C stdio, unless done less than 100 µs ago.

        Called before each piece of Python stream text: a command that wrote
        to the descriptors took longer than that, so its output still comes
        first, and a burst of ``print`` costs a clock reading per write.
        """
        if time.monotonic_ns() - self.last_drain >= _DRAIN_INTERVAL_NS:
            self._drain_ready()

    def _drain_ready(self) -> None:
        self.last_drain = time.monotonic_ns()
        ready = self._ready.ready()
        # Taken even when nothing is ready: the reader thread may hold text it
        # has read but not delivered yet, which must come first.
        with self._lock:
            for captured in self._captured:
                if captured.read_end in ready:
                    self._read_available(captured)

    def drain(self, c_stdio: bool = True) -> None:
        """Deliver everything written to the descriptors before this call.

        ``c_stdio=False``: without flushing C stdio buffers first (what C
        code has written but its ``stdio`` still holds stays there).
        """
        for stream in (sys.__stdout__, sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        if c_stdio and _fflush is not None:
            # Not with the GIL held: it may wait for the reader thread to
            # make room in a full pipe.
            _fflush(None)
        self._drain_ready()

    def stop(self, close_terminals: bool = True) -> None:
        """Restore the descriptors (after delivering what is left) and end the reader thread.

        The :meth:`terminal` streams stay usable unless ``close_terminals``.
        """
        if self._stopped:
            return
        self.drain()
        with self._lock:
            self._stopped = True
            for captured in self._captured:
                captured.restore()
        os.write(self._wake_write, b"x")
        self._thread.join()
        for captured in self._captured:
            captured.close()
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)
        if close_terminals:
            for stream in self._terminals.values():
                stream.close()

    def _read_loop(self) -> None:
        # Signals for the process (SIGINT, SIGTERM) must reach the main
        # thread: CPython runs their handlers there, and one taken by this
        # thread would leave a main thread blocked in a wait unaware.
        signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)
        watched = [*self._read_ends, self._wake_read]
        while True:
            ready, _, _ = select.select(watched, [], [])
            with self._lock:
                if self._stopped:
                    return
                for captured in self._captured:
                    if captured.read_end in ready:
                        self._read_available(captured)

    def _read_available(self, captured: _Captured) -> None:
        """Read what the pipe holds now and deliver it (under the lock)."""
        chunks = []
        while True:
            try:
                data = os.read(captured.read_end, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        text = captured.decoder.decode(b"".join(chunks))
        if not text:
            return
        try:
            self._deliver(captured.name, text)
        except Exception:
            # Never write this to fd 2: it would come back here.
            log.failure("Output captured from {name} was lost", name=captured.name)


_active: FdCapture | None = None

#: The cell running now (silent ones too), as the kernel says.
_running: Cell | None = None


def start() -> FdCapture | None:
    """Capture fds 1 and 2 of this process (the kernel owns it) until :func:`stop`.

    None (and nothing captured) when they cannot be: a process started with
    fd 1 or 2 closed.
    """
    global _active
    if _active is not None:
        raise RuntimeError("file descriptors 1 and 2 are already captured")
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    try:
        _active = FdCapture()
    except OSError as e:
        log.warn("Output to file descriptors 1 and 2 is not captured: {e}", e=e)
    return _active


def stop() -> None:
    """Stop the process's capture, if one is running.

    Its terminal stream stays open: the log may still write to it.
    """
    global _active
    capture, _active = _active, None
    if capture is not None:
        capture.stop(close_terminals=False)


def active() -> FdCapture | None:
    """The running capture of this process's fds 1 and 2, if any."""
    return _active


def drain() -> None:
    """Deliver what was written to the captured descriptors so far (no-op without capture)."""
    capture = _active
    if capture is not None:
        capture.drain()


def cell_started(cell: Cell) -> None:
    """``cell`` runs now: descriptor output goes to it (execution thread)."""
    global _running
    capture = _active
    if capture is not None:
        # What the pipes hold came before: the previous cell's (its end
        # flushed C stdio already).
        capture.drain(c_stdio=False)
    _running = cell


def cell_finished(cell: Cell) -> None:
    """``cell`` is done: deliver its descriptor output, then stop routing to it."""
    global _running
    drain()
    if _running is cell:
        _running = None


def drain_if_due() -> None:
    """:meth:`FdCapture.drain_if_due` of the process's capture (no-op without capture)."""
    capture = _active
    # The clock test is inlined: this runs for every write to sys.stdout.
    if (
        capture is not None
        and time.monotonic_ns() - capture.last_drain >= _DRAIN_INTERVAL_NS
    ):
        capture._drain_ready()


def stream_fileno(name: str, original: Any) -> int:
    """``fileno()`` for the routed ``sys.stdout``/``sys.stderr`` (``name``).

    The captured descriptor when fds are captured; else the descriptor of the
    stream routing replaced (``original``), or the process's own fd 1 / 2 when
    that stream has none (twistd's log file object answers -1).
    """
    capture = _active
    if capture is not None:
        fd = capture.fileno(name)
        if fd is not None:
            return fd
    try:
        fd = original.fileno()
        if isinstance(fd, int) and fd >= 0:
            return fd
    except (AttributeError, OSError, ValueError):
        pass
    process_stream = sys.__stdout__ if name == "stdout" else sys.__stderr__
    if process_stream is None:
        raise io.UnsupportedOperation("fileno")
    return process_stream.fileno()
