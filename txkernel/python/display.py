"""The Jupyter display protocol for the built-in Python kernel.

This module turns Python objects into mimebundles (``format_object``),
offers the display objects users create in cells (``HTML``, ``Image``, ...)
and publishes ``display_data`` / ``update_display_data`` / ``clear_output``
messages through a transport-agnostic ``send`` callable
(``DisplayPublisher``).  It knows nothing about sockets.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import pprint
import reprlib
import uuid
from collections.abc import Callable, Collection
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from . import formatters
from .cell import error_reply

__all__ = [
    "HTML",
    "JSON",
    "SVG",
    "DisplayHandle",
    "DisplayObject",
    "DisplayPublisher",
    "Image",
    "Javascript",
    "Latex",
    "Markdown",
    "Pretty",
    "displays_itself",
    "format_object",
    "format_result",
    "publish_display_data",
]

log = Logger()

Send = Callable[[str, dict[str, Any]], None]

#: ``_repr_*_`` methods and the mimetype each one produces, in display order.
REPR_METHODS: tuple[tuple[str, str], ...] = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
    ("application/javascript", "_repr_javascript_"),
    ("application/pdf", "_repr_pdf_"),
)

#: Mimetypes whose payload is binary and travels base64-encoded in JSON.
BINARY_MIMETYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "application/pdf"}
)

# An attribute no real object has: objects answering to it claim every
# attribute (proxies, mocks) and are not asked for ``_repr_*_`` methods.
_CANARY = "_txkernel_canary_method_should_not_exist_"


# ---------------------------------------------------------------------------
# Formatting objects into mimebundles
# ---------------------------------------------------------------------------


def format_object(
    obj: object,
    include: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
    errors: list[Exception] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the ``(data, metadata)`` mimebundle that displays *obj*.

    ``include`` / ``exclude`` restrict the rich mimetypes; ``text/plain`` is
    always present.  A failing ``_repr_*_`` method (or ``__repr__``) is
    skipped: its exception is appended to *errors* when given, else logged;
    one raising ``NotImplementedError`` declines quietly.
    """
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    report = _reporter(obj, errors)
    known = formatters.lookup(obj)
    if known is not None:
        data, metadata = dict(known[0]), dict(known[1])
    elif _has_repr_methods(obj):
        _add_mimebundle(obj, include, exclude, data, metadata, report)
        for mimetype, name in REPR_METHODS:
            if mimetype in data or not _wanted(mimetype, include, exclude):
                continue
            _add_repr(obj, name, mimetype, data, metadata, report)
    data = {
        mimetype: value
        for mimetype, value in data.items()
        if mimetype == "text/plain" or _wanted(mimetype, include, exclude)
    }
    if not isinstance(data.get("text/plain"), str):
        data["text/plain"] = plain_text(obj, errors)
    return data, metadata


