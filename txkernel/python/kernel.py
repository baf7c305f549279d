"""The built-in Python kernel: a Jupyter-grade Python prompt inside a Twisted process.

Protocol handling runs on the reactor thread (in the core); cell code runs on
an execution thread (see :mod:`txkernel.python.executor`), so the heartbeat,
control requests and the host application's own reactor work go on while a
cell runs.  Cells with top-level ``await`` run as a coroutine on the reactor
thread, like any Twisted async code, and may await Deferreds.
"""

from __future__ import annotations

import builtins
import contextvars
import platform
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

import twisted

from .. import __version__
from ..kernel import (
    InputInterrupted,
    Kernel,
    Request,
    StdinNotAllowed,
    StdinUnreachable,
)
from ..wire import Wire
from . import cellwarnings, fdcapture
from .cell import cell_filename, compile_cell, error_reply
from .completeness import is_complete
from .completion import BUDGET, Deadline, complete
from .display import DisplayPublisher, format_object, format_result
from .executor import ThreadExecutor, call_in_reactor
from .history import History
from .inspection import help_text, inspect, parse_help_request
from .output import Cell, OutputBuffer, current_cell, router

log = Logger()


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


class PythonKernel(Kernel):
    """Runs Python cells in one namespace (an application may pass its own).

    ``executor`` decides where cells run; by default a dedicated worker
    thread.  ``python -m txkernel`` passes a main-thread executor.
    """

    implementation = "txkernel"
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

    def __init__(self, namespace: dict[str, Any] | None = None, executor: Any = None) -> None:
        super().__init__()
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self.history = History()
        self.output: OutputBuffer | None = None
        self.display_publisher = DisplayPublisher(lambda msg_type, content: self.publish(msg_type, content))
        self._executor = executor
        self._owns_executor = executor is None
        self._reactor: Any = None

    # -- life cycle (reactor thread) --

    def attach(self, wire: Wire, transport: Any, on_shutdown: Any = None) -> None:
        from twisted.internet import reactor

        self._reactor = reactor
        self.output = OutputBuffer(self._publish_stream, reactor)
        if self._executor is None or self._owns_executor:
            self._executor = ThreadExecutor(reactor)
            self._owns_executor = True
        self._executor.start()
        self._fill_namespace()
        router.install(self, reactor)
        super().attach(wire, transport, on_shutdown)

    def detach(self) -> Deferred[None]:
        """Stop serving; fires once the execution thread is done (or after 5 s)."""
        if self.output is not None:
            self.output.close()
        router.uninstall(self)
        super().detach()
        stopped = self._executor.stop() if self._executor is not None else Deferred()
        if self._executor is None:
            stopped.callback(None)
        stopped.addTimeout(5, self._reactor)
        stopped.addErrback(lambda f: log.warn("A cell was still running at shutdown: {f}", f=f.value))
        return stopped

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
        """Whether a cell is running now."""
        return self._executor is not None and self._executor.busy

    def output_request(self) -> Request | None:
        cell = router.cell()
        if cell is not None and cell.kernel is self:
            return cell.request
        return super().output_request()

    def publish(self, msg_type: str, content: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        # Stream text written before this message goes out before it.
        if msg_type != "stream" and self.output is not None:
            self.output.flush()
        super().publish(msg_type, content, *args, **kwargs)

    def _publish_stream(self, name: str, text: str, request: Request | None) -> None:
        Kernel.publish(self, "stream", {"name": name, "text": text}, parent=request)

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
            self.history.set_output(cell.count, data.get("text/plain"))
        if bundle is not None:
            self.publish(
                "execute_result",
                {"execution_count": cell.count, "data": data, "metadata": metadata},
                parent=cell.request,
            )
        if errors:
            raise errors[0]  # a failing repr fails the cell, as in ipykernel 7

    # -- what cell code calls (execution thread) --

    def run_in_reactor(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``f(*args, **kwargs)`` on the reactor thread and return its result.

        Waits for a Deferred result.  Output of ``f`` goes to the calling cell.
        """
        context = contextvars.copy_context()
        return call_in_reactor(self._reactor, context.run, f, *args, **kwargs)

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
            return call_in_reactor(self._reactor, self.request_input, prompt, password, cell.request)
        except InputInterrupted:
            raise KeyboardInterrupt from None
        except StdinUnreachable as e:
            raise StdinNotImplementedError(f"input() could not reach the frontend: {e}") from None
        except StdinNotAllowed:
            raise StdinNotImplementedError(
                "input() is not supported by this frontend (allow_stdin is false)"
            ) from None

    # -- handlers --

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, str],
        allow_stdin: bool,
    ) -> Deferred[dict[str, Any]]:
        cell = Cell(self, self.current_request(), silent, self.execution_count, store_history)
        return self._executor.submit(self._run_cell, code, cell, user_expressions)

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
            if self.output is not None:
                self.output.flush()
            current_cell.reset(token)

    def _remember(self, count: int, code: str) -> None:
        self.history.store(count, code)
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
            compiled = compile_cell(code, cell_filename(cell.count, cell.counted))
            if compiled.is_async:
                # The coroutine runs on the reactor, in this cell's context.
                self.run_in_reactor(Deferred.fromCoroutine, compiled.run_async(self.namespace))
            else:
                compiled.run(self.namespace)
        except BaseException as e:  # the user's exception, KeyboardInterrupt and SystemExit too
            return error_reply(e)
        return {"status": "ok", "payload": cell.payload}

    def _help(self, expr: str, detail_level: int) -> dict[str, Any]:
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

    def do_interrupt(self) -> None:
        if self._executor is not None:
            self._executor.interrupt()

    #: Seconds one completion may take; it runs on the reactor thread.
    completion_budget = BUDGET

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        return complete(code, cursor_pos, self.namespace, Deadline(self.completion_budget))

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int) -> dict[str, Any]:
        return inspect(code, cursor_pos, detail_level, self.namespace)

    def do_is_complete(self, code: str) -> dict[str, Any]:
        return is_complete(code)

    def do_history(self, content: dict[str, Any]) -> dict[str, Any]:
        return self.history.reply(content)

    # Comm messages from the frontend run on the execution thread, one at a
    # time with cells, and their output goes to the comm request.

    def _in_cell(self, request: Request, handler: Any) -> Deferred[None]:
        def run() -> None:
            token = current_cell.set(Cell(self, request, silent=True, count=self.execution_count))
            try:
                handler(request)
            finally:
                if self.output is not None:
                    self.output.flush()
                current_cell.reset(token)

        return self._executor.submit(run)

    def _on_comm_open(self, request: Request) -> Deferred[None]:
        return self._in_cell(request, super()._on_comm_open)

    def _on_comm_msg(self, request: Request) -> Deferred[None]:
        return self._in_cell(request, super()._on_comm_msg)

    def _on_comm_close(self, request: Request) -> Deferred[None]:
        return self._in_cell(request, super()._on_comm_close)
