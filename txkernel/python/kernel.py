"""The built-in Python kernel: a Jupyter-grade Python prompt inside a Twisted process.

Protocol handling runs on the reactor thread (in the core); cell code runs on
an execution thread (see :mod:`txkernel.python.executor`), so the heartbeat,
control requests and the host application's own reactor work go on while a
cell runs.  Cells with top-level ``await`` run as a coroutine on the reactor
thread, like any Twisted async code, and may await Deferreds (while the
debugger is on, they are stepped on the execution thread: see
:mod:`txkernel.python.debugasync`).
"""

from __future__ import annotations

import builtins
import contextvars
import platform
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure

import twisted

from .. import __version__
from ..interpreter import MAIN, WORKER, BaseInterpreter, Execution, Host
from ..request import Request
from ..stdin import InputInterrupted, StdinNotAllowed, StdinUnreachable
from . import cellhooks, cellwarnings, debugasync, fdcapture, integrations
from .cell import cell_filename, compile_cell, error_reply
from .comm_inbox import CommInbox
from .completeness import is_complete
from .debugcalls import ReactorCalls, kernels_own
from .debugger import Debugger
from .debugger import available as debugger_available
from .debugger import unavailable_reason as debugger_unavailable_reason
from .display import DisplayPublisher, format_object, format_result
from .executor import MainThreadExecutor, ThreadExecutor, call_in_reactor
from .expressions import parse_help_request
from .history import History
from .output import Cell, OutputBuffer, current_cell, router

log = Logger()

# Cell warnings and the fds captured under python -m txkernel go with routing.
router.extensions.append(cellwarnings)
router.stream_fileno = fdcapture.stream_fileno
router.before_write = fdcapture.drain_if_due