def format_result(
    value: object, errors: list[Exception]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The bundle showing a cell's *value*, or None if it displayed itself.

    An object with ``_ipython_display_`` displays itself (the method
    publishes what it likes, usually through ``display``), as in IPython.
    Failing repr methods add their exceptions to *errors*.
    """
    if displays_itself(value, errors):
        return None
    return format_object(value, errors=errors)


def displays_itself(obj: object, errors: list[Exception]) -> bool:
    """Call ``obj._ipython_display_()`` if it has one; whether it had.

    The method's exception, if it raises, goes to *errors*.
    """
    if not _has_repr_methods(obj):
        return False
    method = _find_method(obj, "_ipython_display_")
    if method is None:
        return False
    try:
        method()
    except Exception as e:
        errors.append(e)
    return True


def plain_text(obj: object, errors: list[Exception] | None = None) -> str:
    """Return the ``text/plain`` representation of *obj*; never raises.

    When ``repr()`` fails its exception goes to *errors* (if given, else the
    log) and a placeholder naming the type is returned.
    """
    try:
        if isinstance(obj, dict | list | set | tuple | frozenset):
            return pprint.pformat(obj)
        return repr(obj)
    except Exception as e:
        _reporter(obj, errors)("__repr__", e)
        return f"<{type(obj).__qualname__} object at {id(obj):#x} (repr failed)>"


#: Called with the name of a failing repr method and its exception.
_Report = Callable[[str, Exception], None]


def _reporter(obj: object, errors: list[Exception] | None) -> _Report:
    """Where the exceptions of failing repr methods go: *errors*, or the log."""

    def report(name: str, error: Exception) -> None:
        if isinstance(error, NotImplementedError):
            return  # the method declines to give this format, as IPython allows
        if errors is not None:
            errors.append(error)
        else:
            log.failure(
                "{method} of {type} raised; skipping it",
                failure=Failure(error),
                method=name,
                type=type(obj).__qualname__,
            )

    return report


def _wanted(
    mimetype: str,
    include: Collection[str] | None,
    exclude: Collection[str] | None,
) -> bool:
    """Whether *mimetype* passes the ``include`` / ``exclude`` filters."""
    if include is not None and mimetype not in include:
        return False
    return not (exclude is not None and mimetype in exclude)


def _has_repr_methods(obj: object) -> bool:
    """Whether *obj* may be asked for its ``_repr_*_`` methods.

    Classes are not: their ``_repr_*_`` attributes are unbound methods.
    """
    if isinstance(obj, type):
        return False
    try:
        return not hasattr(obj, _CANARY)
    except Exception:
        return False


def _find_method(obj: object, name: str) -> Callable[..., Any] | None:
    """Return the callable attribute *name* of *obj*, or ``None``."""
    try:
        method = getattr(obj, name, None)
    except Exception:
        return None
    return method if callable(method) else None


def _add_mimebundle(
    obj: object,
    include: Collection[str] | None,
    exclude: Collection[str] | None,
    data: dict[str, Any],
    metadata: dict[str, Any],
    report: _Report,
) -> None:
    """Add what ``obj._repr_mimebundle_()`` gives to *data* and *metadata*."""
    method = _find_method(obj, "_repr_mimebundle_")
    if method is None:
        return
    try:
        result = method(include=include, exclude=exclude)
    except Exception as e:
        report("_repr_mimebundle_", e)
        return
    bundle, bundle_metadata = _split_metadata(result)
    if isinstance(bundle, dict):
        for mimetype, value in bundle.items():
            if value is not None:
                data[mimetype] = _encode(mimetype, value)
    if isinstance(bundle_metadata, dict):
        metadata.update(bundle_metadata)


def _add_repr(
    obj: object,
    name: str,
    mimetype: str,
    data: dict[str, Any],
    metadata: dict[str, Any],
    report: _Report,
) -> None:
    """Add what ``obj.<name>()`` gives for *mimetype*, if anything."""
    method = _find_method(obj, name)
    if method is None:
        return
    try:
        value, value_metadata = _split_metadata(method())
        if value is None:
            return
        data[mimetype] = _encode(mimetype, value)
    except Exception as e:
        report(name, e)
        return
    if isinstance(value_metadata, dict) and value_metadata:
        metadata[mimetype] = value_metadata


def _split_metadata(result: Any) -> tuple[Any, Any]:
    """Split a ``(value, metadata)`` pair; a lone value has no metadata."""
    if isinstance(result, tuple) and len(result) == 2:
        return result[0], result[1]
    return result, None


def _encode(mimetype: str, value: Any) -> Any:
    """Make *value* JSON-ready: base64 for binary data, str for other bytes."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if mimetype in BINARY_MIMETYPES:
            return base64.b64encode(raw).decode("ascii")
        return raw.decode("utf-8", errors="replace")
    return value


# ---------------------------------------------------------------------------
# Display objects users create in cells
# ---------------------------------------------------------------------------


class DisplayObject:
    """Base class of the display objects: wraps *data* of one mimetype."""

    def __init__(self, data: Any, metadata: dict[str, Any] | None = None) -> None:
        self.data = data
        self.metadata = dict(metadata) if metadata else {}

    def _with_metadata(self, value: Any) -> Any:
        """Return *value*, paired with the metadata when there is some."""
        return (value, dict(self.metadata)) if self.metadata else value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({reprlib.repr(self.data)})"


class TextDisplayObject(DisplayObject):
    """A display object whose data is text (bytes are decoded as UTF-8)."""

    def __init__(
        self, data: str | bytes, metadata: dict[str, Any] | None = None
    ) -> None:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        if not isinstance(data, str):
            raise TypeError(f"{type(self).__name__} needs str data, got {data!r}")
        super().__init__(data, metadata)


class HTML(TextDisplayObject):
    """HTML to render as ``text/html``."""

    def _repr_html_(self) -> Any:
        return self._with_metadata(self.data)


class Markdown(TextDisplayObject):
    """Markdown to render as ``text/markdown``."""

    def _repr_markdown_(self) -> Any:
        return self._with_metadata(self.data)


class SVG(TextDisplayObject):
    """An SVG image, rendered as ``image/svg+xml``."""

    def _repr_svg_(self) -> Any:
        return self._with_metadata(self.data)


class Latex(TextDisplayObject):
    """LaTeX (usually math between ``$`` signs) rendered as ``text/latex``."""

    def _repr_latex_(self) -> Any:
        return self._with_metadata(self.data)


class Javascript(TextDisplayObject):
    """JavaScript for the front-end to run, as ``application/javascript``."""

    def _repr_javascript_(self) -> Any:
        return self._with_metadata(self.data)


class JSON(DisplayObject):
    """JSON data shown as a tree (``application/json``).

    *data* is a JSON-serialisable object, or a str holding JSON text.
    """

    def __init__(
        self,
        data: Any,
        expanded: bool = False,
        root: str = "root",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(data, str | bytes):
            data = json.loads(data)
        json.dumps(data)  # fail now, in the user's cell, if not serialisable
        super().__init__(data, {"expanded": expanded, "root": root, **(metadata or {})})

    def _repr_json_(self) -> Any:
        return self._with_metadata(self.data)


class Pretty(DisplayObject):
    """Preformatted plain text, shown exactly as given (``text/plain``)."""

    def __init__(self, text: str) -> None:
        super().__init__(str(text))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        return {"text/plain": self.data}

    def __repr__(self) -> str:
        return self.data


class Image(DisplayObject):
    """A PNG or JPEG image, from bytes (*data*) or a file (*filename*).

    *format* is ``"png"`` or ``"jpeg"`` (``"jpg"`` too); when omitted it is
    guessed from the file name or the image's first bytes.  A str *data* is
    taken as already base64-encoded.  *width* and *height* become metadata.
    """

    FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}

    def __init__(
        self,
        data: bytes | str | None = None,
        filename: str | os.PathLike[str] | None = None,
        format: str | None = None,
        width: int | None = None,
        height: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if (data is None) == (filename is None):
            raise ValueError("Image needs exactly one of data or filename")
        if filename is not None:
            with open(filename, "rb") as f:
                data = f.read()
        self.format = self._pick_format(data, filename, format)
        size = {k: v for k, v in (("width", width), ("height", height)) if v}
        super().__init__(data, {**size, **(metadata or {})})

    @classmethod
    def _pick_format(
        cls, data: Any, filename: str | os.PathLike[str] | None, format: str | None
    ) -> str:
        """Return ``"png"`` or ``"jpeg"`` from the arguments or the data."""
        if format is None and filename is not None:
            format = os.path.splitext(os.fspath(filename))[1].lstrip(".") or None
        if format is None:
            return "jpeg" if _leading_bytes(data).startswith(b"\xff\xd8") else "png"
        try:
            return cls.FORMATS[format.lower()]
        except KeyError:
            raise ValueError(f"unsupported image format {format!r}") from None

    def _repr_png_(self) -> Any:
        return self._with_metadata(self.data) if self.format == "png" else None

    def _repr_jpeg_(self) -> Any:
        return self._with_metadata(self.data) if self.format == "jpeg" else None

    def __repr__(self) -> str:
        size = len(self.data)
        unit = "bytes" if isinstance(self.data, bytes) else "base64 characters"
        return f"<Image {self.format}: {size} {unit}>"


def _leading_bytes(data: Any) -> bytes:
    """The first bytes of image *data*, decoding base64 text if needed."""
    if isinstance(data, bytes):
        return data[:4]
    try:
        return base64.b64decode(data[:8])
    except (binascii.Error, ValueError, TypeError):
        return b""


# ---------------------------------------------------------------------------
# Publishing
# ---------------------------------------------------------------------------


def publish_display_data(
    send: Send,
    data: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    transient: dict[str, Any] | None = None,
    update: bool = False,
) -> None:
    """Send a ``display_data`` (or ``update_display_data``) message."""
    msg_type = "update_display_data" if update else "display_data"
    content = {
        "data": data,
        "metadata": metadata or {},
        "transient": transient or {},
    }
    send(msg_type, content)


class DisplayHandle:
    """A handle on a display with a ``display_id``, to update it later."""

    def __init__(self, publisher: DisplayPublisher, display_id: str) -> None:
        self.publisher = publisher
        self.display_id = display_id

    def display(self, obj: object, **kwargs: Any) -> None:
        """Show *obj* again, as a new output sharing this display id."""
        self.publisher.display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj: object, **kwargs: Any) -> None:
        """Replace every output with this display id by *obj*."""
        self.publisher.update_display(obj, display_id=self.display_id, **kwargs)

    def __repr__(self) -> str:
        return f"<DisplayHandle display_id={self.display_id}>"


class DisplayPublisher:
    """Publishes display messages through *send(msg_type, content)*.

    The kernel supplies *send*; it publishes on IOPub with the right parent.
    """

    def __init__(self, send: Send) -> None:
        self.send = send

    def display(
        self,
        *objs: Any,
        raw: bool = False,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        metadata: dict[str, Any] | None = None,
        transient: dict[str, Any] | None = None,
        display_id: str | bool | None = None,
        update: bool = False,
        clear: bool = False,
    ) -> DisplayHandle | None:
        """Display each of *objs*; with a *display_id*, return its handle.

        ``raw=True`` means *objs* are already mimebundle dicts.
        ``display_id=True`` makes a new id.  ``update=True`` replaces the
        outputs that have *display_id* instead of adding a new one.
        ``clear=True`` replaces the cell's output so far, without flicker
        (``clear_output(wait=True)`` first).
        """
        if display_id is True:
            display_id = uuid.uuid4().hex
        if update and not display_id:
            raise TypeError("update=True needs a display_id")
        if clear:
            self.clear_output(wait=True)
        transient = dict(transient or {})
        if display_id:
            transient["display_id"] = display_id
        for obj in objs:
            errors: list[Exception] = []
            if not raw and not update and displays_itself(obj, errors):
                self._show_errors(errors)
                continue
            data, md = self._bundle(obj, raw, include, exclude, errors)
            if metadata:
                md.update(metadata)
            self._show_errors(errors)
            publish_display_data(self.send, data, md, transient, update)
        return DisplayHandle(self, display_id) if display_id else None

    def _show_errors(self, errors: list[Exception]) -> None:
        """Show each failing repr's traceback as an ``error`` output; the cell goes on."""
        for error in errors:
            content = error_reply(error, outside_cells=True)
            del content["status"]
            self.send("error", content)

    def update_display(self, obj: object, *, display_id: str, **kwargs: Any) -> None:
        """Replace the outputs with *display_id* by *obj*."""
        self.display(obj, display_id=display_id, update=True, **kwargs)

    def clear_output(self, wait: bool = False) -> None:
        """Clear the cell's output; with *wait*, only when new output comes."""
        self.send("clear_output", {"wait": bool(wait)})

    @staticmethod
    def _bundle(
        obj: Any,
        raw: bool,
        include: Collection[str] | None,
        exclude: Collection[str] | None,
        errors: list[Exception],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return the ``(data, metadata)`` to publish for *obj*."""
        if not raw:
            return format_object(obj, include, exclude, errors)
        if not isinstance(obj, dict):
            raise TypeError(f"raw display needs a mimebundle dict, got {obj!r}")
        return dict(obj), {}
