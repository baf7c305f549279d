"""The expression syntax the Python kernel's introspection reads, and help cells.

``EXPRESSION_PATTERN`` is what completion and inspection take for "the
object at the cursor": a dotted name with constant subscripts, never a call.
``parse_help_request`` recognises ``obj?`` / ``??obj`` cells; the kernel
calls it for every cell (execution thread) and :mod:`completeness` for every
``is_complete_request`` (reactor thread), so this module imports nothing but
``re``: the kernel starts without the completion and inspection machinery,
which the first such request imports.
"""

from __future__ import annotations

import re

__all__ = ["EXPRESSION_PATTERN", "parse_help_request"]

_NAME = r"[^\W\d]\w*"
_SUBSCRIPT = r"\[[^\[\]\n]*\]"

#: A dotted name with optional subscripts, e.g. ``a.b[0].c``.
EXPRESSION_PATTERN = rf"{_NAME}(?:\.{_NAME}|{_SUBSCRIPT})*"

_HELP_RE = re.compile(
    rf"\s*(?P<before>\?{{1,2}})?\s*(?P<expr>{EXPRESSION_PATTERN})\s*(?P<after>\?{{1,2}})?\s*"
)


def parse_help_request(code: str) -> tuple[str, int] | None:
    """Recognise ``obj?``, ``obj??``, ``?obj`` and ``??obj`` cells.

    Returns ``(expr, detail_level)`` or None for any other cell.
    """
    match = _HELP_RE.fullmatch(code)
    if match is None:
        return None
    marks = [mark for mark in (match.group("before"), match.group("after")) if mark]
    if len(marks) != 1:
        return None
    return match.group("expr"), len(marks[0]) - 1
