"""A Twisted kernel manager: start, watch, interrupt, restart and stop kernel processes.

The client half of what jupyter_client's ``KernelManager`` does, with
Deferreds instead of blocking calls or asyncio::

    from twisted.internet import task
    from txkernel.manager import KernelManager

    async def main(reactor):
        manager = KernelManager("python3")      # any installed kernelspec
        await manager.start()                   # fires once the kernel is ready
        client = manager.client()
        await client.wait_for_ready()           # its IOPub is subscribed
        result = await client.execute("print(6 * 7)", on_output=print)
        await manager.shutdown()

    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))

The kernel is launched from its kernelspec with ``reactor.spawnProcess``: its
``argv`` with ``{connection_file}`` (and ``{prefix}``, ``{resource_dir}``)
substituted, ``python``/``python3`` meaning this interpreter, its ``env`` on
top of ours (``${VAR}`` expanded) plus ``JPY_PARENT_PID``.  The connection
file (free loopback ports, a random key) is written with mode 0600 in the
Jupyter runtime directory and removed at shutdown.  Interrupts follow the
spec's ``interrupt_mode``: SIGINT, or an ``interrupt_request`` on control.

The kernel runs in a session (and process group) of its own, as with
jupyter_client's ``start_new_session``: SIGINT and SIGKILL go to the whole
group, so what a cell started (a subprocess, a shell pipeline) is
interrupted or killed with the kernel, and once the kernel process has
ended whatever is left of its group is killed.

With ``autorestart=True`` (off by default) a kernel that dies without the
manager ending it is started again on the same connection file, as
jupyter_client's ``KernelRestarter`` does: :meth:`KernelManager.on_restart`
watchers hear of each restart; after ``restart_limit`` restarts in a row of
a kernel that died within ``stable_start_time`` seconds of being ready (or
before), the manager gives up and :meth:`KernelManager.on_dead` watchers are
told.

Everything here runs on the reactor thread.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import string
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._defer import branch
from .client import CHANNELS, KernelClient, KernelDied, KernelTimeout
from .connection import ConnectionInfo, runtime_dir, write_connection_file
from .curve import CurveClient
from .wire import Message

log = Logger()

__all__ = ["KernelExit", "KernelManager", "KernelDied", "KernelTimeout", "NoSuchKernel"]


class NoSuchKernel(LookupError):
    """No kernelspec of that name is installed."""


@dataclass(frozen=True)
class KernelExit:
    """How a kernel process ended."""

    #: The exit status, or None when a signal ended it.
    exit_code: int | None
    #: The signal that ended it, or None.
    signal: int | None
    #: Whether the manager ended it (shutdown, restart) rather than the kernel dying.
    expected: bool

    def __str__(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"the kernel was killed by signal {self.signal} ({name})"
        return f"the kernel exited with status {self.exit_code}"


#: Run by this interpreter before the kernel: a new session, then the kernel
#: itself in the same process (``spawnProcess`` has no ``start_new_session``).
_NEW_SESSION = "import os, sys; os.setsid(); os.execv(sys.argv[1], sys.argv[1:])"


def _in_new_session(argv: list[str]) -> list[str]:
    """``argv`` run as the leader of a new session (so its pid is its group's id)."""
    if not hasattr(os, "setsid"):  # pragma: no cover - not POSIX
        return argv
    return [sys.executable, "-I", "-S", "-c", _NEW_SESSION, *argv]


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group ``pgid``; False when it has no process."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        log.warn("Not allowed to signal the kernel's process group {pgid}", pgid=pgid)
        return False
    return True


class _KernelProcess(ProcessProtocol):
    """One kernel process; ``ended`` fires with its exit status and signal."""

    def __init__(self, keep_output: int) -> None:
        self.ended: Deferred[tuple[int | None, int | None]] = Deferred()
        self.output = b""
        self._keep = keep_output
        #: The kernel's process group once it runs in a session of its own.
        self.pgid: int | None = None

    def processExited(self, reason: Failure) -> None:
        # What the kernel started and left behind goes with it (and with it
        # the pipes it inherited, which processEnded waits for).
        if self.pgid is not None:
            _signal_group(self.pgid, signal.SIGKILL)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if self._keep:
            self.output = (self.output + data)[-self._keep :]

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback((reason.value.exitCode, reason.value.signal))


def _free_ports(ip: str, count: int) -> list[int]:
    """``count`` distinct ports free on ``ip`` right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ip, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class KernelManager:
    """Starts and supervises one kernel from the kernelspec ``kernel_name``.

    ``kernel_spec_manager`` (a ``jupyter_client.kernelspec.KernelSpecManager``)
    finds the spec; by default Jupyter's usual search path.  ``env`` is added
    to the kernel's environment, ``cwd`` is its working directory and
    ``extra_arguments`` go after the spec's argv.  ``shutdown_grace`` is how
    long :meth:`shutdown` waits for a kernel to end by itself before killing
    it, ``ready_timeout`` how long :meth:`start` waits for the first reply.
    With ``keep_output`` > 0 the last that many bytes of the kernel's
    stdout/stderr are kept (``output``) and quoted when it dies before being
    ready; otherwise the kernel writes to this process's stdout and stderr.

    ``autorestart`` (default False) restarts a kernel that dies by itself;
    ``restart_limit`` and ``stable_start_time`` say when to give up (see the
    module docstring, :meth:`on_restart` and :meth:`on_dead`).

    ``curve`` (a :class:`txkernel.curve.CurveClient`) is what its clients
    connect with to a kernel that its kernelspec starts with a CurveZMQ
    server key (``--curve-secret-key``).
    """

    def __init__(
        self,
        kernel_name: str = "python3",
        reactor: Any = None,
        kernel_spec_manager: Any = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        extra_arguments: Sequence[str] = (),
        shutdown_grace: float = 5.0,
        ready_timeout: float = 60.0,
        ip: str = "127.0.0.1",
        keep_output: int = 0,
        autorestart: bool = False,
        restart_limit: int = 5,
        stable_start_time: float = 10.0,
        curve: CurveClient | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.kernel_name = kernel_name
        self._spec_manager = kernel_spec_manager
        self._env = dict(env or {})
        self._cwd = cwd
        self._extra_arguments = list(extra_arguments)
        self.shutdown_grace = shutdown_grace
        self.ready_timeout = ready_timeout
        self._ip = ip
        self._keep_output = keep_output
        self.kernel_spec: Any = None
        self.connection_info: ConnectionInfo | None = None
        self.connection_file: str | None = None
        self._process: Any = None
        self._pgid: int | None = None
        self._protocol: _KernelProcess | None = None
        self._control: KernelClient | None = None
        self._clients: list[KernelClient] = []
        self._death_watchers: list[Callable[[KernelExit], object]] = []
        self._ending = False
        self.autorestart = autorestart
        self.restart_limit = restart_limit
        self.stable_start_time = stable_start_time
        #: The CurveZMQ keys this manager's clients connect with (for a
        #: kernelspec that starts its kernel with a server key).
        self.curve = curve
        self._restart_watchers: list[Callable[[KernelExit], object]] = []
        self._dead_watchers: list[Callable[[KernelExit], object]] = []
        #: When the running kernel became ready (reactor seconds), else None.
        self._ready_at: float | None = None
        #: Automatic restarts since the kernel last ran for stable_start_time.
        self._quick_restarts = 0
        self._restarting: Deferred[Any] | None = None
        self._closing = False

    # -- state --

    @property
    def is_alive(self) -> bool:
        """Whether the kernel process is running."""
        return self._protocol is not None and not self._protocol.ended.called

    @property
    def pid(self) -> int | None:
        """The kernel process's id while it runs."""
        return self._process.pid if self.is_alive else None

    @property
    def interrupt_mode(self) -> str:
        """``signal`` or ``message``, as the kernelspec says."""
        mode = getattr(self.kernel_spec, "interrupt_mode", None) or "signal"
        return "message" if mode == "message" else "signal"

    @property
    def output(self) -> bytes:
        """The last ``keep_output`` bytes the kernel wrote (stdout and stderr)."""
        return self._protocol.output if self._protocol is not None else b""

    def on_death(self, watcher: Callable[[KernelExit], object]) -> Callable[[], None]:
        """Call ``watcher(exit)`` (a :class:`KernelExit`) whenever the kernel
        process ends without the manager ending it; returns an unwatch
        function.  Unless ``autorestart`` is on, the manager does not restart
        it by itself: call :meth:`restart` from the watcher to do so."""
        return _watch(self._death_watchers, watcher)

    def on_restart(self, watcher: Callable[[KernelExit], object]) -> Callable[[], None]:
        """Call ``watcher(exit)`` each time ``autorestart`` has started the kernel
        again after it ended with ``exit``, once the new kernel is ready and
        the manager's clients are subscribed to it; returns an unwatch
        function."""
        return _watch(self._restart_watchers, watcher)

    def on_dead(self, watcher: Callable[[KernelExit], object]) -> Callable[[], None]:
        """Call ``watcher(exit)`` when ``autorestart`` gives up: the kernel
        ended with ``exit`` (or failed to start again) after ``restart_limit``
        quick restarts in a row; it stays stopped until :meth:`start` or
        :meth:`restart`.  Returns an unwatch function."""
        return _watch(self._dead_watchers, watcher)

    # -- life cycle --

    def start(self) -> Deferred[Message]:
        """Launch the kernel; fires with its ``kernel_info_reply`` once it
        answers and its IOPub is subscribed.

        Fails with :class:`NoSuchKernel` for an unknown kernelspec,
        :class:`FileNotFoundError` when its program cannot be found,
        :class:`KernelDied` when the process ends before it is ready and
        :class:`KernelTimeout` after ``ready_timeout`` seconds (the process
        is then killed).
        """
        if self.is_alive:
            return _failed(RuntimeError("the kernel is already running"))
        self._quick_restarts = 0
        self._closing = False
        try:
            self.kernel_spec = self._find_spec()
            if self.connection_info is None:
                self._new_connection()
            argv = self._argv()
        except Exception:
            return _failed(Failure())
        return self._launch(argv)

    def _find_spec(self) -> Any:
        if self._spec_manager is None:
            from jupyter_client.kernelspec import KernelSpecManager

            self._spec_manager = KernelSpecManager()
        from jupyter_client.kernelspec import NoSuchKernel as JupyterNoSuchKernel

        try:
            return self._spec_manager.get_kernel_spec(self.kernel_name)
        except JupyterNoSuchKernel:
            raise NoSuchKernel(
                f"no kernelspec named {self.kernel_name!r} (see `jupyter kernelspec list`)"
            ) from None

    def _new_connection(self) -> None:
        ports = dict(zip(CHANNELS, _free_ports(self._ip, len(CHANNELS)), strict=True))
        info = ConnectionInfo(ip=self._ip, kernel_name=self.kernel_name).with_ports(ports)
        path = os.path.join(runtime_dir(), f"kernel-{uuid.uuid4()}.json")
        self.connection_file = write_connection_file(info, path)
        self.connection_info = info

    def _argv(self) -> list[str]:
        spec = self.kernel_spec
        argv = list(spec.argv) + self._extra_arguments
        if not argv:
            raise ValueError(f"kernelspec {self.kernel_name!r} has an empty argv")
        major, minor = sys.version_info[:2]
        if argv[0] in ("python", f"python{major}", f"python{major}.{minor}"):
            argv[0] = sys.executable
        values = {
            "connection_file": os.path.realpath(self.connection_file or ""),
            "prefix": sys.prefix,
            "resource_dir": getattr(spec, "resource_dir", ""),
        }
        argv = [
            re.sub(r"\{([A-Za-z0-9_]+)\}", lambda m: values.get(m.group(1), m.group()), arg)
            for arg in argv
        ]
        program = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0])
        if program is None:
            raise FileNotFoundError(f"kernelspec {self.kernel_name!r}: {argv[0]} not found")
        argv[0] = program
        return argv

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for key, value in (getattr(self.kernel_spec, "env", None) or {}).items():
            env[key] = string.Template(str(value)).safe_substitute(os.environ)
        env.update(self._env)
        env["JPY_PARENT_PID"] = str(os.getpid())
        return env

    def _launch(self, argv: list[str]) -> Deferred[Message]:
        protocol = _KernelProcess(self._keep_output)
        child_fds: dict[int, Any] = (
            {0: "w", 1: "r", 2: "r"} if self._keep_output else {0: "w", 1: 1, 2: 2}
        )
        self._ending = False
        self._ready_at = None
        launched = _in_new_session(argv)
        self._process = self._reactor.spawnProcess(
            protocol,
            launched[0],
            launched,
            env=self._environment(),
            path=self._cwd,
            childFDs=child_fds,
        )
        self._pgid = protocol.pgid = self._process.pid if launched is not argv else None
        self._protocol = protocol
        protocol.ended.addCallback(self._ended, protocol)
        assert self.connection_info is not None
        control = KernelClient(self.connection_info, reactor=self._reactor, curve=self.curve)
        control.start(("shell", "control", "iopub"))
        self._control = control
        return self._wait_until_ready(protocol, control).addCallback(self._became_ready)

    def _became_ready(self, reply: Message) -> Message:
        self._ready_at = self._reactor.seconds()
        return reply

    def _wait_until_ready(
        self, protocol: _KernelProcess, control: KernelClient
    ) -> Deferred[Message]:
        done: Deferred[Message] = Deferred()
        ready = control.wait_for_ready(timeout=self.ready_timeout)

        def answered(reply: Message) -> None:
            if not done.called:
                done.callback(reply)

        def not_ready(failure: Failure) -> None:
            if done.called:
                return
            if self.is_alive:
                self._kill()
            done.errback(failure)

        def died(result: tuple[int | None, int | None]) -> tuple[int | None, int | None]:
            if not done.called:
                ended = KernelExit(result[0], result[1], expected=False)
                tail = protocol.output.decode("utf-8", "replace").strip()
                message = f"{ended} before it was ready" + (f":\n{tail}" if tail else "")
                done.errback(KernelDied(message))
                if not ready.called:
                    ready.cancel()
            return result

        ready.addCallbacks(answered, not_ready)
        protocol.ended.addCallback(died)
        return done

    def _ended(
        self, result: tuple[int | None, int | None], protocol: _KernelProcess
    ) -> tuple[int | None, int | None]:
        if protocol is self._protocol:
            self._report_end(KernelExit(result[0], result[1], expected=self._ending))
        return result

    def _report_end(self, ended: KernelExit) -> None:
        was_ready = self._ready_at is not None
        if not ended.expected:
            log.warn("Kernel {name}: {ended}", name=self.kernel_name, ended=ended)
            _tell(self._death_watchers, ended, "death")
        reason = KernelDied("the kernel was restarted" if self._ending else str(ended))
        for client in [*self._clients, self._control]:
            if client is not None:
                client.fail_pending(reason)
        # A kernel that dies before it is ready fails the start that launched
        # it; an automatic restart handles that failure itself.
        if not ended.expected and was_ready and self.autorestart and not self._closing:
            self._reactor.callLater(0, self._restart_after, ended)

    # -- the automatic restarter --

    def _restart_after(self, ended: KernelExit) -> None:
        """Start the kernel again after it ``ended`` by itself, or give up."""
        if self._closing or self.is_alive or self._restarting is not None:
            return
        ready_at = self._ready_at
        quick = ready_at is None or self._reactor.seconds() - ready_at < self.stable_start_time
        self._quick_restarts = self._quick_restarts + 1 if quick else 1
        if self._quick_restarts > self.restart_limit:
            log.error(
                "Kernel {name} died {count} times in a row within {stable:g} s "
                "of starting: not restarting it again",
                name=self.kernel_name,
                count=self._quick_restarts,
                stable=self.stable_start_time,
            )
            _tell(self._dead_watchers, ended, "dead-kernel")
            return
        log.info(
            "Restarting kernel {name} ({count} of at most {limit} quick restarts)",
            name=self.kernel_name,
            count=self._quick_restarts,
            limit=self.restart_limit,
        )
        restarting = self._restart(now=True)
        self._restarting = restarting

        def restarted(_: Message) -> None:
            self._restarting = None
            _tell(self._restart_watchers, ended, "restart")

        def failed(failure: Failure) -> None:
            self._restarting = None
            log.warn(
                "Restarting kernel {name} failed: {reason}",
                name=self.kernel_name,
                reason=failure.getErrorMessage(),
            )
            self._ready_at = None
            self.wait_for_exit().addCallback(self._restart_after)

        restarting.addCallbacks(restarted, failed)

    def wait_for_exit(self) -> Deferred[KernelExit]:
        """Fires with the :class:`KernelExit` of the current process once it ends
        (at once if none runs)."""
        protocol = self._protocol
        if protocol is None:
            return succeed(KernelExit(None, None, expected=True))
        return branch(protocol.ended).addCallback(
            lambda result: KernelExit(result[0], result[1], expected=self._ending)
        )

    # -- requests --

    def client(self) -> KernelClient:
        """A started :class:`KernelClient` on the kernel (all five channels).

        Its pending requests fail with :class:`KernelDied` when the kernel
        process ends, and cancelling one of its executions interrupts the
        kernel the way its kernelspec says.  It is stopped at
        :meth:`shutdown`; it stays connected across :meth:`restart` (which
        fires once its IOPub is subscribed to the new kernel).  Await its
        ``wait_for_ready()`` before the first request, as with any client:
        IOPub messages sent before its subscription is through are lost.
        """
        if self.connection_info is None:
            raise RuntimeError("the kernel has not been started")
        client = KernelClient(self.connection_info, reactor=self._reactor, curve=self.curve)
        client.interrupter = self.interrupt
        client.start()
        self._clients.append(client)
        return client

    def interrupt(self) -> Deferred[None]:
        """Interrupt the kernel: SIGINT, or an ``interrupt_request`` on
        control in message mode; fires once sent (message mode: once
        answered)."""
        if not self.is_alive:
            return _failed(KernelDied("the kernel is not running"))
        if self.interrupt_mode == "message" and self._control is not None:
            return self._control.interrupt().addCallback(lambda _: None)
        self._signal("INT")
        return succeed(None)

    def restart(self, now: bool = False) -> Deferred[Message]:
        """Stop the kernel (as :meth:`shutdown` does, telling it that it will
        restart) and start it again on the same connection file, so clients
        stay connected; fires with the new kernel's ``kernel_info_reply``.
        Requests pending at the restart fail with :class:`KernelDied`."""
        self._quick_restarts = 0
        self._closing = False
        return self._restart(now)

    def _restart(self, now: bool) -> Deferred[Message]:
        d: Deferred[Any] = self._stop(now, restart=True)
        d.addCallback(lambda _: self._launch(self._argv()))
        return d.addCallback(self._clients_ready)

    def _clients_ready(self, reply: Message) -> Deferred[Message]:
        """Fires with ``reply`` once every client's IOPub has resubscribed to
        the new kernel (or else its first execution could miss its idle)."""
        waits = [c.wait_for_ready(timeout=self.ready_timeout) for c in self._clients]
        return gatherResults(waits, consumeErrors=True).addCallback(lambda _: reply)

    def shutdown(self, now: bool = False) -> Deferred[KernelExit]:
        """End the kernel: a ``shutdown_request`` (unless ``now``), up to
        ``shutdown_grace`` seconds for the process to end, then SIGKILL.
        Fires with its :class:`KernelExit` once it has ended, its clients
        are stopped and the connection file is removed.  An automatic
        restart under way is let finish first (and none follows)."""
        self._closing = True
        if self._restarting is not None:
            d: Deferred[KernelExit] = branch(self._restarting)
            d.addBoth(lambda _: self._stop(now, restart=False))
        else:
            d = self._stop(now, restart=False)

        def cleaned(ended: KernelExit) -> KernelExit:
            for client in self._clients:
                client.stop()
            self._clients.clear()
            if self.connection_file and os.path.exists(self.connection_file):
                os.unlink(self.connection_file)
            self.connection_file = None
            self.connection_info = None
            return ended

        return d.addCallback(cleaned)

    def _stop(self, now: bool, restart: bool) -> Deferred[KernelExit]:
        protocol = self._protocol
        if protocol is None or protocol.ended.called:
            self._stop_control()
            return self.wait_for_exit()
        self._ending = True
        exited = self.wait_for_exit()
        if now or self._control is None:
            self._kill()
        else:
            asked = self._control.shutdown(restart=restart, timeout=self.shutdown_grace)
            asked.addErrback(lambda f: None)
            timer = self._reactor.callLater(self.shutdown_grace, self._kill)
            exited.addBoth(lambda r: (timer.cancel() if timer.active() else None, r)[1])

        def stopped(ended: KernelExit) -> KernelExit:
            self._stop_control()
            return ended

        return exited.addCallback(stopped)

    def _stop_control(self) -> None:
        if self._control is not None:
            self._control.stop()
            self._control = None

    def _kill(self) -> None:
        self._signal("KILL")

    def _signal(self, name: str) -> None:
        """Send SIG``name`` to the kernel's process group (to the kernel alone
        while it has not made its session yet)."""
        if not self.is_alive:
            return
        if self._pgid is not None and _signal_group(self._pgid, getattr(signal, "SIG" + name)):
            return
        try:
            self._process.signalProcess(name)
        except ProcessExitedAlready:
            pass


def _watch(
    watchers: list[Callable[[KernelExit], object]], watcher: Callable[[KernelExit], object]
) -> Callable[[], None]:
    watchers.append(watcher)
    return lambda: watchers.remove(watcher) if watcher in watchers else None


def _tell(watchers: list[Callable[[KernelExit], object]], ended: KernelExit, what: str) -> None:
    for watcher in list(watchers):
        try:
            watcher(ended)
        except Exception:
            log.failure("A kernel {what} watcher failed", what=what)


def _failed(reason: Any) -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    d.errback(reason if isinstance(reason, Failure) else Failure(reason))
    return d
