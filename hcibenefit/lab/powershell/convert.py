"""Windows PowerShell 5.1's conversions and operators, for the values in `values`.

Sources: powershell51.md section 2 (string conversion: invariant culture, arrays joined by $OFS or a
space, dictionaries never joined), section 2's numeric rules (casts round half to even; [int] of an
out-of-range value throws), section 10.2 (comparisons: the left operand's type decides, strings are
compared case-insensitively, `if` truthiness) and Learn about_Comparison_Operators / about_Operators.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any

from hcibenefit.lab.powershell.errors import ErrorRecord, PSError
from hcibenefit.lab.powershell.values import (
    MISSING,
    ArrayList,
    PSDateTime,
    PSDict,
    PSEnum,
    PSGuid,
    PSObject,
    PSTimeSpan,
    ScriptBlock,
    SecureString,
)

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)


def type_name_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32" if INT32[0] <= value <= INT32[1] else "System.Int64"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, ArrayList):
        return ArrayList.type_name
    if isinstance(value, list):
        return "System.Object[]"
    if isinstance(value, PSDict):
        return value.type_name
    if isinstance(value, PSEnum):
        return value.type_name
    if isinstance(value, PSDateTime):
        return "System.DateTime"
    if isinstance(value, PSTimeSpan):
        return "System.TimeSpan"
    if isinstance(value, PSGuid):
        return "System.Guid"
    if isinstance(value, PSObject):
        return value.type_name
    if isinstance(value, ScriptBlock):
        return "System.Management.Automation.ScriptBlock"
    if isinstance(value, SecureString):
        return SecureString.type_name
    type_name = getattr(value, "type_name", None)
    return str(type_name) if type_name else "System.Object"


# --- to string ----------------------------------------------------------------------------------


def format_double(value: float) -> str:
    """.NET's Double.ToString("R") under InvariantCulture: 1 -> "1", 0.1 -> "0.1", 1e20 -> "1E+20"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa.rstrip('0').rstrip('.')}E{sign}{exponent.lstrip('+-').zfill(2)}"
    return text


def format_datetime_invariant(value: PSDateTime) -> str:
    return value.value.strftime("%m/%d/%Y %H:%M:%S")


def format_datetime(value: PSDateTime, fmt: str | None) -> str:
    """DateTime.ToString(fmt): "o" (round trip) and "s"; the default is en-US's general format."""
    d = value.value
    if fmt in ("o", "O"):
        base = d.strftime("%Y-%m-%dT%H:%M:%S") + f".{d.microsecond:06d}0"
        return base + {"Utc": "Z", "Local": "+00:00", "Unspecified": ""}[value.kind]
    if fmt == "s":
        return d.strftime("%Y-%m-%dT%H:%M:%S")
    if fmt is None or fmt == "":
        # en-US "G": 3/19/2024 12:00:00 AM (Assumption: the lab's hosts run en-US).
        hour = d.hour % 12 or 12
        return (
            f"{d.month}/{d.day}/{d.year} {hour}:{d.minute:02d}:{d.second:02d} {'AM' if d.hour < 12 else 'PM'}"
        )
    raise PSError(ErrorRecord(f"the lab does not format dates as {fmt!r}", "LabNotEmulated"))


