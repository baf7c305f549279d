"""txkernel against the other Python kernels, side by side, in one run.

    python bench/kernels.py [--quick] [--rounds N] [--kernels a,b,...] [--install]
                            [--baseline CHECKOUT] [--plain-venv DIR]
                            [--measures a,b,...]

Starts every target with jupyter_client's KernelManager through its
kernelspec:

- ``txkernel``: ``python -m txkernel -f FILE``, txkernel's kernelspec
  installed for the run into a temporary prefix;
- ``txkernel-twistd``: ``twistd -n txkernel -f FILE``; its host-application
  measures use ``twistd -n -y bench/host.tac`` (the same kernel service plus a
  twisted.web site in the process);
- ``ipykernel`` (always: the test extra brings it, through jupyter_console,
  and the benchmark pip-installs it when it is missing), and ``ipymini``,
  ``xeus-python`` and ``async-kernel`` when installed (``--install``
  pip-installs all four into the running environment first);
- ``floor``: a plain pyzmq ROUTER echo loop in a process of its own, for the
  round trips a kernel cannot beat;
- ``txkernel-base`` with ``--baseline CHECKOUT``: ``python -P -m txkernel``
  importing txkernel from that checkout (an older commit, for before/after
  figures from one run);
- ``txkernel-plain`` with ``--plain-venv DIR``: ``python -m txkernel`` from
  a virtualenv holding txkernel and its own dependencies alone, as
  ``pip install txkernel`` leaves it (created there, from this checkout,
  when missing).  The benchmark's own environment has the test extra, whose
  treq brings Twisted's TLS extras: the reactor's ``twisted.internet.tcp``
  imports pyOpenSSL and cryptography whenever they are installed, which
  shows in startup and memory.

The bytecode of both txkernel checkouts is written first (``compileall``),
as pip writes it for an installed package, so that no kernel's startup
includes compiling its own modules.

Every measure talks to the kernels with a lean client: raw pyzmq sockets,
messages signed with hmac, no jupyter_client Session on the hot path.  The
run is made of rounds; in each round every measure runs once per target, the
targets in a rotating order, so a noisy machine slows all of them alike.
Prints one markdown table of medians (and p99 where it says) with ratios,
from that one run:

- shell and control ``kernel_info`` round trips, idle (ratio to the floor);
- ``execute`` of ``pass`` until both the reply and ``status: idle`` arrived,
  with ``store_history`` false and true (as notebooks send); and what an
  ``execute`` of ``pass`` costs the kernel process in CPU time (all its
  threads) and context switches, from ``/proc`` over ten times as many
  executes (steadier than wall time on a noisy machine);
- 20,000 lines printed, with ``flush()`` after each and without, until idle,
  read by a fast client (reads IOPub throughout) and by a late one (reads
  IOPub only after the reply; its SUB at ZeroMQ's default high-water mark,
  as jupyter_client's): stream messages, lines lost, whether the
  ``busy``/``idle`` status messages arrived, and stream messages that came
  after ``idle``;
- control ``kernel_info`` while a cell runs ``time.sleep``;
- heartbeat round trips while a cell holds the GIL (``ctypes.PyDLL``
  ``usleep``): p50, p99, max;
- startup: from ``start_kernel()`` to the first ``kernel_info_reply``;
- memory (RSS of the kernel process and its children): idle after start, and
  after the whole run;
- the host application: HTTP round trips to a twisted.web resource in the
  kernel's own process, idle, while a cell spins in pure Python (with the
  cell's own loop rate), and while a cell sleeps.  For ``txkernel`` a cell
  puts the site on the kernel's reactor; for the other kernels a cell starts
  a Twisted reactor in a thread of the kernel's process.  The host measures
  use a second kernel process per target, so the memory figures are those
  of a kernel without a web site.

Ratios in the rows without a floor are to the ``txkernel`` column.  ``--quick``
(one short round, 2,000-line floods) checks that the benchmark works; its
figures mean little.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hmac
import http.client
import importlib.metadata
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq
from jupyter_client import KernelManager
from jupyter_client.connect import write_connection_file
from jupyter_client.kernelspec import KernelSpecManager
from responsiveness import install_txkernel_kernelspec

HERE = os.path.dirname(os.path.abspath(__file__))
DELIM = b"<IDS|MSG>"
#: Seconds of IOPub silence after status: idle that end a flood's reading.
AFTER_IDLE_QUIET = 0.3

# --------------------------------------------------------------------------
# The lean client


class Timeout(Exception):
    """A kernel did not answer in time."""


class LeanClient:
    """Shell, control, IOPub and heartbeat sockets on one kernel, speaking
    the wire protocol with pyzmq and hmac only (the benchmark's thread)."""

    def __init__(
        self, ctx: zmq.Context, info: Mapping[str, Any], iopub: bool = True
    ) -> None:
        key = info.get("key") or b""
        key = key.encode() if isinstance(key, str) else key
        scheme = info.get("signature_scheme") or "hmac-sha256"
        self._auth = hmac.new(key, digestmod=scheme.split("-", 1)[1]) if key else None
        self.session = uuid.uuid4().hex
        self._ids = itertools.count()
        transport, ip = info.get("transport", "tcp"), info["ip"]

        def url(port: Any) -> str:
            return f"tcp://{ip}:{port}" if transport == "tcp" else f"ipc://{ip}-{port}"

        self._url = url
        self._info = info
        self._ctx = ctx
        self.sockets: list[zmq.Socket] = []
        identity = self.session.encode()
        self.shell = self._socket(zmq.DEALER, info["shell_port"], identity)
        self.control = self._socket(zmq.DEALER, info["control_port"], identity)
        #: Without ``iopub`` (the floor, startup) the SUB subscribes to nothing.
        self.subscribed = iopub
        self.iopub = self._socket(zmq.SUB, info["iopub_port"])
        if iopub:
            self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.hb: zmq.Socket | None = None

    def _socket(
        self, kind: int, port: Any, identity: bytes | None = None
    ) -> zmq.Socket:
        sock = self._ctx.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.RECONNECT_IVL, 10)
        if identity is not None:
            sock.setsockopt(zmq.IDENTITY, identity)
        sock.connect(self._url(port))
        self.sockets.append(sock)
        return sock

    def heartbeat(self) -> zmq.Socket:
        """A (new) REQ socket on the heartbeat port."""
        if self.hb is not None:
            self.sockets.remove(self.hb)
            self.hb.close()
        self.hb = self._socket(zmq.REQ, self._info["hb_port"])
        return self.hb

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []

    def send(self, sock: zmq.Socket, msg_type: str, content: dict[str, Any]) -> bytes:
        """Send a request; returns its msg_id as bytes."""
        msg_id = f"{self.session}-{next(self._ids)}"
        header = json.dumps(
            {
                "msg_id": msg_id,
                "session": self.session,
                "username": "bench",
                "date": datetime.datetime.now(datetime.UTC).isoformat(),
                "msg_type": msg_type,
                "version": "5.4",
            }
        ).encode()
        frames = [header, b"{}", b"{}", json.dumps(content).encode()]
        if self._auth is None:
            signature = b""
        else:
            h = self._auth.copy()
            for frame in frames:
                h.update(frame)
            signature = h.hexdigest().encode()
        sock.send_multipart([DELIM, signature, *frames])
        return msg_id.encode()

    def execute(self, code: str, store_history: bool = True) -> bytes:
        return self.send(
            self.shell,
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": store_history,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )

    @staticmethod
    def parts(frames: list[bytes]) -> list[bytes]:
        """[header, parent_header, metadata, content, buffers...] of a message."""
        return frames[frames.index(DELIM) + 2 :]

    def recv_reply(
        self, sock: zmq.Socket, msg_id: bytes, timeout: float
    ) -> list[bytes]:
        """The parts of the message on ``sock`` whose parent is ``msg_id``."""
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0 or not sock.poll(int(left * 1000) + 1):
                raise Timeout(f"no reply to {msg_id.decode()} within {timeout} s")
            parts = self.parts(sock.recv_multipart())
            if msg_id in parts[1] or msg_id in parts[0]:  # parts[0]: the floor's echo
                return parts

    def drain(self, quiet: float = 0.05) -> None:
        """Read and drop IOPub (and stray replies) until ``quiet`` s pass without any."""
        poller = zmq.Poller()
        for s in (self.iopub, self.shell, self.control):
            poller.register(s, zmq.POLLIN)
        while True:
            ready = dict(poller.poll(int(quiet * 1000)))
            if not ready:
                return
            for s in ready:
                while s.poll(0):
                    s.recv_multipart()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Send kernel_info until a reply and an IOPub message both come back
        (IOPub is subscribed), as jupyter_client's wait_for_ready does."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            msg_id = self.send(self.shell, "kernel_info_request", {})
            try:
                self.recv_reply(self.shell, msg_id, 2.0)
            except Timeout:
                continue
            if not self.subscribed or self.iopub.poll(500):
                self.drain()
                return
        raise Timeout(f"kernel not ready within {timeout} s")


class Cell:
    """One execute_request read as it runs: reply and IOPub, fast."""

    def __init__(
        self, client: LeanClient, code: str, store_history: bool = True
    ) -> None:
        self.client = client
        self.start = time.perf_counter()
        self.msg_id = client.execute(code, store_history)
        self.reply: list[bytes] | None = None
        self.t_reply: float | None = None
        self.t_idle: float | None = None
        self.busy = False
        self.busy_at = 0.0  # perf_counter() when status: busy came
        self.streams = 0
        self.after_idle = 0  # stream messages that came after status: idle
        self.text: list[str] = []
        self.last = self.start  # when the last IOPub message came
        self._poller = zmq.Poller()
        self._poller.register(client.shell, zmq.POLLIN)
        self._poller.register(client.iopub, zmq.POLLIN)

    @property
    def done(self) -> bool:
        return self.reply is not None and self.t_idle is not None

    def _on_iopub(self, frames: list[bytes]) -> None:
        # The hot path of a flood: find the message type in the header bytes
        # rather than decoding it; only a stream's or a status's content is
        # decoded.
        self.last = time.perf_counter()
        i = frames.index(DELIM)
        if self.msg_id not in frames[i + 3]:
            return
        header = frames[i + 2]
        if b'"stream"' in header:
            self.streams += 1
            self.text.append(json.loads(frames[i + 5])["text"])
            if self.t_idle is not None:
                self.after_idle += 1
        elif b'"status"' in header:
            state = json.loads(frames[i + 5])["execution_state"]
            if state == "busy":
                self.busy = True
                self.busy_at = self.last
            elif state == "idle":
                self.t_idle = self.last - self.start

    def _on_shell(self, frames: list[bytes]) -> None:
        if self.msg_id in LeanClient.parts(frames)[1]:
            self.reply = LeanClient.parts(frames)
            self.t_reply = time.perf_counter() - self.start

    def pump(self, timeout: float, until: Callable[[], bool] | None = None) -> bool:
        """Read shell and IOPub until ``until()`` (default: reply and idle
        both arrived) or ``timeout`` s pass; returns whether it was reached."""
        until = until or (lambda: self.done)
        deadline = time.perf_counter() + timeout
        shell, iopub = self.client.shell, self.client.iopub
        while not until():
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            for sock, _ in self._poller.poll(int(left * 1000) + 1):
                if sock is iopub:
                    while iopub.poll(0):
                        self._on_iopub(iopub.recv_multipart())
                else:
                    while shell.poll(0):
                        self._on_shell(shell.recv_multipart())
        return True

    def read_now(self) -> None:
        """Take in whatever has arrived on IOPub and shell, without waiting."""
        iopub, shell = self.client.iopub, self.client.shell
        while iopub.poll(0):
            self._on_iopub(iopub.recv_multipart())
        while shell.poll(0):
            self._on_shell(shell.recv_multipart())

    def running(self, end: float) -> bool:
        """Whether the cell has not replied yet and perf_counter() < ``end``."""
        self.read_now()
        return self.reply is None and time.perf_counter() < end

    def finish(self, timeout: float = 120.0) -> Cell:
        """Wait for the reply and idle; fails unless the reply says ok."""
        if not self.pump(timeout):
            raise Timeout("cell did not finish (reply and idle) in time")
        content = json.loads(self.reply[3])
        if content.get("status") != "ok":
            raise RuntimeError(
                f"cell failed: {content.get('ename')}: {content.get('evalue')}"
            )
        return self

    def wait_reply_only(self, timeout: float) -> None:
        """Wait for the reply reading shell only (IOPub left unread)."""
        self.reply = self.client.recv_reply(self.client.shell, self.msg_id, timeout)
        self.t_reply = time.perf_counter() - self.start


# --------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    """A kernel to measure and how to start it."""

    name: str
    kernel_name: str  # kernelspec; "" for the floor
    host_kernel_name: str = ""  # kernelspec for the host measures
    host_setup: str | None = None  # cell that starts the web site, prints its port
    version: str = ""
    # Set once started (the floor has only a client):
    km: KernelManager = field(init=False)
    client: LeanClient = field(init=False)
    host_km: KernelManager = field(init=False)
    host_client: LeanClient = field(init=False)
    http_port: int = field(init=False)
    results: dict[str, list[Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    dead: bool = False
    argv: str = ""  # how the kernelspec starts it, for the report
    notes: set[str] = field(default_factory=set)

    def add(self, measure: str, values: Any) -> None:
        bucket = self.results.setdefault(measure, [])
        if isinstance(values, list):
            if not values:
                raise RuntimeError("no sample taken while the cell ran")
            bucket.extend(values)
        else:
            bucket.append(values)


HOST_SETUP_KERNEL_REACTOR = """\
from twisted.internet import reactor as _bench_reactor
from twisted.web import resource as _bench_resource, server as _bench_server

class _BenchHello(_bench_resource.Resource):
    isLeaf = True
    def render_GET(self, request):
        return b"ok\\n"

_bench_port = run_in_reactor(
    lambda: _bench_reactor.listenTCP(
        0, _bench_server.Site(_BenchHello()), interface="127.0.0.1"
    )
)
print(_bench_port.getHost().port)
"""

HOST_SETUP_REACTOR_THREAD = """\
import threading as _bench_threading
from twisted.internet import reactor as _bench_reactor
from twisted.web import resource as _bench_resource, server as _bench_server

class _BenchHello(_bench_resource.Resource):
    isLeaf = True
    def render_GET(self, request):
        return b"ok\\n"

_bench_port = _bench_reactor.listenTCP(
    0, _bench_server.Site(_BenchHello()), interface="127.0.0.1"
)
_bench_threading.Thread(
    target=_bench_reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
).start()
print(_bench_port.getHost().port)
"""

#: Other kernels: display name, distribution, module their kernelspec runs.
OTHERS = [
    ("ipykernel", "ipykernel", "ipykernel_launcher"),
    ("ipymini", "ipymini", "ipymini"),
    ("xeus-python", "xeus-python", "xpython_launcher"),
    ("async-kernel", "async-kernel", "async_kernel"),
]
ALL_NAMES = ["txkernel", "txkernel-twistd", *(name for name, _, _ in OTHERS)]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _baseline_version(checkout: str) -> str:
    """``git describe`` of ``checkout``, or its path when it is no git tree."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "-C", checkout, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return os.path.basename(os.path.abspath(checkout))


def _install_spec(
    prefix: str,
    name: str,
    argv: list[str],
    display: str,
    env: dict[str, str] | None = None,
) -> str:
    from txkernel.kernelspec import write_kernelspec

    with tempfile.TemporaryDirectory() as tmp:
        staged = os.path.join(tmp, "spec")
        os.mkdir(staged)
        write_kernelspec(
            staged,
            {
                "argv": argv,
                "display_name": display,
                "language": "python",
                "interrupt_mode": "signal",
                "metadata": {"debugger": False},
                **({"env": env} if env else {}),
            },
        )
        KernelSpecManager().install_kernel_spec(staged, name, prefix=prefix)
    return name


#: argv[0] of a kernelspec that runs this Python (jupyter_client puts
#: sys.executable in place of the bare names).
_THIS_PYTHON = {
    "python",
    "python3",
    f"python3.{sys.version_info.minor}",
    sys.executable,
}


def _find_spec(module: str) -> str | None:
    """The kernelspec whose argv runs ``module`` with this Python (without
    flags that change the kernel, such as xeus-python's --raw)."""
    specs = KernelSpecManager().get_all_specs()
    for name, entry in sorted(specs.items()):
        argv = entry["spec"]["argv"]
        if argv[0] in _THIS_PYTHON and module in argv and "--raw" not in argv:
            return name
    return None


def compile_bytecode(package_dir: str) -> None:
    """Write the bytecode of the txkernel package in ``package_dir``, as pip
    does when it installs a package: the other kernels come compiled from
    site-packages, while a checkout (an editable install, ``--baseline``)
    under ``PYTHONDONTWRITEBYTECODE`` would compile every module again at
    each start, and the startup measure would time the compiler."""
    import compileall

    compileall.compile_dir(package_dir, quiet=1)


def plain_venv(directory: str) -> str:
    """The Python of a virtualenv in ``directory`` holding this checkout's
    txkernel installed with its dependencies alone (made when missing)."""
    python = os.path.join(directory, "bin", "python")
    if not os.path.exists(python):
        sys.stderr.write(f"making {directory}: pip install {os.path.dirname(HERE)}\n")
        subprocess.check_call([sys.executable, "-m", "venv", directory])
        subprocess.check_call(
            [python, "-m", "pip", "install", "-q", "--upgrade", "pip"]
        )
    # Again each run (quick when nothing changed): the checkout's code now.
    subprocess.check_call(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--force-reinstall",
            "--no-deps",
            os.path.dirname(HERE),
        ]
    )
    subprocess.check_call([python, "-m", "pip", "install", "-q", os.path.dirname(HERE)])
    return python


def make_targets(
    requested: list[str],
    prefix: str,
    baseline: str | None = None,
    plain: str | None = None,
) -> tuple[list[Target], list[str]]:
    """The targets to run (txkernel's kernelspecs installed under ``prefix``),
    and notes on the ones that are missing.  With ``baseline`` (a checkout of
    txkernel), also ``txkernel-base``: ``python -m txkernel`` importing that
    checkout first; with ``plain`` (a virtualenv's directory),
    ``txkernel-plain``: txkernel as installed there alone."""
    import txkernel

    notes = []
    targets = []
    twistd = shutil.which("twistd", path=os.path.dirname(sys.executable)) or "twistd"
    if "txkernel" in requested or "txkernel-twistd" in requested:
        name = install_txkernel_kernelspec(prefix)
    if "txkernel" in requested:
        targets.append(
            Target(
                "txkernel", name, name, HOST_SETUP_KERNEL_REACTOR, txkernel.__version__
            )
        )
    if "txkernel-twistd" in requested:
        under_twistd = _install_spec(
            prefix,
            "txkernel-bench-twistd",
            [twistd, "-n", "--pidfile=", "txkernel", "-f", "{connection_file}"],
            "txkernel under twistd",
        )
        host = _install_spec(
            prefix,
            "txkernel-bench-host",
            [twistd, "-n", "--pidfile=", "-y", os.path.join(HERE, "host.tac")],
            "txkernel under twistd, with a web site (bench/host.tac)",
        )
        targets.append(
            Target("txkernel-twistd", under_twistd, host, None, txkernel.__version__)
        )
    if baseline is not None:
        base = _install_spec(
            prefix,
            "txkernel-bench-base",
            # -P: the working directory (maybe another checkout) does not
            # come before PYTHONPATH on sys.path.
            [sys.executable, "-P", "-m", "txkernel", "-f", "{connection_file}"],
            "txkernel (baseline checkout)",
            env={"PYTHONPATH": baseline},
        )
        targets.append(
            Target(
                "txkernel-base",
                base,
                base,
                HOST_SETUP_KERNEL_REACTOR,
                _baseline_version(baseline),
            )
        )
    if plain is not None:
        python = plain_venv(plain)
        spec = _install_spec(
            prefix,
            "txkernel-bench-plain",
            [python, "-m", "txkernel", "-f", "{connection_file}"],
            "txkernel (installed alone)",
        )
        targets.append(
            Target(
                "txkernel-plain",
                spec,
                spec,
                HOST_SETUP_KERNEL_REACTOR,
                txkernel.__version__ + " alone",
            )
        )
    compile_bytecode(os.path.dirname(txkernel.__file__))
    if baseline is not None:
        compile_bytecode(os.path.join(baseline, "txkernel"))
    for display, dist, module in OTHERS:
        if display not in requested:
            continue
        version = _version(dist)
        spec = _find_spec(module) if version else None
        if spec is None:
            notes.append(f"{display}: not installed (pip install {dist})")
            continue
        targets.append(Target(display, spec, spec, HOST_SETUP_REACTOR_THREAD, version))
    return targets, notes


# --------------------------------------------------------------------------
# Starting and stopping


def _start(
    name: str,
    logdir: str,
    label: str,
    env: dict[str, str] | None = None,
    connection_file: str | None = None,
    started: list[float] | None = None,
) -> KernelManager:
    """Launch kernelspec ``name`` (its output into ``logdir/label.log``);
    appends the perf_counter() just before the launch to ``started``."""
    kwargs = {"kernel_name": name}
    if connection_file:
        kwargs["connection_file"] = connection_file
    km = KernelManager(**kwargs)
    env = {**os.environ, **(env or {})}
    with open(os.path.join(logdir, f"{label}.log"), "ab") as log:
        if started is not None:
            started.append(time.perf_counter())
        km.start_kernel(stdout=log, stderr=subprocess.STDOUT, env=env)
    return km


def _stop(km: KernelManager | None) -> None:
    if km is None:
        return
    with contextlib.suppress(Exception):
        km.shutdown_kernel(now=True)
    with contextlib.suppress(Exception):
        km.cleanup_resources()


def _pid(km: KernelManager) -> int:
    return km.provisioner.process.pid


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MiB."""
    try:
        import psutil
    except ImportError:  # Linux without psutil: the process alone
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["VmRSS"].split()[0]) / 1024
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


def start_floor(ctx: zmq.Context, tmp: str) -> tuple[Target, subprocess.Popen]:
    path, info = write_connection_file(os.path.join(tmp, "floor.json"), ip="127.0.0.1")
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-floor", path],
        stdout=subprocess.PIPE,
    )
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("the echo floor did not start")
    target = Target("floor", "", version=f"pyzmq {zmq.__version__}")
    target.client = LeanClient(ctx, dict(info), iopub=False)
    return target, proc


def serve_floor(path: str) -> int:
    """The floor: a ROUTER per channel (shell, control) that sends back every
    message as it came, in one single-threaded pyzmq loop."""
    with open(path) as f:
        info = json.load(f)
    ctx = zmq.Context()
    poller = zmq.Poller()
    for channel in ("shell", "control"):
        sock = ctx.socket(zmq.ROUTER)
        sock.linger = 0
        sock.bind(f"tcp://{info['ip']}:{info[channel + '_port']}")
        poller.register(sock, zmq.POLLIN)
    parent = os.getppid()
    print("ready", flush=True)
    while os.getppid() == parent:
        for sock, _ in poller.poll(1000):
            sock.send_multipart(sock.recv_multipart())
    return 0


def launch_target(target: Target, logdir: str) -> None:
    """Start the target's kernel and its host kernel (they start in parallel
    with the other targets'; connect_target waits for them)."""
    target.km = _start(target.kernel_name, logdir, target.name)
    if target.host_setup is None:  # the host .tac, told where to listen by env
        connection_file = os.path.join(logdir, f"{target.name}-host.json")
        target.host_km = _start(
            target.host_kernel_name,
            logdir,
            target.name + "-host",
            env={
                "TXKERNEL_BENCH_CONNECTION_FILE": connection_file,
                "TXKERNEL_BENCH_HTTP_PORT_FILE": connection_file + ".http-port",
            },
            connection_file=connection_file,
        )
    else:
        target.host_km = _start(target.host_kernel_name, logdir, target.name + "-host")


def connect_target(ctx: zmq.Context, target: Target) -> None:
    """Connect lean clients to both kernels once they answer, record idle
    memory, start the host's web site."""
    target.client = LeanClient(ctx, target.km.get_connection_info())
    target.client.wait_ready()
    time.sleep(0.3)
    target.add("memory_idle", rss_mib(_pid(target.km)))
    target.host_client = LeanClient(ctx, target.host_km.get_connection_info())
    target.host_client.wait_ready()
    if target.host_setup is None:
        with open(target.host_km.connection_file + ".http-port") as f:
            target.http_port = int(f.read())
        return
    cell = Cell(target.host_client, target.host_setup).finish(60)
    target.http_port = int("".join(cell.text).split()[-1])


# --------------------------------------------------------------------------
# Measures: each takes a target and the run's sizes, records into target.


@dataclass
class Sizes:
    round_trips: int
    executes: int
    lines: int
    cell_seconds: float
    http_idle: int
    startups: int  # launches per target per round
    quiet: float  # seconds of IOPub silence after which a late reader gives up


def m_shell_kernel_info(t: Target, s: Sizes) -> None:
    _kernel_info(t, t.client.shell, "shell_kernel_info", s.round_trips)


def m_control_kernel_info(t: Target, s: Sizes) -> None:
    _kernel_info(t, t.client.control, "control_kernel_info", s.round_trips)


def _kernel_info(t: Target, sock: zmq.Socket, measure: str, count: int) -> None:
    c = t.client
    times = []
    # Each request waits for the previous one's status: idle, so requests do
    # not overlap; a kernel that publishes no status for them (ipymini on
    # control) is not waited for again after the first second.
    wait = c.subscribed
    for _ in range(count):
        t0 = time.perf_counter()
        msg_id = c.send(sock, "kernel_info_request", {})
        c.recv_reply(sock, msg_id, 10)
        times.append(time.perf_counter() - t0)
        if wait and not _wait_idle(c, msg_id, 1.0):
            wait = False
            t.notes.add(f"no status: idle for {measure} requests")
    t.add(measure, times)
    if c.subscribed:
        c.drain()


def _wait_idle(c: LeanClient, msg_id: bytes, timeout: float) -> bool:
    """Whether IOPub brought status: idle for ``msg_id`` within ``timeout`` s."""
    deadline = time.perf_counter() + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0 or not c.iopub.poll(int(left * 1000) + 1):
            return False
        header, parent, _, content = LeanClient.parts(c.iopub.recv_multipart())[:4]
        if msg_id in parent and b'"idle"' in content and b"status" in header:
            return True


def m_execute_pass(t: Target, s: Sizes) -> None:
    t.add(
        "execute_pass",
        [
            Cell(t.client, "pass", store_history=False).finish(10).t_idle
            for _ in range(s.executes)
        ],
    )


def m_execute_pass_history(t: Target, s: Sizes) -> None:
    t.add(
        "execute_pass_history",
        [Cell(t.client, "pass").finish(10).t_idle for _ in range(s.executes)],
    )


def process_cost(pid: int) -> tuple[float, int]:
    """CPU seconds (user and system, all threads) and context switches
    (voluntary and not, summed over its live threads) of ``pid`` so far,
    from Linux's ``/proc``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        switches += int(line.split()[1])
    return cpu, switches


def m_execute_cost(t: Target, s: Sizes) -> None:
    """What one ``execute`` of ``pass`` costs the kernel process: CPU time and
    context switches, over many executes (far steadier than wall time on a
    shared machine)."""
    count = s.executes * 10
    pid = _pid(t.km)
    cpu, switches = process_cost(pid)
    for _ in range(count):
        Cell(t.client, "pass", store_history=False).finish(10)
    cpu_after, switches_after = process_cost(pid)
    t.add("execute_cost", [((cpu_after - cpu) / count, (switches_after - switches) / count)])


def _flood_code(lines: int, flush: bool) -> str:
    if flush:
        return f"for i in range({lines}):\n    print(i, flush=True)"
    return f"for i in range({lines}):\n    print(i)"


def _lost(text: list[str], lines: int) -> int:
    seen = set("".join(text).split("\n"))
    return sum(1 for i in range(lines) if str(i) not in seen)


def _flood(t: Target, s: Sizes, flush: bool, late: bool) -> None:
    c = t.client
    c.drain()
    cell = Cell(c, _flood_code(s.lines, flush))
    limit = 120 + s.lines / 100
    if late:
        cell.wait_reply_only(limit)
    elif not cell.pump(limit, until=lambda: cell.reply is not None):
        raise Timeout("no execute_reply")
    # Read IOPub until idle; a status lost at the high-water mark shows as
    # s.quiet seconds without any IOPub message.
    while cell.t_idle is None:
        cell.pump(s.quiet, until=lambda: cell.t_idle is not None)
        if time.perf_counter() - cell.last >= s.quiet:
            break
    # Output may still come after idle (out of order, not lost): read on
    # until IOPub is quiet for a moment.
    while time.perf_counter() - cell.last < AFTER_IDLE_QUIET:
        cell.pump(AFTER_IDLE_QUIET, until=lambda: False)
    key = f"flood_{'flush' if flush else 'plain'}_{'late' if late else 'fast'}"
    t.add(
        key,
        {
            "seconds": cell.t_idle,
            "messages": cell.streams,
            "lost": _lost(cell.text, s.lines),
            "status_lost": not (cell.busy and cell.t_idle is not None),
            "after_idle": cell.after_idle,
        },
    )
    c.drain(0.2)


def m_flood_flush_fast(t: Target, s: Sizes) -> None:
    _flood(t, s, flush=True, late=False)


def m_flood_flush_late(t: Target, s: Sizes) -> None:
    _flood(t, s, flush=True, late=True)


def m_flood_plain_fast(t: Target, s: Sizes) -> None:
    _flood(t, s, flush=False, late=False)


def m_flood_plain_late(t: Target, s: Sizes) -> None:
    _flood(t, s, flush=False, late=True)


def _started(cell: Cell, seconds: float) -> float:
    """Wait until the cell that runs for ``seconds`` has started: its status:
    busy came, or 0.25 s passed (a kernel whose IOPub needs the GIL that the
    cell holds publishes busy late); returns when to stop measuring
    (perf_counter)."""
    cell.pump(0.25, until=lambda: cell.busy)
    time.sleep(0.05)
    return (cell.busy_at if cell.busy else cell.start) + seconds - 0.05


def m_control_while_sleeping(t: Target, s: Sizes) -> None:
    c = t.client
    cell = Cell(c, f"import time\ntime.sleep({s.cell_seconds})")
    end = _started(cell, s.cell_seconds)
    times = []
    while cell.running(end):
        t0 = time.perf_counter()
        msg_id = c.send(c.control, "kernel_info_request", {})
        c.recv_reply(c.control, msg_id, 10)
        times.append(time.perf_counter() - t0)
    cell.finish(30)
    t.add("control_while_sleeping", times)


def m_heartbeat_gil(t: Target, s: Sizes) -> None:
    c = t.client
    # PyDLL keeps the GIL through each usleep call; between the calls the
    # loop lets the kernel's other threads run for a moment.
    chunk = min(0.25, s.cell_seconds / 2)
    chunks = max(1, round(s.cell_seconds / chunk))
    cell = Cell(
        c,
        "import ctypes\n_usleep = ctypes.PyDLL(None).usleep\n"
        f"for _ in range({chunks}):\n    _usleep({int(chunk * 1e6)})",
    )
    end = _started(cell, chunks * chunk)
    hb = c.heartbeat()
    times = []
    while cell.running(end):
        t0 = time.perf_counter()
        hb.send(b"ping")
        if hb.poll(2000):
            hb.recv()
            times.append(time.perf_counter() - t0)
        else:
            times.append(time.perf_counter() - t0)
            hb = c.heartbeat()
        time.sleep(0.005)
    cell.finish(30)
    t.add("heartbeat_gil", times)


def m_startup(t: Target, s: Sizes, ctx: zmq.Context, logdir: str) -> None:
    started: list[float] = []
    km = _start(t.kernel_name, logdir, t.name + "-startup", started=started)
    t0 = started[0]
    try:
        c = LeanClient(ctx, km.get_connection_info(), iopub=False)
        try:
            # One request, queued by the DEALER until the kernel binds; sent
            # again every 2 s in case a kernel drops what came too early, and
            # the first reply to any of them counts.
            sent = [c.send(c.shell, "kernel_info_request", {})]
            resend = t0 + 2.0
            while True:
                now = time.perf_counter()
                if now - t0 > 60:
                    raise Timeout("no kernel_info_reply within 60 s of the launch")
                if now > resend:
                    sent.append(c.send(c.shell, "kernel_info_request", {}))
                    resend = now + 2.0
                if c.shell.poll(50):
                    parent = LeanClient.parts(c.shell.recv_multipart())[1]
                    if any(msg_id in parent for msg_id in sent):
                        break
            t.add("startup", time.perf_counter() - t0)
        finally:
            c.close()
    finally:
        _stop(km)


def _http_times(
    port: int, until: Callable[[], bool], count: int | None = None
) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times: list[float] = []
    try:
        while not until() and (count is None or len(times) < count):
            t0 = time.perf_counter()
            conn.request("GET", "/")
            response = conn.getresponse()
            if response.read() != b"ok\n":
                raise RuntimeError(f"unexpected HTTP response {response.status}")
            times.append(time.perf_counter() - t0)
    finally:
        conn.close()
    return times


def m_http_idle(t: Target, s: Sizes) -> None:
    t.add("http_idle", _http_times(t.http_port, lambda: False, s.http_idle))


def m_http_spin(t: Target, s: Sizes) -> None:
    c = t.host_client
    code = (
        "import time as _t\n_n = 0\n"
        f"_end = _t.perf_counter() + {s.cell_seconds}\n"
        "while _t.perf_counter() < _end:\n    _n += 1\n"
        f"print(_n / {s.cell_seconds})"
    )
    cell = Cell(c, code)
    end = _started(cell, s.cell_seconds)
    times = _http_times(t.http_port, lambda: not cell.running(end))
    cell.finish(30)
    t.add("http_spin", times)
    t.add("spin_rate", float("".join(cell.text).split()[-1]))


def m_http_sleep(t: Target, s: Sizes) -> None:
    c = t.host_client
    cell = Cell(c, f"import time\ntime.sleep({s.cell_seconds})")
    end = _started(cell, s.cell_seconds)
    times = _http_times(t.http_port, lambda: not cell.running(end))
    cell.finish(30)
    t.add("http_sleep", times)


KERNEL_MEASURES = [
    m_shell_kernel_info,
    m_control_kernel_info,
    m_execute_pass,
    m_execute_pass_history,
    m_execute_cost,
    m_flood_flush_fast,
    m_flood_flush_late,
    m_flood_plain_fast,
    m_flood_plain_late,
    m_control_while_sleeping,
    m_heartbeat_gil,
    m_http_idle,
    m_http_spin,
    m_http_sleep,
]
FLOOR_MEASURES = [m_shell_kernel_info, m_control_kernel_info]


# --------------------------------------------------------------------------
# The table


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def _ratio(value: float, base: float | None) -> str:
    if not base:
        return ""
    r = value / base
    return f" ({r:.2g}×)" if r < 10 else f" ({r:.0f}×)"


def _flood_seconds(t: Target, key: str) -> float | None:
    secs = [r["seconds"] for r in t.results.get(key, []) if r["seconds"] is not None]
    return statistics.median(secs) if secs else None


def _median(t: Target | None, key: str) -> float | None:
    values = t.results.get(key) if t else None
    return statistics.median(values) if values else None


def table(targets: list[Target], floor: Target, lines: int) -> str:
    """The markdown table: a row per measure, a column per target."""
    ref = next((t for t in targets if t.name == "txkernel"), None)
    columns = [*targets, floor]
    rows = [
        "| measure | " + " | ".join(f"{t.name} {t.version}" for t in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]

    def row(label: str, key: str, render: Callable[[Target, list[Any]], str]) -> None:
        if not any(t.results.get(key) or t.errors.get(key) for t in columns):
            return  # not measured in this run (--measures)
        cells = []
        for t in columns:
            error = t.errors.get(key) or t.errors.get("start")
            if error:
                cells.append(
                    "error: " + error.replace("|", "/").replace("\n", " ")[:80]
                )
            elif t.results.get(key):
                cells.append(render(t, t.results[key]))
            else:
                cells.append("—")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    def timed(
        base: Callable[[Target], float | None],
    ) -> Callable[[Target, list[Any]], str]:
        def render(t: Target, values: list[float]) -> str:
            med = statistics.median(values)
            return f"{_fmt(med)} · p99 {_fmt(_q(values, 0.99))}{_ratio(med, base(t))}"

        return render

    def to_floor(key: str) -> Callable[[Target], float | None]:
        return lambda t: _median(floor, key) if t is not floor else None

    def to_ref(key: str) -> Callable[[Target], float | None]:
        return lambda t: _median(ref, key) if t is not ref else None

    def spread(key: str, rate: bool = False) -> Callable[[Target, list[Any]], str]:
        def render(t: Target, v: list[float]) -> str:
            text = (
                f"p50 {_fmt(_q(v, 0.5))} · p99 {_fmt(_q(v, 0.99))} · max {_fmt(max(v))}"
            )
            if ref is not None and t is not ref and ref.results.get(key):
                text += _ratio(_q(v, 0.5), _q(ref.results[key], 0.5))
            if rate and t.results.get("spin_rate"):
                text += f"; cell {statistics.median(t.results['spin_rate']) / 1e6:.2f} M loops/s"
            return text

        return render

    def flood(key: str) -> Callable[[Target, list[Any]], str]:
        def render(t: Target, runs: list[dict[str, Any]]) -> str:
            secs = _flood_seconds(t, key)
            if secs is None:
                timing = "idle never came"
            else:
                base = _flood_seconds(ref, key) if ref and t is not ref else None
                timing = _fmt(secs) + _ratio(secs, base)
            msgs = int(statistics.median(r["messages"] for r in runs))
            lost = max(r["lost"] for r in runs)
            status = sum(r["status_lost"] for r in runs)
            status_text = f"in {status}/{len(runs)} runs" if status else "never"
            late = max(r["after_idle"] for r in runs)
            late_text = f"; {late:,} msgs after idle" if late else ""
            return (
                f"{timing}; {msgs:,} msgs; {lost:,} lines lost; "
                f"status lost {status_text}{late_text}"
            )

        return render

    for key, label in (
        ("shell_kernel_info", "shell kernel_info round trip"),
        ("control_kernel_info", "control kernel_info, idle"),
    ):
        row(label, key, timed(to_floor(key)))
    row("execute `pass`, reply and idle", "execute_pass", timed(to_ref("execute_pass")))
    row(
        "execute `pass`, reply and idle, store_history (as notebooks send)",
        "execute_pass_history",
        timed(to_ref("execute_pass_history")),
    )

    def cost(t: Target, runs: list[tuple[float, float]]) -> str:
        cpu = statistics.median(r[0] for r in runs)
        switches = statistics.median(r[1] for r in runs)
        base = None
        if ref is not None and t is not ref and ref.results.get("execute_cost"):
            base = statistics.median(r[0] for r in ref.results["execute_cost"])
        return f"{_fmt(cpu)} CPU{_ratio(cpu, base)} · {switches:.1f} context switches"

    row(
        "execute `pass`: the kernel process's CPU time and context switches per execute",
        "execute_cost",
        cost,
    )
    for flush in (True, False):
        for late in (False, True):
            key = f"flood_{'flush' if flush else 'plain'}_{'late' if late else 'fast'}"
            label = (
                f"{lines:,} lines, {'flush() after each' if flush else 'no flush'}, "
                f"{'late' if late else 'fast'} reader: until idle; stream messages; "
                "lines lost; status lost"
            )
            row(label, key, flood(key))
    row(
        "control kernel_info while a cell sleeps",
        "control_while_sleeping",
        timed(to_ref("control_while_sleeping")),
    )
    row(
        "heartbeat while a cell holds the GIL", "heartbeat_gil", spread("heartbeat_gil")
    )
    row("startup to first kernel_info reply", "startup", timed(to_ref("startup")))

    def memory(t: Target, idle: list[float]) -> str:
        after = t.results.get("memory_after")
        return (
            f"{idle[0]:.1f} / {after[0]:.1f} MiB" if after else f"{idle[0]:.1f} / — MiB"
        )

    row("memory: idle / after the whole run (RSS)", "memory_idle", memory)
    row("host: HTTP round trip, idle", "http_idle", spread("http_idle"))
    row(
        "host: HTTP while a cell spins (CPU); the cell's speed",
        "http_spin",
        spread("http_spin", rate=True),
    )
    row("host: HTTP while a cell sleeps", "http_sleep", spread("http_sleep"))
    return "\n".join(rows)


# --------------------------------------------------------------------------
# The run


def _rotations(items: list[Target], round_no: int) -> list[Target]:
    k = round_no % len(items) if items else 0
    return items[k:] + items[:k]


def _guard(target: Target, key: str, call: Callable[[], None]) -> None:
    if target.dead:
        return
    try:
        call()
    except Exception as e:  # a failing kernel is a result, not a crash
        target.errors.setdefault(key, f"{type(e).__name__}: {e}")
        sys.stderr.write(f"{target.name}: {key}: {traceback.format_exc()}\n")
        for km in (getattr(target, "km", None), getattr(target, "host_km", None)):
            if km is not None and not km.is_alive():
                target.dead = True
                target.notes.add(
                    f"the kernel died during {key}; later measures skipped"
                )
        if hasattr(target, "client"):
            with contextlib.suppress(Exception):
                target.client.drain(0.5)
        if hasattr(target, "host_client"):
            with contextlib.suppress(Exception):
                target.host_client.drain(0.5)


def versions() -> str:
    names = [
        "txkernel",
        "ipykernel",
        "ipymini",
        "xeus-python",
        "async-kernel",
        "jupyter_client",
        "pyzmq",
        "Twisted",
        "txZMQ",
    ]
    found = [f"{n} {_version(n)}" for n in names if _version(n)]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "-C", HERE, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        found[0] += f" (commit {commit})"
    return (
        f"Python {platform.python_version()}, libzmq {zmq.zmq_version()}, "
        + ", ".join(found)
    )


def run(args: argparse.Namespace) -> int:
    quick = args.quick
    sizes = Sizes(
        round_trips=20 if quick else 100,
        executes=10 if quick else 40,
        lines=2000 if quick else 20000,
        cell_seconds=0.4 if quick else 2.0,
        http_idle=20 if quick else 200,
        startups=1 if quick else 2,
        quiet=1.0 if quick else 3.0,
    )
    rounds = args.rounds or (1 if quick else 3)
    requested = args.kernels.split(",") if args.kernels else ALL_NAMES
    unknown = [n for n in requested if n not in ALL_NAMES]
    if unknown:
        sys.stderr.write(f"unknown kernels {unknown}; choose from {ALL_NAMES}\n")
        return 2
    names = {m.__name__[2:]: m for m in KERNEL_MEASURES}
    chosen = args.measures.split(",") if args.measures else [*names, "startup"]
    unknown = [n for n in chosen if n not in names and n != "startup"]
    if unknown:
        sys.stderr.write(f"unknown measures {unknown}; choose from {[*names]}\n")
        return 2
    measures = [m for n, m in names.items() if n in chosen]
    with_startup = "startup" in chosen
    ctx = zmq.Context()
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="txkernel-bench-") as tmp:
        targets, notes = make_targets(requested, tmp, args.baseline, args.plain_venv)
        floor, floor_process = start_floor(ctx, tmp)
        try:
            specs = KernelSpecManager()
            for t in targets:
                t.argv = " ".join(
                    os.path.basename(a) if i == 0 else a
                    for i, a in enumerate(specs.get_kernel_spec(t.kernel_name).argv)
                )
                _guard(t, "start", lambda t=t: launch_target(t, tmp))
            for t in targets:
                _guard(t, "start", lambda t=t: connect_target(ctx, t))
                if "start" in t.errors:
                    t.dead = True
            live = [t for t in targets if not t.dead]
            for round_no in range(rounds):
                for measure in measures:
                    key = measure.__name__[2:]
                    with_floor = measure in FLOOR_MEASURES
                    order = _rotations(live + [floor] * with_floor, round_no)
                    for t in order:
                        _guard(t, key, lambda t=t, m=measure: m(t, sizes))
                for _ in range(sizes.startups if with_startup else 0):
                    for t in _rotations(live, round_no):
                        _guard(t, "startup", lambda t=t: m_startup(t, sizes, ctx, tmp))
                sys.stderr.write(
                    f"round {round_no + 1}/{rounds} done at "
                    f"{time.perf_counter() - started:.0f} s\n"
                )
            for t in live:
                _guard(
                    t,
                    "memory_after",
                    lambda t=t: t.add("memory_after", rss_mib(_pid(t.km))),
                )
        finally:
            for t in targets:
                for name in ("client", "host_client"):
                    if hasattr(t, name):
                        getattr(t, name).close()
                _stop(getattr(t, "km", None))
                _stop(getattr(t, "host_km", None))
            floor.client.close()
            floor_process.terminate()
            floor_process.wait(10)
            ctx.term()
    elapsed = time.perf_counter() - started
    lines = [
        table(targets, floor, sizes.lines),
        "",
        f"Command: `{' '.join(['python bench/kernels.py', *sys.argv[1:]])}`",
        "",
        f"Rounds: {rounds}, {elapsed:.0f} s; load average {load_before[0]:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs; "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Versions: {versions()}",
        "",
        *(f"- {t.name}: `{t.argv}`" for t in targets),
        *(f"- {t.name}: {note}" for t in targets for note in sorted(t.notes)),
        *(f"- not measured: {note}" for note in notes),
    ]
    report = "\n".join(lines)
    print(report)
    if args.results:
        with open(args.results, "w", encoding="utf-8") as f:
            f.write(RESULTS_HEAD + report + "\n")
    return 0


RESULTS_HEAD = """\
# Kernel benchmark: the latest run

Written by `python bench/kernels.py --results bench/RESULTS.md` (see the
README, "Measuring", and the docstring of bench/kernels.py for what each row
measures).  Medians over all rounds, with p99 where it says; ratios in
parentheses are to the floor for the two kernel_info rows and to the
`txkernel` column elsewhere.  Every figure comes from this one run, the
targets alternating, so compare them with each other, not with other runs.

"""


def pip_install(dists: list[str]) -> None:
    """pip-install ``dists`` into the environment running the benchmark."""
    sys.stderr.write(f"pip install {' '.join(dists)}\n")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *dists])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one short round: a smoke test, not a measurement",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="rounds of every measure (default 3, --quick 1)",
    )
    parser.add_argument(
        "--kernels",
        default="",
        help=f"comma-separated targets (default all of {','.join(ALL_NAMES)})",
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="pip-install ipykernel, ipymini, xeus-python and async-kernel first",
    )
    parser.add_argument(
        "--results",
        metavar="FILE",
        help="also write the report to FILE (bench/RESULTS.md keeps the latest run)",
    )
    parser.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also measure txkernel from this checkout (say, of an older commit)"
        " as the target txkernel-base, beside the installed one",
    )
    parser.add_argument(
        "--plain-venv",
        metavar="DIR",
        help="also measure txkernel installed alone in the virtualenv DIR"
        " (made when missing) as the target txkernel-plain",
    )
    parser.add_argument(
        "--measures",
        default="",
        help="comma-separated measures to run (default all, startup included),"
        " for a focused comparison; the table then has only those rows",
    )
    parser.add_argument("--serve-floor", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_floor:
        return serve_floor(args.serve_floor)
    if args.install:
        pip_install([dist for _, dist, _ in OTHERS])
    elif not _version("ipykernel") and "ipykernel" in (args.kernels or "ipykernel"):
        pip_install(["ipykernel"])  # always compared (the test extra brings it)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
