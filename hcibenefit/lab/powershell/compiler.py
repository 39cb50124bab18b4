"""Expressions compiled to closures, once per syntax-tree node, so evaluating one is a call, not a walk.

The evaluator used to find each node's `_eval_<Type>` method in a table, call it, and have it read the
node's fields and look up its children's methods again, for every evaluation (a host-facts script
evaluates some 17,000 expressions per node). Parsed trees are cached and immutable, so each expression
node is compiled once, on first evaluation, into a closure over its children's closures and its
pre-computed parts (folded names, the operator's function, the cast's canonical type). The closures
call the very functions the methods call (`get_member`, `call_method`, `cv.cast`, `cv.equals`...), in
the same order, so results, errors and their order do not change; shapes that are rare or need the
interpreter's state (static members, `$x++`, -match's $Matches) call the interpreter's method.

A compiled expression is `fn(interp, scope) -> value`; like `Interpreter.eval` it returns VOID for a
void method call or a [void] cast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell import nodes as n
from hcibenefit.lab.powershell.binding import NO_VALUE, Arg
from hcibenefit.lab.powershell.errors import ErrorRecord, PSError, Unsupported
from hcibenefit.lab.powershell.members import call_method, get_member_folded, index
from hcibenefit.lab.powershell.runtime import (
    CONSTANT_VARIABLES,
    OPERATORS,
    VOID,
    collapse,
    comparison,
    enumerate_value,
)
from hcibenefit.lab.powershell.values import MISSING, PSDict, PSObject, ScriptBlock

if TYPE_CHECKING:
    from hcibenefit.lab.powershell.evaluator import Interpreter
    from hcibenefit.lab.powershell.runspace import Scope

Compiled = Callable[["Interpreter", "Scope"], Any]
Runner = Callable[["Interpreter", "Scope"], list[Any]]
Executed = Callable[["Interpreter", "Scope", list[Any]], None]


def compiled(expr: n.Node) -> Compiled:
    """The node's closure, compiled on first use."""
    fn = expr.compiled
    if fn is None:
        fn = _compile(expr)
        if type(expr) is n.Pipeline:
            return fn  # not an expression: its slot holds its pipeline_value closure
        object.__setattr__(expr, "compiled", fn)
    return fn  # type: ignore[no-any-return]


def pipeline_value(pipeline: n.Pipeline) -> Compiled:
    """`Interpreter.pipeline_value`: a lone expression keeps its value, commands are collapsed."""
    fn = pipeline.compiled
    if fn is None:
        elements = pipeline.elements
        if len(elements) == 1 and not isinstance(elements[0], n.Command):
            fn = compiled(elements[0])
        else:

            def fn(interp: Interpreter, scope: Scope) -> Any:
                return collapse(interp.run_pipeline(pipeline, scope))

        object.__setattr__(pipeline, "compiled", fn)
    return fn  # type: ignore[no-any-return]


def _compile(expr: n.Node) -> Compiled:
    compile_kind = _COMPILERS.get(type(expr))
    return compile_kind(expr) if compile_kind is not None else _method(expr)


def _method(expr: n.Node) -> Compiled:
    """The interpreter's own `_eval_<Type>` method bound to this node (for the shapes not specialised)."""
    from hcibenefit.lab.powershell.evaluator import Interpreter

    method = getattr(Interpreter, "_eval_" + type(expr).__name__, None)
    if method is None:

        def unsupported(interp: Interpreter, scope: Scope) -> Any:
            raise Unsupported(type(expr).__name__, expr.line)

        return unsupported

    def call(interp: Interpreter, scope: Scope) -> Any:
        return method(interp, expr, scope)

    return call


def _value_of(expr: n.Node) -> Compiled:
    """The node's closure giving $null for VOID, as `Interpreter.value` does (for binary operands)."""
    fn = compiled(expr)

    def value(interp: Interpreter, scope: Scope) -> Any:
        result = fn(interp, scope)
        return None if result is VOID else result

    return fn if isinstance(expr, _NEVER_VOID) else value


