"""What the text of a cell binds before the cursor, read without running it.

Completion asks this module which names the code *before the cursor* imports,
assigns or defines, so that ``import collections; collections.Ord`` completes
before the import has run.  The text is only parsed (``ast``), never
executed: a binding says where its value would come from (a module, a member
of a module, another expression, a literal's type), and the completer decides
how far it may go to find it.  Pure functions; they run on the caller's
thread (the reactor thread, for completion).
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Binding", "read_bindings"]

#: The display types of literal syntax, by AST node type.
_LITERAL_TYPES: dict[type[ast.AST], type] = {
    ast.List: list,
    ast.ListComp: list,
    ast.Dict: dict,
    ast.DictComp: dict,
    ast.Set: set,
    ast.SetComp: set,
    ast.Tuple: tuple,
    ast.JoinedStr: str,
}

#: Stop mending a cell whose prefix fails to parse after this many tries.
_MAX_PARSE_ATTEMPTS = 20
#: Then try at most this many runs of whole logical lines.
_MAX_FALLBACK_PARSES = 5


@dataclass(frozen=True)
class Binding:
    """Where the value of a name bound in the cell would come from.

    ``kind`` is one of:

    - ``"module"``: ``target`` is the dotted name of a module (``import a.b as c``);
    - ``"member"``: ``target`` is ``module:name`` (``from m import name``);
    - ``"expr"``: ``target`` is the source of a name/attribute expression
      (``x = os.path``) or of a call of one (``call`` true: ``x = Foo()``,
      an instance of ``Foo`` if it is a class);
    - ``"type"``: ``target`` is the name of a builtin type whose instance the
      name holds (``s = "text"`` gives ``str``);
    - ``"function"`` / ``"class"``: defined by ``def`` / ``class`` in the cell;
    - ``"unknown"``: bound, but by something that cannot be followed.
    """

    kind: str
    target: str = ""
    call: bool = False


def read_bindings(
    code: str, cursor: int, expired: Callable[[], bool] = lambda: False
) -> dict[str, Binding]:
    """The names the code before ``cursor`` binds, the last binding of each.

    Lines that do not parse (a magic, the statement being typed, an unclosed
    block) are left out; statements before a ``;`` on the cursor's line count
    too.  Gives up quietly once ``expired()`` is true.
    """
    before = code[: max(0, min(cursor, len(code)))]
    line_start = before.rfind("\n") + 1
    bindings: dict[str, Binding] = {}
    tree = _parse_longest_prefix(before[:line_start], expired)
    if tree is not None:
        _Collector(bindings).visit(tree)
    current = before[line_start:]
    if ";" in current and not expired():
        head = textwrap.dedent(current.rsplit(";", 1)[0])
        for piece in _statement_pieces(head):
            _Collector(bindings).visit(piece)
    return bindings


def _parse_longest_prefix(text: str, expired: Callable[[], bool]) -> ast.Module | None:
    """Parse ``text``, blanking the lines that do not parse.

    A line Python rejects (an IPython magic, a statement being typed) is
    blanked and the rest tried again; the last line is dropped instead.  If
    that does not converge, the whole logical lines before the trouble are.
    """
    lines = text.splitlines(keepends=True)
    for _ in range(_MAX_PARSE_ATTEMPTS):
        if expired():
            return None
        parsed, error_line = _try_parse(lines)
        if error_line is None:
            return parsed
        if error_line >= len(lines) - 1:
            lines = lines[: len(lines) - 1]
        else:
            lines = [*lines[:error_line], "\n", *lines[error_line + 1 :]]
    # Still no luck (a call left open over many lines): the longest run of
    # whole logical lines that parses, among the last few such runs.
    original = text.splitlines(keepends=True)
    for end in reversed(_logical_line_ends(text)[-_MAX_FALLBACK_PARSES:]):
        if expired():
            return None
        parsed, _ = _try_parse(original[:end])
        if parsed is not None:
            return parsed
    return None


def _logical_line_ends(text: str) -> list[int]:
    """The numbers of the lines on which a complete logical line ends."""
    ends = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.NEWLINE:
                ends.append(token.end[0])
    except (tokenize.TokenError, SyntaxError):
        pass  # the unfinished end of the text
    return ends


def _try_parse(lines: list[str]) -> tuple[ast.Module | None, int | None]:
    """The tree of ``lines``, or the index of the line an error is on."""
    try:
        return ast.parse("".join(lines)), None
    except SyntaxError as e:
        return None, max(0, min((e.lineno or len(lines)) - 1, len(lines) - 1))
    except (ValueError, MemoryError, RecursionError):
        return None, max(0, len(lines) - 1)


def _statement_pieces(text: str) -> list[ast.Module]:
    """The ``;``-separated statements of one line, each that parses."""
    try:
        return [ast.parse(text)]
    except (SyntaxError, ValueError):
        pass
    pieces = []
    for piece in text.split(";"):
        try:
            pieces.append(ast.parse(piece.strip()))
        except (SyntaxError, ValueError):
            continue
    return pieces


class _Collector(ast.NodeVisitor):
    """Records bindings in source order; later ones replace earlier ones."""

    def __init__(self, bindings: dict[str, Binding]) -> None:
        self.bindings = bindings

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.bindings[alias.asname] = Binding("module", alias.name)
            else:
                top = alias.name.split(".", 1)[0]
                self.bindings[top] = Binding("module", top)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return  # relative imports depend on a package the cell is not in
        for alias in node.names:
            if alias.name == "*":
                continue
            name = alias.asname or alias.name
            self.bindings[name] = Binding("member", f"{node.module}:{alias.name}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.bindings[node.name] = Binding("function")
        for statement in node.body:
            self.visit(statement)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bindings[node.name] = Binding("class")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._bind(node.target, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.bindings.setdefault(node.target.id, Binding("unknown"))

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind(node.target, node.value)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._bind(node.target, None)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            if item.optional_vars is not None:
                self._bind(item.optional_vars, None)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_Lambda(self, node: ast.Lambda) -> None:
        """A lambda's parameters are its own."""

    def _visit_comprehension(self, node: ast.AST) -> None:
        """Comprehension variables do not leak out of the comprehension."""

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = (
        _visit_comprehension
    )

    def _bind(self, target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            self.bindings[target.id] = _binding_of(value)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._bind(element, None)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, None)


def _binding_of(value: ast.AST | None) -> Binding:
    """What assigning ``value`` to a name binds it to."""
    if value is None:
        return Binding("unknown")
    if isinstance(value, ast.Constant) and value.value is not None:
        return Binding("type", type(value.value).__name__)
    literal = _LITERAL_TYPES.get(type(value))
    if literal is not None:
        return Binding("type", literal.__name__)
    dotted = _dotted(value)
    if dotted is not None:
        return Binding("expr", dotted)
    if isinstance(value, ast.Call):
        dotted = _dotted(value.func)
        if dotted is not None:
            return Binding("expr", dotted, call=True)
    return Binding("unknown")


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a name with attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
