"""ConvertTo-Json as Windows PowerShell 5.1 writes it (powershell51.md section 1).

- `-Depth` defaults to 2. The root is level 0; a container (dictionary, array, object) found deeper
  than the depth is replaced by its [string] conversion: "System.Collections.Specialized.OrderedDictionary",
  "System.Collections.Hashtable", "@{a=1; b=x}", or an array's elements joined by spaces. Scalars are
  never cut. No warning is written (5.1 has none). Depth above 100 is a terminating error.
- Enums are written as numbers, DateTime as "\\/Date(ms)\\/", Guid as its lower-case text.
- Strings (and keys) go through HttpUtility.JavaScriptStringEncode: ' < > & become \\u0027 \\u003c
  \\u003e \\u0026, other control characters \\u00xx in lower case.
- A PSObject wrapping a value with note properties becomes {"value": ..., "<note>": ...}.
Sources: [SD:CTJ] ConvertToJsonCommand.cs, [NET:JSS] JavaScriptSerializer.cs, [NET:HttpEncoder].
"""

from __future__ import annotations

from json.encoder import encode_basestring  # the C encoder where CPython has it
from typing import Any

from hcibenefit.lab.powershell.convert import format_double, to_string
from hcibenefit.lab.powershell.errors import ErrorRecord, PSError
from hcibenefit.lab.powershell.values import (
    PSDateTime,
    PSDict,
    PSEnum,
    PSGuid,
    PSObject,
    PSTimeSpan,
)

MAX_DEPTH = 100
_EPOCH_TICKS = 621355968000000000


# JavaScriptStringEncode escapes what JSON must (", \\, control characters: the named escapes where JSON has
# one, else \u00xx in lower case), which is exactly what Python's C JSON string encoder writes, and also
# these, which it leaves alone (its own escapes never contain them, so they are replaced afterwards).
_ALSO_ESCAPED = (
    ("'", "\\u0027"),
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\x85", "\\u0085"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def escape(text: str) -> str:
    """HttpUtility.JavaScriptStringEncode, as 5.1's JavaScriptSerializer applies it (quotes included)."""
    encoded: str = encode_basestring(text)
    for char, escaped in _ALSO_ESCAPED:
        if char in encoded:
            encoded = encoded.replace(char, escaped)
    return encoded


def _date(value: PSDateTime) -> str:
    milliseconds = (value.ticks - _EPOCH_TICKS) // 10_000
    return f'"\\/Date({milliseconds})\\/"'


def _is_container(value: Any) -> bool:
    if isinstance(value, PSObject):
        return value.base is None or bool(value.properties())
    return isinstance(value, list | PSDict) or hasattr(value, "member")


def _value(value: Any, level: int, depth: int) -> str:
    # Plain scalars first, by exact type: never containers, so never cut by -Depth.
    kind = type(value)
    if kind is str:
        return escape(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if isinstance(value, PSObject) and value.base is not None and not value.properties():
        value = value.base
    if _is_container(value) and level > depth:
        return escape(to_string(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, PSEnum):
        return str(value.value)
    if isinstance(value, PSDateTime):
        return _date(value)
    if isinstance(value, PSGuid):
        return escape(value.text)
    if isinstance(value, PSTimeSpan):
        return _object(_timespan_properties(value), level, depth)
    if isinstance(value, PSDict):
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise PSError(
                    ErrorRecord(
                        f"The type '{type(key).__name__}' is not supported for serialization or deserialization of a dictionary. Keys must be strings.",
                        "NonStringKeyInDictionary",
                        "InvalidOperation",
                        command="Microsoft.PowerShell.Commands.ConvertToJsonCommand",
                    )
                )
            pairs.append((key, item))
        return _object(pairs, level, depth)
    if isinstance(value, list):
        return "[" + ",".join(_value(item, level + 1, depth) for item in value) + "]"
    if isinstance(value, PSObject):
        props = value.properties()
        if value.base is not None:
            return _object([("value", value.base), *props], level, depth)
        return _object(props, level, depth)
    return escape(to_string(value))


def _timespan_properties(span: PSTimeSpan) -> list[tuple[str, Any]]:
    ticks = round(span.seconds * 10_000_000)
    total = span.seconds
    return [
        ("Ticks", ticks),
        ("Days", int(total // 86400)),
        ("Hours", int(total % 86400 // 3600)),
        ("Milliseconds", int(total * 1000 % 1000)),
        ("Minutes", int(total % 3600 // 60)),
        ("Seconds", int(total % 60)),
        ("TotalDays", total / 86400),
        ("TotalHours", total / 3600),
        ("TotalMilliseconds", total * 1000),
        ("TotalMinutes", total / 60),
        ("TotalSeconds", total),
    ]


def _object(pairs: list[tuple[str, Any]], level: int, depth: int) -> str:
    return "{" + ",".join(f"{escape(k)}:{_value(v, level + 1, depth)}" for k, v in pairs) + "}"


def convert_to_json(value: Any, *, depth: int = 2, compress: bool = False) -> str:
    """The text ConvertTo-Json -InputObject value -Depth depth [-Compress] writes."""
    if depth > MAX_DEPTH:
        raise PSError(
            ErrorRecord(
                "The maximum depth allowed for serialization is 100.",
                "ReachedMaximumDepthAllowed",
                "InvalidOperation",
                command="Microsoft.PowerShell.Commands.ConvertToJsonCommand",
            )
        )
    text = _value(value, 0, depth)
    return text if compress else pretty(text)


def pretty(compact: str) -> str:
    """5.1's own re-indenter (ConvertToPrettyJsonString): CRLF, 4 spaces, two spaces after ':'.

    Assumption: nested containers are indented one level per depth; 5.1 aligns them under the key
    column, which only changes whitespace. The shipped scripts always pass -Compress.
    """
    out: list[str] = []
    indent = 0
    in_string = False
    escaped = False
    for ch in compact:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
            out.append(ch)
        elif ch in "{[":
            indent += 1
            out.append(ch + "\r\n" + "    " * indent)
        elif ch in "}]":
            indent -= 1
            out.append("\r\n" + "    " * indent + ch)
        elif ch == ",":
            out.append(",\r\n" + "    " * indent)
        elif ch == ":":
            out.append(":  ")
        else:
            out.append(ch)
    return "".join(out)
