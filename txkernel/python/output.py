"""Where ``print`` goes: stdout, stderr, ``input()`` and the displayhook, routed by cell.

While a Python kernel is served, ``sys.stdout``, ``sys.stderr``,
``sys.displayhook``, ``builtins.input`` and ``getpass.getpass`` are replaced
(once per process, however many kernels) by routers that ask *which cell is
this code running for*:

1. the cell whose context the code runs in (a ``contextvars`` variable set
   while a cell runs, which coroutines and ``call_in_reactor`` calls inherit);
2. else the cell that started the current thread (``threading.Thread.start``
   records it while routing is installed), or that scheduled the reactor
   call being run (the reactor's ``callLater``, ``callFromThread`` and
   ``callInThread`` bind the calls a cell schedules to that cell);
3. else, when the kernel of the most recent cell owns the process
   (``python -m txkernel``, its ``owns_process``), that cell, as in ipykernel.

Otherwise the code is the host's (under twistd, or in an application that
embeds kernels; or no cell has run yet): it writes to the original streams,
the twistd log or the application's own stdout, as if no kernel served.
Stream text is buffered per kernel and published in batches: when 64 KiB have
gathered, after 50 ms, on the reactor's next turn after ``flush()``, and
always before the cell's reply (or any other message).  Any thread may
write; batches go out in the order they were taken.  A message a thread
publishes follows the text that thread wrote, but does not wait for text
only other threads wrote, so a cell printing without pause does not hold up
the reactor's replies (``OutputBuffer.flush_own``).
"""

from __future__ import annotations

import builtins
import contextvars
import getpass
import io
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..request import Request