# Node kinds whose closures never give VOID (checked in their compilers below), so no wrapper is needed.
_NEVER_VOID = (n.Constant, n.Variable, n.Member, n.Binary, n.ArrayLiteral, n.HashLiteral)


def _constant(expr: n.Constant) -> Compiled:
    constant = expr.value

    def value(interp: Interpreter, scope: Scope) -> Any:
        return constant

    return value


def _variable(expr: n.Variable) -> Compiled:
    if expr.scope is not None:
        return _method(expr)
    key = expr.key
    if key in CONSTANT_VARIABLES:
        return _constant(n.Constant(expr.line, CONSTANT_VARIABLES[key]))

    def variable(interp: Interpreter, scope: Scope) -> Any:
        chain: Scope | None = scope
        while chain is not None:
            found = chain.vars
            if key in found:
                return found[key]
            chain = chain.parent
        return interp._automatic_variable(key)

    return variable


def _member(expr: n.Member) -> Compiled:
    name = expr.name
    if expr.static or not isinstance(name, str):
        return _method(expr)
    target = compiled(expr.target)
    key = name.casefold()

    def member(interp: Interpreter, scope: Scope) -> Any:
        owner = target(interp, scope)
        found = get_member_folded(None if owner is VOID else owner, name, key)
        return None if found is MISSING else found

    return member


def _invoke(expr: n.Invoke) -> Compiled:
    if expr.static:
        return _method(expr)
    args = [compiled(a) for a in expr.args]
    target = compiled(expr.target)
    name = expr.name

    def invoke(interp: Interpreter, scope: Scope) -> Any:
        values = [None if (value := arg(interp, scope)) is VOID else value for arg in args]
        owner = target(interp, scope)
        result = call_method(None if owner is VOID else owner, name, values)
        # The lab's methods return None only when the .NET method is void: it writes nothing.
        return VOID if result is None else result

    return invoke


def _index(expr: n.Index) -> Compiled:
    target = compiled(expr.target)
    key = compiled(expr.index)

    def indexed(interp: Interpreter, scope: Scope) -> Any:
        owner = target(interp, scope)
        position = key(interp, scope)
        return index(None if owner is VOID else owner, None if position is VOID else position)

    return indexed


def _array_literal(expr: n.ArrayLiteral) -> Compiled:
    items = [compiled(item) for item in expr.items]

    def array(interp: Interpreter, scope: Scope) -> list[Any]:
        return [None if (value := item(interp, scope)) is VOID else value for item in items]

    return array


def _paren(expr: n.Paren) -> Compiled:
    return pipeline_value(expr.pipeline)


def _hash_literal(expr: n.HashLiteral, *, ordered: bool = False) -> Compiled:
    entries = [
        (key if isinstance(key, str) else compiled(key), pipeline_value(value)) for key, value in expr.entries
    ]
    folded = [key.casefold() for key, _ in entries if isinstance(key, str)]
    if len(folded) == len(entries) and len(set(folded)) == len(folded):
        # Every key a name, none twice: no key to evaluate and no duplicate to report, so the entries go
        # straight in under their folded names, values evaluated in order.
        named = [(fold, key, value) for fold, (key, value) in zip(folded, entries, strict=True)]

        def named_table(interp: Interpreter, scope: Scope) -> PSDict:
            items: dict[Any, tuple[Any, Any]] = {}
            for fold, key, value in named:
                item = value(interp, scope)
                items[fold] = (key, None if item is VOID else item)
            return PSDict.of_folded(items, ordered=ordered)

        return named_table

    def table(interp: Interpreter, scope: Scope) -> PSDict:
        result = PSDict(ordered=ordered)
        for key_of, value in entries:
            key: Any = key_of
            if not isinstance(key_of, str):
                key = key_of(interp, scope)
                key = None if key is VOID else key
            if key in result:
                raise PSError(
                    ErrorRecord(
                        f"Duplicate keys '{key}' are not allowed in hash literals.",
                        "DuplicateKeyInHashLiteral",
                        "ParserError",
                    )
                )
            item = value(interp, scope)
            result[key] = None if item is VOID else item
        return result

    return table


