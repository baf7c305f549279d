"""A real Jupyter Server (or JupyterLab) for one test, and a websocket client for its kernels.

:func:`start_server` runs ``python -m jupyter_server`` (or ``-m jupyterlab``)
as a child process on 127.0.0.1, a port the OS picks and a random token, in a
private Jupyter environment (config, data, runtime and settings directories
under the test's temporary directory) where the txkernel kernelspec is
installed.  The server is ended in the test's cleanup, and the cleanup fails
the test if a kernel process outlived it.  :class:`KernelChannels` is
autobahn's Twisted websocket client on ``/api/kernels/<id>/channels``,
speaking Jupyter Server's JSON messages.  Everything here runs on the reactor
thread; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import treq
from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connectWS,
)
from twisted.internet import reactor
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import deferLater

from txkernel import kernelspec

from .helpers import REPO_ROOT, ProcessOutput, ProcessWatch

Message = dict[str, Any]

#: Seconds the server may take to start, and to exit once told to stop.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def bounded(d: Deferred[Any], seconds: float, what: str) -> Deferred[Any]:
    """``d``, failed with a :exc:`TimeoutError` naming ``what`` after ``seconds``."""

    def explain(failure: Any) -> Any:
        if failure.check(TimeoutError):
            raise TimeoutError(f"gave up after {seconds:g} s waiting for {what}")
        return failure

    return d.addTimeout(seconds, reactor).addErrback(explain)


def observe(d: Deferred[Any]) -> Deferred[Any]:
    """A new Deferred that fires with ``d``'s result, leaving ``d`` as it was
    (so that a timeout on the new one does not cancel ``d``)."""
    seen: Deferred[Any] = Deferred()

    def passthrough(result: Any) -> Any:
        if not seen.called:
            seen.callback(result)
        return result

    d.addBoth(passthrough)
    return seen


def process_ids_mentioning(directory: str) -> list[int]:
    """The ids of the live processes with ``directory`` (or a path in it) among
    their arguments."""
    inside = directory.rstrip(os.sep) + os.sep
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and any(
            arg == inside.rstrip(os.sep) or arg.startswith(inside) for arg in argv
        ):
            found.append(int(entry))
    return found


async def exited(pids: list[int], seconds: float) -> None:
    """Wait until every process in ``pids`` has exited (at most ``seconds``)."""
    watches = [ProcessWatch(pid) for pid in pids]
    try:
        for watch in watches:
            await bounded(observe(watch.exited), seconds, "a kernel process to exit")
    finally:
        for watch in watches:
            watch.close()


class JupyterServer:
    """A running ``jupyter server`` child process (see :func:`start_server`)."""

    def __init__(self, root: str, token: str, output: ProcessOutput) -> None:
        self.root = root
        self.token = token
        self.output = output
        self.url = ""
        self.kernel_name = ""
        self.runtime_dir = os.path.join(root, "runtime")
        self.notebook_dir = os.path.join(root, "notebooks")
        self._process: Any = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def kernel_processes(self) -> list[int]:
        """The kernel processes this server started that are still alive.

        Kernels get their connection file in the server's runtime directory,
        so their command line names it."""
        return process_ids_mentioning(self.runtime_dir)

    async def request(
        self, method: str, path: str, body: Any = None, timeout: float = 30.0
    ) -> tuple[int, Any]:
        """Call the REST API; returns the status code and the decoded JSON (or None)."""
        # No persistent connections: nothing outlives the test in the reactor.
        kwargs: dict[str, Any] = {"headers": self.headers, "persistent": False}
        if body is not None:
            kwargs["json"] = body
        d = treq.request(method, self.url + path.lstrip("/"), **kwargs)
        response = await bounded(d, timeout, f"{method} {path}")
        content = await bounded(treq.content(response), timeout, f"{method} {path}")
        return response.code, (json.loads(content) if content else None)

    async def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL if it does not exit in time)."""
        if self.output.ended.called:
            return
        self._process.signalProcess("TERM")
        try:
            await bounded(
                observe(self.output.ended), STOP_TIMEOUT, "the server to exit"
            )
        except TimeoutError:
            self._process.signalProcess("KILL")
            await bounded(observe(self.output.ended), STOP_TIMEOUT, "the server to die")


