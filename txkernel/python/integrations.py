"""Optional libraries made to work in cells, without importing them.

While a Python kernel is served:

- the ``comm`` package, once imported (by anyone), sends its comms through
  the kernels (:mod:`txkernel.python.comms`);
- ``ipywidgets``, once imported, has its comm targets (``jupyter.widget``,
  ``jupyter.widget.control``) registered, which it only does by itself
  inside IPython, and its ``interact`` and ``Output`` display through the
  kernel (:mod:`txkernel.python.widgets`);
- ``matplotlib``, once imported *by a cell*, gets the inline backend
  (:mod:`txkernel.python.matplotlib_inline`) unless the user chose one
  (``MPLBACKEND``); a ``Figure`` displays as an image in any case.

Nothing here imports those libraries: hooks wait for their import
(:mod:`txkernel.python.imports`).  :func:`attach` and :func:`detach` run on
the reactor thread; :func:`cell_ended` on the execution thread after each
cell and comm handler.
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from . import formatters, imports
from .output import router

if TYPE_CHECKING:
    from ..interpreter import BaseInterpreter as PythonKernel

log = Logger()

#: The inline backend, as ``matplotlib.use()`` and ``MPLBACKEND`` name it.
INLINE_BACKEND = "module://txkernel.python.matplotlib_inline"

_lock = threading.Lock()
_kernels: list[PythonKernel] = []


def attach(kernel: PythonKernel) -> None:
    """``kernel`` starts serving: adapt the optional libraries to it."""
    with _lock:
        first = not _kernels
        _kernels.append(kernel)
    if first:
        for name, hook in _HOOKS.items():
            imports.when_imported(name, hook)
    elif "txkernel.python.comms" in sys.modules:
        sys.modules["txkernel.python.comms"].manager.add_kernel(kernel)


def detach(kernel: PythonKernel) -> None:
    """``kernel`` stops serving; after the last one, ``comm`` gets its own functions back.

    (ipywidgets' replaced functions then call IPython's; a backend chosen
    for cells stays, as ``matplotlib.use`` would.)
    """
    with _lock:
        if kernel in _kernels:
            _kernels.remove(kernel)
        last = not _kernels
    comms = sys.modules.get("txkernel.python.comms")
    if comms is not None:
        if last:
            comms.uninstall()
        else:
            comms.manager.remove_kernel(kernel)
    if last:
        for name, hook in _HOOKS.items():
            imports.forget(name, hook)


def _comm_imported(module: ModuleType) -> None:
    from . import comms

    with _lock:
        kernels = list(_kernels)
    comms.install(kernels)


def _ipywidgets_imported(module: ModuleType) -> None:
    from . import widgets

    widgets.adapt(module)


def _matplotlib_imported(module: ModuleType) -> None:
    formatters.register("matplotlib.figure", "Figure", _figure_bundle)
    if router.cell(explicit_only=True) is None:
        return  # the host's own import: its choice of backend stays
    chosen = os.environ.get("MPLBACKEND")
    if chosen and chosen != INLINE_BACKEND:
        return
    if "matplotlib.pyplot" not in sys.modules and not chosen:
        module.rcParams["backend"] = INLINE_BACKEND
    # As in ipykernel: figures touched by pyplot are shown at the end of the cell.
    module.interactive(True)


def _figure_bundle(figure: Any) -> tuple[dict, dict]:
    from .matplotlib_inline import value_bundle

    return value_bundle(figure)


_HOOKS = {
    "comm": _comm_imported,
    "ipywidgets": _ipywidgets_imported,
    "matplotlib": _matplotlib_imported,
}
