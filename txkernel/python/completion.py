"""Tab completion for the built-in Python kernel.

``complete`` builds the content of a Jupyter ``complete_reply`` from the code,
the cursor position and the user namespace.  It knows nothing about sockets
or messages; the kernel calls it on the reactor thread, so it keeps to a time
budget (:class:`Deadline`, 150 ms by default): work that is still left when
the budget is spent (waiting for a module import, scanning ``sys.path``,
typing matches) is skipped and the reply carries what was found.

Names bound by the cell's own text before the cursor count, read with
:mod:`txkernel.python.cellreader` without running the cell: after
``import collections; collections.Ord`` or ``s = "x"; s.up`` the names
complete before the cell has run.  Modules not yet imported are found with
:mod:`txkernel.python.modules` (imported in the background within the budget
when installed, read from source otherwise).

Objects are looked up without running user code: only names, dotted
attributes and constant subscripts of builtin containers are evaluated, and
attributes implemented by Python-level descriptors (properties and the like)
are never triggered.  ``resolve_expression`` implements that lookup and is
shared with :mod:`txkernel.python.inspection`.

The reply's metadata carries ``_jupyter_types_experimental``: for each match,
in the order of ``matches``, ``{start, end, text, type, signature}``, which
JupyterLab uses for the icon next to each completion.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import os
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cellreader import Binding, read_bindings
from .expressions import EXPRESSION_PATTERN
from .modules import (
    StaticModule,
    find_module,
    module_names,
    submodule_names,
    top_level_names,
)

__all__ = [
    "EXPRESSION_PATTERN",
    "Deadline",
    "UnsafeExpression",
    "complete",
    "resolve_expression",
]

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

# Callables whose signature ``inspect.signature`` reads without running user code.
_SIGNED = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
)

#: The default time budget of one completion, in seconds.
BUDGET = 0.15


class UnsafeExpression(ValueError):
    """The expression cannot be evaluated without running arbitrary code."""


class Deadline:
    """The time one completion may take; ``clock`` is ``time.monotonic`` unless a test gives its own."""

    def __init__(
        self, budget: float = BUDGET, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._end = clock() + budget

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.remaining() <= 0


class _Instance:
    """What a cell assigns by ``x = Type(...)`` or a literal: some instance of ``cls``."""

    def __init__(self, cls: type) -> None:
        self.cls = cls


#: (type, signature) of one match.
Typer = Callable[[str], tuple[str, str]]


@dataclass
class _Completion:
    matches: list[str]
    start: int
    end: int
    #: Gives the type and signature of a match; None: types unknown.
    typer: Typer | None = None


@dataclass
class _Context:
    code: str
    cursor: int
    line: str
    namespace: _Scope
    deadline: Deadline = field(default_factory=Deadline)


def complete(
    code: str,
    cursor_pos: int,
    namespace: dict[str, Any],
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """Return the content of a ``complete_reply`` for the token at the cursor.

    Never raises; takes about as long as ``deadline`` (150 ms by default) at most.
    """
    deadline = deadline if deadline is not None else Deadline()
    try:
        found = _complete(code, cursor_pos, namespace, deadline)
    except Exception:
        found = None
    if found is None:
        found = _Completion([], cursor_pos, cursor_pos)
    matches = sorted(set(found.matches))
    return {
        "status": "ok",
        "matches": matches,
        "cursor_start": found.start,
        "cursor_end": found.end,
        "metadata": {
            "_jupyter_types_experimental": list(_types(found, matches, deadline))
        },
    }


def _types(
    found: _Completion, matches: list[str], deadline: Deadline
) -> Iterator[dict[str, Any]]:
    """One ``_jupyter_types_experimental`` entry per match, in order."""
    for text in matches:
        kind, signature = "<unknown>", ""
        if found.typer is not None and not deadline.expired():
            try:
                kind, signature = found.typer(text)
            except Exception:
                pass
        yield {
            "start": found.start,
            "end": found.end,
            "text": text,
            "type": kind,
            "signature": signature,
        }


def _complete(
    code: str, cursor: int, namespace: dict[str, Any], deadline: Deadline
) -> _Completion | None:
    """Try each kind of completion in turn, most specific first."""
    if not 0 <= cursor <= len(code):
        return None
    before = code[:cursor]
    line = before[before.rfind("\n") + 1 :]
    scope = _Scope(namespace, read_bindings(code, cursor, deadline.expired), deadline)
    context = _Context(code, cursor, line, scope, deadline)
    for finder in (_complete_import, _complete_key, _complete_attribute):
        found = finder(context)
        if found is not None:
            return found
    return _complete_name(context)


# The cell's names over the user's namespace ------------------------------------

_UNRESOLVED = object()


class _Scope(Mapping[str, Any]):
    """The user namespace as the cell before the cursor would leave it.

    A name the cell binds resolves to what the cell binds it to, when that can
    be found without running anything; otherwise to the namespace's value.
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        bindings: dict[str, Binding],
        deadline: Deadline,
    ) -> None:
        self.namespace = namespace
        self.bindings = bindings
        self.deadline = deadline
        self._resolved: dict[str, Any] = {}
        self._resolving: set[str] = set()

    def names(self) -> set[str]:
        # list() of a dict is one step for the interpreter: safe while the
        # execution thread adds names to it.
        names = {name for name in list(self.namespace) if isinstance(name, str)}
        return names | set(self.bindings)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and self._cell_value(name) is not _UNRESOLVED:
            return True
        return name in self.namespace

    def __getitem__(self, name: str) -> Any:
        value = self._cell_value(name)
        if value is not _UNRESOLVED:
            return value
        return self.namespace[name]

    def kind(self, name: str) -> str | None:
        """The completion type of a name the cell binds, without resolving it."""
        binding = self.bindings.get(name)
        if binding is None:
            return None
        if binding.kind in ("module", "function", "class"):
            return binding.kind
        return None

    def _cell_value(self, name: str) -> Any:
        binding = self.bindings.get(name)
        if binding is None or name in self._resolving:
            return _UNRESOLVED
        if name not in self._resolved:
            self._resolving.add(name)
            try:
                self._resolved[name] = self._resolve(binding)
            except Exception:
                self._resolved[name] = _UNRESOLVED
            finally:
                self._resolving.discard(name)
        return self._resolved[name]

    def _resolve(self, binding: Binding) -> Any:
        if binding.kind == "module":
            found = find_module(binding.target, self.deadline.remaining)
            return _UNRESOLVED if found is None else found
        if binding.kind == "member":
            module_name, _, member = binding.target.partition(":")
            return self.member(
                find_module(module_name, self.deadline.remaining), member
            )
        if binding.kind == "type":
            cls = getattr(builtins, binding.target, None)
            return _Instance(cls) if isinstance(cls, type) else _UNRESOLVED
        if binding.kind == "expr":
            value = resolve_expression(binding.target, self)
            if not binding.call:
                return value
            return _Instance(value) if isinstance(value, type) else _UNRESOLVED
        return _UNRESOLVED

    def member(self, module: Any, name: str) -> Any:
        """``module.name`` for a module or a module known by source; may be a submodule."""
        if isinstance(module, types.ModuleType):
            try:
                return _get_attribute(module, name, False)
            except AttributeError:
                parent = module.__name__
        elif isinstance(module, StaticModule):
            parent = module.name
        else:
            return _UNRESOLVED
        found = find_module(f"{parent}.{name}", self.deadline.remaining)
        return _UNRESOLVED if found is None else found