def to_string(value: Any, *, nested: bool = False) -> str:
    """`[string]$x` and `"$x"` (invariant culture)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, list):
        if nested:
            return type_name_of(value)
        return " ".join(to_string(v, nested=True) for v in value)
    if isinstance(value, PSDict):
        return value.type_name
    if isinstance(value, PSEnum):
        return value.name
    if isinstance(value, PSDateTime):
        return format_datetime_invariant(value)
    if isinstance(value, PSGuid):
        return value.text
    if isinstance(value, PSTimeSpan):
        return _timespan_text(value)
    if isinstance(value, ScriptBlock):
        return value.text
    if isinstance(value, PSObject):
        if value.base is not None:
            return to_string(value.base, nested=nested)
        if value.string is not None:
            return value.string
        if value.is_custom:
            parts = []
            for name, item in value.properties():
                shown = "" if isinstance(item, PSObject) and item.is_custom else to_string(item, nested=True)
                parts.append(f"{name}={shown}")
            return "@{" + "; ".join(parts) + "}"
        return value.type_name
    if isinstance(value, ErrorRecord):
        return value.text()
    text = getattr(value, "ps_string", None)
    if callable(text):
        return str(text())
    return type_name_of(value)


def _timespan_text(span: PSTimeSpan) -> str:
    total = span.seconds
    days, rest = divmod(abs(total), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    whole = int(seconds)
    fraction = round((seconds - whole) * 10_000_000)
    text = f"{int(hours):02d}:{int(minutes):02d}:{whole:02d}"
    if days:
        text = f"{int(days)}.{text}"
    if fraction:
        text += f".{fraction:07d}"
    return ("-" if total < 0 else "") + text


# --- to bool ------------------------------------------------------------------------------------


def to_bool(value: Any) -> bool:
    """`if ($x)`: '', $null, 0, @(), @(0) and @($null) are false; any object and @{} are true."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list):
        if not value:
            return False
        if len(value) == 1:
            return to_bool(value[0]) if not isinstance(value[0], list) else bool(value[0])
        return True
    if isinstance(value, PSObject) and value.base is not None:
        return to_bool(value.base)
    return True


# --- numbers ------------------------------------------------------------------------------------


def _cast_error(value: Any, target: str, reason: str | None) -> PSError:
    shown = to_string(value)
    message = f'Cannot convert value "{shown}" to type "{target}".'
    if reason:
        message += f' Error: "{reason}"'
    return PSError(
        ErrorRecord(
            message,
            "InvalidCastFromStringToInteger"
            if isinstance(value, str)
            else "ConvertToFinalInvalidCastException",
            "InvalidArgument",
            exception_type="System.Management.Automation.PSInvalidCastException",
            target=value,
        )
    )


def round_half_even(value: float) -> int:
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def to_number(value: Any, *, target: str = "System.Int32") -> int | float:
    """A number for arithmetic: ints stay ints, strings parse as integers or doubles."""
    if isinstance(value, PSObject) and value.base is not None:
        value = value.base
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, PSEnum):
        return value.value
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            raise _cast_error(value, target, "Input string was not in a correct format.") from None
    raise _cast_error(value, target, None)


def to_integer(value: Any, bounds: tuple[int, int], target: str) -> int:
    number = to_number(value, target=target)
    if isinstance(number, float):
        if math.isnan(number) or math.isinf(number):
            raise _cast_error(
                value, target, f"Value was either too large or too small for an {target.rsplit('.', 1)[-1]}."
            )
        number = round_half_even(number)
    if not bounds[0] <= number <= bounds[1]:
        raise _cast_error(
            value, target, f"Value was either too large or too small for an {target.rsplit('.', 1)[-1]}."
        )
    return number


def to_double(value: Any) -> float:
    return float(to_number(value, target="System.Double"))


# --- casts --------------------------------------------------------------------------------------

_TYPE_ALIASES = {
    "string": "string",
    "system.string": "string",
    "int": "int",
    "int32": "int",
    "system.int32": "int",
    "long": "long",
    "int64": "long",
    "system.int64": "long",
    "uint32": "uint32",
    "system.uint32": "uint32",
    "double": "double",
    "system.double": "double",
    "bool": "bool",
    "boolean": "bool",
    "system.boolean": "bool",
    "datetime": "datetime",
    "system.datetime": "datetime",
    "guid": "guid",
    "system.guid": "guid",
    "array": "array",
    "system.array": "array",
    "object[]": "array",
    "hashtable": "hashtable",
    "system.collections.hashtable": "hashtable",
    "xml": "xml",
    "system.xml.xmldocument": "xml",
    "void": "void",
    "scriptblock": "scriptblock",
    "system.management.automation.scriptblock": "scriptblock",
    "pscustomobject": "pscustomobject",
    "psobject": "object",
    "object": "object",
    "system.object": "object",
    "string[]": "string[]",
    "system.string[]": "string[]",
    "int[]": "int[]",
    "system.collections.arraylist": "arraylist",
    "pscredential": "pscredential",
    "system.management.automation.pscredential": "pscredential",
    "switch": "switch",
    "timespan": "timespan",
    "system.timespan": "timespan",
}