def _cast(expr: n.Cast) -> Compiled:
    kind = expr.type_name.casefold()
    if kind == "ordered":
        if not isinstance(expr.expr, n.HashLiteral):
            return _method(expr)  # raises the parser's error when evaluated
        return _hash_literal(expr.expr, ordered=True)
    if kind in ("pscustomobject", "system.management.automation.pscustomobject") and isinstance(
        expr.expr, n.HashLiteral
    ):
        ordered_table = _hash_literal(expr.expr, ordered=True)

        def custom_object(interp: Interpreter, scope: Scope) -> PSObject:
            return PSObject(props=list(ordered_table(interp, scope).items()))

        return custom_object
    inner = compiled(expr.expr)
    if kind == "void":

        def void(interp: Interpreter, scope: Scope) -> Any:
            inner(interp, scope)
            return VOID

        return void
    type_name = expr.type_name
    canonical = cv.canonical_type(type_name)
    simple = _SIMPLE_CASTS.get(canonical or "")
    if simple is not None:
        # cv.cast's own branch for these kinds, without its look-ups: unwrap, then convert.

        def simply_converted(interp: Interpreter, scope: Scope) -> Any:
            value = inner(interp, scope)
            if value is VOID:
                value = None
            elif isinstance(value, PSObject) and value.base is not None:
                value = value.base
            return simple(value)

        return simply_converted
    cast = cv.cast

    def converted(interp: Interpreter, scope: Scope) -> Any:
        value = inner(interp, scope)
        return cast(None if value is VOID else value, type_name)

    return converted


_SIMPLE_CASTS: dict[str, Callable[[Any], Any]] = {
    "string": cv.to_string,
    "int": lambda value: cv.to_integer(value, cv.INT32, "System.Int32"),
    "bool": cv.to_bool,
    "switch": cv.to_bool,
}
"""The casts `cv.cast` does as unwrap-then-convert, by canonical type."""


def _unary(expr: n.Unary) -> Compiled:
    operand = compiled(expr.expr)
    op = expr.op
    if op in ("-not", "!"):
        to_bool = cv.to_bool

        def negated(interp: Interpreter, scope: Scope) -> bool:
            value = operand(interp, scope)
            return not to_bool(None if value is VOID else value)

        return negated
    if op == ",":

        def wrapped(interp: Interpreter, scope: Scope) -> list[Any]:
            value = operand(interp, scope)
            return [None if value is VOID else value]

        return wrapped
    return _method(expr)


def _binary(expr: n.Binary) -> Compiled:
    op = expr.op
    left = _value_of(expr.left)
    right = _value_of(expr.right)
    to_bool = cv.to_bool
    if op == "-and":

        def both(interp: Interpreter, scope: Scope) -> bool:
            return to_bool(left(interp, scope)) and to_bool(right(interp, scope))

        return both
    if op == "-or":

        def either(interp: Interpreter, scope: Scope) -> bool:
            return to_bool(left(interp, scope)) or to_bool(right(interp, scope))

        return either
    operator = OPERATORS.get(op)
    if operator is not None:

        def operation(interp: Interpreter, scope: Scope) -> Any:
            return operator(left(interp, scope), right(interp, scope))

        return operation
    base, case_sensitive = comparison(op)
    if base in ("eq", "ne"):
        equals = cv.equals
        negate = base == "ne"

        def equality(interp: Interpreter, scope: Scope) -> Any:
            a = left(interp, scope)
            b = right(interp, scope)
            if type(a) is str and type(b) is str:
                # cv.equals for two strings, without its unwrapping and conversions (none applies).
                same = a == b if case_sensitive else a.casefold() == b.casefold()
                return same != negate
            if isinstance(a, list):
                return [item for item in a if equals(item, b, case_sensitive=case_sensitive) != negate]
            return equals(a, b, case_sensitive=case_sensitive) != negate

        return equality
    line = expr.line

    def compared(interp: Interpreter, scope: Scope) -> Any:
        return interp.binary(op, left(interp, scope), right(interp, scope), scope, line)

    return compared


