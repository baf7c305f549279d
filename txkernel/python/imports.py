"""Post-import hooks: run a function when a module has been imported.

The Python kernel adapts optional libraries (the ``comm`` package,
``ipywidgets``, ``matplotlib``) to itself without importing them: it asks to
be called once the library is imported, by anyone.  :func:`when_imported`
calls at once when the module is already imported; otherwise a finder on
``sys.meta_path`` wraps the module's loader so that the hook runs right after
the module's code, on the thread that imported it.

A hook that raises is logged; the import itself always succeeds.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from twisted.logger import Logger

log = Logger()

Hook = Callable[[ModuleType], object]

_lock = threading.RLock()
_hooks: dict[str, list[Hook]] = {}


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once module ``name`` is imported (now, if it is)."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(hook)
            _install_finder()
            return
    _run(hook, module)


def forget(name: str, hook: Hook) -> None:
    """Withdraw a hook that has not run yet (nothing happens if it has)."""
    with _lock:
        hooks = _hooks.get(name, [])
        if hook in hooks:
            hooks.remove(hook)
        if not hooks:
            _hooks.pop(name, None)
        if not _hooks:
            _remove_finder()


def _run(hook: Hook, module: ModuleType) -> None:
    try:
        hook(module)
    except Exception:
        log.failure("A hook run after importing {name} failed", name=module.__name__)


def _imported(name: str, module: ModuleType) -> None:
    with _lock:
        hooks = _hooks.pop(name, [])
        if not _hooks:
            _remove_finder()
    for hook in hooks:
        _run(hook, module)


class _Finder:
    """Finds nothing itself: wraps the loader of modules that have hooks.

    A ``sys.meta_path`` finder needs only ``find_spec``; it does not derive
    from ``importlib.abc.MetaPathFinder``, whose import (with
    ``importlib.resources``) the kernel's start would otherwise pay.
    """

    def __init__(self) -> None:
        self._finding = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> Any:
        if fullname not in _hooks or getattr(self._finding, fullname, False):
            return None
        setattr(self._finding, fullname, True)
        try:
            spec = importlib.util.find_spec(fullname)
        except (ImportError, ValueError):
            return None
        finally:
            delattr(self._finding, fullname)
        loader: Any = getattr(spec, "loader", None)
        exec_module = getattr(loader, "exec_module", None)
        if spec is None or loader is None or exec_module is None:
            return None

        def exec_then_hook(module: ModuleType) -> None:
            try:
                exec_module(module)
            finally:
                # The loader is this module's own: leave it as it was.
                loader.__dict__.pop("exec_module", None)
            _imported(fullname, sys.modules.get(fullname, module))

        try:
            loader.exec_module = exec_then_hook
        except (AttributeError, TypeError):
            return None  # a loader that cannot be wrapped: no hook, a normal import
        return spec


_finder = _Finder()


def _install_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _remove_finder() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
