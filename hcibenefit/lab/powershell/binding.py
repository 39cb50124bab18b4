"""Parameter binding for scripts, functions and script blocks (powershell51.md section 5).

- Named: case-insensitive, exact name or a unique leading part; `-Switch` alone is $true,
  `-Switch:$false` binds $false; any other parameter takes the next argument.
- Positional: unbound non-switch parameters in declaration order (or by Position). A script block's
  `param()` bound from `Invoke-Command -ArgumentList` goes through here, by position.
- Conversion to the declared type with PowerShell's errors: `[int]` of "1234567890123" is
  `ParameterArgumentTransformationError` (InvalidData); a `[bool]` takes only booleans and numbers.
- An advanced script (`[CmdletBinding()]` or any `[Parameter()]`) has the common parameters and refuses
  unknown ones; a simple script puts extra arguments in `$args`.
- A missing mandatory parameter cannot be prompted for in a remote runspace without a host:
  `MissingMandatoryParameter`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from hcibenefit.lab.powershell import nodes as n
from hcibenefit.lab.powershell.convert import (
    INT32,
    INT64,
    canonical_type,
    cast,
    to_bool,
    to_integer,
    to_string,
)
from hcibenefit.lab.powershell.errors import ErrorRecord, PSError, Unsupported
from hcibenefit.lab.powershell.values import PSDict, PSObject

NO_VALUE: Any = object()
BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"

COMMON_PARAMETERS: dict[str, tuple[str, ...]] = {
    "Verbose": ("vb",),
    "Debug": ("db",),
    "ErrorAction": ("ea",),
    "WarningAction": ("wa",),
    "InformationAction": ("infa",),
    "ErrorVariable": ("ev",),
    "WarningVariable": ("wv",),
    "InformationVariable": ("iv",),
    "OutVariable": ("ov",),
    "OutBuffer": ("ob",),
    "PipelineVariable": ("pv",),
}
SWITCH_COMMON = frozenset({"verbose", "debug", "whatif", "confirm"})
ACTION_PREFERENCES = ("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend")


class Arg(NamedTuple):
    """One evaluated command argument: `-Name`, `-Name:value`, or a positional value.

    A named tuple: every command call makes a few, and a frozen dataclass is several times slower to build."""

    name: str | None
    value: Any = NO_VALUE
    line: int | None = None


def binding_error(
    message: str, error_id: str, command: str | None, category: str = "InvalidArgument"
) -> PSError:
    return PSError(
        ErrorRecord(message, error_id, category, exception_type=BINDING_EXCEPTION, command=command)
    )


def resolve_name(given: str, names: Sequence[tuple[str, tuple[str, ...]]], command: str | None) -> str | None:
    """The parameter `given` names: exact name or alias, else a unique prefix; None when nothing matches."""
    folded = given.casefold()
    for name, aliases in names:
        if folded == name.casefold() or folded in (a.casefold() for a in aliases):
            return name
    matches = sorted(
        {
            name
            for name, aliases in names
            if name.casefold().startswith(folded) or any(a.casefold().startswith(folded) for a in aliases)
        }
    )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise binding_error(
            f"Parameter cannot be processed because the parameter name '{given}' is ambiguous. "
            f"Possible matches include: {' '.join('-' + m for m in matches)}.",
            "AmbiguousParameter",
            command,
        )
    return None


def _type_label(type_name: str | None) -> str:
    kind = canonical_type(type_name or "object") or (type_name or "object")
    return {
        "string": "System.String",
        "int": "System.Int32",
        "long": "System.Int64",
        "bool": "System.Boolean",
        "switch": "System.Management.Automation.SwitchParameter",
        "string[]": "System.String[]",
        "hashtable": "System.Collections.Hashtable",
        "pscredential": "System.Management.Automation.PSCredential",
        "datetime": "System.DateTime",
        "guid": "System.Guid",
    }.get(kind, "System.Object")


def convert_script_argument(type_name: str | None, value: Any, parameter: str, command: str | None) -> Any:
    """A script/function parameter's value converted to its declared type, or the binding error."""
    if type_name is None:
        return value
    kind = canonical_type(type_name)
    if kind is None:
        raise Unsupported(f"the parameter type [{type_name}]")
    prefix = f"Cannot process argument transformation on parameter '{parameter}'."
    raw = value.base if isinstance(value, PSObject) and value.base is not None else value
    if kind in ("bool", "switch"):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            return raw != 0
        shown = "System.String" if isinstance(raw, str) else "null" if raw is None else to_string(raw)
        raise binding_error(
            f'{prefix} Cannot convert value "{shown}" to type "System.Boolean". Boolean parameters accept only '
            "Boolean values and numbers, such as $True, $False, 1 or 0.",
            "ParameterArgumentTransformationError",
            command,
            "InvalidData",
        )
    if kind == "string" and raw is None:
        return ""
    if kind == "string[]" and raw is None:
        return None
    if kind == "pscredential" and not (isinstance(raw, PSObject) and raw.type_name.endswith("PSCredential")):
        raise binding_error(
            f'{prefix} Cannot convert the "{to_string(raw)}" value of type "{type(raw).__name__}" to type '
            '"System.Management.Automation.PSCredential".',
            "ParameterArgumentTransformationError",
            command,
            "InvalidData",
        )
    if kind == "hashtable" and not isinstance(raw, PSDict):
        raise binding_error(
            f'{prefix} Cannot convert the "{to_string(raw)}" value to type "System.Collections.Hashtable".',
            "ParameterArgumentTransformationError",
            command,
            "InvalidData",
        )
    try:
        return cast(value, type_name)
    except PSError as exc:
        raise binding_error(
            f"{prefix} {exc.record.message}", "ParameterArgumentTransformationError", command, "InvalidData"
        ) from None


