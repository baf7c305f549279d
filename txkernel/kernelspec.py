"""Install and remove Jupyter kernelspecs for txkernel kernels.

A kernelspec is a directory holding ``kernel.json`` (how to start the kernel)
and optional logos; Jupyter front ends list every kernelspec they find on
their search path.  This module writes one that starts the kernel with
``python -m txkernel -f {connection_file}`` (the built-in Python kernel, or
``--kernel package.module:Class`` for any other) and hands it to
:class:`jupyter_client.kernelspec.KernelSpecManager` to install, exactly as
``ipykernel install`` does for IPython.

From the command line (``txkernel.__main__`` dispatches to :func:`main`)::

    python -m txkernel install --sys-prefix   # into this virtualenv/conda env
    python -m txkernel install --user         # for the current user only
    python -m txkernel install                # system-wide (usually needs root)
    python -m txkernel install --user --kernel mypackage.kernels:Shout \
        --env SHOUT_VOLUME=11 --interrupt-mode message
    python -m txkernel uninstall

Without ``--user``, ``--sys-prefix`` or ``--prefix`` the kernelspec goes where
``ipykernel install`` puts it by default: the system-wide Jupyter data
directory, the first entry of :data:`jupyter_core.paths.SYSTEM_JUPYTER_PATH`
(``/usr/local/share/jupyter/kernels/NAME`` on Linux and macOS,
``%PROGRAMDATA%\\jupyter\\kernels\\NAME`` on Windows).

jupyter_client is imported only when a kernelspec is actually installed or
removed, so importing this module stays cheap.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager

__all__ = [
    "DEFAULT_DISPLAY_NAME",
    "DEFAULT_NAME",
    "INTERRUPT_MODES",
    "LOGO_FILES",
    "NoSuchKernelSpec",
    "describe_kernel",
    "install",
    "kernel_json",
    "main",
    "parse_env",
    "uninstall",
    "write_kernelspec",
]

DEFAULT_NAME = "txkernel"
DEFAULT_DISPLAY_NAME = "Python 3 (txkernel)"

#: Values Jupyter accepts for ``interrupt_mode`` in kernel.json.  "signal":
#: the front end sends SIGINT to the kernel process (the kernel runs user code
#: on the main thread when Jupyter launches it, so this interrupts anything);
#: "message": it sends an ``interrupt_request`` on the control channel.
INTERRUPT_MODES = ("signal", "message")

#: The logo files copied into the kernelspec, from ``txkernel/resources/``.
LOGO_FILES = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")

_log = logging.getLogger(__name__)
# jupyter_client logs through this logger; stay quiet unless the application
# configured logging (then records propagate to its handlers as usual).
_log.addHandler(logging.NullHandler())


class NoSuchKernelSpec(KeyError):
    """There is no installed kernelspec with the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (
            f"no kernelspec named {self.name!r} is installed"
            " (see `jupyter kernelspec list`)"
        )


def kernel_json(
    python: str | None = None,
    display_name: str = DEFAULT_DISPLAY_NAME,
    interrupt_mode: str = "signal",
    kernel: str | None = None,
    env: Mapping[str, str] | None = None,
    language: str = "python",
) -> dict[str, Any]:
    """The contents of ``kernel.json`` for a txkernel kernel.

    ``python`` is the interpreter that runs the kernel; it defaults to the one
    running this code (:data:`sys.executable`), so the kernel sees the same
    installed packages as the environment it was installed from.  ``kernel``
    (``package.module:Class``) serves that interpreter class instead of the
    built-in Python kernel; ``env`` is set in the kernel's environment.
    """
    if interrupt_mode not in INTERRUPT_MODES:
        raise ValueError(
            f"interrupt_mode must be one of {', '.join(INTERRUPT_MODES)},"
            f" not {interrupt_mode!r}"
        )
    argv = [python or sys.executable, "-m", "txkernel", "-f", "{connection_file}"]
    if kernel is not None:
        argv += ["--kernel", kernel]
    spec: dict[str, Any] = {
        "argv": argv,
        "display_name": display_name,
        "language": language,
        "interrupt_mode": interrupt_mode,
        "metadata": kernelspec_metadata(),
    }
    if env:
        spec["env"] = dict(env)
    return spec


