"""Runs a parsed script with Windows PowerShell 5.1's semantics (powershell51.md sections 3-6, 10).

Output: every statement's output is collected; arrays are unrolled one level when written, a
variable assigned from a command gets nothing -> $null, one item -> the item, more -> object[].
Errors: a cmdlet's non-terminating error obeys -ErrorAction / $ErrorActionPreference; a terminating
one stops its statement, and without a try/catch under Continue the script goes on (section 6.1).
Scopes: the script runs in the global scope; a function gets a child scope of its caller (dynamic
scoping); ForEach-Object and Where-Object blocks run in the current scope.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell import nodes as n
from hcibenefit.lab.powershell.binding import Arg, bind_block, default_value
from hcibenefit.lab.powershell.compiler import command_args as compiled_command_args
from hcibenefit.lab.powershell.compiler import compiled
from hcibenefit.lab.powershell.compiler import pipeline_value as compiled_pipeline_value
from hcibenefit.lab.powershell.compiler import runner as compiled_runner
from hcibenefit.lab.powershell.compiler import statement as compiled_statement
from hcibenefit.lab.powershell.errors import (
    Break,
    Continue,
    ErrorRecord,
    FlowControl,
    NotEmulated,
    PSError,
    Return,
    Unsupported,
)
from hcibenefit.lab.powershell.members import (
    call_method,
    get_member,
    index,
    set_static_member,
    static_call,
    static_member,
)
from hcibenefit.lab.powershell.runspace import Runspace, Scope, Sink
from hcibenefit.lab.powershell.runtime import (
    CONSTANT_VARIABLES,
    OPERATORS,
    VOID,
    TypeRef,
    collapse,
    comparison,
    enumerate_value,
)
from hcibenefit.lab.powershell.values import MISSING, PSDict, PSObject, ScriptBlock

if TYPE_CHECKING:
    from hcibenefit.lab.powershell.cmdlets.base import Cmdlet

MAX_CALL_DEPTH = 100
_RESOLVE: list[Callable[[str, Any], Cmdlet | None]] = []


def _cmdlet_resolver() -> Callable[[str, Any], Cmdlet | None]:
    """cmdlets.resolve, imported on first use (the cmdlet modules import this one)."""
    if not _RESOLVE:
        from hcibenefit.lab.powershell.cmdlets import resolve

        _RESOLVE.append(resolve)
    return _RESOLVE[0]


class Function:
    __slots__ = ("block", "name")

    def __init__(self, name: str, block: n.Block) -> None:
        self.name = name
        self.block = block


class _Signal(FlowControl):
    def __init__(self, output: list[Any] | None = None) -> None:
        super().__init__()
        self.output = output or []


class Interpreter:
    def __init__(self, runspace: Runspace, sink: Sink) -> None:
        self.runspace = runspace
        self.sink = sink
        self.try_depth = 0
        self.call_depth = 0

    # --- entry points ------------------------------------------------------------------------------

    def run_script(self, block: n.Block, args: Sequence[Arg], *, command: str | None = None) -> list[Any]:
        """Run a script dot-sourced into the global scope; a terminating error escapes as PSError."""
        scope = self.runspace.global_scope
        out: list[Any] = []
        self._bind(block, args, scope, command)
        try:
            self.exec_statements(block.body, scope, out)
        except Return:
            pass
        except PSError as exc:
            exc.output = out  # type: ignore[attr-defined]
            raise
        return out

    def invoke_block(
        self,
        block: ScriptBlock | n.Block,
        scope: Scope,
        args: Sequence[Arg] = (),
        *,
        dollar_underscore: Any = MISSING,
        new_scope: bool = True,
        command: str | None = None,
    ) -> list[Any]:
        """Run a script block: in a child scope (`&`, Invoke-Command) or in `scope` (ForEach-Object)."""
        body = block.block if isinstance(block, ScriptBlock) else block
        target = Scope(scope) if new_scope else scope
        saved = target.vars.get("_", MISSING)
        if dollar_underscore is not MISSING:
            target.vars["_"] = dollar_underscore
        out: list[Any] = []
        self._enter()
        try:
            if body.params is not None or args:
                self._bind(body, args, target, command)
            self.exec_statements(body.body, target, out)
        except Return:
            pass
        finally:
            self.call_depth -= 1
            if dollar_underscore is not MISSING:
                if saved is MISSING:
                    target.vars.pop("_", None)
                else:
                    target.vars["_"] = saved
        return out

    def _enter(self) -> None:
        self.call_depth += 1
        if self.call_depth > MAX_CALL_DEPTH:
            self.call_depth -= 1
            raise PSError(
                ErrorRecord(
                    "The script failed due to call depth overflow.", "CallDepthOverflow", "InvalidOperation"
                )
            )

    def _bind(self, block: n.Block, args: Sequence[Arg], scope: Scope, command: str | None) -> None:
        bound = bind_block(block, args, command)
        for name, value in bound.values.items():
            scope.vars[name.casefold()] = value
        for decl in bound.defaults:
            scope.vars[decl.name.casefold()] = default_value(decl, lambda e: self.value(e, scope), command)
        scope.vars["args"] = bound.extra
        if "ErrorAction" in bound.common:
            scope.vars["erroractionpreference"] = bound.common["ErrorAction"]

    # --- statements --------------------------------------------------------------------------------

    def exec_statements(self, statements: Sequence[n.Stmt], scope: Scope, out: list[Any]) -> None:
        # exec_statement inlined: this loop runs every statement of every script, function and block.
        for stmt in statements:
            fn = stmt.compiled
            if fn is None:
                fn = compiled_statement(stmt)
            try:
                fn(self, scope, out)
            except PSError as exc:
                self._statement_error(exc, scope)

    def exec_statement(self, stmt: n.Stmt, scope: Scope, out: list[Any]) -> None:
        try:
            self._exec(stmt, scope, out)
        except PSError as exc:
            self._statement_error(exc, scope)

    def _statement_error(self, exc: PSError, scope: Scope) -> None:
        """What happens to a terminating error no try/catch will see (powershell51.md section 6.1)."""
        if self.try_depth > 0:
            raise exc
        preference = cv.to_string(self.preference(scope, "ErrorActionPreference"))
        if exc.kind == "throw":
            if preference in ("SilentlyContinue", "Ignore"):
                if preference == "SilentlyContinue":
                    self.runspace.add_error(exc.record)
                return
            raise exc
        if exc.kind == "stop" or preference == "Stop":
            raise exc
        if preference == "Ignore":
            return
        self.runspace.add_error(exc.record)
        if preference != "SilentlyContinue":
            self.sink.write_error_record(exc.record)

    def _exec(self, stmt: n.Stmt, scope: Scope, out: list[Any]) -> None:
        """One statement, by its compiled closure (`compiler.statement`)."""
        compiled_statement(stmt)(self, scope, out)

    def _exec_unsupported(self, stmt: n.Stmt, scope: Scope, out: list[Any]) -> None:
        raise Unsupported(type(stmt).__name__, stmt.line)

    def _exec_PipelineStmt(self, stmt: n.PipelineStmt, scope: Scope, out: list[Any]) -> None:
        elements = stmt.pipeline.elements
        if len(elements) == 1 and type(elements[0]) is n.PostIncrement:
            self.eval(elements[0], scope)
            return
        out.extend(self.run_pipeline(stmt.pipeline, scope))

    def _exec_Assign(self, stmt: n.Assign, scope: Scope, out: list[Any]) -> None:
        self.assign(stmt, scope)

    def _exec_If(self, stmt: n.If, scope: Scope, out: list[Any]) -> None:
        for condition, body in stmt.clauses:
            if cv.to_bool(self.pipeline_value(condition, scope)):
                self.exec_statements(body, scope, out)
                return
        if stmt.otherwise is not None:
            self.exec_statements(stmt.otherwise, scope, out)

    def _exec_ForEach(self, stmt: n.ForEach, scope: Scope, out: list[Any]) -> None:
        items = self.pipeline_value(stmt.iterable, scope)
        variable = stmt.variable.casefold()
        for item in [] if items is None else enumerate_value(items):
            scope.vars[variable] = item
            try:
                self.exec_statements(stmt.body, scope, out)
            except Break:
                break
            except Continue:
                continue

    def _exec_For(self, stmt: n.For, scope: Scope, out: list[Any]) -> None:
        self._for(stmt, scope, out)

    def _exec_While(self, stmt: n.While, scope: Scope, out: list[Any]) -> None:
        self._while(stmt, scope, out)

    def _exec_Try(self, stmt: n.Try, scope: Scope, out: list[Any]) -> None:
        self._try(stmt, scope, out)

    def _exec_Throw(self, stmt: n.Throw, scope: Scope, out: list[Any]) -> None:
        self._throw(stmt, scope)

    def _exec_Return(self, stmt: n.Return, scope: Scope, out: list[Any]) -> None:
        if stmt.value is not None:
            out.extend(self.run_pipeline(stmt.value, scope))
        raise Return()

    def _exec_Break(self, stmt: n.Break, scope: Scope, out: list[Any]) -> None:
        raise Break()

    def _exec_Continue(self, stmt: n.Continue, scope: Scope, out: list[Any]) -> None:
        raise Continue()

    def _exec_FunctionDef(self, stmt: n.FunctionDef, scope: Scope, out: list[Any]) -> None:
        scope.functions[stmt.name.casefold()] = Function(stmt.name, stmt.block)

    def _for(self, stmt: n.For, scope: Scope, out: list[Any]) -> None:
        if stmt.init is not None:
            self._step(stmt.init, scope)
        while stmt.condition is None or cv.to_bool(self.pipeline_value(stmt.condition, scope)):
            try:
                self.exec_statements(stmt.body, scope, out)
            except Break:
                break
            except Continue:
                pass
            if stmt.step is not None:
                self._step(stmt.step, scope)

    def _step(self, part: n.Pipeline | n.Stmt, scope: Scope) -> None:
        if isinstance(part, n.Pipeline):
            if len(part.elements) == 1 and isinstance(part.elements[0], n.PostIncrement):
                self.eval(part.elements[0], scope)
            else:
                self.run_pipeline(part, scope)
        else:
            self._exec(part, scope, [])

    def _while(self, stmt: n.While, scope: Scope, out: list[Any]) -> None:
        first = stmt.do
        while True:
            if not first:
                value = cv.to_bool(self.pipeline_value(stmt.condition, scope))
                if value == stmt.until:
                    break
            first = False
            try:
                self.exec_statements(stmt.body, scope, out)
            except Break:
                break
            except Continue:
                continue

    def _try(self, stmt: n.Try, scope: Scope, out: list[Any]) -> None:
        try:
            self.try_depth += 1
            try:
                self.exec_statements(stmt.body, scope, out)
            finally:
                self.try_depth -= 1
        except PSError as exc:
            handler = self._matching_catch(stmt, exc.record)
            if handler is None:
                raise
            saved = scope.vars.get("_", MISSING)
            scope.vars["_"] = exc.record
            try:
                self.exec_statements(handler.body, scope, out)
            finally:
                if saved is MISSING:
                    scope.vars.pop("_", None)
                else:
                    scope.vars["_"] = saved
        finally:
            if stmt.final is not None:
                self.exec_statements(stmt.final, scope, out)

    @staticmethod
    def _matching_catch(stmt: n.Try, record: ErrorRecord) -> n.Catch | None:
        names = [t.casefold() for t in record.exception.type_names]
        for clause in stmt.catches:
            if not clause.types:
                return clause
            for wanted in clause.types:
                folded = wanted.casefold()
                if folded in names or f"system.{folded}" in names:
                    return clause
        return None

    def _throw(self, stmt: n.Throw, scope: Scope) -> None:
        if stmt.value is None:
            current = scope.find("_")
            if isinstance(current, ErrorRecord) and self._in_catch(scope):
                raise PSError(current, "throw")
            raise PSError(ErrorRecord("ScriptHalted", "ScriptHalted", "OperationStopped"), "throw")
        value = self.pipeline_value(stmt.value, scope)
        if isinstance(value, ErrorRecord):
            raise PSError(value, "throw")
        if isinstance(value, PSObject) and "System.Exception" in value.type_names:
            message = cv.to_string(value.get("Message"))
            raise PSError(ErrorRecord(message, message, "OperationStopped", exception_object=value), "throw")
        message = cv.to_string(value)
        raise PSError(ErrorRecord(message, message, "OperationStopped", target=value), "throw")

    @staticmethod
    def _in_catch(scope: Scope) -> bool:
        return isinstance(scope.vars.get("_"), ErrorRecord)

    # --- assignment --------------------------------------------------------------------------------

    def assign(self, stmt: n.Assign, scope: Scope) -> None:
        value_node = stmt.value
        if isinstance(value_node, n.Pipeline):
            value = self.pipeline_value(value_node, scope)
        else:
            collected: list[Any] = []
            self._exec(value_node, scope, collected)
            value = collapse(collected)
        if value is VOID:
            value = None
        target = stmt.target
        if stmt.op != "=":
            current = self.value(target, scope)
            value = cv.add(current, value) if stmt.op == "+=" else cv.subtract(current, value)
        self.store(target, value, scope)

    def store(self, target: n.Expr, value: Any, scope: Scope) -> None:
        if isinstance(target, n.Variable):
            self.set_variable(target, value, scope)
            return
        if isinstance(target, n.Member):
            if target.static:
                if not isinstance(target.target, n.TypeLiteral) or not isinstance(target.name, str):
                    raise Unsupported("this static assignment", target.line)
                set_static_member(self.runspace, target.target.name, target.name, value)
                return
            owner = self.value(target.target, scope)
            name = (
                target.name if isinstance(target.name, str) else cv.to_string(self.value(target.name, scope))
            )
            self._set_member(owner, name, value, target.line)
            return
        if isinstance(target, n.Index):
            owner = self.value(target.target, scope)
            key = self.value(target.index, scope)
            if isinstance(owner, PSDict):
                owner[key] = value
                return
            if isinstance(owner, list):
                position = cv.to_integer(key, cv.INT32, "System.Int32")
                if not -len(owner) <= position < len(owner):
                    raise PSError(
                        ErrorRecord(
                            "Index was outside the bounds of the array.",
                            "IndexOutOfRange",
                            "InvalidOperation",
                        )
                    )
                owner[position] = value
                return
            if owner is None:
                raise PSError(ErrorRecord("Cannot index into a null array.", "NullArray", "InvalidOperation"))
            raise NotEmulated(f"assigning through an index of {cv.type_name_of(owner)}")
        raise Unsupported("assignment to this expression", target.line)

    def _set_member(self, owner: Any, name: str, value: Any, line: int) -> None:
        if isinstance(owner, PSDict):
            owner[name] = value
            return
        if isinstance(owner, PSObject) and owner.has(name):
            owner.set(name, value)
            return
        if owner is None:
            raise PSError(
                ErrorRecord(
                    f"The property '{name}' cannot be found on this object. Verify that the property exists and can be set.",
                    "PropertyNotFound",
                    "InvalidOperation",
                )
            )
        raise PSError(
            ErrorRecord(
                f"The property '{name}' cannot be found on this object. Verify that the property exists and can be set.",
                "PropertyAssignmentException",
                "InvalidOperation",
            )
        )

    # --- variables ---------------------------------------------------------------------------------

    def get_variable(self, var: n.Variable, scope: Scope) -> Any:
        name = var.key
        where_scope = var.scope
        if where_scope is None:
            # The common case, kept short: a plain $name read through the scope chain.
            if name in CONSTANT_VARIABLES:
                return CONSTANT_VARIABLES[name]
            chain: Scope | None = scope
            while chain is not None:
                found = chain.vars
                if name in found:
                    return found[name]
                chain = chain.parent
            return self._automatic_variable(name)
        if where_scope == "env":
            return self.runspace.env(var.name)
        if name in CONSTANT_VARIABLES:
            return CONSTANT_VARIABLES[name]
        where = self.runspace.global_scope if where_scope in ("global", "script") else scope
        value = where.vars.get(name, MISSING) if where_scope in ("local", "private") else where.find(name)
        if value is not MISSING:
            return value
        return self._automatic_variable(name)

    def _automatic_variable(self, name: str) -> Any:
        """A variable no scope holds: the automatic ones the runspace provides, else $null."""
        if name == "host":
            return self.runspace.host
        if name == "error":
            return self.runspace.errors
        if name == "pscmdlet":
            return None
        if name == "psversiontable":
            return PSDict([("PSVersion", "5.1.20348.2849"), ("PSEdition", "Desktop")])
        return None

    def set_variable(self, var: n.Variable, value: Any, scope: Scope) -> None:
        name = var.name.casefold()
        if var.scope == "env":
            raise Unsupported("setting environment variables", var.line)
        if name in ("true", "false", "null"):
            if name == "null":
                return  # `$null = ...` discards
            raise PSError(
                ErrorRecord(
                    f"Cannot overwrite variable {var.name} because it is read-only or constant.",
                    "VariableNotWritable",
                    "WriteError",
                )
            )
        target = self.runspace.global_scope if var.scope in ("global", "script") else scope
        target.vars[name] = value

    def preference(self, scope: Scope, name: str) -> Any:
        value = scope.find(name)
        return self.runspace.global_scope.vars.get(name.casefold()) if value is MISSING else value

    # --- pipelines and commands ---------------------------------------------------------------------

    def run_pipeline(self, pipeline: n.Pipeline, scope: Scope) -> list[Any]:
        """What the pipeline writes, by its compiled closure (`compiler.runner`)."""
        fn = pipeline.runner
        if fn is None:
            fn = compiled_runner(pipeline)
        return fn(self, scope)  # type: ignore[no-any-return]

    def walk_pipeline(self, pipeline: n.Pipeline, scope: Scope) -> list[Any]:
        """What the pipeline writes, element by element (for the shapes the compiler leaves to it)."""
        items: list[Any] | None = None
        for position, element in enumerate(pipeline.elements):
            if isinstance(element, n.Command):
                items = self.invoke_command(element, scope, items)
                continue
            if position != 0:
                raise PSError(
                    ErrorRecord(
                        "Expressions are only allowed as the first element of a pipeline.",
                        "ExpressionsMustBeFirstInPipeline",
                        "ParserError",
                    )
                )
            if isinstance(element, n.Paren | n.SubExpr) and self._is_command_pipeline(element):
                items = self._statement_outputs(element, scope)
            else:
                items = enumerate_value(self.eval(element, scope))
        return items or []

    @staticmethod
    def _is_command_pipeline(element: n.Paren | n.SubExpr) -> bool:
        if isinstance(element, n.SubExpr):
            return True
        return any(isinstance(e, n.Command) for e in element.pipeline.elements)

    def _statement_outputs(self, element: n.Paren | n.SubExpr, scope: Scope) -> list[Any]:
        if isinstance(element, n.Paren):
            return self.run_pipeline(element.pipeline, scope)
        out: list[Any] = []
        self.exec_statements(element.body, scope, out)
        return out

    def pipeline_value(self, pipeline: n.Pipeline, scope: Scope) -> Any:
        """A pipeline used as a value: a lone expression keeps its value, commands are collapsed."""
        fn = pipeline.compiled
        if fn is None:
            fn = compiled_pipeline_value(pipeline)
        return fn(self, scope)

    def command_args(self, command: n.Command, scope: Scope) -> list[Arg]:
        """`-Name`, `-Name:value` and positional values, evaluated in order (`compiler.command_args`)."""
        fn = command.compiled
        if fn is None:
            fn = compiled_command_args(command)
        return fn(self, scope)  # type: ignore[no-any-return]

    def invoke_command(self, command: n.Command, scope: Scope, input_items: list[Any] | None) -> list[Any]:
        resolve = _cmdlet_resolver()
        function = scope.function_by_key(command.key)
        args = self.command_args(command, scope)
        if function is not None:
            if input_items:
                raise Unsupported(f"pipeline input to the script function {command.name}", command.line)
            return self.call_function(function, args, scope)
        cmdlet = resolve(command.name, self.runspace.machine)
        if cmdlet is None:
            raise PSError(
                ErrorRecord(
                    f"The term '{command.name}' is not recognized as the name of a cmdlet, function, script file, or "
                    "operable program. Check the spelling of the name, or if a path was included, verify that the path "
                    "is correct and try again.",
                    "CommandNotFoundException",
                    "ObjectNotFound",
                    exception_type="System.Management.Automation.CommandNotFoundException",
                    target=command.name,
                )
            )
        return cmdlet.invoke(self, scope, args, input_items)

    def call_function(self, function: Function, args: Sequence[Arg], scope: Scope) -> list[Any]:
        child = Scope(scope)
        out: list[Any] = []
        self._enter()
        try:
            self._bind(function.block, args, child, function.name)
            self.exec_statements(function.block.body, child, out)
        except Return:
            pass
        finally:
            self.call_depth -= 1
        return out

    # --- expressions -------------------------------------------------------------------------------

    def eval(self, expr: n.Expr, scope: Scope) -> Any:
        """The expression's value; VOID for a void method call or a [void] cast (which output nothing)."""
        fn = expr.compiled
        if fn is None:
            fn = compiled(expr)
        return fn(self, scope)

    def value(self, expr: n.Expr, scope: Scope) -> Any:
        """The expression's value where a value is needed: a void result is $null."""
        fn = expr.compiled
        if fn is None:
            fn = compiled(expr)
        result = fn(self, scope)
        return None if result is VOID else result

    def _eval_Constant(self, expr: n.Constant, scope: Scope) -> Any:
        return expr.value

    def _eval_Expandable(self, expr: n.Expandable, scope: Scope) -> str:
        parts = []
        separator = self.preference(scope, "OFS")
        for part in expr.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            value = self.eval(part, scope)
            if isinstance(value, list) and separator is not None:
                parts.append(cv.to_string(separator).join(cv.to_string(v, nested=True) for v in value))
            else:
                parts.append(cv.to_string(None if value is VOID else value))
        return "".join(parts)

    _eval_Variable = get_variable

    def _eval_Member(self, expr: n.Member, scope: Scope) -> Any:
        name = expr.name if isinstance(expr.name, str) else cv.to_string(self.value(expr.name, scope))
        if expr.static:
            if not isinstance(expr.target, n.TypeLiteral):
                raise Unsupported("a static member of a computed type", expr.line)
            return static_member(self.runspace, expr.target.name, name)
        value = get_member(self.value(expr.target, scope), name)
        return None if value is MISSING else value

    def _eval_Invoke(self, expr: n.Invoke, scope: Scope) -> Any:
        args = [self.value(a, scope) for a in expr.args]
        if expr.static:
            if not isinstance(expr.target, n.TypeLiteral):
                raise Unsupported("a static method of a computed type", expr.line)
            result = static_call(self, expr.target.name, expr.name, args)
            return VOID if result is None else result
        target = self.value(expr.target, scope)
        result = call_method(target, expr.name, args)
        # The lab's methods return None only when the .NET method is void: it writes nothing.
        return VOID if result is None else result

    def _eval_Index(self, expr: n.Index, scope: Scope) -> Any:
        return index(self.value(expr.target, scope), self.value(expr.index, scope))

    def _eval_ArrayLiteral(self, expr: n.ArrayLiteral, scope: Scope) -> list[Any]:
        return [self.value(item, scope) for item in expr.items]

    def _eval_ArrayExpr(self, expr: n.ArrayExpr, scope: Scope) -> list[Any]:
        out: list[Any] = []
        self.exec_statements(expr.body, scope, out)
        return out

    def _eval_SubExpr(self, expr: n.SubExpr, scope: Scope) -> Any:
        out: list[Any] = []
        self.exec_statements(expr.body, scope, out)
        return collapse(out)

    def _eval_Paren(self, expr: n.Paren, scope: Scope) -> Any:
        return self.pipeline_value(expr.pipeline, scope)

    def _eval_HashLiteral(self, expr: n.HashLiteral, scope: Scope, *, ordered: bool = False) -> PSDict:
        result = PSDict(ordered=ordered)
        for key_node, value in expr.entries:
            key = key_node if isinstance(key_node, str) else self.value(key_node, scope)
            if key in result:
                raise PSError(
                    ErrorRecord(
                        f"Duplicate keys '{key}' are not allowed in hash literals.",
                        "DuplicateKeyInHashLiteral",
                        "ParserError",
                    )
                )
            item = self.pipeline_value(value, scope)
            result[key] = None if item is VOID else item
        return result

    def _eval_TypeLiteral(self, expr: n.TypeLiteral, scope: Scope) -> TypeRef:
        return TypeRef(expr.name)

    def _eval_Cast(self, expr: n.Cast, scope: Scope) -> Any:
        kind = expr.type_name.casefold()
        if kind == "ordered":
            if not isinstance(expr.expr, n.HashLiteral):
                raise PSError(
                    ErrorRecord(
                        "The ordered attribute can be specified only on a hash literal node.",
                        "OrderedAttributeOnlyOnHashLiteralNode",
                        "ParserError",
                    )
                )
            return self._eval_HashLiteral(expr.expr, scope, ordered=True)
        if kind in ("pscustomobject", "system.management.automation.pscustomobject") and isinstance(
            expr.expr, n.HashLiteral
        ):
            table = self._eval_HashLiteral(expr.expr, scope, ordered=True)
            return PSObject(props=list(table.items()))
        value = self.eval(expr.expr, scope)
        if kind == "void":
            return VOID
        return cv.cast(None if value is VOID else value, expr.type_name)

    def _eval_Unary(self, expr: n.Unary, scope: Scope) -> Any:
        value = self.value(expr.expr, scope)
        if expr.op in ("-not", "!"):
            return not cv.to_bool(value)
        if expr.op == ",":
            return [value]
        if expr.op == "-":
            return cv.subtract(0, value)
        if expr.op == "+":
            return cv.to_number(value)
        raise Unsupported(f"the unary operator {expr.op}", expr.line)

    def _eval_Binary(self, expr: n.Binary, scope: Scope) -> Any:
        op = expr.op
        if op == "-and":
            return cv.to_bool(self.value(expr.left, scope)) and cv.to_bool(self.value(expr.right, scope))
        if op == "-or":
            return cv.to_bool(self.value(expr.left, scope)) or cv.to_bool(self.value(expr.right, scope))
        left = self.value(expr.left, scope)
        right = self.value(expr.right, scope)
        return self.binary(op, left, right, scope, expr.line)

    def binary(self, op: str, left: Any, right: Any, scope: Scope, line: int) -> Any:
        operator = OPERATORS.get(op)
        if operator is not None:
            return operator(left, right)
        base, case_sensitive = comparison(op)
        if isinstance(left, list):
            return [item for item in left if self._compare(base, item, right, case_sensitive, scope)]
        return self._compare(base, left, right, case_sensitive, scope)

    def _compare(self, op: str, left: Any, right: Any, case_sensitive: bool, scope: Scope) -> bool:
        if op == "eq":
            return cv.equals(left, right, case_sensitive=case_sensitive)
        if op == "ne":
            return not cv.equals(left, right, case_sensitive=case_sensitive)
        if op in ("gt", "ge", "lt", "le"):
            result = cv.compare(left, right)
            return {"gt": result > 0, "ge": result >= 0, "lt": result < 0, "le": result <= 0}[op]
        if op in ("like", "notlike"):
            matched = cv.wildcard_match(cv.to_string(right), cv.to_string(left))
            return matched if op == "like" else not matched
        if op in ("match", "notmatch"):
            found = re.search(cv.to_string(right), cv.to_string(left), 0 if case_sensitive else re.IGNORECASE)
            if found is not None and op == "match":
                groups = PSDict([(0, found.group(0))])
                for number, group in enumerate(found.groups(), start=1):
                    if group is not None:
                        groups[number] = group
                for name, group in found.groupdict().items():
                    if group is not None:
                        groups[name] = group
                scope.vars["matches"] = groups
            return (found is not None) if op == "match" else found is None
        raise Unsupported(f"the operator -{op}")

    def _eval_PostIncrement(self, expr: n.PostIncrement, scope: Scope) -> Any:
        current = self.value(expr.target, scope)
        self.store(expr.target, cv.add(current, expr.delta), scope)
        return current

    def _eval_ScriptBlockExpr(self, expr: n.ScriptBlockExpr, scope: Scope) -> ScriptBlock:
        return ScriptBlock(expr.block, expr.text)


__all__ = ["VOID", "Function", "Interpreter", "TypeRef", "collapse", "enumerate_value"]
