"""``python -m txkernel``: the kernel Jupyter launches, and the kernelspec installer.

- ``python -m txkernel -f FILE [--kernel package.module:Class]`` serves a
  kernel on the sockets FILE names (without ``-f``: free ports and a new
  connection file).  The process is the kernel's own: the reactor runs on a
  second thread and the built-in Python kernel runs cells on the main thread,
  so SIGINT interrupts anything, even ``time.sleep``.
- ``python -m txkernel install [--user|--sys-prefix|--prefix P]`` and
  ``python -m txkernel uninstall`` manage the kernelspec;
  ``python -m txkernel install --remote TARGET ...`` writes one for a
  gateway (Enterprise Gateway, gateway_provisioners; see
  ``txkernel/remote_kernelspecs.py``).
- ``python -m txkernel curve-keygen NAME`` writes a CurveZMQ keypair for
  ``--curve-secret-key`` (see :mod:`txkernel.curve`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m txkernel",
        description="Serve a Jupyter kernel on Twisted (subcommands: install, uninstall).",
    )
    parser.add_argument("-f", "--connection-file", help="connection file to bind (must exist)")
    parser.add_argument(
        "--kernel", default="txkernel.python:PythonKernel", help="kernel class, package.module:Class"
    )
    parser.add_argument("--ip", default="127.0.0.1", help="address to bind without -f")
    parser.add_argument("--transport", default="tcp", choices=("tcp", "ipc"))
    parser.add_argument(
        "--allow-empty-key",
        action="store_true",
        help="accept a connection file whose key is empty (unsigned messages)",
    )
    parser.add_argument(
        "--curve-secret-key",
        metavar="FILE",
        help="CurveZMQ secret key file (see curve-keygen): encrypt all five sockets",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"] and any(
        a == "--remote" or a.startswith("--remote=") for a in argv
    ):
        from .remote_kernelspecs import main as remote_main

        return remote_main(argv[1:])
    if argv and argv[0] in ("install", "uninstall"):
        from .kernelspec import main as kernelspec_main

        return kernelspec_main(argv)
    if argv and argv[0] == "curve-keygen":
        from .curve import keygen_main

        return keygen_main(argv[1:])
    args = _parser().parse_args(argv)
    return serve(args)


def _fail(message: str) -> int:
    sys.stderr.write(f"txkernel: {message}\n")
    return 1


def serve(args: argparse.Namespace) -> int:
    """Serve one kernel in this process until it is shut down."""
    from twisted.internet import reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )
    from twisted.python import usage

    from .connection import ConnectionFileError, read_connection_file
    from .interpreter import MAIN
    from .parent import ParentWatcher, launched_by_jupyter
    from .service import KernelService
    from .tap import curve_option, load_kernel_class

    try:
        kernel_class = load_kernel_class(args.kernel)
        curve = curve_option(args.curve_secret_key, usage.UsageError)
        info = (
            read_connection_file(args.connection_file, args.allow_empty_key)
            if args.connection_file
            else None
        )
    except (usage.UsageError, ConnectionFileError) as e:
        return _fail(str(e))
    # The process is the kernel's: what its cells (and their subprocesses and
    # C extensions) write to fds 1 and 2 goes to the cells, when the
    # interpreter asks for it; the kernel's own log keeps the original stderr.
    if kernel_class.capture_fds:
        from .python import fdcapture
    else:
        fdcapture = None
    capture = fdcapture.start() if fdcapture is not None else None
    terminal = capture.terminal("stderr") if capture is not None else sys.__stderr__
    # Launched by Jupyter (-f), stderr is the frontend's terminal: warnings
    # and errors only.  Run by hand, also say where to connect.
    level = LogLevel.warn if args.connection_file else LogLevel.info
    observer = FilteringLogObserver(
        textFileLogObserver(terminal or sys.stderr),
        [LogLevelFilterPredicate(defaultLogLevel=level)],
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)

    # An interpreter that can run its code on the main thread does so (the
    # reactor gets a thread of its own).
    on_main = MAIN in kernel_class.placements
    kernel: Any = kernel_class(placement=MAIN) if on_main else kernel_class()
    finished = threading.Event()

    service = KernelService(
        kernel,
        connection_file=args.connection_file,
        connection_info=info,
        ip=args.ip,
        transport=args.transport,
        on_shutdown=lambda restart: finished.set(),
        curve=curve,
    )
    # The threads started from here on (IOPub, heartbeat, the reactor and
    # what it starts) leave SIGINT and SIGTERM to the main thread: CPython runs
    # signal handlers there, and a signal taken by another thread would not
    # wake a main thread that waits.
    process_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, process_signals)
    try:
        service.startService()
    except ConnectionFileError as e:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, process_signals)
        if fdcapture is not None:
            fdcapture.stop()
        return _fail(str(e))

    def end() -> None:
        """Stop serving as a shutdown_request would (reactor thread)."""
        service.stopService()
        finished.set()

    # SIGTERM ends the kernel as a shutdown_request would: the connection
    # file it wrote is removed and IOPub is flushed.
    signal.signal(signal.SIGTERM, lambda signum, frame: reactor.callFromThread(end))
    if launched_by_jupyter():
        ParentWatcher(end, reactor).start()
    reactor_thread = threading.Thread(
        target=reactor.run,
        kwargs={"installSignalHandlers": False},
        name="txkernel-reactor",
        daemon=True,
    )
    reactor_thread.start()
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, process_signals)
    except KeyboardInterrupt:
        # A SIGINT that came while starting (jupyter_client sends one before
        # each shutdown_request): nothing runs yet, so there is nothing to
        # interrupt; the kernel serves on.
        pass
    try:
        if on_main:
            kernel.run_main()  # until the kernel stops
        else:
            _wait_interruptibly(finished, lambda: reactor.callFromThread(service.core.interrupt))
    finally:
        _stop_reactor(reactor, service, reactor_thread)
        if fdcapture is not None:
            fdcapture.stop()
    return 0


def _wait_interruptibly(event: threading.Event, interrupt: Any) -> None:
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupt())
    try:
        while not event.wait(1.0):
            pass
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_reactor(reactor: Any, service: Any, thread: threading.Thread) -> None:
    from twisted.internet.threads import blockingCallFromThread

    if thread.is_alive():
        try:
            blockingCallFromThread(reactor, service.stopService)
        finally:
            reactor.callFromThread(reactor.stop)
            thread.join(10)


if __name__ == "__main__":
    sys.exit(main())
