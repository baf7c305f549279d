"""The Python kernel's debugger: the Jupyter debug protocol served with debugpy.

JupyterLab sends DAP requests as ``debug_request`` on control; the reactor
thread answers them here, forwarding most to debugpy's adapter (a process
debugpy starts, see :func:`listen`) through a :class:`~.dap.DAPClient`, and
publishes the adapter's events as ``debug_event`` on IOPub.  debugpy's
tracer lives in this process: a cell stopped at a breakpoint waits on its
execution thread while the reactor, control, heartbeat and IOPub go on,
because the reactor and the kernel's socket threads are marked for debugpy
not to trace or list (``pydev_do_not_trace``, ``is_pydev_daemon_thread``).
What a cell leaves to the reactor runs, while a frontend debugs, on a thread
debugpy traces (:mod:`.debugcalls`); a debugged await cell is stepped on its
execution thread (:mod:`.debugasync`).

The Jupyter extensions and a few DAP requests are answered by the kernel
itself: ``debugInfo``, ``dumpCell``, ``inspectVariables``,
``richInspectVariables``, ``copyToGlobals`` (through debugpy's
``setExpression``), ``source``, ``modules``, and ``configurationDone`` once
``attach`` has sent it.  Everything runs on the reactor thread except
:func:`listen`, which starts the adapter from a short-lived thread of its own.
"""

from __future__ import annotations

import importlib.util
import itertools
import linecache
import os
import re
import sys
import threading
from ast import literal_eval
from reprlib import Repr
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.protocol import ClientCreator
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._defer import branch
from . import cell
from .dap import DAPClient, DAPError
from .debugcells import CellFiles
from .display import format_object

log = Logger()

_KERNEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Names the kernel puts in the namespace; the variable views leave them out.
KERNEL_NAMES = frozenset(
    "__builtins__ __name__ __doc__ __package__ __loader__ __spec__ __annotations__"
    " __builtin__ display update_display clear_output run_in_reactor kernel exit quit"
    " In Out _ __ ___".split()
)
_HISTORY_NAME = re.compile(r"^_(i\d*|ii|iii|\d+)$")
_short = Repr()
_short.maxstring = _short.maxother = 200


#: The oldest debugpy the debugger works with: the version its tests pass
#: with.  (With 1.8.0 breakpoints in await cells never stop and uncaught
#: cell exceptions cannot stop: it lacks ``trigger_exception_handler``.)
MIN_DEBUGPY = (1, 8, 22)


def debugpy_version() -> tuple[int, ...] | None:
    """The installed debugpy's version (its leading numbers); None when it is
    not installed, ``()`` when its version cannot be told.

    Read from the name of its ``.dist-info`` (or ``.egg-info``) directory
    beside the package: ``importlib.metadata`` would cost a kernel's start
    tens of milliseconds.
    """
    spec = importlib.util.find_spec("debugpy")
    if spec is None:
        return None
    if not spec.origin:
        return ()
    site = os.path.dirname(os.path.dirname(spec.origin))
    try:
        names = os.listdir(site)
    except OSError:
        return ()
    for name in names:
        found = _DIST_INFO.match(name)
        if found is not None:
            return tuple(int(n) for n in found.group(1).split("."))
    return ()


_DIST_INFO = re.compile(r"^debugpy-(\d+(?:\.\d+)*)[^-]*(?:-py[\d.]+)?\.(?:dist|egg)-info$")


def available() -> bool:
    """Whether debugpy is installed (the ``txkernel[debugger]`` extra) and
    not older than :data:`MIN_DEBUGPY` (one whose version cannot be told is
    taken as recent enough); imports nothing."""
    version = debugpy_version()
    return version is not None and (version == () or version >= MIN_DEBUGPY)


def unavailable_reason() -> str | None:
    """Why an installed debugpy is not used (it is too old), or None."""
    version = debugpy_version()
    if version is None or version == () or version >= MIN_DEBUGPY:
        return None
    return (
        f"debugpy {'.'.join(map(str, version))} is installed; the debugger needs"
        f" {'.'.join(map(str, MIN_DEBUGPY))} or later, so it is off"
    )


