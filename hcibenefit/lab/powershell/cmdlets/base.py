"""How an emulated cmdlet is declared, bound and run.

A `Cmdlet` names its module, its source, the parameter sets and parameters it emulates, and a `run`
function that acts on the fleet model through a `Call`. Binding follows the cmdlet binder
(powershell51.md section 5 and cmdlets.md G1-G2): names and aliases, unique
prefixes, positions per parameter set, the common parameters, -WhatIf/-Confirm on commands that
support ShouldProcess. A parameter the cmdlet documents but the lab does not emulate is a
`NotEmulated` error, never ignored; one it does not document is PowerShell's NamedParameterNotFound.

Errors: `Call.error` is a non-terminating error (obeys -ErrorAction, $ErrorActionPreference and
-ErrorVariable); `Call.fail` a terminating one. Compiled cmdlets read preferences from the caller's
scope; script-module functions (CDXML, Az.StackHCI) from the global scope (powershell51.md 10.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.binding import (
    ACTION_PREFERENCES,
    COMMON_PARAMETERS,
    NO_VALUE,
    Arg,
    binding_error,
    resolve_name,
)
from hcibenefit.lab.powershell.errors import ErrorRecord, NotEmulated, PSError
from hcibenefit.lab.powershell.runspace import CONFIRM_LEVELS, Scope, confirm_level, host_exception
from hcibenefit.lab.powershell.values import MISSING, ArrayList, PSDict, PSGuid, PSObject, ScriptBlock

if TYPE_CHECKING:
    from hcibenefit.lab.powershell.evaluator import Interpreter

ParamType = Literal[
    "object",
    "object[]",
    "string",
    "string[]",
    "int",
    "int64",
    "uint32",
    "bool",
    "switch",
    "guid",
    "guid[]",
    "scriptblock",
    "scriptblock[]",
    "hashtable",
    "hashtable[]",
    "dictionary",
    "credential",
    "datetime",
]


@dataclass(frozen=True)
class P:
    """One emulated parameter."""

    name: str
    type: ParamType = "object"
    position: int | dict[str, int] | None = None
    """Its position: the same in every set, or per set name."""
    sets: tuple[str, ...] | None = None
    """Parameter sets it belongs to; None = all."""
    aliases: tuple[str, ...] = ()
    mandatory: tuple[str, ...] = ()
    """Sets in which it is mandatory; ("*",) = all of its sets."""
    pipeline: bool = False
    choices: tuple[str, ...] = ()

    def in_set(self, name: str) -> bool:
        return self.sets is None or name in self.sets

    def position_in(self, name: str) -> int | None:
        if not self.in_set(name):
            return None
        if isinstance(self.position, dict):
            return self.position.get(name)
        return self.position

    def mandatory_in(self, name: str) -> bool:
        return self.in_set(name) and ("*" in self.mandatory or name in self.mandatory)


@dataclass
class Cmdlet:
    name: str
    module: str
    source: str
    params: tuple[P, ...]
    run: Callable[[Call], None]
    sets: tuple[str, ...] = ("__AllParameterSets",)
    type_name: str | None = None
    """The implementing .NET type of a compiled cmdlet (the FQID's command part); None for a function."""
    available: Callable[[Any], bool] = lambda machine: True
    should_process: bool = False
    confirm_impact: str = "Medium"
    collects_input: bool = False
    """The cmdlet gets all pipeline input at once (Sort-Object, ConvertTo-Json, Select-Object ...)."""

    @property
    def command_part(self) -> str:
        return self.type_name or self.name

    # What binding needs of the declaration, worked out once per cmdlet rather than on every call.

    @cached_property
    def by_name(self) -> dict[str, P]:
        return {p.name: p for p in self.params}

    @cached_property
    def parameter_names(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every name -Name can resolve to with its aliases: the cmdlet's, the common ones, ShouldProcess's."""
        names = [(p.name, p.aliases) for p in self.params]
        names += list(COMMON_PARAMETERS.items())
        if self.should_process:
            names += [("WhatIf", ("wi",)), ("Confirm", ("cf",))]
        return names

    @cached_property
    def _resolved(self) -> dict[str, str | None]:
        return {}

    def resolve_parameter(self, given: str) -> str | None:
        """`resolve_name` over parameter_names, remembered per spelling (an ambiguous one raises every time)."""
        key = given.casefold()
        try:
            return self._resolved[key]
        except KeyError:
            resolved = self._resolved[key] = resolve_name(given, self.parameter_names, self.command_part)
            return resolved

    @cached_property
    def _positional(self) -> dict[str, list[P]]:
        return {}

    @cached_property
    def _per_set(self) -> dict[tuple[str, str], list[P]]:
        return {}

    def mandatory(self, set_name: str) -> list[P]:
        """The parameters mandatory in a set, in declaration order."""
        found = self._per_set.get(("mandatory", set_name))
        if found is None:
            found = self._per_set["mandatory", set_name] = [
                p for p in self.params if p.mandatory_in(set_name)
            ]
        return found

    def pipeline_params(self, set_name: str) -> list[P]:
        """The parameters of a set that take pipeline input, in declaration order."""
        found = self._per_set.get(("pipeline", set_name))
        if found is None:
            found = self._per_set["pipeline", set_name] = [
                p for p in self.params if p.pipeline and p.in_set(set_name)
            ]
        return found

    @cached_property
    def bind_plans(self) -> dict[tuple[tuple[str | None, bool], ...], _BindPlan]:
        """Binding plans by argument shape (`Call.bind`)."""
        return {}

    def positional(self, set_name: str) -> list[P]:
        """The parameters that take positional arguments in a set, by position (declaration order on ties)."""
        found = self._positional.get(set_name)
        if found is None:
            found = self._positional[set_name] = sorted(
                (p for p in self.params if p.position_in(set_name) is not None),
                key=lambda p: p.position_in(set_name) or 0,
            )
        return found

    @property
    def is_function(self) -> bool:
        return self.type_name is None

    def invoke(
        self, interp: Interpreter, scope: Scope, args: Sequence[Arg], input_items: list[Any] | None
    ) -> list[Any]:
        call = Call(self, interp, scope)
        call.bind(args, has_input=input_items is not None)
        pipeline_param = (
            call.pipeline_parameter(input_items[0] if input_items else None)
            if input_items is not None
            else None
        )
        if input_items is None or self.collects_input:
            call.input = input_items
            call.check_mandatory(pipeline_bound=input_items is not None)
            self.run(call)
            return call.output
        if pipeline_param is None:
            for item in input_items:
                call.error_record(
                    call.record(
                        "The input object cannot be bound to any parameters for the command either because the command "
                        "does not take pipeline input or the input and its properties do not match any of the parameters "
                        "that take pipeline input.",
                        "InputObjectNotBound",
                        "InvalidArgument",
                        exception_type="System.Management.Automation.ParameterBindingException",
                        target=item,
                    )
                )
            return call.output
        call.check_mandatory(pipeline_bound=True)
        for item in input_items:
            call.params[pipeline_param.name] = call.convert(pipeline_param, item)
            self.run(call)
        return call.output


_MAX_BIND_PLANS = 256
"""Shapes remembered per cmdlet: scripts use a handful each; hostile text cannot grow this without bound."""


class _Slot:
    """Stands for the value of argument `index` while a binding plan is worked out."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


@dataclass(frozen=True)
class _BindPlan:
    """Where each argument of one shape binds: parameters and common parameters in binding order (a
    `_Slot` for an argument's value, True for a switch given alone), the given set and parameter set."""

    params: tuple[tuple[P, Any], ...]
    common: tuple[tuple[str, Any], ...]
    given: frozenset[str]
    candidates: tuple[str, ...]
    set_name: str
    defaults: tuple[tuple[str, Any], ...]
    """The parameters no argument binds to, with their value ($false for a switch, else $null)."""

    @classmethod
    def of(cls, scratch: Call, args: Sequence[Arg]) -> _BindPlan:
        """Bind placeholders for the values on a scratch call; the shape has just bound without error."""
        scratch._bind_structure(
            [Arg(a.name, a.value if a.value is NO_VALUE else _Slot(i), a.line) for i, a in enumerate(args)]
        )
        by_name = scratch.cmdlet.by_name
        return cls(
            tuple((by_name[name], token) for name, token in scratch.params.items()),
            tuple(scratch.common.items()),
            frozenset(scratch.given),
            tuple(scratch.candidates),
            scratch.set_name,
            tuple(
                (p.name, False if p.type == "switch" else None)
                for p in scratch.cmdlet.params
                if p.name not in scratch.params
            ),
        )

    def apply(self, call: Call, args: Sequence[Arg]) -> None:
        """The bound parameters converted, in binding order (as `Call.bind` converts them), then the rest."""
        call.given = set(self.given)
        call.candidates = list(self.candidates)
        call.set_name = self.set_name
        call.common = {
            name: args[token.index].value if type(token) is _Slot else token for name, token in self.common
        }
        params = call.params = {}
        for param, token in self.params:
            params[param.name] = call.convert(
                param, args[token.index].value if type(token) is _Slot else token
            )
        for name, default in self.defaults:
            params[name] = default


@cache
def documented_parameters() -> dict[str, Any]:
    """The repository's table of every cmdlet's documented parameter names (parameters.json)."""
    text = files("hcibenefit.lab.powershell.cmdlets").joinpath("parameters.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return {name.casefold(): entry for name, entry in data["cmdlets"].items()}


class Call:
    """One invocation of an emulated cmdlet: its bound parameters, streams, preferences and the fleet."""

    def __init__(self, cmdlet: Cmdlet, interp: Interpreter, scope: Scope) -> None:
        self.cmdlet = cmdlet
        self.interp = interp
        self.scope = scope
        self.params: dict[str, Any] = {}
        self.given: set[str] = set()
        self.common: dict[str, Any] = {}
        self.set_name = cmdlet.sets[0]
        self.candidates: list[str] = [self.set_name]
        """The parameter sets the named and positional arguments left possible."""
        self.input: list[Any] | None = None
        self.output: list[Any] = []
        self.error_variable: ArrayList | None = None

    # --- context -----------------------------------------------------------------------------------

    @property
    def runspace(self) -> Any:
        return self.interp.runspace

    @property
    def machine(self) -> Any:
        return self.interp.runspace.machine

    @property
    def state(self) -> Any:
        return self.machine.state

    def preference(self, name: str) -> Any:
        if self.cmdlet.is_function:
            return self.runspace.global_scope.vars.get(name.casefold())
        return self.interp.preference(self.scope, name)

    @property
    def error_action(self) -> str:
        action = self.common.get("ErrorAction")
        return cv.to_string(action if action is not None else self.preference("ErrorActionPreference"))

    # --- binding -------------------------------------------------------------------------------------

    def _names(self) -> list[tuple[str, tuple[str, ...]]]:
        return self.cmdlet.parameter_names

    def _documented(self, given: str) -> bool:
        entry = documented_parameters().get(self.cmdlet.name.casefold())
        if entry is None:
            return False
        folded = given.casefold()
        return any(p.casefold() == folded or p.casefold().startswith(folded) for p in entry["parameters"])

    def bind(self, args: Sequence[Arg], *, has_input: bool) -> None:
        """Bind the arguments: names and positions to parameters and a parameter set, then conversion.

        Which parameter and set each argument binds to depends only on the arguments' shape (their
        names, which ones are positional, which names stand alone), so it is worked out once per shape
        and cmdlet and replayed (`_BindPlan`); the conversions, -ErrorAction and -ErrorVariable run for
        every call. A shape that fails to bind is never remembered: it fails, with its values in the
        message, every time."""
        cmdlet = self.cmdlet
        shape = tuple((None if a.name is None else a.name.casefold(), a.value is NO_VALUE) for a in args)
        plan = cmdlet.bind_plans.get(shape)
        if plan is not None:
            plan.apply(self, args)
            self._bind_common(cmdlet.command_part)
            return
        self._bind_structure(args)
        if len(cmdlet.bind_plans) < _MAX_BIND_PLANS:
            cmdlet.bind_plans[shape] = _BindPlan.of(Call(cmdlet, self.interp, self.scope), args)
        by_name = cmdlet.by_name
        for name in list(self.params):
            self.params[name] = self.convert(by_name[name], self.params[name])
        for param in cmdlet.params:
            if param.name not in self.params:
                self.params[param.name] = False if param.type == "switch" else None
        self._bind_common(cmdlet.command_part)

    def _bind_structure(self, args: Sequence[Arg]) -> None:
        """Names, positions and the parameter set, with the binder's errors (values not yet converted)."""
        command = self.cmdlet.command_part
        by_name = self.cmdlet.by_name
        named: dict[str, Any] = {}
        positional: list[Any] = []
        pending = list(args)
        i = 0
        while i < len(pending):
            arg = pending[i]
            i += 1
            if arg.name is None:
                positional.append(arg.value)
                continue
            resolved = self.cmdlet.resolve_parameter(arg.name)
            if resolved is None:
                if self._documented(arg.name):
                    raise NotEmulated(f"the parameter -{arg.name} of {self.cmdlet.name}")
                raise binding_error(
                    f"A parameter cannot be found that matches parameter name '{arg.name}'.",
                    "NamedParameterNotFound",
                    command,
                )
            param = by_name.get(resolved)
            is_switch = (param is not None and param.type == "switch") or (
                param is None and resolved in ("Verbose", "Debug", "WhatIf", "Confirm")
            )
            value = arg.value
            if value is NO_VALUE:
                if is_switch:
                    value = True
                elif i < len(pending) and pending[i].name is None:
                    value = pending[i].value
                    i += 1
                else:
                    raise binding_error(
                        f"Missing an argument for parameter '{resolved}'. Specify a parameter of type "
                        f"'{_type_label(param.type if param else 'string')}' and try again.",
                        "MissingArgument",
                        command,
                    )
            if resolved in named:
                raise binding_error(
                    f"Cannot bind parameter because parameter '{resolved}' is specified more than once. To provide "
                    "multiple values to parameters that can accept multiple values, use the array syntax. For example, "
                    '"-parameter value1,value2,value3".',
                    "ParameterAlreadyBound",
                    command,
                )
            named[resolved] = value
        for name, value in named.items():
            if name in by_name:
                self.params[name] = value
                self.given.add(name)
            else:
                self.common[name] = value
        candidates = [s for s in self.cmdlet.sets if all(by_name[p].in_set(s) for p in self.given)]
        if not candidates:
            raise binding_error(
                "Parameter set cannot be resolved using the specified named parameters.",
                "AmbiguousParameterSet",
                command,
            )
        chosen = None
        for set_name in candidates:
            slots = [p for p in self.cmdlet.positional(set_name) if p.name not in self.given]
            if len(positional) <= len(slots):
                chosen = set_name
                for param, value in zip(slots, positional, strict=False):
                    self.params[param.name] = value
                    self.given.add(param.name)
                break
        if chosen is None:
            extra = positional[-1] if positional else ""
            raise binding_error(
                f"A positional parameter cannot be found that accepts argument '{cv.to_string(extra)}'.",
                "PositionalParameterNotFound",
                command,
            )
        self.candidates = [chosen] if positional else list(candidates)
        if len(candidates) > 1 and not positional:
            # Ambiguous by names alone: the default set when it fits, else the first that has a mandatory
            # parameter satisfied, else the first candidate (PowerShell's own tie-break is similar).
            satisfied = [
                s
                for s in candidates
                if all(
                    p.name in self.given for p in self.cmdlet.params if p.mandatory_in(s) and not p.pipeline
                )
            ]
            chosen = (
                self.cmdlet.sets[0] if self.cmdlet.sets[0] in candidates else (satisfied or candidates)[0]
            )
            if satisfied and chosen not in satisfied:
                chosen = satisfied[0]
        self.set_name = chosen

    def check_mandatory(self, *, pipeline_bound: bool) -> None:
        missing = [
            p.name
            for p in self.cmdlet.mandatory(self.set_name)
            if p.name not in self.given and not (pipeline_bound and p.pipeline)
        ]
        if missing:
            raise binding_error(
                "Cannot process command because of one or more missing mandatory parameters: "
                + " ".join(missing)
                + ".",
                "MissingMandatoryParameter",
                self.cmdlet.command_part,
            )

    def pipeline_parameter(self, item: Any = None) -> P | None:
        """The parameter pipeline input binds to. While names alone left several sets possible, the input
        decides, as PowerShell binds by value first: an object (a VM) to an object parameter (-VM), text
        to a string one (-VMName); the set follows the parameter."""
        sets = self.candidates if len(self.candidates) > 1 else [self.set_name]
        options = [
            (set_name, param)
            for set_name in sets
            for param in self.cmdlet.pipeline_params(set_name)
            if param.name not in self.given
        ]
        if not options:
            return None
        is_object = isinstance(item, PSObject) and item.base is None
        preferred = [o for o in options if o[1].type.startswith("object") == is_object]
        set_name, param = (preferred or options)[0]
        self.set_name = set_name
        return param

    def _bind_common(self, command: str) -> None:
        if "ErrorAction" in self.common:
            action = cv.to_string(self.common["ErrorAction"])
            match = next((a for a in ACTION_PREFERENCES if a.casefold() == action.casefold()), None)
            if match is None:
                raise binding_error(
                    f"Cannot bind parameter 'ErrorAction'. Cannot convert value \"{action}\" to type "
                    '"System.Management.Automation.ActionPreference". Error: "Unable to match the identifier name '
                    f"{action} to a valid enumerator name. Specify one of the following enumerator names and try again:"
                    '\r\nSilentlyContinue, Stop, Continue, Inquire, Ignore, Suspend"',
                    "CannotConvertArgumentNoMessage",
                    command,
                )
            self.common["ErrorAction"] = match
        variable = self.common.get("ErrorVariable")
        if variable is not None:
            name = cv.to_string(variable)
            append = name.startswith("+")
            name = name.lstrip("+")
            existing = self.scope.find(name) if append else MISSING
            target = ArrayList()
            if isinstance(existing, list):
                target.extend(existing)
            elif existing is not None and existing is not MISSING:
                target.append(existing)
            self.scope.vars[name.casefold()] = target
            self.error_variable = target

    def convert(self, param: P, value: Any) -> Any:
        try:
            return _convert(param, value)
        except PSError as exc:
            if self.cmdlet.is_function:
                message = f"Cannot process argument transformation on parameter '{param.name}'. {exc.record.message}"
                error_id = "ParameterArgumentTransformationError"
                category = "InvalidData"
            else:
                message = f"Cannot bind parameter '{param.name}'. {exc.record.message}"
                error_id = "CannotConvertArgumentNoMessage"
                category = "InvalidArgument"
            raise binding_error(message, error_id, self.cmdlet.command_part, category) from None

    # --- output and errors -----------------------------------------------------------------------------

    def emit(self, value: Any) -> None:
        self.output.append(value)

    def record(
        self,
        message: str,
        error_id: str,
        category: str = "NotSpecified",
        *,
        exception_type: str = "System.Exception",
        target: Any = None,
        exception_object: PSObject | None = None,
        details: str | None = None,
    ) -> ErrorRecord:
        return ErrorRecord(
            message,
            error_id,
            category,
            exception_type=exception_type,
            target=target,
            command=self.cmdlet.command_part,
            exception_object=exception_object,
            details=details,
            activity=self.cmdlet.name,
        )

    def error(self, message: str, error_id: str, category: str = "NotSpecified", **kwargs: Any) -> None:
        self.error_record(self.record(message, error_id, category, **kwargs))

    def error_record(self, record: ErrorRecord) -> None:
        """WriteError: a non-terminating error, handled as -ErrorAction / $ErrorActionPreference say."""
        if self.error_variable is not None:
            self.error_variable.append(record)
        action = self.error_action
        if action == "Stop":
            raise PSError(record, "stop")
        if action == "Ignore":
            return
        self.runspace.add_error(record)
        if action not in ("SilentlyContinue",):
            self.interp.sink.write_error_record(record)

    def fail(self, message: str, error_id: str, category: str = "NotSpecified", **kwargs: Any) -> NoReturn:
        """ThrowTerminatingError: stops the statement (and the script under Stop, or inside try)."""
        record = self.record(message, error_id, category, **kwargs)
        if self.error_variable is not None:
            self.error_variable.append(record)
        raise PSError(record)

    def verbose(self, message: str) -> None:
        if self.common.get("Verbose") or cv.to_string(self.preference("VerbosePreference")) == "Continue":
            self.interp.sink.write_verbose(message)

    def warning(self, message: str) -> None:
        action = cv.to_string(self.common.get("WarningAction") or self.preference("WarningPreference"))
        if action not in ("SilentlyContinue", "Ignore"):
            self.interp.sink.write_warning(message)

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        if cv.to_string(self.preference("ProgressPreference")) != "SilentlyContinue":
            self.interp.sink.write_progress(activity, status, percent)

    def information(self, message: str) -> None:
        self.interp.sink.write_information(message, self.cmdlet.name)

    # --- ShouldProcess -----------------------------------------------------------------------------------

    def confirm_preference(self) -> int:
        confirm = self.common.get("Confirm")
        if confirm is True:
            return CONFIRM_LEVELS["low"]
        if confirm is False:
            return CONFIRM_LEVELS["none"]
        return confirm_level(self.preference("ConfirmPreference"))

    def should_process(self, target: str, action: str | None = None) -> bool:
        """ShouldProcess (powershell51.md 7.3): -WhatIf says no; a prompt with no host UI throws."""
        action = action or self.cmdlet.name
        if self.common.get("WhatIf") or cv.to_bool(self.preference("WhatIfPreference")):
            return False
        level = self.confirm_preference()
        impact = CONFIRM_LEVELS[self.cmdlet.confirm_impact.casefold()]
        if level == 0 or level > impact:
            return True
        message = (
            "Are you sure you want to perform this action?\r\n"
            f'Performing the operation "{action}" on target "{target}".'
        )
        record = host_exception(message)
        record.command = self.cmdlet.command_part
        raise PSError(record)


def _type_label(kind: str) -> str:
    return {
        "string": "System.String",
        "string[]": "System.String[]",
        "int": "System.Int32",
        "int64": "System.Int64",
        "uint32": "System.UInt32",
        "bool": "System.Boolean",
        "guid": "System.Guid",
        "guid[]": "System.Guid[]",
        "scriptblock": "System.Management.Automation.ScriptBlock",
        "hashtable": "System.Collections.Hashtable",
        "credential": "System.Management.Automation.PSCredential",
    }.get(kind, "System.Object")


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _convert(param: P, value: Any) -> Any:
    kind = param.type
    raw = value.base if isinstance(value, PSObject) and value.base is not None else value
    if kind == "object":
        return value
    if kind == "object[]":
        return None if value is None else _items(value)
    result: Any
    if kind == "string":
        result = cv.to_string(raw)
    elif kind == "string[]":
        result = None if raw is None else [cv.to_string(v) for v in _items(raw)]
    elif kind == "int":
        result = cv.to_integer(raw, cv.INT32, "System.Int32")
    elif kind == "int64":
        result = cv.to_integer(raw, cv.INT64, "System.Int64")
    elif kind == "uint32":
        result = cv.to_integer(raw, cv.UINT32, "System.UInt32")
    elif kind in ("bool", "switch"):
        result = cv.to_bool(raw)
    elif kind == "guid":
        result = cv.cast(raw, "guid")
    elif kind == "guid[]":
        result = [v if isinstance(v, PSGuid) else cv.cast(v, "guid") for v in _items(raw)]
    elif kind in ("scriptblock", "scriptblock[]"):
        blocks = _items(raw)
        for block in blocks:
            if not isinstance(block, ScriptBlock):
                raise PSError(
                    ErrorRecord(
                        f'Cannot convert the "{cv.to_string(block)}" value of type "{cv.type_name_of(block)}" to type '
                        '"System.Management.Automation.ScriptBlock".',
                        "ConvertToFinalInvalidCastException",
                        "InvalidArgument",
                    )
                )
        result = blocks if kind.endswith("[]") else blocks[0]
    elif kind in ("hashtable", "hashtable[]", "dictionary"):
        tables = _items(raw)
        for table in tables:
            if not isinstance(table, PSDict):
                raise PSError(
                    ErrorRecord(
                        f'Cannot convert the "{cv.to_string(table)}" value of type "{cv.type_name_of(table)}" to type '
                        '"System.Collections.Hashtable".',
                        "ConvertToFinalInvalidCastException",
                        "InvalidArgument",
                    )
                )
        result = tables if kind == "hashtable[]" else tables[0]
    elif kind == "credential":
        if not (isinstance(raw, PSObject) and raw.type_name.endswith("PSCredential")):
            raise PSError(
                ErrorRecord(
                    f'Cannot convert the "{cv.to_string(raw)}" value of type "{cv.type_name_of(raw)}" to type '
                    '"System.Management.Automation.PSCredential".',
                    "ConvertToFinalInvalidCastException",
                    "InvalidArgument",
                )
            )
        result = raw
    elif kind == "datetime":
        result = cv.cast(raw, "datetime")
    else:
        raise NotEmulated(f"parameter type {kind}")
    if param.choices:
        canonical = {c.casefold(): c for c in param.choices}
        for item in _items(result):
            if cv.to_string(item).casefold() not in canonical:
                raise PSError(
                    ErrorRecord(
                        f'Cannot convert value "{cv.to_string(item)}" to type "{param.name}". Error: "Unable to match '
                        f"the identifier name {cv.to_string(item)} to a valid enumerator name. Specify one of the "
                        f'following enumerator names and try again:\r\n{", ".join(param.choices)}"',
                        "InvalidCastFromStringToInteger",
                        "InvalidArgument",
                    )
                )
        if isinstance(result, list):
            return [canonical[cv.to_string(i).casefold()] for i in result]
        return canonical[cv.to_string(result).casefold()]
    return result


@dataclass
class Registry:
    cmdlets: dict[str, Cmdlet] = field(default_factory=dict)

    def add(self, cmdlet: Cmdlet) -> Cmdlet:
        key = cmdlet.name.casefold()
        if key in self.cmdlets:
            raise ValueError(f"cmdlet {cmdlet.name} emulated twice")
        self.cmdlets[key] = cmdlet
        return cmdlet

    def resolve(self, name: str, machine: Any) -> Cmdlet | None:
        cmdlet = self.cmdlets.get(name.casefold())
        if cmdlet is None:
            if name.casefold() in documented_parameters():
                raise NotEmulated(f"the cmdlet {name}")
            return None
        if not cmdlet.available(machine):
            return None
        return cmdlet


REGISTRY = Registry()


def cmdlet(
    name: str,
    *,
    module: str,
    source: str,
    params: Sequence[P] = (),
    sets: Sequence[str] = ("__AllParameterSets",),
    type_name: str | None = None,
    available: Callable[[Any], bool] = lambda machine: True,
    should_process: bool = False,
    confirm_impact: str = "Medium",
    collects_input: bool = False,
) -> Callable[[Callable[[Call], None]], Callable[[Call], None]]:
    """Register an emulation: `@cmdlet("Get-VM", module="Hyper-V", source="...", params=[...])`."""

    def register(run: Callable[[Call], None]) -> Callable[[Call], None]:
        REGISTRY.add(
            Cmdlet(
                name,
                module,
                source,
                tuple(params),
                run,
                tuple(sets),
                type_name,
                available,
                should_process,
                confirm_impact,
                collects_input,
            )
        )
        return run

    return register
