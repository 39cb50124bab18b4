"""From script text to the evaluator's tree (`nodes`), through tree-sitter-powershell.

tree-sitter is imported here only, lazily: the lab needs it, `hcibenefit --help` does not. Anything the
converter does not know is `Unsupported`, naming the grammar construct and the line, so a script that
strays outside the subset fails loudly in the lab instead of being half-evaluated.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

from hcibenefit.lab.powershell import nodes as n
from hcibenefit.lab.powershell.errors import ErrorRecord, PSError, Unsupported

_WRAPPERS = frozenset(
    {
        "logical_expression",
        "bitwise_expression",
        "comparison_expression",
        "additive_expression",
        "multiplicative_expression",
        "format_expression",
        "range_expression",
        "array_literal_expression",
        "unary_expression",
        "argument_expression",
        "logical_argument_expression",
        "bitwise_argument_expression",
        "comparison_argument_expression",
        "additive_argument_expression",
        "multiplicative_argument_expression",
        "format_argument_expression",
        "range_argument_expression",
        "left_assignment_expression",
        "key_expression",
    }
)
_BINARY_OPERATORS = frozenset(
    {
        "-and", "-or", "-xor",
        "-eq", "-ne", "-gt", "-ge", "-lt", "-le",
        "-ieq", "-ine", "-igt", "-ige", "-ilt", "-ile",
        "-ceq", "-cne",
        "-like", "-notlike", "-ilike", "-inotlike", "-clike", "-cnotlike",
        "-match", "-notmatch", "-imatch", "-inotmatch",
        "-in", "-notin", "-contains", "-notcontains",
        "-is", "-isnot", "-replace", "-ireplace",
        "+", "-", "*", "/", "%",
    }
)  # fmt: skip
_SKIP = frozenset({"comment", "empty_statement"})
_VARIABLE = re.compile(
    r"^\$(?:(?P<scope>global|script|local|env|private):)?(?P<name>[\w?^$]+)$", re.IGNORECASE
)

_lock = threading.Lock()
_cache: OrderedDict[str, n.Block] = OrderedDict()
_CACHE_SIZE = 64
_parser: Any = None


def _get_parser() -> Any:
    global _parser
    if _parser is None:
        import tree_sitter
        import tree_sitter_powershell

        _parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    return _parser


def parse(text: str) -> n.Block:
    """The script's tree; cached, since the lab runs the same few scripts over and over.

    A fleet run sends the same script to every node at once: the first caller parses while the others
    wait for its tree (under one lock; parsing holds the GIL anyway), rather than each parsing it again."""
    with _lock:
        cached = _cache.get(text)
        if cached is not None:
            _cache.move_to_end(text)
            return cached
        block = _parse(text)
        _cache[text] = block
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return block


def _parse(text: str) -> n.Block:
    source = text.encode("utf-8")
    tree = _get_parser().parse(source)
    root = tree.root_node
    bad = _first_error(root) if root.has_error else None
    if bad is not None:
        line = bad.start_point[0] + 1
        snippet = source[bad.start_byte : bad.end_byte].decode(errors="replace")[:40]
        raise PSError(
            ErrorRecord(
                f"At line:{line} char:{bad.start_point[1] + 1}\n"
                f"Unexpected token '{snippet}' in expression or statement.",
                "UnexpectedToken",
                "ParserError",
                exception_type="System.Management.Automation.ParseException",
            )
        )
    return _Converter(source).program(root)


def _param_block_quirk(node: Any) -> bool:
    """tree-sitter-powershell's grammar wants a line break after a function's param() block: on one line
    (`function f { param($x) $x }`, valid PowerShell) the block comes back wrapped in an ERROR node."""
    parent = node.parent
    kids = [c for c in node.children if c.type not in _SKIP]
    return (
        node.type == "ERROR"
        and parent is not None
        and parent.type == "function_statement"
        and len(kids) == 1
        and kids[0].type == "param_block"
        and not kids[0].has_error
    )


def _first_error(node: Any) -> Any:
    if _param_block_quirk(node):
        return None
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing:
            found = _first_error(child)
            if found is not None:
                return found
    return None


def _line(node: Any) -> int:
    return int(node.start_point[0]) + 1


class _Converter:
    def __init__(self, source: bytes) -> None:
        self.source = source

    def text(self, node: Any) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8")

    def unsupported(self, node: Any, what: str | None = None) -> Unsupported:
        return Unsupported(what or f"'{node.type}' ({self.text(node)[:40]!r})", _line(node))

    @staticmethod
    def kids(node: Any) -> list[Any]:
        return [c for c in node.children if c.type not in _SKIP]

    # --- blocks and statements -------------------------------------------------------------------

    def program(self, root: Any) -> n.Block:
        params: tuple[n.ParamDecl, ...] | None = None
        advanced = False
        attributes: tuple[str, ...] = ()
        body: tuple[n.Stmt, ...] = ()
        for child in self.kids(root):
            if child.type == "param_block":
                params, advanced, attributes = self.param_block(child)
            elif child.type == "statement_list":
                body = self.statements(child)
            else:
                raise self.unsupported(child)
        return n.Block(_line(root), params, body, advanced, attributes)

    def script_block(self, node: Any) -> n.Block:
        """A script_block_expression's or function's inside: optional param() block and statements."""
        params: tuple[n.ParamDecl, ...] | None = None
        advanced = False
        attributes: tuple[str, ...] = ()
        body: tuple[n.Stmt, ...] = ()
        for child in self.kids(node):
            if child.type in ("{", "}"):
                continue
            if child.type == "param_block":
                params, advanced, attributes = self.param_block(child)
            elif child.type == "script_block":
                inner = self.script_block(child)
                if inner.params is not None:
                    params, advanced, attributes = inner.params, inner.advanced, inner.attributes
                body = inner.body
            elif child.type == "script_block_body":
                for part in self.kids(child):
                    if part.type != "statement_list":
                        raise self.unsupported(
                            part, f"named blocks (begin/process/end) ({self.text(part)[:30]!r})"
                        )
                    body = self.statements(part)
            elif child.type == "statement_list":
                body = self.statements(child)
            else:
                raise self.unsupported(child)
        return n.Block(_line(node), params, body, advanced, attributes)

    def param_block(self, node: Any) -> tuple[tuple[n.ParamDecl, ...], bool, tuple[str, ...]]:
        attributes: list[str] = []
        params: list[n.ParamDecl] = []
        advanced = False
        for child in self.kids(node):
            if child.type == "attribute_list":
                for attribute in self.kids(child):
                    name, _ = self.attribute(attribute)
                    if name.casefold() != "cmdletbinding":
                        raise self.unsupported(attribute, f"the script attribute [{name}]")
                    attributes.append(name)
                    advanced = True
            elif child.type == "parameter_list":
                for parameter in self.kids(child):
                    if parameter.type == "script_parameter":
                        decl, has_parameter_attribute = self.parameter(parameter)
                        params.append(decl)
                        advanced = advanced or has_parameter_attribute
        return tuple(params), advanced, tuple(attributes)

    def attribute(self, node: Any) -> tuple[str, list[tuple[str | None, Any]]]:
        """(name, arguments) of `[Name(args)]`; a bare `[type]` gives (type, [])."""
        if node.type != "attribute":
            raise self.unsupported(node)
        kids = self.kids(node)
        if kids and kids[0].type == "type_literal":
            return self.type_name(kids[0]), []
        name = ""
        args: list[tuple[str | None, Any]] = []
        for child in kids:
            if child.type == "attribute_name":
                name = self.text(child)
            elif child.type == "attribute_arguments":
                for argument in self.kids(child):
                    if argument.type != "attribute_argument":
                        continue
                    parts = self.kids(argument)
                    if parts[0].type == "simple_name" and len(parts) == 1:
                        args.append((self.text(parts[0]), True))
                    elif parts[0].type == "simple_name" and len(parts) == 3:
                        args.append((self.text(parts[0]), self.expr(parts[2])))
                    else:
                        args.append((None, self.expr(parts[0])))
        return name, args

    def parameter(self, node: Any) -> tuple[n.ParamDecl, bool]:
        """The declaration, and whether it carries [Parameter()] (which makes the script advanced)."""
        type_name: str | None = None
        mandatory = False
        position: int | None = None
        pattern: str | None = None
        validate_set: tuple[str, ...] = ()
        name = ""
        default: n.Expr | None = None
        has_parameter_attribute = False
        for child in self.kids(node):
            if child.type == "attribute_list":
                for attribute in self.kids(child):
                    attr_name, args = self.attribute(attribute)
                    folded = attr_name.casefold()
                    has_parameter_attribute = has_parameter_attribute or folded == "parameter"
                    if not args and folded not in ("parameter", "validatepattern", "validateset"):
                        type_name = attr_name
                    elif folded == "parameter":
                        for key, value in args:
                            key_folded = (key or "").casefold()
                            if key_folded == "mandatory":
                                mandatory = value is True or (
                                    isinstance(value, n.Variable) and value.name.casefold() == "true"
                                )
                            elif key_folded == "position" and isinstance(value, n.Constant):
                                position = int(value.value)
                            else:
                                raise self.unsupported(attribute, f"[Parameter({key}=...)]")
                    elif folded == "validatepattern":
                        pattern = self._constant_text(attribute, args[0][1])
                    elif folded == "validateset":
                        validate_set = tuple(self._constant_text(attribute, v) for _, v in args)
                    else:
                        raise self.unsupported(attribute, f"the parameter attribute [{attr_name}]")
            elif child.type == "variable":
                name = self.variable(child).name
            elif child.type == "script_parameter_default":
                default = self.expr(self.kids(child)[-1])
            else:
                raise self.unsupported(child)
        decl = n.ParamDecl(_line(node), name, type_name, default, mandatory, position, pattern, validate_set)
        return decl, has_parameter_attribute

    def _constant_text(self, node: Any, value: Any) -> str:
        if isinstance(value, n.Constant) and isinstance(value.value, str):
            return value.value
        if isinstance(value, n.Expandable) and all(isinstance(p, str) for p in value.parts):
            return "".join(str(p) for p in value.parts)
        raise self.unsupported(node, "a non-constant attribute argument")

    def statements(self, node: Any) -> tuple[n.Stmt, ...]:
        return tuple(self.statement(child) for child in self.kids(node))

    def block(self, node: Any) -> tuple[n.Stmt, ...]:
        """A statement_block `{ ... }`."""
        if node.type != "statement_block":
            raise self.unsupported(node)
        for child in self.kids(node):
            if child.type == "statement_list":
                return self.statements(child)
        return ()

    def statement(self, node: Any) -> n.Stmt:
        kind = node.type
        line = _line(node)
        if kind == "pipeline":
            converted = self.pipeline_or_assign(node)
            return converted if isinstance(converted, n.Assign) else n.PipelineStmt(line, converted)
        if kind == "if_statement":
            return self.if_statement(node)
        if kind == "foreach_statement":
            kids = self.kids(node)
            variable = next(c for c in kids if c.type == "variable")
            iterable = next(c for c in kids if c.type == "pipeline")
            body = next(c for c in kids if c.type == "statement_block")
            if any(
                c.type not in ("foreach", "(", ")", "in", "variable", "pipeline", "statement_block")
                for c in kids
            ):
                raise self.unsupported(node, "foreach with options")
            return n.ForEach(line, self.variable(variable).name, self.pipeline(iterable), self.block(body))
        if kind == "for_statement":
            parts: dict[str, Any] = {}
            body_node = None
            for child in self.kids(node):
                if child.type in ("for_initializer", "for_condition", "for_iterator"):
                    inner = self.kids(child)
                    parts[child.type] = inner[0] if inner else None
                elif child.type == "statement_block":
                    body_node = child
            init = parts.get("for_initializer")
            cond = parts.get("for_condition")
            step = parts.get("for_iterator")
            return n.For(
                line,
                self.pipeline_or_assign(init) if init is not None else None,
                self.pipeline(cond) if cond is not None else None,
                self.pipeline_or_assign(step) if step is not None else None,
                self.block(body_node) if body_node is not None else (),
            )
        if kind == "while_statement":
            kids = self.kids(node)
            condition = next(c for c in kids if c.type == "while_condition")
            body = next(c for c in kids if c.type == "statement_block")
            return n.While(line, self.pipeline(self.kids(condition)[0]), self.block(body))
        if kind == "do_statement":
            kids = self.kids(node)
            body = next(c for c in kids if c.type == "statement_block")
            condition = next(c for c in kids if c.type == "while_condition")
            until = any(c.type == "until" for c in kids)
            return n.While(
                line, self.pipeline(self.kids(condition)[0]), self.block(body), do=True, until=until
            )
        if kind == "try_statement":
            return self.try_statement(node)
        if kind == "flow_control_statement":
            kids = self.kids(node)
            keyword = kids[0].type
            value = self.pipeline(kids[1]) if len(kids) > 1 and kids[1].type == "pipeline" else None
            if keyword == "throw":
                return n.Throw(line, value)
            if keyword == "return":
                return n.Return(line, value)
            if keyword in ("break", "continue") and len(kids) == 1:
                return n.Break(line) if keyword == "break" else n.Continue(line)
            raise self.unsupported(node, f"'{self.text(node)[:30]}'")
        if kind == "function_statement":
            kids = self.kids(node)
            if kids[0].type != "function":
                raise self.unsupported(node, "filter and workflow definitions")
            name = self.text(next(c for c in kids if c.type == "function_name"))
            if any(c.type == "function_parameter_declaration" for c in kids):
                raise self.unsupported(node, "function parameters declared after the name")
            body = next((c for c in kids if c.type == "script_block"), None)
            block = self.script_block(body) if body is not None else n.Block(line, None, ())
            quirk = next((c for c in kids if c.type == "ERROR" and _param_block_quirk(c)), None)
            if quirk is not None and block.params is None:
                params, advanced, attributes = self.param_block(self.kids(quirk)[0])
                block = n.Block(block.line, params, block.body, advanced, attributes)
            return n.FunctionDef(line, name, block)
        raise self.unsupported(node)

    def if_statement(self, node: Any) -> n.If:
        clauses: list[tuple[n.Pipeline, tuple[n.Stmt, ...]]] = []
        otherwise: tuple[n.Stmt, ...] | None = None
        condition: Any = None
        for child in self.kids(node):
            if child.type == "pipeline":
                condition = child
            elif child.type == "statement_block":
                clauses.append((self.pipeline(condition), self.block(child)))
            elif child.type == "elseif_clauses":
                for clause in self.kids(child):
                    parts = self.kids(clause)
                    cond = next(c for c in parts if c.type == "pipeline")
                    block = next(c for c in parts if c.type == "statement_block")
                    clauses.append((self.pipeline(cond), self.block(block)))
            elif child.type == "else_clause":
                otherwise = self.block(next(c for c in self.kids(child) if c.type == "statement_block"))
        return n.If(_line(node), tuple(clauses), otherwise)

    def try_statement(self, node: Any) -> n.Try:
        body: tuple[n.Stmt, ...] = ()
        catches: list[n.Catch] = []
        final: tuple[n.Stmt, ...] | None = None
        for child in self.kids(node):
            if child.type == "statement_block":
                body = self.block(child)
            elif child.type == "catch_clauses":
                for clause in self.kids(child):
                    types: list[str] = []
                    block: tuple[n.Stmt, ...] = ()
                    for part in self.kids(clause):
                        if part.type == "catch_type_list":
                            types += [self.type_name(t) for t in self.kids(part) if t.type == "type_literal"]
                        elif part.type == "statement_block":
                            block = self.block(part)
                    catches.append(n.Catch(_line(clause), tuple(types), block))
            elif child.type == "finally_clause":
                final = self.block(next(c for c in self.kids(child) if c.type == "statement_block"))
        return n.Try(_line(node), body, tuple(catches), final)

    # --- pipelines and commands ------------------------------------------------------------------

    def pipeline_or_assign(self, node: Any) -> n.Pipeline | n.Assign:
        kids = self.kids(node)
        if node.type == "pipeline" and len(kids) == 1 and kids[0].type == "assignment_expression":
            return self.assignment(kids[0])
        if node.type == "assignment_expression":
            return self.assignment(node)
        return self.pipeline(node)

    def assignment(self, node: Any) -> n.Assign:
        kids = self.kids(node)
        target = self.expr(kids[0])
        op = self.text(kids[1]).strip()
        if op not in ("=", "+=", "-="):
            raise self.unsupported(kids[1], f"the assignment operator {op}")
        value_node = kids[2]
        value: n.Pipeline | n.Stmt
        if value_node.type == "pipeline":
            value = self.pipeline_or_assign(value_node)
        else:
            value = self.statement(value_node)
        if not isinstance(target, n.Variable | n.Member | n.Index):
            raise self.unsupported(kids[0], "assignment to this kind of expression")
        return n.Assign(_line(node), target, op, value)

    def pipeline(self, node: Any) -> n.Pipeline:
        if node.type == "pipeline":
            kids = self.kids(node)
            if len(kids) != 1:
                raise self.unsupported(node)
            inner = kids[0]
            if inner.type == "assignment_expression":
                raise self.unsupported(inner, "an assignment used as a value")
            return self.pipeline(inner)
        if node.type == "pipeline_chain":
            elements: list[n.Expr | n.Command] = []
            for child in self.kids(node):
                if child.type == "|":
                    continue
                if child.type in ("&&", "||"):
                    raise self.unsupported(child, "the pipeline chain operators && and || (PowerShell 7)")
                elements.append(self.command(child) if child.type == "command" else self.expr(child))
            return n.Pipeline(_line(node), tuple(elements))
        if node.type == "command":
            return n.Pipeline(_line(node), (self.command(node),))
        return n.Pipeline(_line(node), (self.expr(node),))

    def command(self, node: Any) -> n.Command:
        kids = self.kids(node)
        if kids[0].type != "command_name":
            raise self.unsupported(node, f"the invocation operator in {self.text(node)[:30]!r}")
        name = self.text(kids[0])
        if name[:1].isdigit() or name[:2] in ("-.", "+."):
            # PowerShell reads a leading number as an expression (a range such as 1..3); the grammar
            # makes it a command name. Say so rather than look for a command of that name.
            raise self.unsupported(kids[0], f"a range or number where a command is expected ({name[:30]!r})")
        elements: list[n.CommandParameter | n.Expr] = []
        if len(kids) > 1:
            parts = [c for c in self.kids(kids[1])]
            i = 0
            while i < len(parts):
                part = parts[i]
                if part.type == "command_argument_sep":
                    i += 1
                    continue
                if part.type == "command_parameter":
                    pname = self.text(part)
                    if pname.endswith(":"):
                        pname = pname[:-1]
                    if (
                        i + 1 < len(parts)
                        and parts[i + 1].type == "command_argument_sep"
                        and self.text(parts[i + 1]) == ":"
                    ):
                        elements.append(
                            n.CommandParameter(_line(part), pname[1:], self.expr(parts[i + 2]), True)
                        )
                        i += 3
                        continue
                    elements.append(n.CommandParameter(_line(part), pname[1:]))
                elif part.type == "generic_token":
                    elements.append(n.Constant(_line(part), self.text(part)))
                elif (
                    part.type == "argument_list"
                    and elements
                    and isinstance(elements[-1], n.Member)
                    and parts[i - 1].end_byte == part.start_byte
                ):
                    # `-P $x.Method()`: in argument mode the grammar splits the call from its arguments.
                    member = elements.pop()
                    assert isinstance(member, n.Member)
                    if not isinstance(member.name, str):
                        raise self.unsupported(part, "a method name computed at run time")
                    args = [
                        self.expr(a)
                        for child in self.kids(part)
                        if child.type == "argument_expression_list"
                        for a in self.kids(child)
                        if a.type != ","
                    ]
                    elements.append(
                        n.Invoke(member.line, member.target, member.name, tuple(args), member.static)
                    )
                elif part.type in ("redirection", "file_redirection_operator"):
                    raise self.unsupported(part, "redirection")
                elif part.type == "@":
                    raise self.unsupported(part, "splatting")
                else:
                    if part.type == "variable" and self.text(part).startswith("@"):
                        raise self.unsupported(part, "splatting")
                    elements.append(self.expr(part))
                i += 1
        return n.Command(_line(node), name, tuple(elements))

    # --- expressions -----------------------------------------------------------------------------

    def expr(self, node: Any) -> n.Expr:
        kind = node.type
        line = _line(node)
        kids = self.kids(node)
        if kind in _WRAPPERS:
            if len(kids) == 1:
                return self.expr(kids[0])
            if kind == "array_literal_expression":
                return n.ArrayLiteral(line, tuple(self.expr(c) for c in kids if c.type != ","))
            if kind in ("left_assignment_expression", "key_expression", "unary_expression"):
                raise self.unsupported(node)
            return self.binary(node, kids)
        if kind == "variable":
            return self.variable(node)
        if kind in ("integer_literal", "real_literal"):
            return n.Constant(line, self.number(node))
        if kind == "string_literal":
            return self.string(node)
        if kind == "simple_name":
            return n.Constant(line, self.text(node))
        if kind == "generic_token":
            return n.Constant(line, self.text(node))
        if kind == "expression_with_unary_operator":
            if len(kids) == 1:
                return self.expr(kids[0])
            op = self.text(kids[0])
            if kids[0].type == "cast_expression":
                return self.expr(kids[0])
            if op.casefold() in ("-not", "!", "-", "+", ","):
                return n.Unary(line, op.casefold(), self.expr(kids[1]))
            raise self.unsupported(node, f"the unary operator {op}")
        if kind == "cast_expression":
            return n.Cast(line, self.type_name(kids[0]), self.expr(kids[1]))
        if kind == "type_literal":
            return n.TypeLiteral(line, self.type_name(node))
        if kind == "parenthesized_expression":
            inner = next(c for c in kids if c.type not in ("(", ")"))
            converted = self.pipeline_or_assign(inner)
            if isinstance(converted, n.Assign):
                raise self.unsupported(inner, "an assignment used as a value")
            return n.Paren(line, converted)
        if kind == "array_expression":
            body = next((c for c in kids if c.type == "statement_list"), None)
            return n.ArrayExpr(line, self.statements(body) if body is not None else ())
        if kind == "sub_expression":
            body = next((c for c in kids if c.type == "statement_list"), None)
            return n.SubExpr(line, self.statements(body) if body is not None else ())
        if kind == "hash_literal_expression":
            return self.hash_literal(node)
        if kind == "script_block_expression":
            return n.ScriptBlockExpr(line, self.script_block(node), self._inner_text(node))
        if kind == "member_access":
            target, separator, member = kids[0], kids[1], kids[2]
            return n.Member(line, self.expr(target), self.member_name(member), separator.type == "::")
        if kind == "invokation_expression":
            target, separator, member = kids[0], kids[1], kids[2]
            args_node = kids[3] if len(kids) > 3 else None
            args: list[n.Expr] = []
            if args_node is not None:
                for child in self.kids(args_node):
                    if child.type == "argument_expression_list":
                        args = [self.expr(a) for a in self.kids(child) if a.type != ","]
            name = self.member_name(member)
            if not isinstance(name, str):
                raise self.unsupported(member, "a method name computed at run time")
            return n.Invoke(line, self.expr(target), name, tuple(args), separator.type == "::")
        if kind == "element_access":
            target = kids[0]
            index = next(c for c in kids[1:] if c.type not in ("[", "]"))
            return n.Index(line, self.expr(target), self.expr(index))
        if kind in ("post_increment_expression", "post_decrement_expression"):
            return n.PostIncrement(line, self.expr(kids[0]), 1 if kind.startswith("post_inc") else -1)
        if kind == "pipeline":
            converted = self.pipeline(node)
            if len(converted.elements) == 1 and not isinstance(converted.elements[0], n.Command):
                return converted.elements[0]
            return n.Paren(line, converted)
        if kind == "command":
            return n.Paren(line, n.Pipeline(line, (self.command(node),)))
        raise self.unsupported(node)

    def binary(self, node: Any, kids: list[Any]) -> n.Expr:
        left = self.expr(kids[0])
        i = 1
        while i < len(kids):
            op_node = kids[i]
            op = self.text(op_node).strip().casefold()
            if op not in _BINARY_OPERATORS:
                raise self.unsupported(op_node, f"the operator {op}")
            right = self.expr(kids[i + 1])
            left = n.Binary(_line(op_node), op, left, right)
            i += 2
        return left

    def member_name(self, node: Any) -> str | n.Expr:
        kids = self.kids(node)
        if len(kids) == 1 and kids[0].type == "simple_name":
            return self.text(kids[0])
        if len(kids) == 1:
            return self.expr(kids[0])
        return self.text(node)

    def variable(self, node: Any) -> n.Variable:
        text = self.text(node)
        if text in ("$_", "$PSItem"):
            return n.Variable(_line(node), "_")
        match = _VARIABLE.match(text)
        if match is None:
            raise self.unsupported(node, f"the variable form {text!r}")
        scope = match.group("scope")
        return n.Variable(_line(node), match.group("name"), scope.casefold() if scope else None)

    def number(self, node: Any) -> int | float:
        text = self.text(node).lower()
        if node.type == "real_literal" or ("." in text and not text.startswith("0x")):
            return float(text)
        if text.startswith("0x"):
            return int(text, 16)
        if not text.isdigit():
            raise self.unsupported(node, f"the number literal {text!r}")
        return int(text)

    def string(self, node: Any) -> n.Expr:
        line = _line(node)
        inner = self.kids(node)[0]
        if inner.type == "verbatim_string_characters":
            raw = self.text(inner)
            return n.Constant(line, raw[1:-1].replace("''", "'"))
        if inner.type == "expandable_string_literal":
            return self.expandable(inner)
        raise self.unsupported(inner, "here-strings")

    def expandable(self, node: Any) -> n.Expr:
        start, end = node.start_byte + 1, node.end_byte - 1
        parts: list[str | n.Expr] = []
        cursor = start
        for child in node.children:
            if child.type not in ("variable", "sub_expression"):
                continue
            if child.start_byte > cursor:
                parts.append(_unescape(self.source[cursor : child.start_byte].decode("utf-8")))
            parts.append(self.expr(child))
            cursor = child.end_byte
        if end > cursor:
            parts.append(_unescape(self.source[cursor:end].decode("utf-8")))
        if all(isinstance(p, str) for p in parts):
            return n.Constant(_line(node), "".join(str(p) for p in parts))
        return n.Expandable(_line(node), tuple(parts))

    def hash_literal(self, node: Any) -> n.HashLiteral:
        entries: list[tuple[str | n.Expr, n.Pipeline]] = []
        for child in self.kids(node):
            if child.type != "hash_literal_body":
                continue
            for entry in self.kids(child):
                if entry.type != "hash_entry":
                    continue
                parts = self.kids(entry)
                key_node = parts[0]
                key_kids = self.kids(key_node)
                key: str | n.Expr
                if len(key_kids) == 1 and key_kids[0].type == "simple_name":
                    key = self.text(key_kids[0])
                else:
                    key = self.expr(key_node)
                value_node = next(p for p in parts[1:] if p.type not in ("=", ";"))
                if value_node.type != "pipeline":
                    raise self.unsupported(value_node, "a statement as a hash table value")
                value = self.pipeline_or_assign(value_node)
                if isinstance(value, n.Assign):
                    raise self.unsupported(value_node, "an assignment as a hash table value")
                entries.append((key, value))
        return n.HashLiteral(_line(node), tuple(entries))

    def type_name(self, node: Any) -> str:
        spec = next((c for c in self.kids(node) if c.type == "type_spec"), None)
        return self.text(spec if spec is not None else node).strip("[]") if spec is None else self.text(spec)

    def _inner_text(self, node: Any) -> str:
        text = self.text(node)
        return text[1:-1] if text.startswith("{") and text.endswith("}") else text


_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "e": "\x1b",
}


def _unescape(text: str) -> str:
    """Backtick escapes and doubled quotes of a double-quoted string's literal text."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "`" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if ch == '"' and i + 1 < len(text) and text[i + 1] == '"':
            out.append('"')
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
