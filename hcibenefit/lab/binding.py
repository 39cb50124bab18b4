"""Parameter binding the way PowerShell does it for a script's param() block, for the lab's emulation.

Covers what our scripts use: named parameters (case-insensitive, unique prefixes), positional ones
in declaration order, mandatory parameters, [string] [string[]] [int] [bool] [switch] [pscredential]
conversions and ValidateSet. Errors carry the message and FullyQualifiedErrorId PowerShell gives, so
the client sees the same error record it would get from a real host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hcibenefit.lab.wsman.executor import TerminatingError

_BINDING = "System.Management.Automation.ParameterBindingException"


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # string, string[], int, bool, switch, pscredential
    mandatory: bool = False
    default: Any = None
    validate_set: tuple[str, ...] = ()


def _binding_error(message: str, error_id: str) -> TerminatingError:
    return TerminatingError(message, error_id=error_id, category="InvalidArgument", exception_type=_BINDING)


def _convert(param: Param, value: Any) -> Any:
    def cannot(target: str) -> TerminatingError:
        return _binding_error(
            f"Cannot process argument transformation on parameter '{param.name}'. Cannot convert value "
            f'"{value}" to type "{target}".',
            "ParameterArgumentTransformationError",
        )

    kind = param.type
    if kind == "string":
        if isinstance(value, list | tuple):
            return " ".join(str(v) for v in value)
        return "" if value is None else str(value)
    if kind == "string[]":
        if value is None:
            return []
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return [str(value)]
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise cannot("System.Int32") from None
    if kind in ("bool", "switch"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        raise cannot("System.Boolean")
    if kind == "pscredential":
        if value is None or isinstance(value, str | int | bool | list):
            raise cannot("System.Management.Automation.PSCredential")
        return value
    raise AssertionError(f"unsupported parameter type {kind}")


def bind(signature: Sequence[Param], supplied: Sequence[tuple[str | None, Any]]) -> dict[str, Any]:
    """Bind supplied (name or None, value) pairs to a signature; raise TerminatingError like PowerShell."""
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    for name, value in supplied:
        if name is None:
            positional.append(value)
            continue
        wanted = name.lstrip("-").lower()
        matches = [p for p in signature if p.name.lower() == wanted] or [
            p for p in signature if p.name.lower().startswith(wanted)
        ]
        if not matches:
            raise _binding_error(
                f"A parameter cannot be found that matches parameter name '{name}'.", "NamedParameterNotFound"
            )
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches)
            raise _binding_error(
                f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. "
                f"Possible matches include: {names}.",
                "AmbiguousParameter",
            )
        param = matches[0]
        if param.name in bound:
            raise _binding_error(
                f"Cannot bind parameter because parameter '{param.name}' is specified more than once.",
                "ParameterAlreadyBound",
            )
        bound[param.name] = value
    free = [p for p in signature if p.name not in bound and p.type != "switch"]
    if len(positional) > len(free):
        raise _binding_error(
            f"A positional parameter cannot be found that accepts argument '{positional[len(free)]}'.",
            "PositionalParameterNotFound",
        )
    for param, value in zip(free, positional, strict=False):
        bound[param.name] = value

    result: dict[str, Any] = {}
    missing: list[str] = []
    for param in signature:
        if param.name in bound:
            converted = _convert(param, bound[param.name])
            if param.mandatory and converted in ("", [], None):
                raise _binding_error(
                    f"Cannot bind argument to parameter '{param.name}' because it is an empty "
                    f"{'array' if param.type.endswith('[]') else 'string'}.",
                    "ParameterArgumentValidationErrorEmptyStringNotAllowed",
                )
            for item in converted if isinstance(converted, list) else [converted]:
                if param.validate_set and str(item).lower() not in {v.lower() for v in param.validate_set}:
                    raise _binding_error(
                        f"Cannot validate argument on parameter '{param.name}'. The argument \"{item}\" does "
                        f'not belong to the set "{",".join(param.validate_set)}" specified by the '
                        "ValidateSet attribute. Supply an argument that is in the set and then try the "
                        "command again.",
                        "ParameterArgumentValidationError",
                    )
            result[param.name] = converted
        elif param.mandatory:
            missing.append(param.name)
        else:
            result[param.name] = False if param.type == "switch" else param.default
    if missing:
        # Remoting hosts are non-interactive: PowerShell fails instead of prompting.
        raise _binding_error(
            "Cannot process command because of one or more missing mandatory parameters: "
            + " ".join(missing)
            + ".",
            "MissingMandatoryParameter",
        )
    return result