async def start_server(
    test: Any,
    app: str = "jupyter_server",
    spec: Callable[[str], dict[str, Any]] | None = None,
    environ: dict[str, str] | None = None,
    config: str = "",
) -> JupyterServer:
    """Start ``python -m <app>`` for ``test`` with the txkernel kernelspec installed.

    ``app`` is ``"jupyter_server"`` or ``"jupyterlab"``.  ``spec``, given the
    server's runtime directory, returns another ``kernel.json`` to install
    instead of txkernel's own; ``environ`` adds to the server's environment;
    ``config`` is the server's ``jupyter_server_config.py``.
    Fires with the running :class:`JupyterServer` once it accepts
    connections.  Cleanup ends it and fails the test if one of its kernel
    processes is still alive afterwards (killing it so that nothing is left
    behind)."""
    root = os.path.abspath(test.mktemp())
    prefix = os.path.join(root, "prefix")
    name = "txkernel-test"
    if spec is None:
        kernelspec.install(name=name, prefix=prefix)
    else:
        folder = os.path.join(prefix, "share", "jupyter", "kernels", name)
        os.makedirs(folder)
        kernelspec.write_kernelspec(folder, spec(os.path.join(root, "runtime")))
    token = secrets.token_hex(24)
    env = dict(os.environ)
    env.update(environ or {})
    env.update(
        {
            "JUPYTER_PATH": os.path.join(prefix, "share", "jupyter"),
            "JUPYTER_CONFIG_DIR": os.path.join(root, "config"),
            "JUPYTER_DATA_DIR": os.path.join(root, "data"),
            "JUPYTER_RUNTIME_DIR": os.path.join(root, "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": os.path.join(root, "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": os.path.join(root, "lab-workspaces"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONPATH": REPO_ROOT + os.pathsep + env.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("JUPYTER_TOKEN", None)
    if config:
        os.makedirs(env["JUPYTER_CONFIG_DIR"])
        path = os.path.join(env["JUPYTER_CONFIG_DIR"], "jupyter_server_config.py")
        with open(path, "w") as f:
            f.write(config)
    server = JupyterServer(root, token, ProcessOutput())
    server.kernel_name = name
    os.makedirs(server.notebook_dir)
    argv = [
        sys.executable,
        "-m",
        app,
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={server.notebook_dir}",
        "--ServerApp.shutdown_no_activity_timeout=0",
    ]
    if app == "jupyterlab":
        _quiet_lab_settings(env["JUPYTERLAB_SETTINGS_DIR"])
        argv += [
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
        ]
    server._process = reactor.spawnProcess(
        server.output, sys.executable, argv, env=env, path=root
    )
    test.addCleanup(_cleanup, test, server)
    try:
        match = await bounded(
            server.output.wait_for(r"is running at:.*\n.*?(http://127\.0\.0\.1:\d+/)"),
            START_TIMEOUT,
            "the server to start",
        )
    except Exception as e:
        raise AssertionError(f"{e}; the server said:\n{server.output.output}") from e
    server.url = match.group(1)
    await _until_listening(server)
    return server


def _quiet_lab_settings(settings_dir: str) -> None:
    """User settings that keep JupyterLab from asking to fetch news (a toast
    over the page, and a request to the outside world if accepted)."""
    folder = os.path.join(settings_dir, "@jupyterlab", "apputils-extension")
    os.makedirs(folder)
    with open(os.path.join(folder, "notification.jupyterlab-settings"), "w") as f:
        json.dump({"fetchNews": "false"}, f)


async def _until_listening(server: JupyterServer, attempts: int = 100) -> None:
    """Wait until the server accepts connections.

    It prints its address just before its event loop starts, and binds its
    port on the loop's first turn: a connection in between is refused, so
    ask ``/api/status`` again (every 0.1 s, at most ``attempts`` times)."""
    for _ in range(attempts):
        try:
            code, _ = await server.request("GET", "api/status", timeout=10)
        except ConnectionRefusedError:
            await deferLater(reactor, 0.1, lambda: None)
            continue
        if code != 200:
            raise AssertionError(f"GET /api/status answered {code}")
        return
    raise AssertionError(
        f"the server did not accept connections:\n{server.output.output}"
    )


async def _cleanup(test: Any, server: JupyterServer) -> None:
    await server.stop()
    try:
        await exited(server.kernel_processes(), 15)
    except TimeoutError:
        pass
    left = server.kernel_processes()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    if left:
        test.fail(f"kernel processes left behind by the server: {left}")


class _Protocol(WebSocketClientProtocol):
    channels: KernelChannels

    def onOpen(self) -> None:
        self.channels._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.channels._received(json.loads(payload))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.channels._closed(code, reason)


class KernelChannels:
    """One websocket on a kernel's ``/channels``, as JupyterLab opens it.

    Keeps every message received, in order; :meth:`wait` fires with the first
    one (from a given index on) that matches."""

    def __init__(self) -> None:
        self.session = uuid.uuid4().hex
        self.received: list[Message] = []
        self.closed: Deferred[int | None] = Deferred()
        self._protocol: _Protocol | None = None
        self._open: Deferred[None] = Deferred()
        self._waiting: list[
            tuple[Callable[[Message], bool], int, Deferred[Message]]
        ] = []

    @classmethod
    async def connect(
        cls, test: Any, server: JupyterServer, kernel_id: str
    ) -> KernelChannels:
        """Fires with open channels to ``kernel_id``; closed in cleanup."""
        channels = cls()
        url = (
            server.url.replace("http://", "ws://")
            + f"api/kernels/{kernel_id}/channels?session_id={channels.session}"
        )
        factory = WebSocketClientFactory(url, headers=server.headers)
        factory.protocol = type("Protocol", (_Protocol,), {"channels": channels})
        # The server answers the upgrade only once the kernel answered its
        # nudge; autobahn's 5 s default is too short on a loaded machine.
        factory.setProtocolOptions(openHandshakeTimeout=30)
        connector = connectWS(factory)
        test.addCleanup(channels.close, connector)
        await bounded(channels._open, 30, "the websocket to open")
        return channels

    def _opened(self, protocol: _Protocol) -> None:
        self._protocol = protocol
        self._open.callback(None)

    def _received(self, msg: Message) -> None:
        index = len(self.received)
        self.received.append(msg)
        for entry in list(self._waiting):
            predicate, start, d = entry
            if index >= start and predicate(msg):
                self._waiting.remove(entry)
                d.callback(msg)

    def _closed(self, code: int | None, reason: str | None) -> None:
        self._protocol = None
        if not self._open.called:
            self._open.errback(ConnectionError(f"websocket refused: {code} {reason}"))
        for _, _, d in self._waiting:
            d.errback(ConnectionError(f"websocket closed: {code} {reason}"))
        self._waiting = []
        if not self.closed.called:
            self.closed.callback(code)

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        """Send a request on ``channel``; returns its ``msg_id``."""
        if self._protocol is None:
            raise ConnectionError("websocket is not open")
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {
                "msg_id": msg_id,
                "msg_type": msg_type,
                "session": self.session,
                "username": "test",
                "date": datetime.now(UTC).isoformat(),
                "version": "5.4",
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": channel,
            "buffers": [],
        }
        self._protocol.sendMessage(json.dumps(msg).encode("utf-8"))
        return msg_id

    def execute(self, code: str, **content: Any) -> str:
        """Send an ``execute_request`` for ``code``; returns its ``msg_id``."""
        return self.send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
                **content,
            },
        )

    def wait(
        self,
        predicate: Callable[[Message], bool],
        timeout: float = 30.0,
        what: str = "a message",
        start: int = 0,
    ) -> Deferred[Message]:
        """Fires with the first message from index ``start`` on that matches."""
        for msg in self.received[start:]:
            if predicate(msg):
                d: Deferred[Message] = Deferred()
                d.callback(msg)
                return d
        d = Deferred()
        entry = (predicate, start, d)
        self._waiting.append(entry)

        def forget(result: Any) -> Any:
            if entry in self._waiting:
                self._waiting.remove(entry)
            return result

        return bounded(d, timeout, what).addBoth(forget)

    def reply_to(self, msg_id: str, timeout: float = 30.0) -> Deferred[Message]:
        """Fires with the reply to request ``msg_id``."""
        return self.wait(
            lambda m: (
                m["channel"] in ("shell", "control")
                and m["parent_header"].get("msg_id") == msg_id
            ),
            timeout,
            f"the reply to {msg_id}",
        )

    def status(
        self, msg_id: str, state: str, timeout: float = 30.0
    ) -> Deferred[Message]:
        """Fires with the IOPub ``status: state`` whose parent is ``msg_id``."""
        return self.wait(
            lambda m: (
                m["msg_type"] == "status"
                and m["parent_header"].get("msg_id") == msg_id
                and m["content"]["execution_state"] == state
            ),
            timeout,
            f"status {state} for {msg_id}",
        )

    def iopub_for(self, msg_id: str) -> list[Message]:
        """The IOPub messages received so far whose parent is ``msg_id``."""
        return [
            m
            for m in self.received
            if m["channel"] == "iopub" and m["parent_header"].get("msg_id") == msg_id
        ]

    async def close(self, connector: Any = None) -> None:
        """Close the websocket if it is open, and wait until it is closed."""
        if self._protocol is not None:
            self._protocol.sendClose()
            await bounded(observe(self.closed), 10, "the websocket to close")
        elif not self.closed.called and connector is not None:
            connector.disconnect()


async def interrupt_sleeping_cell(
    server: JupyterServer, channels: KernelChannels, kernel_id: str
) -> tuple[int, dict]:
    """Run a cell that sleeps for a minute, interrupt it through the REST API
    once it has started; returns the interrupt's HTTP status and the cell's reply."""
    start = len(channels.received)
    msg_id = channels.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    await channels.wait(
        lambda m: (
            m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id
        ),
        what="the cell to start sleeping",
        start=start,
    )
    code, _ = await server.request("POST", f"api/kernels/{kernel_id}/interrupt")
    reply = await channels.reply_to(msg_id, timeout=15)
    await channels.status(msg_id, "idle", timeout=15)
    return code, reply
