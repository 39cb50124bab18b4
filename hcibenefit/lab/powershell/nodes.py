"""The evaluator's syntax tree: the subset of PowerShell it runs (see the package docstring).

`syntax` builds these from tree-sitter-powershell's tree; every node keeps its 1-based source line
for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    line: int
    compiled: Any = field(init=False, repr=False, compare=False, default=None)
    """What the node was compiled to (`compiler`), on first evaluation; trees are shared and immutable."""


# --- expressions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constant(Node):
    value: Any


@dataclass(frozen=True)
class Expandable(Node):
    """A double-quoted string: literal text and embedded variables/sub-expressions, in order."""

    parts: tuple[str | Expr, ...]


@dataclass(frozen=True)
class Variable(Node):
    name: str
    scope: str | None = None  # global, script, local, env
    key: str = field(init=False, repr=False, compare=False)
    """The name case-folded once, as scopes key variables (looked up on every read)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name.casefold())


@dataclass(frozen=True)
class Member(Node):
    target: Expr
    name: str | Expr
    static: bool = False


@dataclass(frozen=True)
class Invoke(Node):
    target: Expr
    name: str
    args: tuple[Expr, ...]
    static: bool = False


@dataclass(frozen=True)
class Index(Node):
    target: Expr
    index: Expr


@dataclass(frozen=True)
class ArrayLiteral(Node):
    """`a, b, c` (and the unary `,a`)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class ArrayExpr(Node):
    """`@( statements )`: always an array."""

    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class SubExpr(Node):
    """`$( statements )`: nothing gives $null, one value that value, several an array."""

    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Paren(Node):
    """`( pipeline )`."""

    pipeline: Pipeline


@dataclass(frozen=True)
class HashLiteral(Node):
    entries: tuple[tuple[str | Expr, Pipeline], ...]


@dataclass(frozen=True)
class TypeLiteral(Node):
    name: str


@dataclass(frozen=True)
class Cast(Node):
    type_name: str
    expr: Expr


@dataclass(frozen=True)
class Unary(Node):
    op: str  # -not, !, -, +, ','
    expr: Expr


@dataclass(frozen=True)
class Binary(Node):
    op: str  # lower case: -eq, -and, +, ...
    left: Expr
    right: Expr


@dataclass(frozen=True)
class PostIncrement(Node):
    target: Expr
    delta: int


@dataclass(frozen=True)
class ScriptBlockExpr(Node):
    block: Block
    text: str


Expr = (
    Constant
    | Expandable
    | Variable
    | Member
    | Invoke
    | Index
    | ArrayLiteral
    | ArrayExpr
    | SubExpr
    | Paren
    | HashLiteral
    | TypeLiteral
    | Cast
    | Unary
    | Binary
    | PostIncrement
    | ScriptBlockExpr
)


# --- commands and pipelines ----------------------------------------------------------------------


@dataclass(frozen=True)
class CommandParameter(Node):
    """`-Name`, or `-Name:value` (value set)."""

    name: str
    value: Expr | None = None
    colon: bool = False


@dataclass(frozen=True)
class Command(Node):
    name: str
    elements: tuple[CommandParameter | Expr, ...]
    key: str = field(init=False, repr=False, compare=False)
    """The name case-folded once, as functions are looked up by it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name.casefold())


@dataclass(frozen=True)
class Pipeline(Node):
    """A pipeline: an expression or command first, then commands joined by |.

    Its `compiled` slot holds its value as an expression (`compiler.pipeline_value`), `runner` what it
    writes (`compiler.runner`); a statement's `compiled` slot holds the statement's closure."""

    elements: tuple[Expr | Command, ...]
    runner: Any = field(init=False, repr=False, compare=False, default=None)


# --- statements -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStmt(Node):
    pipeline: Pipeline


@dataclass(frozen=True)
class Assign(Node):
    target: Expr
    op: str  # =, +=, -=
    value: Pipeline | Stmt


@dataclass(frozen=True)
class If(Node):
    clauses: tuple[tuple[Pipeline, tuple[Stmt, ...]], ...]
    otherwise: tuple[Stmt, ...] | None


@dataclass(frozen=True)
class ForEach(Node):
    variable: str
    iterable: Pipeline
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class For(Node):
    init: Pipeline | Stmt | None
    condition: Pipeline | None
    step: Pipeline | Stmt | None
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class While(Node):
    condition: Pipeline
    body: tuple[Stmt, ...]
    do: bool = False  # do { } while ( )
    until: bool = False  # do { } until ( )


@dataclass(frozen=True)
class Catch(Node):
    types: tuple[str, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Try(Node):
    body: tuple[Stmt, ...]
    catches: tuple[Catch, ...]
    final: tuple[Stmt, ...] | None


@dataclass(frozen=True)
class Throw(Node):
    value: Pipeline | None


@dataclass(frozen=True)
class Return(Node):
    value: Pipeline | None


@dataclass(frozen=True)
class Break(Node):
    pass


@dataclass(frozen=True)
class Continue(Node):
    pass


@dataclass(frozen=True)
class FunctionDef(Node):
    name: str
    block: Block


Stmt = (
    PipelineStmt | Assign | If | ForEach | For | While | Try | Throw | Return | Break | Continue | FunctionDef
)


# --- parameters and blocks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamDecl(Node):
    name: str
    type_name: str | None
    default: Expr | None
    mandatory: bool = False
    position: int | None = None
    validate_pattern: str | None = None
    validate_set: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block(Node):
    """A script, function body or script block: its param() block and statements."""

    params: tuple[ParamDecl, ...] | None
    body: tuple[Stmt, ...]
    advanced: bool = False
    """[CmdletBinding()] or any [Parameter()]: common parameters, unknown parameters are errors."""
    attributes: tuple[str, ...] = field(default_factory=tuple)
