"""Objects named on a command line as ``package.module:name``.

``twistd txkernel --kernel`` and ``--namespace`` and ``python -m txkernel
--kernel`` name a kernel class or a namespace factory this way.  The module is
imported as ``python -m`` would find it: from the working directory too,
which the ``twistd`` script (whose ``sys.path`` starts with its own
directory) would otherwise miss.  Runs wherever options are parsed, before
the reactor runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


class LoadError(ValueError):
    """A ``package.module:name`` that names nothing usable; the message is one line."""


def importable_from_working_directory() -> None:
    """Let modules in the working directory be imported (appended to ``sys.path``,
    so they never shadow installed ones)."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.append(cwd)


def load_object(spec: str, option: str) -> Any:
    """The object ``package.module:name`` names; :class:`LoadError` (its
    message prefixed by ``option``) when the spec is malformed, the module
    cannot be imported or has no such name."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise LoadError(f"{option} {spec!r}: expected package.module:name")
    importable_from_working_directory()
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LoadError(f"{option} {spec!r}: cannot import {module_name} ({e})") from None
    obj: Any = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(f"{option} {spec!r}: {module_name} has no {name}") from None
    return obj


def load_namespace(spec: str) -> dict[str, Any]:
    """Call the factory ``package.module:factory`` names and return the dict
    it builds (the namespace cells run in).  An exception the factory raises
    propagates; anything but a dict is a :class:`LoadError`."""
    factory = load_object(spec, "--namespace")
    if not callable(factory):
        raise LoadError(f"--namespace {spec!r}: {type(factory).__name__} is not callable")
    namespace = factory()
    if not isinstance(namespace, dict):
        raise LoadError(
            f"--namespace {spec!r}: the factory returned {type(namespace).__name__}, not a dict"
        )
    return namespace
