"""Finding a module's contents for completion, within a time budget.

Completion runs on the reactor thread, so it must not wait on an import that
takes seconds (or never ends).  :func:`find_module` gives the module object
when it is already imported; otherwise, for an *installed* module (the
standard library, site-packages, built-in and frozen modules) it imports it
on a background thread and waits only until the deadline.  An import still
running then goes on in the background, and the next completion finds the
module imported.  Modules from anywhere else on ``sys.path`` (the user's own
scripts, whose top level may do real work) are never imported here: their
source is read with ``ast`` instead (:class:`StaticModule`), as is an
installed module whose import did not finish in time.

Called on the reactor thread; the imports run on daemon threads named
``txkernel-complete-import``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.machinery
import importlib.util
import os
import pkgutil
import site
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["StaticModule", "find_module", "module_names", "submodule_names"]

#: A source file larger than this is not parsed for its names (parsing runs
#: at about 6 KiB/ms: 256 KiB take some 40 ms).
_MAX_SOURCE_BYTES = 256 * 1024

#: Time (s) left for reading a module's source when its import is too slow.
_SOURCE_RESERVE = 0.04


@dataclass
class StaticModule:
    """A module known from its source only: the names its top level binds."""

    name: str
    names: set[str] = field(default_factory=set)
    path: list[str] | None = None


Module = types.ModuleType | StaticModule


class _Imports:
    """Background imports started for completion, one thread per module."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}

    def running(self, dotted: str) -> threading.Thread | None:
        """The thread importing ``dotted`` now, if any."""
        with self._lock:
            return self._running.get(dotted)

    def wait(self, dotted: str, timeout: float) -> types.ModuleType | None:
        """Import ``dotted`` on a background thread; the module if done within ``timeout``."""
        with self._lock:
            thread = self._running.get(dotted)
            if thread is None:
                thread = threading.Thread(
                    target=self._import,
                    args=(dotted,),
                    name="txkernel-complete-import",
                    daemon=True,
                )
                self._running[dotted] = thread
                thread.start()
        thread.join(max(0.0, timeout))
        return _imported(dotted)

    def _import(self, dotted: str) -> None:
        try:
            importlib.import_module(dotted)
        except BaseException:  # a broken module: completion just finds nothing
            pass
        finally:
            with self._lock:
                self._running.pop(dotted, None)


_imports = _Imports()


def find_module(dotted: str, remaining: Callable[[], float]) -> Module | None:
    """The module ``dotted`` names, for listing its contents; None if not found.

    ``remaining()`` is the time left (seconds) for completion.
    """
    if not dotted or dotted.startswith(".") or "" in dotted.split("."):
        return None
    module = _imported(dotted)
    if module is not None:
        return module
    spec = _find_spec(dotted)
    if spec is None:
        return None
    if _installed(spec) and remaining() > _SOURCE_RESERVE:
        module = _imports.wait(dotted, remaining() - _SOURCE_RESERVE)
        if module is not None:
            return module
    return _read_statically(dotted, spec)


def module_names(module: Module) -> set[str]:
    """Every name ``from module import ...`` can give: attributes and submodules."""
    if isinstance(module, StaticModule):
        names = set(module.names)
    else:
        try:
            names = {name for name in dir(module) if isinstance(name, str)}
        except Exception:
            names = set()
    return names | submodule_names(module)


def submodule_names(
    module: Module | None, expired: Callable[[], bool] = lambda: False
) -> set[str]:
    """Submodules of a package: found on its path or already imported."""
    if module is None:
        return set()
    name = (
        module.name
        if isinstance(module, StaticModule)
        else getattr(module, "__name__", "")
    )
    path = (
        module.path
        if isinstance(module, StaticModule)
        else getattr(module, "__path__", None)
    )
    names: set[str] = set()
    if path is not None and isinstance(name, str):
        try:
            names.update(_names_until(pkgutil.iter_modules(list(path)), expired))
        except Exception:
            pass
    start = f"{name}."
    for loaded in list(sys.modules):
        rest = loaded[len(start) :]
        if loaded.startswith(start) and rest and "." not in rest:
            names.add(rest)
    return names


def top_level_names(expired: Callable[[], bool] = lambda: False) -> set[str]:
    """Top-level modules: imported, built in, or found on ``sys.path`` before ``expired()``."""
    names = {name for name in sys.modules if "." not in name}
    names.update(sys.builtin_module_names)
    names.update(_names_until(pkgutil.iter_modules(), expired))
    return names


def _names_until(
    modules: Iterable[pkgutil.ModuleInfo], expired: Callable[[], bool]
) -> list[str]:
    names = []
    for info in modules:
        names.append(info.name)
        if expired():
            break
    return names


def _imported(dotted: str) -> types.ModuleType | None:
    """The module if imported, and not still running its top level on some thread."""
    module = sys.modules.get(dotted)
    if not isinstance(module, types.ModuleType):
        return None
    if getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


def _find_spec(dotted: str) -> importlib.machinery.ModuleSpec | None:
    """Find a module's spec without importing it or its parents."""
    parts = dotted.split(".")
    spec = None
    path: list[str] | None = None
    for depth, part in enumerate(parts):
        loaded = _imported(".".join(parts[: depth + 1]))
        if loaded is not None:
            spec = getattr(loaded, "__spec__", None)
            path = getattr(loaded, "__path__", None)
            if spec is None:
                return None
            continue
        try:
            if depth == 0:
                spec = (
                    importlib.machinery.BuiltinImporter.find_spec(part)
                    or importlib.machinery.FrozenImporter.find_spec(part)
                    or importlib.machinery.PathFinder.find_spec(part)
                )
            elif path is not None:
                spec = importlib.machinery.PathFinder.find_spec(
                    ".".join(parts[: depth + 1]), list(path)
                )
            else:
                return None
        except (ImportError, ValueError, OSError):
            return None
        if spec is None:
            return None
        path = spec.submodule_search_locations
    return spec


@functools.lru_cache(maxsize=1)
def _install_roots() -> tuple[str, ...]:
    """Directories holding installed (not user-written) modules."""
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            roots.add(sysconfig.get_paths()[key])
        except KeyError:
            continue
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # a virtualenv's old site.py
        pass
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)


def _installed(spec: importlib.machinery.ModuleSpec) -> bool:
    """Whether ``spec`` is a built-in, frozen or installed module (safe to import)."""
    if spec.origin in ("built-in", "frozen"):
        return True
    location = spec.origin
    if location is None and spec.submodule_search_locations:
        location = next(iter(spec.submodule_search_locations), None)
    if not location:
        return False
    real = os.path.realpath(location)
    return real.startswith(_install_roots())


def _read_statically(dotted: str, spec: importlib.machinery.ModuleSpec) -> StaticModule:
    """The names a module's source binds at top level (and its ``__all__``)."""
    path = list(spec.submodule_search_locations or []) or None
    module = StaticModule(dotted, path=path)
    origin = spec.origin
    if not origin or not origin.endswith(".py"):
        return module
    try:
        if os.path.getsize(origin) > _MAX_SOURCE_BYTES:
            return module
        with open(origin, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return module
    module.names = _top_level_bindings(tree)
    return module


def _top_level_bindings(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".", 1)[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names if a.name != "*")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            value = node.value
            if any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in targets
            ) and isinstance(value, ast.List | ast.Tuple):
                names.update(
                    e.value
                    for e in value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                )
    return names