class CellOwner(Protocol):
    """What routing needs of the kernel that runs a cell (``PythonKernel``)."""

    output: OutputBuffer | None
    #: Whether output no cell started goes to this kernel's most recent cell.
    owns_process: bool

    def display_result(self, value: Any, cell: Cell) -> None: ...

    def ask(self, prompt: str, password: bool, cell: Cell) -> str: ...

    def reactor_call(self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``f(*args, **kwargs)``, a call the cell left to the reactor, now."""
        ...


class Cell:
    """One execution: the kernel that runs it and the request it answers."""

    __slots__ = ("kernel", "request", "silent", "count", "counted", "payload")

    def __init__(
        self,
        kernel: CellOwner,
        request: Request | None,
        silent: bool = False,
        count: int = 0,
        counted: bool = False,
    ) -> None:
        self.kernel = kernel
        self.request = request
        self.silent = silent
        self.count = count
        self.counted = counted
        #: Payloads for the execute reply (``page``, ``ask_exit``).
        self.payload: list[dict[str, Any]] = []


current_cell: contextvars.ContextVar[Cell | None] = contextvars.ContextVar(
    "txkernel_current_cell", default=None
)


class _Chunk:
    """Text one thread wrote in a row for one stream of one request.

    Consecutive writes join one chunk, and every :data:`_JOIN_EVERY` of
    them are joined into one string: a loop of ``print`` keeps a few large
    strings alive until the batch goes out, not one small string (and one
    tuple) per write, which would spread over new allocator arenas that
    long-lived objects then keep from being freed.
    """

    __slots__ = ("request", "name", "thread", "joined", "parts")

    def __init__(self, request: Any, name: str, thread: int, text: str) -> None:
        self.request = request
        self.name = name
        self.thread = thread
        self.joined: list[str] = []
        self.parts = [text]

    def add(self, text: str) -> None:
        parts = self.parts
        parts.append(text)
        if len(parts) >= _JOIN_EVERY:
            self.joined.append("".join(parts))
            self.parts = []

    def text(self) -> str:
        return "".join(self.joined) + "".join(self.parts)


#: Writes gathered before a chunk joins them.
_JOIN_EVERY = 256


class OutputBuffer:
    """Batches one kernel's stream text; publishes it in order.

    Two locks: ``_lock`` guards the buffered chunks and is held only to
    append or take them; ``_publishing`` is held while a batch is taken and
    published (JSON, signature, hand-off to IOPub), so batches go out in the
    order they were taken, while writers on other threads keep appending.
    """

    def __init__(
        self,
        publish: Callable[[str, str, Any], object],
        reactor: Any,
        interval: float = 0.05,
        max_chars: int = 64 * 1024,
    ) -> None:
        self._publish = publish
        self._reactor = reactor
        self._interval = interval
        self._max_chars = max_chars
        self._lock = threading.Lock()
        self._publishing = threading.Lock()
        #: In the order written.
        self._chunks: list[_Chunk] = []
        #: Threads whose text is in the batch being published now.
        self._in_flight: frozenset[int] = frozenset()
        self._size = 0
        self._timer_wanted = False
        self._timer: Any = None
        self._soon_wanted = False
        self._closed = False

    def write(self, name: str, text: str, request: Any) -> None:
        """Buffer ``text`` for stream ``name`` of ``request`` (any thread)."""
        if not text:
            return
        thread = threading.get_ident()
        with self._lock:
            if self._closed:
                return
            chunks = self._chunks
            last = chunks[-1] if chunks else None
            if (
                last is not None
                and last.request is request
                and last.thread == thread
                and last.name == name
            ):
                last.add(text)
            else:
                chunks.append(_Chunk(request, name, thread, text))
            self._size += len(text)
            full = self._size >= self._max_chars
            arm = not full and not self._timer_wanted
            if arm:
                self._timer_wanted = True
        if full:
            self.flush()
        if arm:
            self._reactor.callFromThread(self._arm)

    def flush(self) -> None:
        """Publish everything buffered now (any thread)."""
        with self._publishing:
            self._publish_batch()

    def flush_own(self) -> None:
        """Before this thread publishes a message: publish the text it wrote.

        Text this thread wrote goes out before the message, as with
        :meth:`flush`.  But while another thread is publishing a batch that
        holds none of this thread's text, this returns at once: text only
        other threads wrote has no order with this thread's message, and
        waiting for a thread that prints without pause could keep, say, the
        reactor from answering control requests for a long time.  That text
        follows in the next batch.
        """
        if not self._chunks and not self._in_flight:
            # Nothing buffered, nothing being published (read in this order:
            # a publisher names its threads in _in_flight before it takes
            # the chunks, so text of this thread is in one or the other).
            return
        if self._try_publish():
            return
        me = threading.get_ident()
        with self._lock:
            mine = me in self._in_flight or any(c.thread == me for c in self._chunks)
        if mine:
            self.flush()

    def flush_soon(self) -> None:
        """Publish what is buffered on the reactor's next turn (any thread).

        What ``sys.stdout.flush()`` does in a cell: output is delivered
        promptly, but a loop that flushes after every line still sends a few
        large messages rather than one per line.
        """
        with self._lock:
            if not self._chunks or self._closed or self._soon_wanted:
                return
            self._soon_wanted = True
        self._reactor.callFromThread(self._soon_flush)

    def close(self) -> None:
        """Publish what is left and stop (reactor thread)."""
        with self._publishing:
            with self._lock:
                self._closed = True
            self._publish_batch()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _arm(self) -> None:
        if self._closed or (self._timer is not None and self._timer.active()):
            return
        self._timer = self._reactor.callLater(self._interval, self._timed_flush)

    def _soon_flush(self) -> None:
        with self._lock:
            self._soon_wanted = False
        self._flush_or_retry()

    def _timed_flush(self) -> None:
        self._timer = None
        with self._lock:
            self._timer_wanted = False
        self._flush_or_retry()

    def _flush_or_retry(self) -> None:
        """(reactor thread) Publish what is buffered, unless another thread
        is publishing now: then try again after the interval, so the reactor
        never waits for a thread that prints."""
        if self._try_publish():
            return
        with self._lock:
            retry = bool(self._chunks) and not self._timer_wanted
            if retry:
                self._timer_wanted = True
        if retry:
            self._arm()

    def _try_publish(self) -> bool:
        """Publish what is buffered unless another thread is publishing now;
        whether it did."""
        if not self._publishing.acquire(blocking=False):
            return False
        try:
            self._publish_batch()
        finally:
            self._publishing.release()
        return True

    def _publish_batch(self) -> None:
        """Take every buffered chunk and publish it (``_publishing`` held)."""
        with self._lock:
            self._in_flight = frozenset(c.thread for c in self._chunks)
            chunks, self._chunks, self._size = self._chunks, [], 0
        try:
            start = 0
            for i in range(1, len(chunks) + 1):
                if (
                    i == len(chunks)
                    or chunks[i].request is not chunks[start].request
                    or chunks[i].name != chunks[start].name
                ):
                    first = chunks[start]
                    text = "".join(c.text() for c in chunks[start:i])
                    self._publish(first.name, text, first.request)
                    start = i
        finally:
            self._in_flight = frozenset()


class _Router:
    """The process-wide routing state; installed while any Python kernel serves."""

    def __init__(self) -> None:
        self.kernels: set[CellOwner] = set()
        self.latest: Cell | None = None
        self._saved: dict[str, Any] = {}
        self._reactor: Any = None
        self._lock = threading.Lock()
        #: What else is installed while routing is (objects with
        #: ``install()`` and ``uninstall()``, e.g. cell warnings).
        self.extensions: list[Any] = []
        #: ``fileno()`` of the routed streams: ``stream_fileno(name, original)``.
        self.stream_fileno: Callable[[str, Any], int] = _original_fileno
        #: Runs before routed text is buffered (any thread).
        self.before_write: Callable[[], object] = _nothing

    def cell(self, explicit_only: bool = False) -> Cell | None:
        """The cell that code running here and now belongs to."""
        cell = current_cell.get()
        if cell is None:
            cell = getattr(threading.current_thread(), "_txkernel_cell", None)
        if cell is not None and cell.kernel in self.kernels:
            return cell
        if explicit_only:
            return None
        latest = self.latest
        if latest is not None and latest.kernel in self.kernels and latest.kernel.owns_process:
            return latest
        return None

    def install(self, kernel: CellOwner, reactor: Any) -> None:
        with self._lock:
            if not self.kernels:
                self._patch()
                self._patch_reactor(reactor)
            self.kernels.add(kernel)

    def uninstall(self, kernel: CellOwner) -> None:
        with self._lock:
            self.kernels.discard(kernel)
            if self.latest is not None and self.latest.kernel is kernel:
                self.latest = None
            if not self.kernels:
                self._unpatch()

    def _patch_reactor(self, reactor: Any) -> None:
        self._reactor = reactor
        for name, at in _SCHEDULERS.items():
            original = getattr(reactor, name, None)
            if original is not None:
                setattr(reactor, name, _cell_bound(original, at))

    def _unpatch_reactor(self) -> None:
        reactor, self._reactor = self._reactor, None
        for name in _SCHEDULERS:
            if getattr(getattr(reactor, name, None), "_txkernel_binds", False):
                delattr(reactor, name)

    def _patch(self) -> None:
        self._saved = {
            "stdout": sys.stdout,
            "stderr": sys.stderr,
            "displayhook": sys.displayhook,
            "input": builtins.input,
            "getpass": getpass.getpass,
            "thread_start": threading.Thread.start,
        }
        sys.stdout = RoutedStream("stdout", self._saved["stdout"])
        sys.stderr = RoutedStream("stderr", self._saved["stderr"])
        sys.displayhook = _displayhook
        builtins.input = _input
        getpass.getpass = _getpass
        threading.Thread.start = _thread_start  # type: ignore[method-assign]
        for extension in self.extensions:
            extension.install()

    def _unpatch(self) -> None:
        for extension in reversed(self.extensions):
            extension.uninstall()
        self._unpatch_reactor()
        saved, self._saved = self._saved, {}
        if not saved:
            return
        for stream_name in ("stdout", "stderr"):
            if isinstance(getattr(sys, stream_name), RoutedStream):
                setattr(sys, stream_name, saved[stream_name])
        sys.displayhook = saved["displayhook"]
        builtins.input = saved["input"]
        getpass.getpass = saved["getpass"]
        threading.Thread.start = saved["thread_start"]  # type: ignore[method-assign]

    def original(self, name: str) -> Any:
        """What ``name`` was before routing was installed."""
        return self._saved.get(name) or _ORIGINALS[name]


def _original_fileno(name: str, original: Any) -> int:
    if original is None:
        raise io.UnsupportedOperation("fileno")
    return original.fileno()


def _nothing() -> None:
    pass


_ORIGINALS: dict[str, Any] = {
    "stdout": None,
    "stderr": None,
    "displayhook": sys.__displayhook__,
    "input": builtins.input,
    "getpass": getpass.getpass,
    "thread_start": threading.Thread.start,
}

router = _Router()

#: The reactor methods whose calls, scheduled by a cell, run as that cell's,
#: with the position of the callable among their arguments.
_SCHEDULERS = {"callLater": 1, "callFromThread": 0, "callInThread": 0}


def _cell_bound(schedule: Callable[..., Any], at: int) -> Callable[..., Any]:
    """Wrap a reactor scheduling method (whose callable is argument ``at``)
    so that the call it schedules runs as the scheduling cell's."""

    def bound(*args: Any, **kwargs: Any) -> Any:
        cell = router.cell(explicit_only=True)
        if cell is None or len(args) <= at:
            return schedule(*args, **kwargs)
        args = (*args[:at], _in_cell(cell, args[at]), *args[at + 1 :])
        return schedule(*args, **kwargs)

    bound._txkernel_binds = True  # type: ignore[attr-defined]
    bound.__name__ = schedule.__name__
    bound.__doc__ = schedule.__doc__
    return bound


def _in_cell(cell: Cell, f: Callable[..., Any]) -> Callable[..., Any]:
    def run_in_cell(*args: Any, **kwargs: Any) -> Any:
        token = current_cell.set(cell)
        try:
            # While a frontend debugs, the kernel may run the call where
            # debugpy can stop it (see .debugcalls).
            return cell.kernel.reactor_call(f, args, kwargs)
        finally:
            current_cell.reset(token)

    run_in_cell.__wrapped__ = f  # type: ignore[attr-defined]
    return run_in_cell


class RoutedStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` while kernels serve: text goes to the right cell."""

    def __init__(self, name: str, original: Any) -> None:
        super().__init__()
        self.name = name
        self._original = original

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return router.stream_fileno(self.name, self._original)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        cell = router.cell()
        if cell is None:
            return self._original.write(text) if self._original is not None else len(text)
        router.before_write()  # e.g. what went to fds 1 and 2 before this text comes first
        cell.kernel.output.write(self.name, text, cell.request)
        return len(text)

    def flush(self) -> None:
        cell = router.cell()
        if cell is not None:
            if cell.kernel.output is not None:
                cell.kernel.output.flush_soon()
        elif self._original is not None:
            self._original.flush()


def _displayhook(value: Any) -> None:
    cell = router.cell(explicit_only=True)
    if cell is None:
        router.original("displayhook")(value)
        return
    cell.kernel.display_result(value, cell)


def _input(prompt: object = "") -> str:
    cell = router.cell(explicit_only=True)
    if cell is None:
        return router.original("input")(prompt)
    return cell.kernel.ask(str(prompt), False, cell)


def _getpass(prompt: str = "Password: ", stream: Any = None) -> str:
    cell = router.cell(explicit_only=True)
    if cell is None:
        return router.original("getpass")(prompt, stream)
    return cell.kernel.ask(prompt, True, cell)


def _thread_start(self: threading.Thread) -> None:
    cell = router.cell(explicit_only=True)
    if cell is not None and not hasattr(self, "_txkernel_cell"):
        self._txkernel_cell = cell  # type: ignore[attr-defined]
    router.original("thread_start")(self)
