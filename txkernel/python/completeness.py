"""Code completeness checks for the built-in Python kernel.

``is_complete`` builds the content of a Jupyter ``is_complete_reply``: console
frontends ask it whether pressing Enter should run the cell or open a
continuation line.  It is a pure function that runs on whichever thread the
caller uses (the kernel calls it on its execution thread) and knows nothing
about sockets.

The rules follow the interactive console: code that compiles is complete,
except that a block statement spanning several lines waits for a blank line;
code that ``codeop`` reports as unfinished (open brackets, triple-quoted
strings, backslash continuations, a ``:`` header without a body) is
incomplete; anything else is invalid.
"""

from __future__ import annotations

import ast
import codeop
import io
import tokenize
import warnings
from typing import Any

from txkernel.python.expressions import parse_help_request

__all__ = ["is_complete"]

_INDENT_STEP = "    "
# Fields holding the suite of a compound statement (``match`` has ``cases``).
_BLOCK_FIELDS = ("body", "cases")
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_INSIGNIFICANT_TOKENS = frozenset(
    {
        tokenize.NEWLINE,
        tokenize.NL,
        tokenize.COMMENT,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
)


def is_complete(code: str) -> dict[str, Any]:
    """Return the content of an ``is_complete_reply`` for ``code``.

    Unexpected failures (e.g. code nested too deeply for the compiler) give
    the protocol's ``unknown`` status rather than an exception.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _is_complete(code)
    except Exception:
        return {"status": "unknown"}


def _is_complete(code: str) -> dict[str, Any]:
    code = code.replace("\r\n", "\n")
    if not code.strip() or parse_help_request(code) is not None:
        return {"status": "complete"}
    status = _compile_status(code)
    if status == "complete" and _waits_for_blank_line(code):
        status = "incomplete"
    if status == "incomplete":
        return {"status": "incomplete", "indent": _next_indent(code)}
    return {"status": status}


def _compile_status(code: str) -> str:
    """``complete``, ``incomplete`` or ``invalid`` according to the compiler."""
    try:
        compile(code, "<input>", "exec", _FLAGS, dont_inherit=True)
        return "complete"
    except (SyntaxError, ValueError, OverflowError):
        pass
    try:
        compiled = codeop.compile_command(code, "<input>", "exec")
    except (SyntaxError, ValueError, OverflowError):
        return "invalid"
    # A code object here means only codeop's leniency accepted it.
    return "incomplete" if compiled is None else "invalid"


def _waits_for_blank_line(code: str) -> bool:
    """True when the code ends inside a multi-line block statement.

    Like the console, such a block only ends with a blank (or whitespace-only)
    last line, so that more of its body, or an ``else:``, can still follow.
    """
    tree: ast.Module = compile(
        code, "<input>", "exec", _FLAGS | ast.PyCF_ONLY_AST, dont_inherit=True
    )
    if not tree.body or _ends_with_blank_line(code):
        return False
    last = tree.body[-1]
    if not any(isinstance(getattr(last, field, None), list) for field in _BLOCK_FIELDS):
        return False  # a simple statement, not a block
    # ``if x: pass`` (even when decorated, for a ``def``) runs at once.
    return (last.end_lineno or last.lineno) > last.lineno


def _ends_with_blank_line(code: str) -> bool:
    return "\n" in code and not code.rsplit("\n", 1)[1].strip()


def _next_indent(code: str) -> str:
    """Indentation for the continuation line.

    The last non-blank line's indentation, plus one level when that line ends
    with a block-opening ``:``.
    """
    lines = code.split("\n")
    number = max(
        (index for index, line in enumerate(lines, 1) if line.strip()), default=0
    )
    if not number:
        return ""
    last = lines[number - 1]
    indent = last[: len(last) - len(last.lstrip())]
    if _opens_block_on_line(code, number):
        indent += _INDENT_STEP
    return indent


def _opens_block_on_line(code: str, line_number: int) -> bool:
    """True when the last token of the code is a ``:`` outside brackets on that line."""
    depth = 0
    last: tuple[str, int, int] | None = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type in _INSIGNIFICANT_TOKENS:
                continue
            if token.type == tokenize.OP and token.string in "([{":
                depth += 1
            elif token.type == tokenize.OP and token.string in ")]}":
                depth -= 1
            last = (token.string, token.start[0], depth)
    except (tokenize.TokenError, SyntaxError):
        pass
    return last is not None and last == (":", line_number, 0)