_CANONICAL: dict[str, str | None] = {}


def canonical_type(name: str) -> str | None:
    found = _CANONICAL.get(name, MISSING)
    if found is MISSING:
        found = _TYPE_ALIASES.get(name.strip().casefold())
        if len(_CANONICAL) < 4096:  # spellings come from scripts: bounded, but a hostile one may not be
            _CANONICAL[name] = found
    return found  # type: ignore[no-any-return]


def parse_datetime(text: str) -> PSDateTime | None:
    candidate = text.strip()
    kind = "Unspecified"
    if candidate.endswith("Z"):
        candidate, kind = candidate[:-1] + "+00:00", "Utc"
    if "." in candidate:
        head, _, tail = candidate.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        candidate = f"{head}.{digits[:6]}{tail[len(digits) :]}"
    try:
        parsed = dt.datetime.fromisoformat(candidate)
    except ValueError:
        try:
            parsed = dt.datetime.strptime(text.strip(), "%m/%d/%Y %H:%M:%S")
        except ValueError:
            return None
    if parsed.tzinfo is not None and kind != "Utc":
        kind = "Local"
    return PSDateTime(parsed, kind)


def cast(value: Any, type_name: str) -> Any:
    """`[type]$value` for the types our scripts use; anything else raises (never a silent pass)."""
    kind = canonical_type(type_name)
    if isinstance(value, PSObject) and value.base is not None and kind not in ("object", None):
        value = value.base
    if kind == "string":
        return to_string(value)
    if kind == "int":
        return to_integer(value, INT32, "System.Int32")
    if kind == "long":
        return to_integer(value, INT64, "System.Int64")
    if kind == "uint32":
        return to_integer(value, UINT32, "System.UInt32")
    if kind == "double":
        return to_double(value)
    if kind in ("bool", "switch"):
        return to_bool(value)
    if kind == "datetime":
        if isinstance(value, PSDateTime):
            return PSDateTime(value.value, value.kind)
        if isinstance(value, str):
            parsed = parse_datetime(value)
            if parsed is not None:
                return parsed
        raise _cast_error(value, "System.DateTime", "String was not recognized as a valid DateTime.")
    if kind == "guid":
        if isinstance(value, PSGuid):
            return value
        try:
            return PSGuid(uuid.UUID(to_string(value)))
        except ValueError:
            raise _cast_error(
                value,
                "System.Guid",
                "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
            ) from None
    if kind == "array":
        return list(value) if isinstance(value, list) else [] if value is None else [value]
    if kind == "string[]":
        items = value if isinstance(value, list) else [] if value is None else [value]
        return [to_string(v) for v in items]
    if kind == "int[]":
        items = value if isinstance(value, list) else [] if value is None else [value]
        return [to_integer(v, INT32, "System.Int32") for v in items]
    if kind == "arraylist":
        return ArrayList(value if isinstance(value, list) else [] if value is None else [value])
    if kind == "hashtable":
        if isinstance(value, PSDict):
            return PSDict(value.items())
        raise _cast_error(value, "System.Collections.Hashtable", None)
    if kind == "xml":
        from hcibenefit.lab.powershell.xmlnode import parse_xml  # import here: xmlnode imports convert

        return parse_xml(to_string(value))
    if kind == "scriptblock":
        if isinstance(value, ScriptBlock):
            return value
        raise _cast_error(value, "System.Management.Automation.ScriptBlock", None)
    if kind == "pscredential":
        if isinstance(value, PSObject) and value.type_name.endswith("PSCredential"):
            return value
        raise _cast_error(value, "System.Management.Automation.PSCredential", None)
    if kind == "timespan":
        if isinstance(value, PSTimeSpan):
            return value
        raise _cast_error(value, "System.TimeSpan", None)
    if kind == "object":
        return value
    if kind == "void":
        return None
    from hcibenefit.lab.powershell.errors import Unsupported

    raise Unsupported(f"the cast [{type_name}]")


