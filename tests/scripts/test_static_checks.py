"""Static checks of every shipped .ps1 over its syntax tree (the lab's parser, built on tree-sitter-powershell).

1. Every command is a function the script defines or a cmdlet in the documented table
   (hcibenefit/lab/powershell/cmdlets/parameters.json, a source per cmdlet), and every parameter name
   a call uses is one of that cmdlet's documented names or aliases, spelled out in full.
2. Every `ConvertTo-Json` passes a `-Depth` that covers the nesting of what it serialises: the depth of
   the containers a script builds is estimated from its assignments, hash literals, arrays, list
   `.Add()`s and function results (a flow-insensitive fixed point), and the deepest container level
   must not exceed -Depth (5.1 cuts deeper containers to type-name strings; powershell51.md 1.2).
3. Every `-ArgumentList` matches the param() of the script block it feeds, in count and order: the
   body script a fan-out passes as text (by catalog pairing) or an inline `{ param(...) }` block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from hcibenefit.lab.powershell import nodes as n
from hcibenefit.lab.powershell import syntax
from hcibenefit.lab.powershell.binding import COMMON_PARAMETERS
from hcibenefit.lab.powershell.cmdlets import documented_parameters
from hcibenefit.remoting.catalog import (
    ALL_SCRIPTS,
    GUEST_KICK,
    GUEST_KICK_BODY,
    GUEST_PROBE,
    GUEST_PROBE_BODY,
    Script,
)

pytest.importorskip("tree_sitter_powershell")

# Which body script each fan-out hands to Invoke-Command -ScriptBlock ([scriptblock]::Create($text)).
BODY_OF = {GUEST_PROBE.key: GUEST_PROBE_BODY, GUEST_KICK.key: GUEST_KICK_BODY}


def walk(value: Any) -> Iterator[Any]:
    """Every syntax node under `value` (dataclass fields, tuples), depth first."""
    if isinstance(value, n.Node):
        yield value
        for field in dataclasses.fields(value):
            yield from walk(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from walk(item)


def commands(block: n.Block) -> list[n.Command]:
    return [node for node in walk(block) if isinstance(node, n.Command)]


def functions(block: n.Block) -> dict[str, n.Block]:
    return {node.name.casefold(): node.block for node in walk(block) if isinstance(node, n.FunctionDef)}


def parsed(script: Script) -> n.Block:
    return syntax.parse(script.text())


# --- 1. cmdlets and parameter names -------------------------------------------------------------------


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda s: s.key)
def test_every_command_is_documented_and_uses_documented_parameter_names(script: Script) -> None:
    block = parsed(script)
    local = functions(block)
    table = documented_parameters()
    found = commands(block)
    assert found, f"{script.filename}: no commands found, the walk is broken"
    problems = []
    for command in found:
        if command.name.casefold() in local:
            declared = {p.name.casefold() for p in local[command.name.casefold()].params or ()}
            if local[command.name.casefold()].advanced:
                declared |= {c.casefold() for c in COMMON_PARAMETERS}
            names = declared
        elif command.name.casefold() in table:
            names = {p.casefold() for p in table[command.name.casefold()]["parameters"]}
        else:
            problems.append(f"line {command.line}: {command.name} is not in parameters.json")
            continue
        for element in command.elements:
            if isinstance(element, n.CommandParameter) and element.name.casefold() not in names:
                problems.append(f"line {element.line}: {command.name} has no parameter -{element.name}")
    assert not problems, f"{script.filename}: " + "; ".join(problems)


def test_the_parameter_table_names_a_source_for_every_cmdlet() -> None:
    for name, entry in documented_parameters().items():
        assert entry["source"].startswith("https://"), name
        assert entry["module"] and entry["parameters"], name


def test_every_emulated_parameter_is_documented() -> None:
    """The lab emulates only what the table documents (aliases included): no invented parameters."""
    from hcibenefit.lab.powershell.cmdlets import emulated

    table = documented_parameters()
    for cmdlet in emulated():
        documented = {p.casefold() for p in table[cmdlet.name.casefold()]["parameters"]}
        for param in cmdlet.params:
            assert param.name.casefold() in documented, f"{cmdlet.name} -{param.name}"
            for alias in param.aliases:
                assert alias.casefold() in documented, f"{cmdlet.name} -{alias}"


# --- 2. ConvertTo-Json -Depth ----------------------------------------------------------------------------


class DepthEstimator:
    """How deep the containers a script builds can nest: 0 for a scalar, 1 for a flat hash/array, ..."""

    def __init__(self, block: n.Block) -> None:
        self.block = block
        self.variables: dict[str, int] = {}
        self.returns: dict[str, int] = {}
        self.functions = functions(block)

    def solve(self) -> None:
        for _ in range(50):
            before = (dict(self.variables), dict(self.returns))
            self._statements(self.block.body, None)
            for name, fn in self.functions.items():
                self.returns[name] = max(self.returns.get(name, 0), self._output_depth(fn.body, name))
            if (self.variables, self.returns) == before:
                return
        raise AssertionError("the depth estimate does not converge")

    def _raise(self, name: str, depth: int) -> None:
        key = name.casefold()
        self.variables[key] = max(self.variables.get(key, 0), depth)

    def _statements(self, statements: tuple[n.Stmt, ...], function: str | None) -> None:
        for node in walk(statements):
            if isinstance(node, n.Assign):
                value = node.value
                depth = self.pipeline(value) if isinstance(value, n.Pipeline) else 0
                target = node.target
                if isinstance(target, n.Variable):
                    self._raise(target.name, depth)
                elif isinstance(target, n.Member | n.Index) and isinstance(target.target, n.Variable):
                    self._raise(target.target.name, depth + 1)
            elif (
                isinstance(node, n.Invoke)
                and node.name.casefold() == "add"
                and isinstance(node.target, n.Variable)
            ):
                self._raise(node.target.name, 1 + max((self.expr(a) for a in node.args), default=0))
            elif (
                isinstance(node, n.Invoke)
                and isinstance(node.target, n.Index)
                and isinstance(node.target.target, n.Variable)
            ):
                # $table[$key].Add(x): the table holds lists of x.
                if node.name.casefold() == "add":
                    self._raise(
                        node.target.target.name, 2 + max((self.expr(a) for a in node.args), default=0)
                    )
            elif isinstance(node, n.ForEach):
                self._raise(node.variable, max(0, self.pipeline(node.iterable) - 1))

    def _output_depth(self, statements: tuple[n.Stmt, ...], function: str | None) -> int:
        depth = 0
        for statement in statements:
            if isinstance(statement, n.PipelineStmt):
                depth = max(depth, self.pipeline(statement.pipeline))
            elif isinstance(statement, n.Return) and statement.value is not None:
                depth = max(depth, self.pipeline(statement.value))
            elif isinstance(statement, n.If):
                for _, body in statement.clauses:
                    depth = max(depth, self._output_depth(body, function))
                if statement.otherwise:
                    depth = max(depth, self._output_depth(statement.otherwise, function))
            elif isinstance(statement, n.Try):
                depth = max(depth, self._output_depth(statement.body, function))
                for clause in statement.catches:
                    depth = max(depth, self._output_depth(clause.body, function))
            elif isinstance(statement, n.ForEach | n.For | n.While):
                depth = max(depth, self._output_depth(statement.body, function))
        return depth

    def pipeline(self, pipeline: n.Pipeline) -> int:
        last = pipeline.elements[-1]
        if isinstance(last, n.Command):
            name = last.name.casefold()
            if name == "foreach-object":
                blocks = [e for e in last.elements if isinstance(e, n.ScriptBlockExpr)]
                return max((self._output_depth(b.block.body, None) for b in blocks), default=0)
            if name in ("select-object", "sort-object", "where-object"):
                return (
                    self.pipeline(n.Pipeline(pipeline.line, pipeline.elements[:-1]))
                    if len(pipeline.elements) > 1
                    else 0
                )
            return self.returns.get(name, 0)  # a cmdlet's objects are not what our scripts serialise
        return self.expr(last)

    def expr(self, expr: Any) -> int:
        if isinstance(expr, n.HashLiteral):
            return 1 + max((self.pipeline(v) for _, v in expr.entries), default=0)
        if isinstance(expr, n.Cast):
            if expr.type_name.casefold() in ("ordered", "pscustomobject"):
                return self.expr(expr.expr)
            return self.expr(expr.expr) if expr.type_name.casefold() in ("array", "object[]") else 0
        if isinstance(expr, n.ArrayLiteral):
            return 1 + max((self.expr(i) for i in expr.items), default=0)
        if isinstance(expr, n.ArrayExpr):
            return 1 + self._output_depth(expr.body, None)
        if isinstance(expr, n.SubExpr):
            return self._output_depth(expr.body, None)
        if isinstance(expr, n.Paren):
            return self.pipeline(expr.pipeline)
        if isinstance(expr, n.Variable):
            return self.variables.get(expr.name.casefold(), 0)
        if isinstance(expr, n.Invoke) and expr.name.casefold() == "toarray":
            return self.expr(expr.target)
        if isinstance(expr, n.Index) and isinstance(expr.target, n.Variable):
            return max(0, self.variables.get(expr.target.name.casefold(), 0) - 1)
        return 0


def json_calls(block: n.Block) -> list[tuple[n.Command, int, Any]]:
    """(call, -Depth (2 when absent, as in 5.1), the -InputObject expression)."""
    found = []
    for command in commands(block):
        if command.name.casefold() != "convertto-json":
            continue
        depth = 2
        value: Any = None
        elements = list(command.elements)
        for i, element in enumerate(elements):
            if isinstance(element, n.CommandParameter):
                following = (
                    element.value if element.colon else (elements[i + 1] if i + 1 < len(elements) else None)
                )
                if element.name.casefold() == "depth":
                    assert isinstance(following, n.Constant), f"line {element.line}: -Depth must be a literal"
                    depth = int(following.value)
                elif element.name.casefold() == "inputobject":
                    value = following
        found.append((command, depth, value))
    return found


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda s: s.key)
def test_every_convertto_json_depth_covers_the_nesting_it_serialises(script: Script) -> None:
    block = parsed(script)
    estimator = DepthEstimator(block)
    estimator.solve()
    calls = json_calls(block)
    assert calls, f"{script.filename}: every script answers with one ConvertTo-Json document"
    for command, depth, value in calls:
        assert value is not None, (
            f"{script.filename} line {command.line}: pass -InputObject (a pipeline unrolls arrays)"
        )
        needed = estimator.expr(value) - 1  # the root container is level 0
        assert depth >= needed, (
            f"{script.filename} line {command.line}: -Depth {depth} but containers nest to level {needed}; "
            "Windows PowerShell 5.1 would turn the deeper ones into type-name strings"
        )


def test_the_depth_estimate_sees_host_facts_adapters_and_their_addresses() -> None:
    """The estimator itself: host-facts nests vms[] > vm > network_adapters[] > adapter > ip_addresses[]."""
    from hcibenefit.remoting.catalog import HOST_FACTS

    block = parsed(HOST_FACTS)
    estimator = DepthEstimator(block)
    estimator.solve()
    [(_, _, value)] = json_calls(block)
    assert estimator.expr(value) - 1 == 5


# --- 3. -ArgumentList against param() -----------------------------------------------------------------------


def argument_lists(block: n.Block) -> list[tuple[n.Command, list[Any], Any]]:
    """(Invoke-Command call, its -ArgumentList items, its -ScriptBlock expression)."""
    found = []
    for command in commands(block):
        if command.name.casefold() != "invoke-command":
            continue
        arguments: list[Any] | None = None
        script_block: Any = None
        elements = list(command.elements)
        for i, element in enumerate(elements):
            if not isinstance(element, n.CommandParameter):
                continue
            following = (
                element.value if element.colon else (elements[i + 1] if i + 1 < len(elements) else None)
            )
            if element.name.casefold() in ("argumentlist", "args"):
                arguments = list(following.items) if isinstance(following, n.ArrayLiteral) else [following]
            elif element.name.casefold() in ("scriptblock", "command"):
                script_block = following
        if arguments is not None:
            found.append((command, arguments, script_block))
    return found


def _target_params(script: Script, script_block: Any) -> list[str]:
    if isinstance(script_block, n.ScriptBlockExpr):
        return [p.name for p in script_block.block.params or ()]
    body = BODY_OF.get(script.key)
    assert body is not None, f"{script.filename}: -ArgumentList to a script block the check cannot find"
    return [p.name for p in parsed(body).params or ()]


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda s: s.key)
def test_every_argument_list_matches_the_script_blocks_param_block_in_count_and_order(script: Script) -> None:
    block = parsed(script)
    for command, arguments, script_block in argument_lists(block):
        params = _target_params(script, script_block)
        names = [a.name if isinstance(a, n.Variable) else None for a in arguments]
        assert None not in names, (
            f"{script.filename} line {command.line}: pass variables named like the parameters"
        )
        assert len(names) <= len(params), (
            f"{script.filename} line {command.line}: {len(names)} arguments for {params}"
        )
        assert [name.casefold() for name in names if name] == [p.casefold() for p in params[: len(names)]], (
            f"{script.filename} line {command.line}: -ArgumentList {names} binds by position to {params}"
        )


def test_the_fan_outs_hand_their_bodies_every_argument_the_client_sets() -> None:
    assert [len(a) for s in (GUEST_PROBE, GUEST_KICK) for _, a, _ in argument_lists(parsed(s))] == [2, 3]
