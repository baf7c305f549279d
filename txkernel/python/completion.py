"""Tab completion for the built-in Python kernel.

``complete`` builds the content of a Jupyter ``complete_reply`` from the code,
the cursor position and the user namespace.  It is a pure function: it runs on
whichever thread the caller uses (the kernel calls it on its execution thread,
where the namespace lives) and knows nothing about sockets or messages.

Objects are looked up without running user code: only names, dotted
attributes and constant subscripts of builtin containers are evaluated, and
attributes implemented by Python-level descriptors (properties and the like)
are never triggered.  ``resolve_expression`` implements that lookup and is
shared with :mod:`txkernel.python.inspection`.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import keyword
import os
import pkgutil
import re
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["EXPRESSION_PATTERN", "UnsafeExpression", "complete", "resolve_expression"]

_NAME = r"[^\W\d]\w*"
_SUBSCRIPT = r"\[[^\[\]\n]*\]"

#: A dotted name with optional subscripts, e.g. ``a.b[0].c``.
EXPRESSION_PATTERN = rf"{_NAME}(?:\.{_NAME}|{_SUBSCRIPT})*"

_ATTRIBUTE_RE = re.compile(rf"(?<![\w.])(?P<expr>{EXPRESSION_PATTERN})\.(?P<attr>\w*)$")
_KEY_RE = re.compile(
    rf"(?<![\w.])(?P<expr>{EXPRESSION_PATTERN})\[\s*"
    r"(?P<token>(?P<prefix>[bB]?)(?P<quote>['\"])"
    r"(?P<body>(?:(?!(?P=quote))[^\\\n]|\\.)*)|-?\d*)$"
)
_IMPORT_RE = re.compile(r"\s*import\s+(?P<names>.*)")
_FROM_MODULE_RE = re.compile(r"\s*from\s+(?P<module>[\w.]*)")
_FROM_KEYWORD_RE = re.compile(r"\s*from\s+(?P<module>[\w.]+)\s+(?P<word>\w*)")
_FROM_IMPORT_RE = re.compile(
    r"\s*from\s+(?P<module>[\w.]+)\s+import\s+\(?(?P<names>.*)"
)

# Descriptor types whose ``__get__`` is implemented in C and only binds or
# reads a slot: safe to trigger while looking an attribute up.
_HARMLESS_DESCRIPTORS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.MemberDescriptorType,
    types.GetSetDescriptorType,
    classmethod,
    staticmethod,
)


class UnsafeExpression(ValueError):
    """The expression cannot be evaluated without running arbitrary code."""


@dataclass
class _Completion:
    matches: list[str]
    start: int
    end: int


@dataclass
class _Context:
    code: str
    cursor: int
    line: str
    namespace: dict[str, Any]


def complete(code: str, cursor_pos: int, namespace: dict[str, Any]) -> dict[str, Any]:
    """Return the content of a ``complete_reply`` for the token at the cursor."""
    try:
        found = _complete(code, cursor_pos, namespace)
    except Exception:
        found = None
    if found is None:
        found = _Completion([], cursor_pos, cursor_pos)
    return {
        "status": "ok",
        "matches": sorted(set(found.matches)),
        "cursor_start": found.start,
        "cursor_end": found.end,
        "metadata": {},
    }


def _complete(code: str, cursor: int, namespace: dict[str, Any]) -> _Completion | None:
    """Try each kind of completion in turn, most specific first."""
    if not 0 <= cursor <= len(code):
        return None
    before = code[:cursor]
    line = before[before.rfind("\n") + 1 :]
    context = _Context(code, cursor, line, namespace)
    for finder in (_complete_import, _complete_key, _complete_attribute):
        found = finder(context)
        if found is not None:
            return found
    return _complete_name(context)


# Object lookup ---------------------------------------------------------------


def resolve_expression(
    expr: str, namespace: dict[str, Any], *, descriptors: bool = False
) -> Any:
    """Evaluate a dotted name / constant subscript expression without side effects.

    Raises ``LookupError``, ``AttributeError``, ``SyntaxError`` or
    ``ValueError`` when the object cannot be found or safely reached.  With ``descriptors`` an
    attribute backed by a Python-level descriptor (e.g. a property) resolves
    to the descriptor itself instead of failing.
    """
    tree = ast.parse(expr.strip(), mode="eval")
    return _evaluate(tree.body, namespace, descriptors)


def _evaluate(node: ast.AST, namespace: dict[str, Any], descriptors: bool) -> Any:
    if isinstance(node, ast.Name):
        return _lookup_name(node.id, namespace)
    if isinstance(node, ast.Attribute):
        owner = _evaluate(node.value, namespace, descriptors)
        return _get_attribute(owner, node.attr, descriptors)
    if isinstance(node, ast.Subscript):
        container = _evaluate(node.value, namespace, descriptors)
        return _get_item(container, _constant(node.slice))
    raise UnsafeExpression(ast.dump(node))


def _lookup_name(name: str, namespace: dict[str, Any]) -> Any:
    if name in namespace:
        return namespace[name]
    if hasattr(builtins, name):
        return getattr(builtins, name)
    raise LookupError(name)


def _get_attribute(owner: Any, name: str, descriptors: bool) -> Any:
    """``getattr`` that refuses to run properties or ``__getattr__`` hooks."""
    static = inspect.getattr_static(owner, name)
    if not hasattr(type(static), "__get__") or isinstance(
        static, _HARMLESS_DESCRIPTORS
    ):
        return getattr(owner, name)
    if descriptors:
        return static
    raise UnsafeExpression(name)


def _constant(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value
    raise UnsafeExpression(ast.dump(node))


def _get_item(container: Any, key: Any) -> Any:
    """Subscript builtin dicts, lists and tuples only, bypassing overrides."""
    if isinstance(container, dict):
        if dict.__contains__(container, key):
            return dict.__getitem__(container, key)
        raise KeyError(key)
    if isinstance(container, list) and type(key) is int:
        return list.__getitem__(container, key)
    if isinstance(container, tuple) and type(key) is int:
        return tuple.__getitem__(container, key)
    raise UnsafeExpression(type(container).__name__)


# Filtering -------------------------------------------------------------------


def _filter(names: Iterable[str], prefix: str) -> list[str]:
    """Names starting with ``prefix``; private ones only for a ``_`` prefix."""
    private = prefix.startswith("_")
    return [
        name
        for name in names
        if name.startswith(prefix) and (private or not name.startswith("_"))
    ]


def _token_completion(
    context: _Context, names: Iterable[str], prefix: str
) -> _Completion:
    """Matches replacing the ``prefix`` that ends at the cursor."""
    return _Completion(
        _filter(names, prefix), context.cursor - len(prefix), context.cursor
    )


# Names -------------------------------------------------------------------------


def _complete_name(context: _Context) -> _Completion | None:
    """Namespace names, builtins and keywords."""
    match = re.search(r"\w*$", context.line)
    assert match is not None
    prefix = match.group()
    preceding = context.line[: match.start()]
    if prefix[:1].isdigit() or preceding.endswith("."):
        return None
    names = {name for name in context.namespace if isinstance(name, str)}
    names.update(dir(builtins))
    names.update(keyword.kwlist)
    names.update(word for word in keyword.softkwlist if word != "_")
    return _token_completion(
        context, (name for name in names if name.isidentifier()), prefix
    )


# Attributes ---------------------------------------------------------------------


def _complete_attribute(context: _Context) -> _Completion | None:
    """Attributes of a safely evaluated ``expr.`` before the cursor."""
    match = _ATTRIBUTE_RE.search(context.line)
    if match is None:
        return None
    prefix = match.group("attr")
    try:
        owner = resolve_expression(match.group("expr"), context.namespace)
        names = dir(owner)
    except Exception:
        names = []
    return _token_completion(context, names, prefix)


# Dictionary keys ---------------------------------------------------------------


def _complete_key(context: _Context) -> _Completion | None:
    """Literal keys of a dict for ``d[``, ``d["pre`` or ``d[1``."""
    match = _KEY_RE.search(context.line)
    if match is None:
        return None
    token = match.group("token")
    quote = match.group("quote")
    try:
        keys = _mapping_keys(resolve_expression(match.group("expr"), context.namespace))
    except Exception:
        keys = None
    if keys is None:
        # A quoted token is never a name; bare ``x[`` may still want names.
        return _Completion([], context.cursor, context.cursor) if quote else None
    prefix = match.group("prefix") or ""
    literals = (_key_literal(key, prefix, quote) for key in keys)
    matches = [text for text in literals if text is not None and text.startswith(token)]
    end = context.cursor
    if quote and context.code.startswith(quote, end):
        end += 1  # swallow a closing quote the editor already inserted
    return _Completion(matches, context.cursor - len(token), end)


def _mapping_keys(obj: Any) -> list[Any] | None:
    """The keys of a mapping whose key listing cannot run user code."""
    if isinstance(obj, dict):
        return list(dict.keys(obj))
    if isinstance(obj, types.MappingProxyType) or obj is os.environ:
        return list(obj.keys())
    return None


def _key_literal(key: Any, prefix: str, quote: str | None) -> str | None:
    """How ``key`` is written in source, in the style the user started."""
    if quote is None:
        if type(key) in (str, bytes, int):
            return repr(key)
        return None
    if prefix and isinstance(key, bytes):
        return prefix + quote + _escape_bytes(key, quote) + quote
    if not prefix and isinstance(key, str):
        return quote + _escape_text(key, quote) + quote
    return None


def _escape_text(text: str, quote: str) -> str:
    return "".join(_escape_char(char, quote) for char in text)


def _escape_char(char: str, quote: str) -> str:
    if char in ("\\", quote):
        return "\\" + char
    if char.isprintable():
        return char
    return repr(char)[1:-1]


def _escape_bytes(data: bytes, quote: str) -> str:
    return "".join(
        _escape_char(chr(byte), quote)
        if 32 <= byte < 127
        else repr(bytes([byte]))[2:-1]
        for byte in data
    )


# Imports ----------------------------------------------------------------------


def _complete_import(context: _Context) -> _Completion | None:
    """Module and member names in ``import`` and ``from ... import`` lines."""
    statement = context.line.rsplit(";", 1)[-1]
    match = _FROM_IMPORT_RE.fullmatch(statement)
    if match:
        piece = match.group("names").rsplit(",", 1)[-1].lstrip()
        if not re.fullmatch(r"\w*", piece):
            return _Completion([], context.cursor, context.cursor)
        names = _module_members(match.group("module"))
        return _token_completion(context, names, piece)
    match = _FROM_KEYWORD_RE.fullmatch(statement)
    if match:
        return _token_completion(context, ["import"], match.group("word"))
    match = _FROM_MODULE_RE.fullmatch(statement)
    if match:
        return _complete_module_path(context, match.group("module"))
    match = _IMPORT_RE.fullmatch(statement)
    if match:
        piece = match.group("names").rsplit(",", 1)[-1].lstrip()
        if not re.fullmatch(r"[\w.]*", piece):
            return _Completion([], context.cursor, context.cursor)
        return _complete_module_path(context, piece)
    return None


def _complete_module_path(context: _Context, dotted: str) -> _Completion:
    """Complete the last component of a dotted module name."""
    parent, _, prefix = dotted.rpartition(".")
    if not parent:
        names = [] if dotted.startswith(".") else _top_level_modules()
    elif "" in parent.split("."):
        names = []  # relative imports and typos like ``os..``
    else:
        names = _submodules(parent, _import(parent))
    return _token_completion(context, names, prefix)


def _top_level_modules() -> set[str]:
    names = {module.name for module in pkgutil.iter_modules()}
    names.update(sys.builtin_module_names)
    names.update(name for name in sys.modules if "." not in name)
    return names


def _submodules(parent: str, module: types.ModuleType | None) -> set[str]:
    """Submodules of ``parent``: found on its ``__path__`` or already imported."""
    names: set[str] = set()
    path = getattr(module, "__path__", None)
    if path is not None:
        names.update(info.name for info in pkgutil.iter_modules(path))
    start = parent + "."
    for name in list(sys.modules):
        rest = name[len(start) :]
        if name.startswith(start) and rest and "." not in rest:
            names.add(rest)
    return names


def _module_members(dotted: str) -> set[str]:
    """Everything ``from dotted import ...`` can name."""
    if dotted.startswith(".") or "" in dotted.split("."):
        return set()
    module = _import(dotted)
    if module is None:
        return set()
    names = {name for name in dir(module) if isinstance(name, str)}
    return names | _submodules(dotted, module)


def _import(dotted: str) -> types.ModuleType | None:
    """Import a module for listing its contents, or None if that fails."""
    try:
        return importlib.import_module(dotted)
    except (Exception, SystemExit):
        return None