# --- pipelines and statements --------------------------------------------------------------------------


def runner(pipeline: n.Pipeline) -> Runner:
    """`Interpreter.run_pipeline` for this pipeline: the items it writes."""
    fn = pipeline.runner
    if fn is None:
        fn = _compile_runner(pipeline)
        object.__setattr__(pipeline, "runner", fn)
    return fn  # type: ignore[no-any-return]


def _compile_runner(pipeline: n.Pipeline) -> Runner:
    from hcibenefit.lab.powershell.evaluator import Interpreter

    elements = pipeline.elements
    if not elements or any(not isinstance(e, n.Command) for e in elements[1:]):
        # Empty, or an expression after the first element (an error, raised when it is reached).
        def walk(interp: Interpreter, scope: Scope) -> list[Any]:
            return interp.walk_pipeline(pipeline, scope)

        return walk
    first = elements[0]
    commands = [e for e in elements[1:] if isinstance(e, n.Command)]
    head: Runner
    if isinstance(first, n.Command):

        def head(interp: Interpreter, scope: Scope) -> list[Any]:
            return interp.invoke_command(first, scope, None)

    elif isinstance(first, n.Paren | n.SubExpr) and Interpreter._is_command_pipeline(first):

        def head(interp: Interpreter, scope: Scope) -> list[Any]:
            return interp._statement_outputs(first, scope)

    else:
        expression = compiled(first)
        if not commands:

            def written(interp: Interpreter, scope: Scope) -> list[Any]:
                return enumerate_value(expression(interp, scope))

            return written

        def head(interp: Interpreter, scope: Scope) -> list[Any]:
            return enumerate_value(expression(interp, scope))

    def run(interp: Interpreter, scope: Scope) -> list[Any]:
        items = head(interp, scope)
        for command in commands:
            items = interp.invoke_command(command, scope, items)
        return items or []

    return run


def statement(stmt: n.Stmt) -> Executed:
    """The statement's closure `fn(interp, scope, out)`, compiled on first use."""
    fn = stmt.compiled
    if fn is None:
        fn = _compile_statement(stmt)
        object.__setattr__(stmt, "compiled", fn)
    return fn  # type: ignore[no-any-return]


def _compile_statement(stmt: n.Stmt) -> Executed:
    if isinstance(stmt, n.PipelineStmt):
        elements = stmt.pipeline.elements
        if len(elements) == 1 and type(elements[0]) is n.PostIncrement:
            increment = compiled(elements[0])

            def incremented(interp: Interpreter, scope: Scope, out: list[Any]) -> None:
                increment(interp, scope)

            return incremented
        run = runner(stmt.pipeline)

        def written(interp: Interpreter, scope: Scope, out: list[Any]) -> None:
            out.extend(run(interp, scope))

        return written
    if isinstance(stmt, n.Assign) and stmt.op == "=" and isinstance(stmt.value, n.Pipeline):
        value_of = pipeline_value(stmt.value)
        target = stmt.target

        def assigned(interp: Interpreter, scope: Scope, out: list[Any]) -> None:
            value = value_of(interp, scope)
            interp.store(target, None if value is VOID else value, scope)

        return assigned
    if isinstance(stmt, n.If):
        clauses = [(pipeline_value(condition), body) for condition, body in stmt.clauses]
        otherwise = stmt.otherwise
        to_bool = cv.to_bool

        def branched(interp: Interpreter, scope: Scope, out: list[Any]) -> None:
            for condition, body in clauses:
                if to_bool(condition(interp, scope)):
                    interp.exec_statements(body, scope, out)
                    return
            if otherwise is not None:
                interp.exec_statements(otherwise, scope, out)

        return branched
    return _statement_method(stmt)


