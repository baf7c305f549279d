"""Object introspection for the built-in Python kernel.

``inspect`` builds the content of a Jupyter ``inspect_reply`` (Shift-Tab in
the notebook), ``help_text`` the text shown for ``obj?`` / ``obj??`` cells and
``parse_help_request`` (from :mod:`txkernel.python.expressions`, which the
kernel imports at start without this module) recognises such cells.  They
are pure functions that run on whichever thread the caller uses (the kernel
calls them on its execution thread, where the namespace lives) and know
nothing about sockets.

Objects are found with :func:`txkernel.python.completion.resolve_expression`:
names, dotted attributes and constant subscripts only, never calls.
"""

from __future__ import annotations

import inspect as _inspect
import re
import reprlib
from collections.abc import Callable
from typing import Any

from txkernel.python.cell import label_of
from txkernel.python.completion import resolve_expression
from txkernel.python.expressions import EXPRESSION_PATTERN, parse_help_request

__all__ = ["inspect", "help_text", "parse_help_request"]

_LABEL_WIDTH = 11
_EXPRESSION_END_RE = re.compile(rf"(?<![\w.])({EXPRESSION_PATTERN})$")
# Builtin types whose repr and len cannot run user code at the top level.
_PLAIN_TYPES = (
    int, float, complex, bool, str, bytes, bytearray, type(None),
    list, tuple, dict, set, frozenset, range,
)  # fmt: skip
_SIZED_TYPES = (str, bytes, bytearray, list, tuple, dict, set, frozenset, range)

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 20


def inspect(
    code: str, cursor_pos: int, detail_level: int, namespace: dict[str, Any]
) -> dict[str, Any]:
    """Return the content of an ``inspect_reply`` for the object at the cursor."""
    try:
        text = _inspect_at(code, cursor_pos, detail_level, namespace)
    except Exception:
        text = None
    data = {} if text is None else {"text/plain": text}
    return {"status": "ok", "found": text is not None, "data": data, "metadata": {}}


def help_text(expr: str, namespace: dict[str, Any], detail_level: int) -> str | None:
    """Describe the object named by ``expr``, or None when it is not found."""
    try:
        obj = resolve_expression(expr, namespace, descriptors=True)
    except Exception:
        return None
    return _describe(obj, expr.strip(), detail_level)


# Finding the object at the cursor -------------------------------------------


def _inspect_at(
    code: str, cursor: int, detail_level: int, namespace: dict[str, Any]
) -> str | None:
    if not 0 <= cursor <= len(code):
        return None
    for expr in _candidates(code, cursor):
        text = help_text(expr, namespace, detail_level)
        if text is not None:
            return text
    return None


def _candidates(code: str, cursor: int) -> list[str]:
    """Expressions to try: the one under the cursor, then enclosing callees."""
    before = code[:cursor]
    tail = re.match(r"\w*", code[cursor:])
    line = before[before.rfind("\n") + 1 :] + (tail.group() if tail else "")
    found = _expression_ending(line.rstrip(" \t"))
    candidates = [found] if found else []
    for position in reversed(_open_parentheses(before)):
        callee = _expression_ending(before[:position].rstrip())
        if callee:
            candidates.append(callee)
    return candidates


def _expression_ending(text: str) -> str | None:
    match = _EXPRESSION_END_RE.search(text)
    return match.group(1) if match else None


def _open_parentheses(source: str) -> list[int]:
    """Offsets of the ``(`` still open at the end of ``source``.

    Strings and comments are skipped; other brackets are tracked so that a
    ``)`` only closes the matching ``(``.
    """
    stack: list[tuple[str, int]] = []
    closing = {")": "(", "]": "[", "}": "{"}
    index = 0
    while index < len(source):
        char = source[index]
        if char == "#":
            newline = source.find("\n", index)
            index = len(source) if newline < 0 else newline
        elif char in "'\"":
            index = _skip_string(source, index)
            continue
        elif char in "([{":
            stack.append((char, index))
        elif char in closing and stack and stack[-1][0] == closing[char]:
            stack.pop()
        index += 1
    return [position for char, position in stack if char == "("]


def _skip_string(source: str, start: int) -> int:
    """The offset just past the string literal starting at ``start``."""
    quote = (
        source[start] * 3
        if source.startswith(source[start] * 3, start)
        else source[start]
    )
    index = start + len(quote)
    while index < len(source):
        if source[index] == "\\":
            index += 2
        elif source.startswith(quote, index):
            return index + len(quote)
        elif source[index] == "\n" and len(quote) == 1:
            return index
        else:
            index += 1
    return len(source)


# Describing an object -------------------------------------------------------


def _describe(obj: Any, expr: str, detail_level: int) -> str:
    """The plain-text help layout: labelled fields, then docstring and source."""
    fields = [
        ("Type", type(obj).__name__),
        ("Value", _safely(_value, obj)),
        ("Length", _safely(_length, obj)),
        ("Signature", _safely(_signature, obj, expr)),
        ("File", _safely(_file, obj)),
    ]
    lines = [
        f"{label + ':':<{_LABEL_WIDTH}}{value}" for label, value in fields if value
    ]
    lines += ["Docstring:", _safely(_inspect.getdoc, obj) or "<no docstring>"]
    source = _safely(_source, obj) if detail_level else None
    if source:
        lines += ["Source:", source]
    return "\n".join(lines)


def _safely(describe: Callable[..., str | None], *args: Any) -> str | None:
    """One piece of the description, or None when the object resists it."""
    try:
        return describe(*args)
    except Exception:
        return None


def _value(obj: Any) -> str | None:
    if type(obj) in _PLAIN_TYPES:
        return _repr.repr(obj)
    return None


def _length(obj: Any) -> str | None:
    if type(obj) in _SIZED_TYPES:
        return str(len(obj))
    return None


def _signature(obj: Any, expr: str) -> str | None:
    if not callable(obj):
        return None
    try:
        signature = _inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    name = getattr(obj, "__name__", None)
    if not isinstance(name, str):
        name = re.split(r"[.\[]", expr)[-1] or expr
    return f"{name}{_unquote_annotations(signature)}"


class _SourceText(str):
    """An annotation kept as text (postponed evaluation), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def _unquote_annotations(signature: _inspect.Signature) -> _inspect.Signature:
    """Show ``a: 'int'`` string annotations as ``a: int`` without evaluating them."""

    def unquote(annotation: Any) -> Any:
        return _SourceText(annotation) if isinstance(annotation, str) else annotation

    parameters = [
        parameter.replace(annotation=unquote(parameter.annotation))
        for parameter in signature.parameters.values()
    ]
    return signature.replace(
        parameters=parameters,
        return_annotation=unquote(signature.return_annotation),
    )


def _file(obj: Any) -> str | None:
    for target in (obj, type(obj)):
        try:
            found = _inspect.getsourcefile(target) or _inspect.getfile(target)
        except (TypeError, OSError):
            continue
        if found.startswith("<frozen"):
            # Frozen stdlib modules (3.11+) still record where they came from.
            module_file = getattr(_inspect.getmodule(target), "__file__", None)
            return module_file or found
        return label_of(found)
    return None


def _source(obj: Any) -> str | None:
    try:
        return _inspect.getsource(obj).rstrip("\n")
    except (TypeError, OSError):
        return None
