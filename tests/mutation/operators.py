"""Generate the mutants of a Python module, one syntax change each, and apply one of them.

A mutant is the module with exactly one change from this list:

==============  ===========================================================================
operator        change
==============  ===========================================================================
``compare``     ``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``is``/``is not``, ``in``/``not in``
``boolean``     ``and``/``or``
``not``         ``not x`` becomes ``x``
``unary``       ``-x`` and ``~x`` become ``x``
``arithmetic``  ``+``/``-``, ``*`` to ``/``, ``/`` to ``*``, ``//`` to ``*``, ``%`` to ``//``,
                ``**`` to ``*``, ``<<``/``>>``, ``&``/``|``, ``^`` to ``&`` (also in ``x += y``)
``number``      an integer ``n`` becomes ``n + 1`` and, separately, ``n - 1`` (the boundaries)
``constant``    ``True``/``False``
``string``      a non-empty ``str`` or ``bytes`` literal becomes empty, an empty one ``"XX"``
``return``      ``return x`` becomes ``return None``
``loop``        ``break``/``continue``
``delete``      a statement inside a function (a call, an assignment, a ``raise``, a ``del``)
                becomes ``pass``
==============  ===========================================================================

Code that is not behaviour is left alone: docstrings (and any other bare string statement),
annotations, imports, ``__all__`` and ``__slots__``, the literal text of f-strings (their
``{...}`` expressions are mutated), the ``if __name__ == "__main__":`` block, and statement
deletion outside function bodies (deleting a module or class attribute only breaks the import,
or removes a name used in annotations alone).

Mutants are applied to the syntax tree and written back with :func:`ast.unparse`, so the file
a test run imports differs from the original in that one node only; every mutant is checked to
parse back to exactly the tree intended and to compile. Two changes that give the same code
count once.
"""

from __future__ import annotations

import ast
import copy
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Mutant", "apply", "generate", "unchanged"]

_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitAnd,
}
_BOOLEAN: dict[type[ast.boolop], type[ast.boolop]] = {ast.And: ast.Or, ast.Or: ast.And}
# Fields that hold no behaviour: annotations are never evaluated (``from __future__ import
# annotations``), and f-string format specs are formatting.
_SKIP_FIELDS: dict[type[ast.AST], frozenset[str]] = {
    ast.FunctionDef: frozenset({"returns", "type_comment"}),
    ast.AsyncFunctionDef: frozenset({"returns", "type_comment"}),
    ast.arg: frozenset({"annotation", "type_comment"}),
    ast.AnnAssign: frozenset({"annotation", "target"}),
    ast.FormattedValue: frozenset({"format_spec"}),
}
_DELETABLE = (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Raise, ast.Delete)


@dataclass(frozen=True)
class Mutant:
    """One change to a module: where it is, what it was and what it becomes.

    ``original`` and ``mutated`` are the source lines the changed node spans, before and after
    (continuation lines joined by a space). ``occurrence`` tells apart identical changes in one
    scope, so that ``key`` names a mutant independently of line numbers.
    """

    index: int
    line: int
    scope: str
    operator: str
    original: str
    mutated: str
    occurrence: int
    site: int
    variant: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        """Return the line-number-free identity used to list equivalent mutants."""
        return (self.scope, self.original, self.mutated, self.occurrence)

    def to_dict(self) -> dict[str, Any]:
        """Return the mutant as the JSON object the report prints."""
        return {
            "index": self.index,
            "line": self.line,
            "scope": self.scope,
            "operator": self.operator,
            "original": self.original,
            "mutated": self.mutated,
            "occurrence": self.occurrence,
        }


@dataclass
class _Site:
    """A node that can be mutated, and where it hangs in its parent."""

    node: ast.AST
    parent: ast.AST
    field: str
    position: int | None
    scope: str
    in_function: bool

    def replace(self, new: ast.AST) -> None:
        if self.position is None:
            setattr(self.parent, self.field, new)
        else:
            getattr(self.parent, self.field)[self.position] = new