def describe_kernel(kernel: str) -> tuple[str, str, str]:
    """The default name, display name and language of the kernelspec for the
    interpreter class ``package.module:Class``.

    Imports the class (from the working directory too); :exc:`ValueError`
    with a one-line reason when it cannot, or when it is not a txkernel
    interpreter class.
    """
    from .interpreter import BaseInterpreter
    from .loading import LoadError, load_object

    try:
        cls = load_object(kernel, "--kernel")
    except LoadError as e:
        raise ValueError(str(e)) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseInterpreter)):
        raise ValueError(f"--kernel {kernel!r}: not a txkernel interpreter class")
    language = str(cls.language_info.get("name") or "text")
    return cls.__name__.lower(), f"{cls.__name__} (txkernel)", language


def parse_env(assignments: Sequence[str]) -> dict[str, str]:
    """``["K=V", ...]`` as a dict; :exc:`ValueError` for an entry without ``=``
    or with an empty name."""
    env: dict[str, str] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"--env {assignment!r}: expected NAME=VALUE")
        env[key] = value
    return env


def kernelspec_metadata() -> dict[str, Any]:
    """The ``metadata`` of txkernel's kernelspecs: ``debugger`` (JupyterLab
    shows its debugger only to kernels whose spec says so) and, where libzmq
    has CurveZMQ, ``supported_encryption`` (jupyter_client's
    ``transport_encryption="auto"`` provisions Curve keys only then)."""
    import zmq

    metadata: dict[str, Any] = {"debugger": _debugger_available()}
    if zmq.has("curve"):
        metadata["supported_encryption"] = ["curve"]
    return metadata


def _debugger_available() -> bool:
    from .python.debugger import available

    return available()