def _validate(decl: n.ParamDecl, value: Any, command: str | None) -> None:
    items = value if isinstance(value, list) else [value]
    if decl.mandatory:
        if value is None:
            raise binding_error(
                f"Cannot bind argument to parameter '{decl.name}' because it is null.",
                "ParameterArgumentValidationErrorNullNotAllowed",
                command,
                "InvalidData",
            )
        if value == "":
            raise binding_error(
                f"Cannot bind argument to parameter '{decl.name}' because it is an empty string.",
                "ParameterArgumentValidationErrorEmptyStringNotAllowed",
                command,
                "InvalidData",
            )
        if isinstance(value, list) and not value:
            raise binding_error(
                f"Cannot bind argument to parameter '{decl.name}' because it is an empty array.",
                "ParameterArgumentValidationErrorEmptyArrayNotAllowed",
                command,
                "InvalidData",
            )
    if decl.validate_pattern is not None:
        for item in items:
            text = to_string(item)
            if re.search(decl.validate_pattern, text, re.IGNORECASE) is None:
                pattern = decl.validate_pattern
                raise binding_error(
                    f"Cannot validate argument on parameter '{decl.name}'. The argument \"{text}\" does not match "
                    f'the "{pattern}" pattern. Supply an argument that matches "{pattern}" and try the command again.',
                    "ParameterArgumentValidationError",
                    command,
                    "InvalidData",
                )
    if decl.validate_set:
        allowed = {v.casefold() for v in decl.validate_set}
        for item in items:
            if to_string(item).casefold() not in allowed:
                raise binding_error(
                    f"Cannot validate argument on parameter '{decl.name}'. The argument \"{to_string(item)}\" does not "
                    f'belong to the set "{",".join(decl.validate_set)}" specified by the ValidateSet attribute. '
                    "Supply an argument that is in the set and then try the command again.",
                    "ParameterArgumentValidationError",
                    command,
                    "InvalidData",
                )


@dataclass
class BoundBlock:
    values: dict[str, Any]  # declared name -> value (defaults still to be evaluated are absent)
    extra: list[Any]  # $args
    common: dict[str, Any]  # ErrorAction etc.
    defaults: list[n.ParamDecl]