def _is_bare_string(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_dunder_list(node: ast.AST) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else []
    return any(isinstance(t, ast.Name) and t.id in {"__all__", "__slots__"} for t in targets)


def _is_main_guard(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _skipped(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Import | ast.ImportFrom | ast.Global | ast.Nonlocal | ast.Pass)
        or _is_bare_string(node)
        or _is_dunder_list(node)
        or _is_main_guard(node)
    )


def _sites(tree: ast.Module) -> Iterator[_Site]:
    """Yield every node that may be mutated, in a fixed order (the same for the same source)."""

    def visit(node: ast.AST, scope: tuple[str, ...], in_function: bool) -> Iterator[_Site]:
        skip = _SKIP_FIELDS.get(type(node), frozenset())
        for name, value in ast.iter_fields(node):
            if name in skip:
                continue
            items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for position, child in items:
                if not isinstance(child, ast.AST) or _skipped(child):
                    continue
                # The literal parts of an f-string are its text, not behaviour.
                if isinstance(node, ast.JoinedStr) and isinstance(child, ast.Constant):
                    continue
                yield _Site(child, node, name, position, ".".join(scope) or "<module>", in_function)
                inner, function = scope, in_function
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    inner = (*scope, child.name)
                    function = not isinstance(child, ast.ClassDef)
                yield from visit(child, inner, function)

    yield from visit(tree, (), False)


def _with(node: ast.AST, **changes: Any) -> ast.AST:
    new = copy.copy(node)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def _integer(value: int) -> ast.expr:
    # A negative literal is written as unary minus; build it that way so it parses back the same.
    if value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _emptied(value: str | bytes) -> ast.Constant:
    if value:
        return ast.Constant(value[:0])
    return ast.Constant(b"XX" if isinstance(value, bytes) else "XX")


def _variants(site: _Site) -> list[tuple[str, ast.AST]]:
    """Return the ``(operator, replacement node)`` changes for one site."""
    node = site.node
    out: list[tuple[str, ast.AST]] = []
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _COMPARE:
                ops = list(node.ops)
                ops[i] = _COMPARE[type(op)]()
                out.append(("compare", _with(node, ops=ops)))
    elif isinstance(node, ast.BoolOp):
        out.append(("boolean", _with(node, op=_BOOLEAN[type(node.op)]())))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(("not", node.operand))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Invert):
        out.append(("unary", node.operand))
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _ARITHMETIC:
        out.append(("arithmetic", _with(node, op=_ARITHMETIC[type(node.op)]())))
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            out.append(("constant", ast.Constant(not value)))
        elif isinstance(value, int):
            out.extend([("number", _integer(value + 1)), ("number", _integer(value - 1))])
        elif isinstance(value, str | bytes):
            out.append(("string", _emptied(value)))
    elif isinstance(node, ast.Return):
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            out.append(("return", ast.Return(ast.Constant(None))))
    elif isinstance(node, ast.Break):
        out.append(("loop", ast.Continue()))
    elif isinstance(node, ast.Continue):
        out.append(("loop", ast.Break()))
    if isinstance(node, _DELETABLE) and site.in_function:
        out.append(("delete", ast.Pass()))
    return out


def _shown(lines: list[bytes], node: ast.AST, replacement: ast.AST | None) -> str:
    """Return the source lines ``node`` spans, with ``replacement`` put in its place."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    if replacement is None:
        text = b" ".join(line.strip() for line in lines[first : last + 1])
    else:
        # Offsets are in UTF-8 bytes, so the lines are kept as bytes until the splice is made.
        head, tail = lines[first][: node.col_offset], lines[last][node.end_col_offset :]
        text = (head + ast.unparse(replacement).encode() + tail).strip()
    return " ".join(text.decode().split())


def _mutants(source: str, tree: ast.Module) -> Iterator[tuple[Mutant, str]]:
    lines = source.encode().splitlines()
    original_code = ast.unparse(tree)
    seen = {original_code}
    occurrences: Counter[tuple[str, str, str]] = Counter()
    index = 0
    for ordinal, site in enumerate(list(_sites(tree))):
        for variant, (operator, new) in enumerate(_variants(site)):
            site.replace(new)
            try:
                code = ast.unparse(tree)
                expected = ast.dump(tree)
            finally:
                site.replace(site.node)
            if code in seen:
                continue
            # The written file must be exactly the intended tree, and importable.
            if ast.dump(ast.parse(code)) != expected:
                raise AssertionError(f"mutant of line {site.node.lineno} does not parse back: {code!r}")
            compile(code, "<mutant>", "exec")
            seen.add(code)
            original = _shown(lines, site.node, None)
            mutated = _shown(lines, site.node, new)
            scope_key = (site.scope, original, mutated)
            mutant = Mutant(
                index=index,
                line=site.node.lineno,
                scope=site.scope,
                operator=operator,
                original=original,
                mutated=mutated,
                occurrence=occurrences[scope_key],
                site=ordinal,
                variant=variant,
            )
            occurrences[scope_key] += 1
            index += 1
            yield mutant, code


def generate(source: str) -> list[Mutant]:
    """Return every mutant of ``source``, numbered from 0 in source order."""
    return [mutant for mutant, _ in _mutants(source, ast.parse(source))]


def apply(source: str, mutant: Mutant) -> str:
    """Return the code of ``source`` with ``mutant``'s change made (and nothing else)."""
    tree = ast.parse(source)
    site = list(_sites(tree))[mutant.site]
    site.replace(_variants(site)[mutant.variant][1])
    return ast.unparse(tree)


def unchanged(source: str) -> str:
    """Return ``source`` as :func:`apply` writes it, with no change: the baseline's code."""
    return ast.unparse(ast.parse(source))