def is_instance(value: Any, type_name: str) -> bool:
    """`$x -is [type]`: works through a PSObject wrapper."""
    if isinstance(value, PSObject) and value.base is not None:
        value = value.base
    kind = canonical_type(type_name)
    folded = type_name.casefold()
    if kind == "datetime":
        return isinstance(value, PSDateTime)
    if kind == "string":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and INT32[0] <= value <= INT32[1]
    if kind == "long":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "double":
        return isinstance(value, float)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("array", "string[]"):
        return isinstance(value, list) and not isinstance(value, ArrayList)
    if kind == "hashtable":
        return isinstance(value, PSDict) and not value.ordered
    if kind == "guid":
        return isinstance(value, PSGuid)
    if kind == "arraylist":
        return isinstance(value, ArrayList)
    if kind == "object":
        return value is not None
    if kind == "pscustomobject":
        return isinstance(value, PSObject) and value.is_custom
    if folded in ("system.collections.idictionary", "collections.idictionary"):
        return isinstance(value, PSDict)
    if isinstance(value, PSObject):
        return any(t.casefold() in (folded, f"system.{folded}") for t in value.type_names)
    from hcibenefit.lab.powershell.errors import Unsupported

    raise Unsupported(f"-is [{type_name}]")


# --- comparison -----------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """WildcardPattern: * ? [abc] [a-z], a backtick escapes the next character; case-insensitive."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "`" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.IGNORECASE | re.DOTALL)
    except re.error:
        # WildcardPattern rejects what it cannot read (a range such as [d-5]).
        raise PSError(
            ErrorRecord(
                f"The specified wildcard character pattern is not valid: {pattern}",
                "RuntimeException",
                "InvalidArgument",
                exception_type="System.Management.Automation.WildcardPatternException",
            )
        ) from None


def has_wildcards(text: str) -> bool:
    """WildcardPattern.ContainsWildcardCharacters: an unescaped *, ?, [ or ]."""
    i = 0
    while i < len(text):
        if text[i] == "`":
            i += 2
            continue
        if text[i] in "*?[]":
            return True
        i += 1
    return False


def wildcard_match(pattern: str, text: str) -> bool:
    return wildcard_regex(pattern).fullmatch(text) is not None


def escape_wildcards(text: str) -> str:
    """[System.Management.Automation.WildcardPattern]::Escape: a backtick before * ? [ ] and `."""
    return "".join(f"`{ch}" if ch in "*?[]`" else ch for ch in text)


def _unwrap(value: Any) -> Any:
    return value.base if isinstance(value, PSObject) and value.base is not None else value


def equals(left: Any, right: Any, *, case_sensitive: bool = False) -> bool:
    """Scalar -eq: the left operand's type decides how the right one is converted."""
    left, right = _unwrap(left), _unwrap(right)
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, str):
        other = to_string(right)
        return left == other if case_sensitive else left.casefold() == other.casefold()
    if isinstance(left, bool):
        return left == to_bool(right)
    if isinstance(left, int | float):
        if isinstance(right, PSEnum):
            return left == right.value
        try:
            return left == to_number(right)
        except PSError:
            return False
    if isinstance(left, PSEnum):
        if isinstance(right, str):
            return left.name.casefold() == right.casefold()
        if isinstance(right, PSEnum):
            return left.value == right.value
        if isinstance(right, int | float):
            return left.value == right
        return False
    if isinstance(left, PSDateTime):
        if isinstance(right, str):
            parsed = parse_datetime(right)
            return parsed is not None and parsed.ticks == left.ticks
        return isinstance(right, PSDateTime) and right.ticks == left.ticks
    if isinstance(left, PSGuid):
        return left.text == to_string(right).casefold()
    if isinstance(left, PSTimeSpan):
        return isinstance(right, PSTimeSpan) and right.seconds == left.seconds
    return left is right