def hide_thread(thread: threading.Thread) -> None:
    """Keep debugpy from tracing ``thread`` or listing it as a user thread."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]


def shown(name: str) -> bool:
    """Whether a namespace name is the user's (not the kernel's or history's)."""
    return name not in KERNEL_NAMES and not _HISTORY_NAME.match(name)


# debugpy is one per process: its adapter is started once and every kernel
# of the process talks to it.
_endpoint: Deferred[tuple[str, int]] | None = None


def listen(reactor: Any) -> Deferred[tuple[str, int]]:
    """Start debugpy's adapter (once per process); fires with the address clients connect to.

    ``debugpy.listen`` blocks while the adapter starts, so it runs on a
    thread of its own, hidden from debugpy.  Call on the reactor thread,
    which is hidden from debugpy first.
    """
    global _endpoint
    if _endpoint is not None:
        return branch(_endpoint)
    hide_thread(threading.current_thread())
    d: Deferred[tuple[str, int]] = Deferred()

    def run() -> None:
        try:
            # Cells are not frozen modules: debugpy need not warn about those on stderr.
            os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
            import debugpy

            # Subprocesses the user starts are not debugged (they would wait for an adapter).
            debugpy.configure(subProcess=False)
            host, port = debugpy.listen(("127.0.0.1", 0))
        except BaseException:
            reactor.callFromThread(d.errback, Failure())
        else:
            reactor.callFromThread(d.callback, (host, port))

    thread = threading.Thread(target=run, name="txkernel-debugpy-listen", daemon=True)
    hide_thread(thread)
    _endpoint = d
    started = branch(d)

    def failed(f: Failure) -> None:
        global _endpoint
        _endpoint = None  # the next initialize tries again

    d.addErrback(failed)
    thread.start()
    return started