def bind_block(block: n.Block, args: Sequence[Arg], command: str | None) -> BoundBlock:
    """Bind arguments to a script's or script block's param() block (defaults left to the caller)."""
    decls = list(block.params or ())
    by_name = {d.name: d for d in decls}
    names: list[tuple[str, tuple[str, ...]]] = [(d.name, ()) for d in decls]
    if block.advanced:
        names += list(COMMON_PARAMETERS.items())
    values: dict[str, Any] = {}
    common: dict[str, Any] = {}
    extra: list[Any] = []
    positional: list[Any] = []
    pending = list(args)
    i = 0
    while i < len(pending):
        arg = pending[i]
        i += 1
        if arg.name is None:
            positional.append(arg.value)
            continue
        resolved = resolve_name(arg.name, names, command)
        if resolved is None:
            if block.advanced:
                raise binding_error(
                    f"A parameter cannot be found that matches parameter name '{arg.name}'.",
                    "NamedParameterNotFound",
                    command,
                )
            extra.append(f"-{arg.name}")
            if arg.value is not NO_VALUE:
                extra.append(arg.value)
            continue
        decl = by_name.get(resolved)
        is_switch = (decl is not None and (canonical_type(decl.type_name or "") == "switch")) or (
            decl is None and resolved.casefold() in SWITCH_COMMON
        )
        value = arg.value
        if value is NO_VALUE:
            if is_switch:
                value = True
            elif i < len(pending) and pending[i].name is None:
                value = pending[i].value
                i += 1
            else:
                shown = _type_label(decl.type_name if decl else "string")
                raise binding_error(
                    f"Missing an argument for parameter '{resolved}'. Specify a parameter of type '{shown}' and try again.",
                    "MissingArgument",
                    command,
                )
        if resolved in values or resolved in common:
            raise binding_error(
                f"Cannot bind parameter because parameter '{resolved}' is specified more than once. To provide "
                "multiple values to parameters that can accept multiple values, use the array syntax. For example, "
                '"-parameter value1,value2,value3".',
                "ParameterAlreadyBound",
                command,
            )
        if decl is None:
            common[resolved] = value
        else:
            values[resolved] = value
    free = [d for d in decls if d.name not in values and canonical_type(d.type_name or "") != "switch"]
    if any(d.position is not None for d in decls):
        free.sort(key=lambda d: (d.position is None, d.position or 0))
    for value in positional:
        if not free:
            if block.advanced:
                raise binding_error(
                    f"A positional parameter cannot be found that accepts argument '{to_string(value)}'.",
                    "PositionalParameterNotFound",
                    command,
                )
            extra.append(value)
            continue
        values[free.pop(0).name] = value
    converted: dict[str, Any] = {}
    for name, value in values.items():
        decl = by_name[name]
        result = convert_script_argument(decl.type_name, value, name, command)
        _validate(decl, result, command)
        converted[name] = result
    missing = [d.name for d in decls if d.mandatory and d.name not in converted]
    if missing:
        raise binding_error(
            "Cannot process command because of one or more missing mandatory parameters: "
            + " ".join(missing)
            + ".",
            "MissingMandatoryParameter",
            command,
        )
    if "ErrorAction" in common:
        action = to_string(common["ErrorAction"])
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
        common["ErrorAction"] = match
    defaults = [d for d in decls if d.name not in converted]
    return BoundBlock(converted, extra, common, defaults)


def default_value(decl: n.ParamDecl, evaluate: Callable[[n.Expr], Any], command: str | None) -> Any:
    if decl.default is None:
        kind = canonical_type(decl.type_name or "")
        if kind in ("switch", "bool"):
            return False
        if kind == "string":
            return ""
        if kind in ("int", "long", "double"):
            return 0
        return None
    return convert_script_argument(decl.type_name, evaluate(decl.default), decl.name, command)


def int_argument(value: Any) -> int:
    return to_integer(value, INT32, "System.Int32")


def long_argument(value: Any) -> int:
    return to_integer(value, INT64, "System.Int64")


__all__ = [
    "ACTION_PREFERENCES",
    "COMMON_PARAMETERS",
    "NO_VALUE",
    "Arg",
    "BoundBlock",
    "bind_block",
    "binding_error",
    "convert_script_argument",
    "default_value",
    "resolve_name",
    "to_bool",
]