class ExitRequest:
    """``exit`` and ``quit`` in cells: ask the frontend to end the session.

    ``exit()`` (or a bare ``exit``) adds an ``ask_exit`` payload to the
    execute reply; ``jupyter console`` then quits and shuts the kernel down,
    or leaves it running with ``exit(keep_kernel=True)``.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"Use {self._name}() or Ctrl-D to end the session"

    def __call__(self, keep_kernel: bool = False) -> None:
        cell = current_cell.get()
        if cell is None:
            raise RuntimeError(f"{self._name}() works in a cell only")
        cell.payload.append({"source": "ask_exit", "keepkernel": bool(keep_kernel)})


class StdinNotImplementedError(RuntimeError):
    """``input()`` was called but the frontend does not accept input requests."""


class PythonKernel(BaseInterpreter):
    """Runs Python cells in one namespace (an application may pass its own).

    ``placement`` says where cells run: ``WORKER`` (the default) on a
    dedicated worker thread, so the reactor keeps the main thread (twistd,
    embedding); ``MAIN`` on the main thread, which :meth:`run_main` serves
    while the reactor runs on another (``python -m txkernel``).  Each
    subshell gets a worker thread of its own.

    ``owns_process`` says whether the process is the kernel's: then output
    of code no cell started (a host thread, a reactor callback) goes to the
    most recent cell, as in ipykernel.  Otherwise (under twistd, embedded)
    it stays the host's: it goes to the twistd log or the application's own
    stdout.  By default the process is the kernel's when ``placement`` is
    ``MAIN``.
    """

    implementation = "txkernel"
    implementation_version = __version__
    placements = (WORKER, MAIN)
    capture_fds = True
    language_info = {
        "name": "python",
        "version": platform.python_version(),
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "pygments_lexer": "python3",
        "codemirror_mode": {"name": "python", "version": 3},
        "nbconvert_exporter": "python",
    }
    banner = (
        f"Python {platform.python_version()} on txkernel {__version__} "
        f"(Twisted {twisted.__version__})\n"
        "display(), clear_output(), run_in_reactor(f, ...) and `kernel` are in the namespace."
    )
    help_links = [
        {"text": "Python", "url": "https://docs.python.org/3/"},
        {"text": "Twisted", "url": "https://docs.twisted.org/"},
    ]

    def __init__(
        self,
        namespace: dict[str, Any] | None = None,
        placement: str = WORKER,
        owns_process: bool | None = None,
    ) -> None:
        super().__init__()
        if placement not in self.placements:
            raise ValueError(f"placement {placement!r}: use one of {self.placements}")
        self.placement = placement
        self.owns_process = placement == MAIN if owns_process is None else owns_process
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self.history_store = History()
        self.output: OutputBuffer | None = None
        self.display_publisher = DisplayPublisher(lambda msg_type, content: self.host.publish(msg_type, content))
        #: The execution thread of the parent shell (None) and of each subshell.
        self._executors: dict[str | None, Any] = {}
        self._reactor: Any = None
        self.comm_inbox = CommInbox(
            self.comms, lambda *args, **kwargs: self.host.publish(*args, **kwargs), self._run_in_comm_cell
        )
        self._debugger: Debugger | None = None
        self._reactor_calls: ReactorCalls | None = None

    # -- life cycle (reactor thread) --

    def start(self, host: Host) -> None:
        from twisted.internet import reactor

        super().start(host)
        self._reactor = reactor
        self.output = OutputBuffer(self._publish_stream, reactor)
        if self.placement == MAIN:
            self._executors[None] = MainThreadExecutor(reactor)
        else:
            self._executors[None] = ThreadExecutor(reactor)
        self._executors[None].start()
        self._fill_namespace()
        router.install(self, reactor)
        integrations.attach(self)
        if debugger_available():
            self._debugger = Debugger(self.namespace, self._publish_debug_event, reactor)
            self._reactor_calls = ReactorCalls(reactor)
        else:
            reason = debugger_unavailable_reason()
            if reason is not None:
                log.warn("{reason}", reason=reason)

    def run_main(self) -> None:
        """Serve the parent shell's cells on this (the main) thread until stopped.

        Only with ``placement=MAIN``, after the kernel has started.
        """
        self._executors[None].run()

    def stop(self) -> Deferred[None]:
        """Stop serving; fires once every execution thread is done (or after 5 s)."""
        if self.output is not None:
            self.output.close()
        router.uninstall(self)
        integrations.detach(self)
        if self._debugger is not None:
            self._debugger.stop()
        if self._reactor_calls is not None:
            self._reactor_calls.stop()
        executors, self._executors = self._executors, {}
        stopped = DeferredList([e.stop() for e in executors.values()], consumeErrors=True)
        stopped.addTimeout(5, self._reactor)
        stopped.addCallbacks(
            lambda _: None,
            lambda f: log.warn("A cell was still running at shutdown: {f}", f=f.value),
        )
        return stopped

    def subshell_created(self, subshell_id: str) -> None:
        executor = ThreadExecutor(self._reactor, name=f"txkernel-subshell-{subshell_id[:8]}")
        self._executors[subshell_id] = executor
        executor.start()

    def subshell_deleted(self, subshell_id: str) -> Deferred[None] | None:
        executor = self._executors.pop(subshell_id, None)
        return executor.stop() if executor is not None else None

    def _executor(self, request: Request) -> Any:
        executor = self._executors.get(request.subshell_id)
        if executor is None:
            raise RuntimeError("the kernel is not serving this shell")
        return executor

    def _fill_namespace(self) -> None:
        ns = self.namespace
        ns.setdefault("__name__", "__main__")
        ns.setdefault("__builtins__", builtins)
        helpers = {
            "display": self.display_publisher.display,
            "update_display": self.display_publisher.update_display,
            "clear_output": self.display_publisher.clear_output,
            "run_in_reactor": self.run_in_reactor,
            "kernel": self,
            "exit": ExitRequest("exit"),
            "quit": ExitRequest("quit"),
            "In": [""],
            "Out": {},
        }
        for name, value in helpers.items():
            ns.setdefault(name, value)

    # -- output --

    @property
    def executing(self) -> bool:
        """Whether a cell is running now (in any shell)."""
        return any(e.busy for e in self._executors.values())

    def output_request(self) -> Request | None:
        cell = router.cell()
        if cell is not None and cell.kernel is self:
            return cell.request
        return None

    def before_publish(self, msg_type: str) -> None:
        # Stream text this thread wrote before this message goes out before it.
        if msg_type != "stream" and self.output is not None:
            self.output.flush_own()

    def _publish_debug_event(self, event: dict[str, Any]) -> None:
        self.host.publish("debug_event", event)

    def _publish_stream(self, name: str, text: str, request: Request | None) -> None:
        self.host.publish("stream", {"name": name, "text": text}, parent=request)

    def display_result(self, value: Any, cell: Cell) -> None:
        """The displayhook: keep ``value`` as ``_`` and show it as the cell's result."""
        if value is None:
            return
        if isinstance(value, ExitRequest):
            value()  # a bare `exit` ends the session, as in IPython
            return
        ns = self.namespace
        ns["___"], ns["__"], ns["_"] = ns.get("__"), ns.get("_"), value
        if cell.silent:
            return
        errors: list[Exception] = []
        bundle = format_result(value, errors)  # None: it displayed itself
        data, metadata = bundle or ({}, {})
        if cell.counted:
            ns[f"_{cell.count}"] = value
            out = ns.get("Out")
            if isinstance(out, dict):
                out[cell.count] = value
            self.history_store.set_output(cell.count, data.get("text/plain"))
        if bundle is not None:
            self.host.publish(
                "execute_result",
                {"execution_count": cell.count, "data": data, "metadata": metadata},
                parent=cell.request,
            )
        if errors:
            raise errors[0]  # a failing repr fails the cell, as in ipykernel 7

    # -- what cell code calls (execution thread) --

    def reactor_call(self, f: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``f``, a call a cell left to the reactor, now (on the thread it was scheduled for).

        While a frontend debugs, one the reactor thread runs goes to the
        thread debugpy can stop (:mod:`.debugcalls`).
        """
        calls = self._reactor_calls
        if calls is None or kernels_own(f) or not self._debugger_started():
            return f(*args, **kwargs)
        from twisted.python.threadable import isInIOThread

        if not isInIOThread():
            return f(*args, **kwargs)
        return calls.run(f, args, kwargs)

    def _debugger_started(self) -> bool:
        return self._debugger is not None and self._debugger.started

    def run_in_reactor(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``f(*args, **kwargs)`` on the reactor thread and return its result.

        Waits for a Deferred result.  Output of ``f`` goes to the calling cell.
        """
        context = contextvars.copy_context()
        return call_in_reactor(self._reactor, self._waiting(context.run), f, *args, **kwargs)

    def _waiting(self, f: Any) -> Any:
        """``f`` for the execution thread to wait on: comms are served meanwhile."""
        from twisted.python.threadable import isInIOThread

        return f if isInIOThread() else self.comm_inbox.waiting(f)

    def request_input(
        self, prompt: str = "", password: bool = False, request: Request | None = None
    ) -> Deferred[str]:
        """Ask the frontend for input (reactor thread; ``await`` it in an async cell)."""
        return self.host.request_input(prompt, password, request)

    def ask(self, prompt: str, password: bool, cell: Cell) -> str:
        """``input()``/``getpass()`` for ``cell``: ask its frontend and wait."""
        from twisted.python.threadable import isInIOThread

        if isInIOThread():
            raise RuntimeError(
                "input() would block the reactor; in an async cell use "
                "`await kernel.request_input(prompt)`"
            )
        if self.output is not None:
            self.output.flush()
        try:
            return call_in_reactor(
                self._reactor, self._waiting(self.host.request_input), prompt, password, cell.request
            )
        except InputInterrupted:
            raise KeyboardInterrupt from None
        except StdinUnreachable as e:
            raise StdinNotImplementedError(f"input() could not reach the frontend: {e}") from None
        except StdinNotAllowed:
            raise StdinNotImplementedError(
                "input() is not supported by this frontend (allow_stdin is false)"
            ) from None

    # -- requests --

    def execute(self, execution: Execution) -> Deferred[dict[str, Any]]:
        cell = Cell(
            self,
            execution.request,
            execution.silent,
            execution.execution_count,
            execution.counted,
        )
        executor = self._executor(execution.request)
        if execution.subshell_id is None:
            self.comm_inbox.expect()
            running = executor.submit(
                self.comm_inbox.run,
                self._run_cell,
                execution.code,
                cell,
                execution.user_expressions,
                cell=True,
            )
        else:
            running = executor.submit(
                self._run_cell, execution.code, cell, execution.user_expressions, cell=True
            )
        return running.addErrback(self._interrupted_outside_the_code)

    def _interrupted_outside_the_code(self, failure: Failure) -> dict[str, Any]:
        """A cell interrupted before it started, or just after its code ended."""
        failure.trap(KeyboardInterrupt)
        return {"status": "error", **self.interrupted()}

    def _run_cell(self, code: str, cell: Cell, user_expressions: dict[str, str]) -> dict[str, Any]:
        token = current_cell.set(cell)
        if not cell.silent:
            router.latest = cell
        cellwarnings.new_cell(self.namespace)
        fdcapture.cell_started(cell)
        try:
            if cell.counted:
                self._remember(cell.count, code)
            reply = self._run_code(code, cell)
            if reply["status"] == "ok":
                reply["user_expressions"] = self._user_expressions(user_expressions)
            return reply
        finally:
            fdcapture.cell_finished(cell)  # what it wrote to fds 1 and 2 is the cell's
            cellhooks.cell_ended(cell)
            if self.output is not None:
                self.output.flush()
            current_cell.reset(token)

    def _remember(self, count: int, code: str) -> None:
        self.history_store.store(count, code)
        inputs = self.namespace.get("In")
        if isinstance(inputs, list):
            inputs.extend([""] * (count + 1 - len(inputs)))
            inputs[count] = code
        self.namespace[f"_i{count}"] = code

    def _run_code(self, code: str, cell: Cell) -> dict[str, Any]:
        help_request = parse_help_request(code)
        if help_request is not None:
            return self._help(*help_request)
        try:
            name = cell_filename(cell.count, cell.counted)
            debugged = self._debugger.cell_filename(code) if self._debugger is not None else None
            compiled = compile_cell(code, debugged or name, label=name)
            if compiled.is_async and self._debugger is not None and self._debugger.started:
                # Debugged: stepped on this thread, the reactor lent to each step.
                debugasync.run(self._reactor, compiled.run_async(self.namespace), self.run_in_reactor)
            elif compiled.is_async:
                # The coroutine runs on the reactor, in this cell's context.
                self.run_in_reactor(Deferred.fromCoroutine, compiled.run_async(self.namespace))
            else:
                compiled.run(self.namespace)
        except BaseException as e:  # the user's exception, KeyboardInterrupt and SystemExit too
            if self._debugger is not None:
                self._debugger.cell_raised(e)  # the debugger's "uncaught" exceptions
            return error_reply(e)
        return {"status": "ok", "payload": cell.payload}

    def _help(self, expr: str, detail_level: int) -> dict[str, Any]:
        from .inspection import help_text  # imported by the first help cell

        text = help_text(expr, self.namespace, detail_level)
        if text is None:
            print(f"Object `{expr}` not found.")
            return {"status": "ok", "payload": []}
        page = {"source": "page", "data": {"text/plain": text}, "start": 0}
        return {"status": "ok", "payload": [page]}

    def _user_expressions(self, expressions: dict[str, str]) -> dict[str, Any]:
        results = {}
        for name, expr in (expressions or {}).items():
            try:
                value = eval(expr, self.namespace)
                data, metadata = format_object(value)
                results[name] = {"status": "ok", "data": data, "metadata": metadata}
            except BaseException as e:
                results[name] = error_reply(e)
        return results

    @property
    def debugger(self) -> bool:  # type: ignore[override]
        """Whether the debugger is there (debugpy is installed)."""
        return self._debugger is not None

    def debug(self, request: dict[str, Any]) -> Any:
        """Answer a DAP request (see :mod:`txkernel.python.debugger`)."""
        if self._debugger is None:
            return super().debug(request)
        return self._debugger.handle(request)

    def interrupt(self) -> None:
        """Interrupt the cell running in every shell (stopped in the debugger: once resumed)."""
        if self._debugger is not None and self._debugger.stopped_threads:
            self._debugger.resume().addCallback(lambda _: self.interrupt())
            return
        for executor in list(self._executors.values()):
            executor.interrupt()

    def interrupted(self) -> dict[str, Any]:
        return {
            "ename": "KeyboardInterrupt",
            "evalue": "",
            "traceback": ["KeyboardInterrupt"],
        }

    #: Seconds one completion may take; it runs on the reactor thread
    #: (completion.BUDGET, which the kernel does not import at start).
    completion_budget = 0.15

    def complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        from .completion import Deadline, complete  # imported by the first completion

        return complete(code, cursor_pos, self.namespace, Deadline(self.completion_budget))

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> dict[str, Any]:
        from .inspection import inspect  # imported by the first inspection

        return inspect(code, cursor_pos, detail_level, self.namespace)

    def is_complete(self, code: str) -> dict[str, Any]:
        return is_complete(code)

    def history(self, content: dict[str, Any]) -> dict[str, Any]:
        return self.history_store.reply(content)

    # Comm messages from the frontend run on the execution thread of the
    # shell they came on, one at a time with its cells, and their output
    # goes to the comm request.

    def deliver_comm(self, request: Request, deliver: Callable[[], object]) -> Deferred[None]:
        executor = self._executor(request)
        if request.subshell_id is None:
            self.comm_inbox.expect()
            return executor.submit(self.comm_inbox.run, self._run_in_comm_cell, request, deliver)
        return executor.submit(self._run_in_comm_cell, request, deliver)

    def _run_in_comm_cell(self, request: Request, call: Callable[[], object]) -> None:
        cell = Cell(self, request, silent=True, count=self.host.execution_count)
        token = current_cell.set(cell)
        try:
            call()
        finally:
            cellhooks.cell_ended(cell)
            if self.output is not None:
                self.output.flush()
            current_cell.reset(token)

    def serve_out_of_turn(self, request: Request) -> bool:
        # Parent-shell comm messages that arrive while a cell runs: see
        # comm_inbox.  (On a subshell they wait for its own thread.)
        return request.subshell_id is None and self.comm_inbox.accept(request)
