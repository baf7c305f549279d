"""The inline matplotlib backend: figures a cell draws appear in that cell as images.

``module://txkernel.python.matplotlib_inline`` is the backend of cells when
matplotlib is first imported by a cell and ``MPLBACKEND`` names no other one
(see :mod:`txkernel.python.integrations`); ``matplotlib.use(...)`` with
that name selects it explicitly, and any other ``matplotlib.use(...)``
replaces it.  It renders with Agg, as ipykernel's inline backend does:

- at the end of a cell (and of a comm handler), each figure that pyplot
  changed in interactive mode (the default; ``plt.ioff()`` turns it off) is
  shown as ``display_data``, then closed;
- ``plt.show()`` in a cell shows the kernel's open figures now and closes
  them; ``fig.show()`` shows one figure;
- a ``Figure`` as the value of a cell (or given to ``display``) is shown as an
  image whatever the backend.

Images are PNG, with their size in the metadata.  ``set_figure_format("svg")``
(or ``"retina"``: PNG at twice the resolution, shown at the same size) or the
environment variable ``TXKERNEL_FIGURE_FORMAT`` chooses another format.

Figures belong to the kernel whose cell created them: figures the host
application makes outside any cell are never shown or closed by cells, and
``plt.show()`` outside cells does what Agg's does (warns).

This module imports matplotlib; it runs on the thread of the code that uses
pyplot (the execution thread for cells).
"""

from __future__ import annotations

import base64
import io
import os
import struct
import warnings
from typing import TYPE_CHECKING, Any

from matplotlib import _pylab_helpers
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from twisted.logger import Logger

from . import cellhooks
from .output import router

if TYPE_CHECKING:
    from .output import Cell

log = Logger()

__all__ = [
    "FORMATS",
    "FigureCanvas",
    "FigureManager",
    "figure_bundle",
    "figure_format",
    "set_figure_format",
]

#: The image formats figures may be shown in.
FORMATS = ("png", "retina", "svg")
ENV_FORMAT = "TXKERNEL_FIGURE_FORMAT"


def _format_from_environment() -> str:
    chosen = os.environ.get(ENV_FORMAT, "png").strip().lower() or "png"
    if chosen not in FORMATS:
        log.warn(
            "{env}={value!r} is not one of {formats}: showing PNG",
            env=ENV_FORMAT,
            value=chosen,
            formats=", ".join(FORMATS),
        )
        return "png"
    return chosen


_format = _format_from_environment()


def set_figure_format(fmt: str) -> None:
    """Show figures as ``"png"``, ``"retina"`` (high-DPI PNG) or ``"svg"`` from now on."""
    global _format
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    _format = fmt


def figure_format() -> str:
    """The format figures are shown in now."""
    return _format


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def has_content(figure: Figure) -> bool:
    """Whether anything was put on ``figure`` (an empty figure shows nothing)."""
    return any(
        (figure.axes, figure.lines, figure.patches, figure.texts, figure.images,
         figure.artists, figure.legends, figure.subfigs)
    )


def figure_bundle(figure: Figure, fmt: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(data, metadata)`` mimebundle showing ``figure`` as an image.

    An empty figure gets its ``text/plain`` only.
    """
    data: dict[str, Any] = {"text/plain": repr(figure)}
    metadata: dict[str, Any] = {}
    if not has_content(figure):
        return data, metadata
    fmt = fmt or _format
    if fmt == "svg":
        data["image/svg+xml"] = _render(figure, "svg", figure.dpi).decode("utf-8")
        return data, metadata
    scale = 2 if fmt == "retina" else 1
    png = _render(figure, "png", figure.dpi * scale)
    width, height = _png_size(png)
    data["image/png"] = base64.b64encode(png).decode("ascii")
    metadata["image/png"] = {"width": round(width / scale), "height": round(height / scale)}
    return data, metadata


def value_bundle(figure: Figure) -> tuple[dict[str, Any], dict[str, Any]]:
    """The mimebundle of a ``Figure`` displayed as a value: it then counts as shown."""
    bundle = figure_bundle(figure)
    manager = getattr(figure.canvas, "manager", None)
    if isinstance(manager, FigureManager):
        manager.pending = False
    return bundle


def _render(figure: Figure, fmt: str, dpi: float) -> bytes:
    out = io.BytesIO()
    figure.canvas.print_figure(
        out,
        format=fmt,
        dpi=dpi,
        bbox_inches="tight",
        facecolor=figure.get_facecolor(),
        edgecolor=figure.get_edgecolor(),
    )
    return out.getvalue()


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels, from the PNG's IHDR chunk."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


# ---------------------------------------------------------------------------
# The backend: canvas, manager, show
# ---------------------------------------------------------------------------


class FigureManager(FigureManagerBase):
    """A pyplot figure, owned by the kernel of the cell that created it."""

    def __init__(self, canvas: FigureCanvasAgg, num: int | str) -> None:
        super().__init__(canvas, num)
        cell = router.cell(explicit_only=True)
        #: The kernel whose cells show and close this figure (None: the host's).
        self.kernel = cell.kernel if cell is not None else None
        #: Changed since it was last shown.
        self.pending = False
        #: Changed by pyplot during the current cell.
        self.drawn = False

    def show(self) -> None:
        """``fig.show()``: show the figure in the running cell now."""
        cell = router.cell(explicit_only=True)
        if cell is None:
            super().show()  # raises NonGuiException: Figure.show warns, as with Agg
            return
        _display(self, cell)

    @classmethod
    def pyplot_show(cls, *, block: bool | None = None) -> None:
        """``plt.show()``: show and close the figures of the running cell's kernel."""
        cell = router.cell(explicit_only=True)
        if cell is None:
            warnings.warn(
                "The inline backend shows figures in cells only; "
                "use savefig() outside them",
                UserWarning,
                stacklevel=2,
            )
            return
        managers = _managers_of(cell)
        for manager in managers:
            _display(manager, cell)
        for manager in managers:
            _pylab_helpers.Gcf.destroy(manager)


class FigureCanvas(FigureCanvasAgg):
    """Agg, except that a redraw pyplot asks for marks the figure to be shown."""

    manager_class = FigureManager

    def draw_idle(self, *args: Any, **kwargs: Any) -> None:
        # Interactive pyplot asks for a redraw after each change; the image
        # is made once, when the figure is shown.
        manager = self.manager
        if isinstance(manager, FigureManager):
            manager.pending = manager.drawn = True



def _managers_of(cell: Cell) -> list[FigureManager]:
    return [
        m
        for m in _pylab_helpers.Gcf.get_all_fig_managers()
        if isinstance(m, FigureManager) and m.kernel is cell.kernel
    ]


def _display(manager: FigureManager, cell: Cell) -> None:
    manager.pending = False
    figure = manager.canvas.figure
    if not has_content(figure):
        return
    data, metadata = figure_bundle(figure)
    cell.kernel.display_publisher.display(data, raw=True, metadata=metadata)


def show_pending(cell: Cell) -> None:
    """Show the figures of ``cell``'s kernel changed since they were last shown."""
    for manager in _managers_of(cell):
        if manager.pending:
            _display(manager, cell)


def _cell_ended(cell: Cell) -> None:
    """Show what the cell drew, then close the figures it drew on (as ipykernel)."""
    managers = _managers_of(cell)
    if not managers:
        return
    show_pending(cell)
    for manager in managers:
        if manager.drawn:
            _pylab_helpers.Gcf.destroy(manager)


cellhooks.on_cell_end(_cell_ended)