def _statement_method(stmt: n.Stmt) -> Executed:
    """The interpreter's `_exec_<Type>` method bound to this statement."""
    from hcibenefit.lab.powershell.evaluator import Interpreter

    method = getattr(Interpreter, "_exec_" + type(stmt).__name__, Interpreter._exec_unsupported)

    def call(interp: Interpreter, scope: Scope, out: list[Any]) -> None:
        method(interp, stmt, scope, out)

    return call


def command_args(command: n.Command) -> Callable[[Interpreter, Scope], list[Arg]]:
    """`Interpreter.command_args` for this command: its arguments evaluated, in order (its `compiled` slot)."""
    fn = command.compiled
    if fn is None:
        fn = _compile_command_args(command)
        object.__setattr__(command, "compiled", fn)
    return fn  # type: ignore[no-any-return]


def _compile_command_args(command: n.Command) -> Callable[[Interpreter, Scope], list[Arg]]:
    parts: list[tuple[str | None, Compiled | None, int]] = []
    for element in command.elements:
        if isinstance(element, n.CommandParameter):
            given = element.value if element.colon and element.value is not None else None
            parts.append((element.name, None if given is None else compiled(given), element.line))
        else:
            parts.append((None, compiled(element), element.line))

    def arguments(interp: Interpreter, scope: Scope) -> list[Arg]:
        args: list[Arg] = []
        for name, value_of, line in parts:
            if value_of is None:
                args.append(Arg(name, NO_VALUE, line))
            else:
                value = value_of(interp, scope)
                args.append(Arg(name, None if value is VOID else value, line))
        return args

    return arguments


def _array_expr(expr: n.ArrayExpr) -> Compiled:
    body = expr.body

    def array(interp: Interpreter, scope: Scope) -> list[Any]:
        out: list[Any] = []
        interp.exec_statements(body, scope, out)
        return out

    return array


def _sub_expr(expr: n.SubExpr) -> Compiled:
    body = expr.body

    def sub_expression(interp: Interpreter, scope: Scope) -> Any:
        out: list[Any] = []
        interp.exec_statements(body, scope, out)
        return collapse(out)

    return sub_expression


def _script_block(expr: n.ScriptBlockExpr) -> Compiled:
    block, text = expr.block, expr.text

    def script_block(interp: Interpreter, scope: Scope) -> ScriptBlock:
        return ScriptBlock(block, text)

    return script_block


def _expandable(expr: n.Expandable) -> Compiled:
    parts: list[str | Compiled] = [part if isinstance(part, str) else compiled(part) for part in expr.parts]
    to_string = cv.to_string

    def expanded(interp: Interpreter, scope: Scope) -> str:
        # $OFS is read once, before the parts, as the interpreter's method does (reading has no effects).
        separator = interp.preference(scope, "OFS")
        texts = []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
                continue
            value = part(interp, scope)
            if isinstance(value, list) and separator is not None:
                texts.append(to_string(separator).join(to_string(v, nested=True) for v in value))
            else:
                texts.append(to_string(None if value is VOID else value))
        return "".join(texts)

    return expanded


_COMPILERS: dict[type, Callable[[Any], Compiled]] = {
    n.Constant: _constant,
    n.Variable: _variable,
    n.Member: _member,
    n.Invoke: _invoke,
    n.Index: _index,
    n.ArrayLiteral: _array_literal,
    n.Paren: _paren,
    n.HashLiteral: _hash_literal,
    n.Cast: _cast,
    n.Unary: _unary,
    n.Binary: _binary,
    n.ArrayExpr: _array_expr,
    n.SubExpr: _sub_expr,
    n.ScriptBlockExpr: _script_block,
    n.Expandable: _expandable,
}

__all__ = [
    "Compiled",
    "Executed",
    "Runner",
    "command_args",
    "compiled",
    "pipeline_value",
    "runner",
    "statement",
]