# Object lookup ---------------------------------------------------------------


def resolve_expression(
    expr: str, namespace: Mapping[str, Any], *, descriptors: bool = False
) -> Any:
    """Evaluate a dotted name / constant subscript expression without side effects.

    Raises ``LookupError``, ``AttributeError``, ``SyntaxError`` or
    ``ValueError`` when the object cannot be found or safely reached.  With ``descriptors`` an
    attribute backed by a Python-level descriptor (e.g. a property) resolves
    to the descriptor itself instead of failing.
    """
    tree = ast.parse(expr.strip(), mode="eval")
    return _evaluate(tree.body, namespace, descriptors)


def _evaluate(node: ast.AST, namespace: Mapping[str, Any], descriptors: bool) -> Any:
    if isinstance(node, ast.Name):
        return _lookup_name(node.id, namespace)
    if isinstance(node, ast.Attribute):
        owner = _evaluate(node.value, namespace, descriptors)
        if isinstance(owner, _Instance):
            return _get_attribute(owner.cls, node.attr, descriptors)
        if isinstance(namespace, _Scope) and isinstance(
            owner, types.ModuleType | StaticModule
        ):
            # ``xml.etree`` before ``xml.etree`` is imported: the submodule.
            found = namespace.member(owner, node.attr)
            if found is _UNRESOLVED:
                raise AttributeError(node.attr)
            return found
        return _get_attribute(owner, node.attr, descriptors)
    if isinstance(node, ast.Subscript):
        container = _evaluate(node.value, namespace, descriptors)
        return _get_item(container, _constant(node.slice))
    raise UnsafeExpression(ast.dump(node))


