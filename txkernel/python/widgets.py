"""ipywidgets in a kernel without IPython.

ipywidgets registers its comm targets only inside IPython, and its
``interact`` and ``Output`` widgets call ``IPython.display.display`` /
``clear_output``, which outside an IPython shell print text instead of
publishing display messages, and flush inline plots only for
``matplotlib_inline``.  :func:`adapt` (run when ipywidgets is imported, see
:mod:`txkernel.python.integrations`) registers the targets and gives those
modules functions that publish through the kernel of the calling cell, and
fall back to IPython's outside kernels.  It changes the ``display``,
``clear_output`` and ``show_inline_matplotlib_plots`` names of
``ipywidgets.widgets.interaction``, and ``clear_output`` and
``InteractiveShell`` (which ``Output.append_display_data`` asks for its
formatter: outside IPython it would start an IPython shell, after which
ipywidgets believes it runs in IPython) of ``ipywidgets.widgets.widget_output``,
nothing else.

Runs on whichever thread imports ipywidgets; the functions run on the
thread of the calling cell or comm handler.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .output import router

_originals: dict[tuple[str, str], Callable[..., Any]] = {}
_shell_class: dict[str, Any] = {}


def adapt(ipywidgets: ModuleType) -> None:
    """Register ipywidgets' comm targets and route its display calls to cells.

    Safe to call again (each time kernels start serving anew).
    """
    register = getattr(ipywidgets, "register_comm_target", None)
    if register is not None:
        register()
    interaction = sys.modules.get("ipywidgets.widgets.interaction")
    widget_output = sys.modules.get("ipywidgets.widgets.widget_output")
    _replace(interaction, "display", display)
    _replace(interaction, "clear_output", clear_output)
    _replace(interaction, "show_inline_matplotlib_plots", show_inline_matplotlib_plots)
    _replace(widget_output, "clear_output", clear_output)
    shell = getattr(widget_output, "InteractiveShell", None)
    if shell is not None and shell is not _FormattingShell:
        _shell_class["original"] = shell
        setattr(widget_output, "InteractiveShell", _FormattingShell)  # noqa: B010


def _replace(module: ModuleType | None, name: str, replacement: Callable[..., Any]) -> None:
    current = getattr(module, name, None)
    if module is None or not callable(current) or current is replacement:
        return  # absent, or adapted already (a kernel served earlier)
    _originals[(module.__name__, name)] = getattr(module, name)
    setattr(module, name, replacement)


def _original(name: str) -> Callable[..., Any]:
    for (_, function), original in _originals.items():
        if function == name:
            return original
    raise LookupError(name)


def display(*objs: Any, **kwargs: Any) -> Any:
    """``display`` for ipywidgets: the cell's kernel shows ``objs``."""
    cell = router.cell()
    if cell is None:
        return _original("display")(*objs, **kwargs)
    return cell.kernel.display_publisher.display(*objs, **kwargs)


def clear_output(wait: bool = False) -> None:
    """``clear_output`` for ipywidgets: clears the cell's (or ``Output`` widget's) output."""
    cell = router.cell()
    if cell is None:
        _original("clear_output")(wait)
        return
    cell.kernel.display_publisher.clear_output(wait=wait)


def show_inline_matplotlib_plots() -> None:
    """Show the figures the cell changed, now (``interact`` calls it inside its output)."""
    backend = sys.modules.get("txkernel.python.matplotlib_inline")
    cell = router.cell()
    if backend is None or cell is None:
        original = _originals.get(("ipywidgets.widgets.interaction", "show_inline_matplotlib_plots"))
        if original is not None:
            original()
        return
    backend.show_pending(cell)


class _DisplayFormatter:
    """What ``Output.append_display_data`` asks of IPython's shell: a mimebundle."""

    @staticmethod
    def format(obj: Any, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        from .display import format_object

        return format_object(obj, include, exclude)


class _FormattingShell:
    """Stands for ``InteractiveShell`` in ``ipywidgets.widgets.widget_output``."""

    display_formatter = _DisplayFormatter()

    @classmethod
    def instance(cls, *args: Any, **kwargs: Any) -> Any:
        if router.cell() is None:
            return _shell_class["original"].instance(*args, **kwargs)
        return cls