def write_kernelspec(directory: str, spec: dict[str, Any]) -> None:
    """Write ``kernel.json`` (from ``spec``) and the logos into ``directory``."""
    with open(os.path.join(directory, "kernel.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    logos = resources.files("txkernel").joinpath("resources")
    for filename in LOGO_FILES:
        with open(os.path.join(directory, filename), "wb") as f:
            f.write(logos.joinpath(filename).read_bytes())


def _manager() -> KernelSpecManager:
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager(log=_log)


def install(
    name: str | None = None,
    display_name: str | None = None,
    user: bool = False,
    sys_prefix: bool = False,
    prefix: str | None = None,
    interrupt_mode: str = "signal",
    kernel: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Install the kernelspec as ``name`` and return the directory it went to.

    With ``kernel`` (``package.module:Class``), the kernelspec serves that
    interpreter class; its name and display name default to the class's
    (``shout`` and ``Shout (txkernel)``) and its language is the class's
    ``language_info["name"]``.  The class is imported here, so a bad name
    fails now (:exc:`ValueError`) rather than when Jupyter starts it; the
    kernel Jupyter launches must import it too (install its package, or
    pass ``env={"PYTHONPATH": ...}``).  Without it, the built-in Python
    kernel as ``txkernel``, "Python 3 (txkernel)".  ``env`` is set in the
    kernel's environment.

    Give at most one of ``user`` (the current user's Jupyter data directory),
    ``sys_prefix`` (``sys.prefix/share/jupyter``, i.e. the active virtualenv
    or conda env) or ``prefix`` (``PREFIX/share/jupyter``).  With none of
    them, install system-wide like ``ipykernel install``: into the first
    directory of :data:`jupyter_core.paths.SYSTEM_JUPYTER_PATH`, which usually
    needs administrator rights (:exc:`PermissionError` otherwise).  An
    existing kernelspec of the same name there is replaced.  Names are
    lower-cased by jupyter_client; invalid names raise :exc:`ValueError`.
    """
    chosen = [
        option
        for option, given in (
            ("user", user),
            ("sys_prefix", sys_prefix),
            ("prefix", prefix is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise ValueError(
            f"give at most one of user, sys_prefix and prefix, not {' and '.join(chosen)}"
        )
    if prefix is not None and not prefix:
        raise ValueError("prefix must not be empty")
    if sys_prefix:
        prefix = sys.prefix
    language = "python"
    default_name, default_display_name = DEFAULT_NAME, DEFAULT_DISPLAY_NAME
    if kernel is not None:
        default_name, default_display_name, language = describe_kernel(kernel)
    name = name or default_name
    spec = kernel_json(
        display_name=display_name or default_display_name,
        interrupt_mode=interrupt_mode,
        kernel=kernel,
        env=env,
        language=language,
    )
    with tempfile.TemporaryDirectory(prefix="txkernel-kernelspec-") as tmp:
        # Stage in a fresh subdirectory: the temporary directory itself is
        # private (0700) and copytree would copy that mode to the destination.
        staged = os.path.join(tmp, "kernelspec")
        os.mkdir(staged)
        write_kernelspec(staged, spec)
        return _manager().install_kernel_spec(staged, name, user=user, prefix=prefix)


def uninstall(name: str = DEFAULT_NAME) -> str:
    """Remove the kernelspec ``name`` and return the directory that was removed.

    The first kernelspec of that name on Jupyter's search path is removed
    (the same one ``jupyter kernelspec remove`` would remove).  Raises
    :exc:`NoSuchKernelSpec` (a :exc:`KeyError`) if there is none.
    """
    try:
        return _manager().remove_kernel_spec(name.lower())
    except KeyError:
        raise NoSuchKernelSpec(name) from None


class _UsageError(Exception):
    """A command-line usage error, reported on one line."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message}")


def _default_system_dir() -> str:
    try:
        from jupyter_core.paths import SYSTEM_JUPYTER_PATH
    except ImportError:  # pragma: no cover - jupyter_core comes with jupyter_client
        return "the system-wide Jupyter data directory"
    return os.path.join(SYSTEM_JUPYTER_PATH[0], "kernels", "NAME")


def _parser(prog: str) -> _ArgumentParser:
    parser = _ArgumentParser(
        prog=prog,
        description="Install or remove the Jupyter kernelspec for txkernel's"
        " Python kernel.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    install_parser = commands.add_parser(
        "install",
        help="install the kernelspec",
        description="Install the Jupyter kernelspec that starts txkernel's Python"
        " kernel with this Python interpreter.",
        epilog="Without --user, --sys-prefix or --prefix the kernelspec is installed"
        " system-wide, like `ipykernel install`: into the first directory of"
        " jupyter_core's SYSTEM_JUPYTER_PATH, here"
        f" {_default_system_dir()}. That usually needs root or administrator"
        " rights; use --sys-prefix inside a virtualenv or conda env, or --user.",
    )
    where = install_parser.add_mutually_exclusive_group()
    where.add_argument(
        "--user",
        action="store_true",
        help="install for the current user only (Jupyter's user data directory)",
    )
    where.add_argument(
        "--sys-prefix",
        action="store_true",
        help=f"install into sys.prefix/share/jupyter ({sys.prefix}), i.e. the"
        " active virtualenv or conda env",
    )
    where.add_argument(
        "--prefix",
        metavar="PREFIX",
        help="install into PREFIX/share/jupyter/kernels/NAME",
    )
    install_parser.add_argument(
        "--kernel",
        metavar="package.module:Class",
        help="serve this txkernel interpreter class instead of the built-in"
        " Python kernel (it must be importable by this Python)",
    )
    install_parser.add_argument(
        "--name",
        help=f"kernelspec name (default: {DEFAULT_NAME}, or the --kernel class's"
        " name in lower case); set a different --display-name too when"
        " installing several",
    )
    install_parser.add_argument(
        "--display-name",
        help=f"name shown in Jupyter's kernel menus (default: {DEFAULT_DISPLAY_NAME},"
        " or 'Class (txkernel)')",
    )
    install_parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set NAME to VALUE in the kernel's environment (repeatable)",
    )
    install_parser.add_argument(
        "--interrupt-mode",
        choices=INTERRUPT_MODES,
        default="signal",
        help="how Jupyter interrupts the kernel: SIGINT (signal, the default) or"
        " an interrupt_request message (message)",
    )

    uninstall_parser = commands.add_parser(
        "uninstall",
        help="remove the kernelspec",
        description="Remove the first kernelspec of that name on Jupyter's"
        " search path.",
    )
    uninstall_parser.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help=f"kernelspec name (default: {DEFAULT_NAME})",
    )
    return parser


def _default_prog() -> str:
    # The ``txkernel`` console script, or else ``python -m txkernel``.
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return "txkernel" if script.startswith("txkernel") else "python -m txkernel"


def _working_directory_module(kernel: str) -> str | None:
    """The working directory, when the module of ``kernel`` was imported from it."""
    module = sys.modules.get(kernel.partition(":")[0].split(".")[0])
    filename = getattr(module, "__file__", None)
    if not filename:
        return None
    root = os.path.dirname(os.path.realpath(filename))
    if os.path.basename(filename) == "__init__.py":
        root = os.path.dirname(root)
    cwd = os.path.realpath(os.getcwd())
    return cwd if root == cwd else None


def _on_search_path(directory: str) -> bool:
    target = os.path.realpath(os.path.dirname(directory))
    try:
        kernel_dirs = _manager().kernel_dirs
    except Exception:  # pragma: no cover - only used for a hint
        return True
    return any(os.path.realpath(d) == target for d in kernel_dirs)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the ``install``/``uninstall`` command line; return the exit status.

    ``argv`` excludes the program name (default: ``sys.argv[1:]``).  Prints
    one line on success.  Errors are one line on stderr, no traceback: exit
    status 2 for usage errors, 1 for failures (no such kernelspec, no
    permission to write the destination, ...).
    """
    prog = prog or _default_prog()
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser(prog).parse_args(args_list)
    except _UsageError as e:
        print(e, file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0

    command_prog = f"{prog} {args.command}"
    if args.command == "install":
        try:
            name = args.name or (describe_kernel(args.kernel)[0] if args.kernel else DEFAULT_NAME)
            destination = install(
                name=name,
                display_name=args.display_name,
                user=args.user,
                sys_prefix=args.sys_prefix,
                prefix=args.prefix,
                interrupt_mode=args.interrupt_mode,
                kernel=args.kernel,
                env=parse_env(args.env),
            )
        except ValueError as e:
            print(f"{command_prog}: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            hint = ""
            if isinstance(e, PermissionError) and not (args.user or args.prefix):
                hint = " (try --user, or --sys-prefix in a virtualenv)"
            print(
                f"{command_prog}: error: cannot install kernelspec: {e}{hint}",
                file=sys.stderr,
            )
            return 1
        print(f"Installed kernelspec {name.lower()} in {destination}")
        if args.kernel and not any(e.startswith("PYTHONPATH=") for e in args.env):
            where = _working_directory_module(args.kernel)
            if where is not None:
                print(
                    f"note: {args.kernel.partition(':')[0]} was found in the working"
                    " directory, which Jupyter does not search when it starts the"
                    f" kernel; install it, or add --env PYTHONPATH={where}",
                    file=sys.stderr,
                )
        if not _on_search_path(destination):
            print(
                f"note: {os.path.dirname(destination)} is not on Jupyter's search"
                " path; add "
                f"{os.path.dirname(os.path.dirname(destination))} to JUPYTER_PATH",
                file=sys.stderr,
            )
        return 0

    try:
        removed = uninstall(args.name)
    except NoSuchKernelSpec as e:
        print(f"{command_prog}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{command_prog}: error: cannot remove kernelspec: {e}", file=sys.stderr)
        return 1
    print(f"Removed kernelspec {args.name.lower()} from {removed}")
    return 0
