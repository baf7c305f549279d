"""Mimebundles for types of optional libraries, named so that nothing is imported.

A library's type is named by its module and qualified name
(``("matplotlib.figure", "Figure")``); :func:`lookup` walks an object's
classes, so subclasses are formatted too.  :func:`txkernel.python.display.format_object`
asks here first.  Any thread may call these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

log = Logger()

Bundle = tuple[dict[str, Any], dict[str, Any]]
Formatter = Callable[[Any], "Bundle | None"]

_formatters: dict[tuple[str, str], Formatter] = {}


def register(module: str, qualname: str, formatter: Formatter) -> None:
    """Format instances of ``module.qualname`` with ``formatter(obj) -> (data, metadata)``."""
    _formatters[(module, qualname)] = formatter


def unregister(module: str, qualname: str) -> None:
    """Forget the formatter of ``module.qualname``, if any."""
    _formatters.pop((module, qualname), None)


def lookup(obj: object) -> Bundle | None:
    """The ``(data, metadata)`` a registered formatter gives for ``obj``, or None.

    A formatter that raises is logged and skipped.
    """
    if not _formatters:
        return None
    for cls in type(obj).__mro__:
        formatter = _formatters.get((cls.__module__, cls.__qualname__))
        if formatter is None:
            continue
        try:
            return formatter(obj)
        except Exception:
            log.failure("Formatting a {type} failed", type=type(obj).__qualname__)
            return None
    return None