def _lookup_name(name: str, namespace: Mapping[str, Any]) -> Any:
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
    context: _Context, names: Iterable[str], prefix: str, typer: Typer | None = None
) -> _Completion:
    """Matches replacing the ``prefix`` that ends at the cursor."""
    return _Completion(
        _filter(names, prefix), context.cursor - len(prefix), context.cursor, typer
    )


# Types of matches --------------------------------------------------------------


def _type_of(obj: Any) -> tuple[str, str]:
    """The completion type and signature of an object found statically."""
    if isinstance(obj, types.ModuleType | StaticModule):
        return "module", ""
    if isinstance(obj, type):
        return "class", ""
    if isinstance(obj, _Instance):
        return "instance", ""
    if isinstance(obj, classmethod | staticmethod):
        obj = obj.__func__
    if isinstance(
        obj, property | types.GetSetDescriptorType | types.MemberDescriptorType
    ):
        return "property", ""
    if isinstance(obj, _SIGNED):
        return "function", _signature(obj)
    if callable(obj):
        return "function", ""
    return "instance", ""


def _signature(function: Any) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return ""


def _attribute_typer(owner: Any) -> Typer:
    """Types of the attributes of ``owner``, looked up without running descriptors."""

    def typer(name: str) -> tuple[str, str]:
        if isinstance(owner, StaticModule):
            return "<unknown>", ""
        target = owner.cls if isinstance(owner, _Instance) else owner
        try:
            return _type_of(inspect.getattr_static(target, name))
        except AttributeError:
            if isinstance(target, types.ModuleType | StaticModule):
                return "module", ""  # a submodule not imported yet
            return "<unknown>", ""

    return typer


def _keyword_typer(typer: Typer) -> Typer:
    def typed(name: str) -> tuple[str, str]:
        if keyword.iskeyword(name) or keyword.issoftkeyword(name):
            return "keyword", ""
        return typer(name)

    return typed


# Names -------------------------------------------------------------------------


def _complete_name(context: _Context) -> _Completion | None:
    """Namespace names, names the cell binds, builtins and keywords."""
    match = re.search(r"\w*$", context.line)
    assert match is not None
    prefix = match.group()
    preceding = context.line[: match.start()]
    if prefix[:1].isdigit() or preceding.endswith("."):
        return None
    scope = context.namespace
    names = scope.names()
    names.update(dir(builtins))
    names.update(keyword.kwlist)
    names.update(word for word in keyword.softkwlist if word != "_")

    def typer(name: str) -> tuple[str, str]:
        kind = scope.kind(name)
        if kind is not None:
            return kind, ""
        if name in scope:
            return _type_of(scope[name])
        if name in scope.bindings:
            return "instance", ""
        return _type_of(getattr(builtins, name))

    return _token_completion(
        context,
        (name for name in names if name.isidentifier()),
        prefix,
        _keyword_typer(typer),
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
        names = _attributes(owner, context.deadline)
    except Exception:
        return _token_completion(context, [], prefix)
    return _token_completion(context, names, prefix, _attribute_typer(owner))


def _attributes(owner: Any, deadline: Deadline) -> set[str]:
    if isinstance(owner, StaticModule):
        return module_names(owner)
    if isinstance(owner, _Instance):
        return set(dir(owner.cls))
    names = set(dir(owner))
    if isinstance(owner, types.ModuleType):
        names |= submodule_names(owner, deadline.expired)
    return names


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
    return _Completion(
        matches, context.cursor - len(token), end, lambda text: ("dict key", "")
    )


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
        module = find_module(match.group("module"), context.deadline.remaining)
        names = set() if module is None else module_names(module)
        return _token_completion(context, names, piece, _attribute_typer(module))
    match = _FROM_KEYWORD_RE.fullmatch(statement)
    if match:
        return _token_completion(
            context, ["import"], match.group("word"), lambda name: ("keyword", "")
        )
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
    expired = context.deadline.expired
    if not parent:
        names = set() if dotted.startswith(".") else top_level_names(expired)
    elif "" in parent.split("."):
        names = set()  # relative imports and typos like ``os..``
    else:
        names = submodule_names(
            find_module(parent, context.deadline.remaining), expired
        )
    return _token_completion(context, names, prefix, lambda name: ("module", ""))