def compare(left: Any, right: Any) -> int:
    """-lt/-gt: numbers numerically, strings case-insensitively, dates by ticks, versions by parts."""
    left, right = _unwrap(left), _unwrap(right)
    if left is None and right is None:
        return 0
    if left is None:
        return -1
    if right is None:
        return 1
    if isinstance(left, str) and not isinstance(right, int | float):
        a, b = left.casefold(), to_string(right).casefold()
        return (a > b) - (a < b)
    if isinstance(left, PSDateTime):
        other = right if isinstance(right, PSDateTime) else cast(right, "datetime")
        return (left.ticks > other.ticks) - (left.ticks < other.ticks)
    if isinstance(left, PSTimeSpan):
        other_s = right.seconds if isinstance(right, PSTimeSpan) else to_double(right)
        return (left.seconds > other_s) - (left.seconds < other_s)
    version: tuple[int, ...] | None = getattr(left, "version_tuple", None)
    if version is not None:
        other_v: tuple[int, ...] = getattr(right, "version_tuple", None) or tuple(
            int(p) for p in to_string(right).split(".")
        )
        return (version > other_v) - (version < other_v)
    a_n = to_number(left)
    b_n = to_number(right)
    return (a_n > b_n) - (a_n < b_n)


def contains(collection: Any, item: Any) -> bool:
    items = collection if isinstance(collection, list) else [collection]
    return any(equals(element, item) for element in items)


# --- arithmetic ------------------------------------------------------------------------------------


def add(left: Any, right: Any) -> Any:
    left = _unwrap(left)
    if left is None:
        return right
    if isinstance(left, str):
        return left + to_string(right)
    if isinstance(left, list):
        return [*left, *(right if isinstance(right, list) else [right])]
    if isinstance(left, PSDict):
        merged = PSDict(left.items(), ordered=left.ordered)
        if not isinstance(right, PSDict):
            raise PSError(
                ErrorRecord(
                    "A hash table can only be added to another hash table.",
                    "AddHashTableToNonHashTable",
                    "InvalidOperation",
                )
            )
        for key, value in right.items():
            if key in merged:
                raise PSError(
                    ErrorRecord(
                        f"Item has already been added. Key in dictionary: '{key}'  Key being added: '{key}'",
                        "ArgumentException",
                        "NotSpecified",
                    )
                )
            merged[key] = value
        return merged
    if isinstance(left, PSDateTime) and isinstance(right, PSTimeSpan):
        return PSDateTime(left.value + dt.timedelta(seconds=right.seconds), left.kind)
    return _numeric(left, right, lambda a, b: a + b)


def _numeric(left: Any, right: Any, op: Any) -> int | float:
    a, b = to_number(left), to_number(right)
    result: int | float = op(a, b)
    if isinstance(result, int) and not INT64[0] <= result <= INT64[1]:
        return float(result)
    return result


def subtract(left: Any, right: Any) -> Any:
    left = _unwrap(left)
    if isinstance(left, PSDateTime) and isinstance(right, PSDateTime):
        return PSTimeSpan((left.ticks - right.ticks) / 10_000_000)
    return _numeric(left, right, lambda a, b: a - b)


def multiply(left: Any, right: Any) -> Any:
    left = _unwrap(left)
    if isinstance(left, str):
        return left * int(to_number(right))
    if isinstance(left, list):
        return left * int(to_number(right))
    return _numeric(left, right, lambda a, b: a * b)


def divide(left: Any, right: Any) -> Any:
    a, b = to_number(left), to_number(right)
    if b == 0:
        raise PSError(ErrorRecord("Attempted to divide by zero.", "RuntimeException", "NotSpecified"))
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b
    return a / b


def modulo(left: Any, right: Any) -> Any:
    a, b = to_number(left), to_number(right)
    if b == 0:
        raise PSError(ErrorRecord("Attempted to divide by zero.", "RuntimeException", "NotSpecified"))
    return math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else int(math.fmod(a, b))