class Debugger:
    """One kernel's debug session: what JupyterLab asks, answered on the reactor thread.

    ``publish(event)`` sends a DAP event to the frontends (IOPub);
    ``namespace`` is the kernel's user namespace.
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        publish: Any,
        reactor: Any,
        files: CellFiles | None = None,
    ) -> None:
        self._namespace = namespace
        self._publish = publish
        self._reactor = reactor
        self.files = files or CellFiles()
        if self.files.prefix not in cell.CELL_FILE_PREFIXES:
            cell.CELL_FILE_PREFIXES.append(self.files.prefix)
        self._client: DAPClient | None = None
        self._configured = False
        self._initialized: Deferred[None] = Deferred()
        self._seq = itertools.count(1)
        #: source path -> [{"line": n}, ...], as debugpy accepted them.
        self.breakpoints: dict[str, list[dict[str, Any]]] = {}
        self.stopped_threads: set[int] = set()
        self._handlers = {
            "debugInfo": self._debug_info,
            "initialize": self._initialize,
            "attach": self._attach,
            "configurationDone": self._configuration_done,
            "dumpCell": self._dump_cell,
            "setBreakpoints": self._set_breakpoints,
            "source": self._source,
            "stackTrace": self._stack_trace,
            "variables": self._variables,
            "inspectVariables": self._inspect_variables,
            "richInspectVariables": self._rich_inspect_variables,
            "copyToGlobals": self._copy_to_globals,
            "disconnect": self._disconnect,
            "modules": self._modules,
        }

    @property
    def started(self) -> bool:
        """Whether a frontend is attached (cells then compile under their cell file names)."""
        return self._client is not None

    def cell_filename(self, code: str) -> str:
        """The file a cell is compiled as: its cell file (written while debugging).

        Every cell gets its cell file name, before the debugger starts too,
        so breakpoints in code earlier cells defined stop.  Called on the
        execution thread.
        """
        if self._client is None:
            return self.files.path(code)
        try:
            return self.files.write(code)
        except OSError as e:
            log.warn("Cannot write the cell file for the debugger: {e}", e=e)
            return self.files.path(code)

    def cell_raised(self, error: BaseException) -> None:
        """``error`` escaped a cell: stop there if the frontend breaks on uncaught exceptions.

        The kernel catches a cell's exception to report it, so debugpy never
        sees it leave the thread; this hands it to debugpy as uncaught
        (``debugpy.trigger_exception_handler``, which applies the frontend's
        ``uncaught`` filter), and returns once the user resumes.  Called on
        the execution thread; does nothing on the reactor's (it must not wait).
        """
        from twisted.python.threadable import isInIOThread

        if self._client is None or isinstance(error, KeyboardInterrupt) or isInIOThread():
            return
        import debugpy

        try:
            debugpy.trigger_exception_handler(error)
        except Exception:
            log.failure("debugpy could not stop on the cell's exception")

    # -- requests --

    def handle(self, request: Any) -> Deferred[dict[str, Any]]:
        """Answer one DAP request; fires with the DAP response (never fails)."""
        if not isinstance(request, dict):
            request = {}
        if not isinstance(request.get("seq", 0), int):
            request = {**request, "seq": 0}
        if not isinstance(request.get("command"), str):
            return succeed(
                self._response(
                    {"seq": request.get("seq", 0), "command": ""},
                    False,
                    message="a debug_request needs a DAP request with a command",
                )
            )
        if request.get("arguments") is not None and not isinstance(
            request["arguments"], dict
        ):
            return succeed(
                self._response(request, False, message="arguments must be an object")
            )
        handler = self._handlers.get(request["command"], self._forward)
        d = maybeDeferred(handler, request)

        def failed(f: Failure) -> dict[str, Any]:
            if not f.check(DAPError, ValueError, KeyError, TypeError, OSError):
                log.failure(
                    "Debug request {command} failed", f, command=request["command"]
                )
            return self._response(
                request,
                False,
                message=f"{request['command']} failed: {f.getErrorMessage()}",
            )

        return d.addErrback(failed)

    def _response(
        self,
        request: dict[str, Any],
        success: bool = True,
        body: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        response: dict[str, Any] = {
            "seq": next(self._seq),
            "type": "response",
            "request_seq": request.get("seq", 0),
            "success": success,
            "command": request.get("command", ""),
            "body": body if body is not None else {},
        }
        if message is not None:
            response["message"] = message
        return response

    def _forward(
        self,
        request: dict[str, Any],
        arguments: dict[str, Any] | None = None,
        command: str | None = None,
    ) -> Deferred[dict[str, Any]]:
        """Send ``request`` to the adapter; its response, renumbered for the frontend."""
        if self._client is None:
            return succeed(
                self._response(
                    request,
                    False,
                    message="the debugger is not started (send initialize first)",
                )
            )
        d = self._client.request(
            command or request["command"],
            arguments if arguments is not None else request.get("arguments"),
        )

        def answered(response: dict[str, Any]) -> dict[str, Any]:
            response["request_seq"] = request.get("seq", 0)
            response["command"] = request["command"]
            response.setdefault("body", {})
            return response

        return d.addCallback(answered)

    def _debug_info(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._response(
            request,
            body={
                "isStarted": self.started,
                "hashMethod": "Murmur2",
                "hashSeed": self.files.seed,
                "tmpFilePrefix": self.files.prefix,
                "tmpFileSuffix": self.files.suffix,
                "breakpoints": [
                    {"source": path, "breakpoints": lines}
                    for path, lines in self.breakpoints.items()
                ],
                "stoppedThreads": sorted(self.stopped_threads),
                "richRendering": True,
                "exceptionPaths": ["Python Exceptions"],
                "copyToGlobals": True,
            },
        )

    async def _initialize(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            host, port = await listen(self._reactor)
            client = DAPClient(self._on_event, self._reactor)
            await ClientCreator(self._reactor, lambda: client).connectTCP(
                host, port, timeout=10
            )
            client.lost_d.addCallback(lambda _: self._lost(client))
            self._client = client
            self._configured = False
            self._initialized = Deferred()
        return await self._forward(request)

    async def _attach(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            return self._response(
                request,
                False,
                message="the debugger is not started (send initialize first)",
            )
        arguments = dict(request.get("arguments") or {})
        arguments.setdefault("justMyCode", True)
        arguments["subProcess"] = False
        # The kernel's own frames are not stepped into or shown.
        rules = list(arguments.get("rules") or [])
        rules.append({"path": _KERNEL_DIR, "include": False})
        arguments["rules"] = rules
        client = self._client
        attached = self._forward(request, arguments)
        if not self._configured:
            # JupyterLab sends no configurationDone: finish debugpy's setup
            # once debugpy says it is ready for configuration.
            initialized = branch(self._initialized)
            initialized.addTimeout(10, self._reactor)
            await initialized
            done = await client.request("configurationDone")
            if not done.get("success"):
                log.warn(
                    "debugpy refused configurationDone: {m}", m=done.get("message")
                )
            self._configured = True
        return await attached

    def _configuration_done(self, request: dict[str, Any]) -> Any:
        if self._configured:
            return self._response(request)
        self._configured = True
        return self._forward(request)

    def _dump_cell(self, request: dict[str, Any]) -> dict[str, Any]:
        code = (request.get("arguments") or {}).get("code")
        if not isinstance(code, str):
            return self._response(
                request, False, message="dumpCell needs arguments.code (a string)"
            )
        path = self.files.write(code)
        return self._response(request, body={"sourcePath": path})

    async def _set_breakpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        source = ((request.get("arguments") or {}).get("source") or {}).get("path")
        response = await self._forward(request)
        if response.get("success") and isinstance(source, str):
            lines = [
                {"line": b["line"]}
                for b in response["body"].get("breakpoints", [])
                if "line" in b
            ]
            if lines:
                self.breakpoints[source] = lines
            else:
                self.breakpoints.pop(source, None)
        return response

    def _source(self, request: dict[str, Any]) -> dict[str, Any]:
        path = ((request.get("arguments") or {}).get("source") or {}).get("path")
        if not isinstance(path, str):
            return self._response(
                request, False, message="source needs arguments.source.path"
            )
        try:
            with open(path, encoding="utf-8") as f:
                content = f.read()
        except OSError:
            lines = linecache.getlines(path)
            if not lines:
                return self._response(
                    request, False, message=f"source unavailable: {path}"
                )
            content = "".join(lines)
        return self._response(request, body={"content": content})

    async def _stack_trace(self, request: dict[str, Any]) -> dict[str, Any]:
        response = await self._forward(request)
        frames = response["body"].get("stackFrames")
        if isinstance(frames, list):
            cells = [
                i
                for i, f in enumerate(frames)
                if self.files.is_cell(((f.get("source") or {}).get("path")) or "")
            ]
            if cells:
                # Below the outermost cell frame is the kernel running the cell.
                response["body"]["stackFrames"] = frames[: cells[-1] + 1]
                response["body"]["totalFrames"] = cells[-1] + 1
        return response

    async def _variables(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.stopped_threads:
            return self._response(request, body={"variables": []})
        response = await self._forward(request)
        variables = response["body"].get("variables")
        if isinstance(variables, list):
            response["body"]["variables"] = [
                v for v in variables if shown(str(v.get("name", "")))
            ]
        return response

    def _inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        variables = []
        for name, value in sorted(dict(self._namespace).items()):
            if not isinstance(name, str) or not shown(name) or name.startswith("__"):
                continue
            try:
                text = _short.repr(value)
            except Exception as e:
                text = f"<repr failed: {type(e).__name__}>"
            variables.append(
                {
                    "name": name,
                    "value": text,
                    "type": type(value).__name__,
                    "evaluateName": name,
                    "variablesReference": 0,
                }
            )
        return self._response(request, body={"variables": variables})

    async def _rich_inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        name = arguments.get("variableName")
        if not isinstance(name, str) or not name.isidentifier():
            return self._response(request, body={"data": {}, "metadata": {}})
        frame_id = arguments.get("frameId")
        if self.stopped_threads and frame_id is not None and self._client is not None:
            expression = f"__import__('txkernel.python.display', fromlist=['_']).format_object({name})"
            evaluated = await self._client.request(
                "evaluate",
                {"expression": expression, "frameId": frame_id, "context": "clipboard"},
            )
            if not evaluated.get("success"):
                return self._response(
                    request,
                    False,
                    message=evaluated.get("message", f"cannot evaluate {name}"),
                )
            data, metadata = literal_eval(evaluated["body"]["result"])
        else:
            if name not in self._namespace:
                return self._response(
                    request, False, message=f"name {name!r} is not defined"
                )
            data, metadata = format_object(self._namespace[name])
        return self._response(
            request,
            body={
                "data": data,
                "metadata": {k: v for k, v in metadata.items() if k in data},
            },
        )

    def _modules(self, request: dict[str, Any]) -> dict[str, Any]:
        """The kernel's loaded Python source modules (JupyterLab's kernel sources panel)."""
        arguments = request.get("arguments") or {}
        found = []
        for name, module in sorted(list(sys.modules.items())):
            path = getattr(getattr(module, "__spec__", None), "origin", None)
            if isinstance(path, str) and path.endswith(".py"):
                found.append({"id": len(found), "name": name, "path": path})
        start = arguments.get("startModule", 0)
        count = arguments.get("moduleCount", 0)
        if not isinstance(start, int) or not isinstance(count, int):
            return self._response(
                request, False, message="startModule and moduleCount must be integers"
            )
        page = found[start : start + count] if count > 0 else found[start:]
        return self._response(
            request, body={"modules": page, "totalModules": len(found)}
        )

    def _copy_to_globals(self, request: dict[str, Any]) -> Any:
        arguments = request.get("arguments") or {}
        dst, src = arguments.get("dstVariableName"), arguments.get("srcVariableName")
        if not (
            isinstance(dst, str)
            and dst.isidentifier()
            and isinstance(src, str)
            and src.isidentifier()
        ):
            return self._response(
                request,
                False,
                message="dstVariableName and srcVariableName must be identifiers",
            )
        return self._forward(
            request,
            {
                "expression": f"globals()[{dst!r}]",
                "value": src,
                "frameId": arguments.get("srcFrameId"),
            },
            command="setExpression",
        )

    async def _disconnect(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._client is None:
            return self._response(request)
        # The kernel is never ended by its debugger (shutdown_request does that).
        arguments = {
            **(request.get("arguments") or {}),
            "terminateDebuggee": False,
            "restart": False,
        }
        client = self._client
        try:
            response = await self._forward(request, arguments)
        finally:
            client.close()
            self._lost(client)
        return response

    def resume(self) -> Deferred[None]:
        """Let every thread stopped in the debugger run on; fires once debugpy has resumed them."""
        if self._client is None or not self.stopped_threads:
            self.stopped_threads = set()
            return succeed(None)
        d = self._client.request("continue", {"threadId": min(self.stopped_threads)})

        def resumed(response: Any) -> None:
            if isinstance(response, Failure):
                log.warn(
                    "Resuming the stopped threads failed: {e}",
                    e=response.getErrorMessage(),
                )
            self.stopped_threads = set()

        return d.addBoth(resumed)

    def stop(self) -> None:
        """The kernel is stopping: end the session and remove the cell files."""
        if self._client is not None:
            client = self._client
            client.close()
            self._lost(client)
        self.files.remove()

    def _lost(self, client: DAPClient) -> None:
        if self._client is client:
            self._client = None
            self._configured = False
            self.breakpoints = {}
            self.stopped_threads = set()

    # -- events --

    def _on_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        body = event.get("body") or {}
        if name == "initialized":
            if not self._initialized.called:
                self._initialized.callback(None)
        elif name == "stopped":
            if "threadId" in body:
                self.stopped_threads.add(body["threadId"])
        elif name == "continued":
            if body.get("allThreadsContinued", True):
                self.stopped_threads = set()
            else:
                self.stopped_threads.discard(body.get("threadId"))
        self._publish(event)
