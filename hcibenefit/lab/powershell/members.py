""".NET members as scripts use them: properties, methods, static members (powershell51.md section 4).

- A property of $null, or one that does not exist, is $null (no strict mode), at any depth.
- A method call on $null is `InvokeMethodOnNull`; a method that does not exist is `MethodNotFound`;
  a method that throws becomes MethodInvocationException with the inner exception's type as its id.
- Arrays: `.Count`/`.Length`, otherwise member enumeration (the values of the elements that have it).
- Hashtables: a key beats a property of the same name.
Members the lab has not modelled raise `NotEmulated` (loud) rather than returning a guess.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from hcibenefit.lab.powershell.convert import (
    INT32,
    escape_wildcards,
    format_datetime,
    to_integer,
    to_string,
    type_name_of,
)
from hcibenefit.lab.powershell.errors import ErrorRecord, NotEmulated, PSError, method_exception
from hcibenefit.lab.powershell.values import (
    EMPTY_GUID,
    MIN_DATETIME,
    MISSING,
    ArrayList,
    EnumType,
    PSDateTime,
    PSDict,
    PSEnum,
    PSGuid,
    PSObject,
    PSTimeSpan,
    ScriptBlock,
    SecureString,
)
from hcibenefit.lab.powershell.xmlnode import XmlNode

DATETIME_KIND = EnumType("System.DateTimeKind", {"Unspecified": 0, "Utc": 1, "Local": 2})


class PropertyInfo:
    """One entry of `$x.PSObject.Properties`."""

    type_name = "System.Management.Automation.PSNoteProperty"

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value

    def ps_member(self, name: str) -> Any:
        key = name.casefold()
        if key == "name":
            return self.name
        if key == "value":
            return self.value
        if key == "membertype":
            return "NoteProperty"
        return MISSING

    def ps_string(self) -> str:
        return f"{type_name_of(self.value)} {self.name}={to_string(self.value)}"


class PropertyCollection:
    """`$x.PSObject.Properties`: indexable by name (case-insensitive), enumerable."""

    type_name = "System.Management.Automation.PSMemberInfoIntegratingCollection`1[[System.Management.Automation.PSPropertyInfo]]"

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = [PropertyInfo(k, v) for k, v in items]

    def lookup(self, name: str) -> PropertyInfo | None:
        return next((p for p in self.items if p.name.casefold() == name.casefold()), None)

    def ps_member(self, name: str) -> Any:
        if name.casefold() == "name":
            return [p.name for p in self.items]
        return MISSING

    def ps_enumerate(self) -> list[PropertyInfo]:
        """What `foreach` and the pipeline see: each property (the collection is IEnumerable)."""
        return list(self.items)


class PSObjectView:
    """`$x.PSObject`: the adapter's view of any value."""

    type_name = "System.Management.Automation.PSObject"

    def __init__(self, value: Any) -> None:
        self.value = value

    def ps_member(self, name: str) -> Any:
        key = name.casefold()
        if key == "properties":
            return PropertyCollection(_properties_of(self.value))
        if key == "typenames":
            if isinstance(self.value, PSObject):
                return list(self.value.type_names)
            return [type_name_of(self.value)]
        if key == "baseobject":
            return (
                self.value.base
                if isinstance(self.value, PSObject) and self.value.base is not None
                else self.value
            )
        return MISSING


def _properties_of(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, PSObject):
        return value.properties()
    if isinstance(value, PSDict):
        # A Hashtable's keys are not properties (powershell51.md section 4).
        return [("Count", len(value)), ("Keys", value.keys()), ("Values", value.values())]
    if isinstance(value, str):
        return [("Length", len(value))]
    if isinstance(value, ErrorRecord):
        return [
            (n, value.member(n))
            for n in (
                "Exception",
                "TargetObject",
                "CategoryInfo",
                "FullyQualifiedErrorId",
                "ErrorDetails",
                "InvocationInfo",
            )
        ]
    return []


def _datetime_member(value: PSDateTime, key: str) -> Any:
    d = value.value
    table: dict[str, Callable[[], Any]] = {
        "year": lambda: d.year,
        "month": lambda: d.month,
        "day": lambda: d.day,
        "hour": lambda: d.hour,
        "minute": lambda: d.minute,
        "second": lambda: d.second,
        "millisecond": lambda: d.microsecond // 1000,
        "ticks": lambda: value.ticks,
        "kind": lambda: DATETIME_KIND(value.kind),
        "date": lambda: PSDateTime(dt.datetime(d.year, d.month, d.day), value.kind),
        "dayofweek": lambda: PSEnum("System.DayOfWeek", d.strftime("%A"), (d.weekday() + 1) % 7),
    }
    getter = table.get(key)
    return getter() if getter else MISSING


def _timespan_member(value: PSTimeSpan, key: str) -> Any:
    total = value.seconds
    table = {
        "totalmilliseconds": total * 1000,
        "totalseconds": total,
        "totalminutes": total / 60,
        "totalhours": total / 3600,
        "totaldays": total / 86400,
        "days": int(total // 86400),
        "hours": int(total % 86400 // 3600),
        "minutes": int(total % 3600 // 60),
        "seconds": int(total % 60),
        "milliseconds": int(total * 1000 % 1000),
        "ticks": round(total * 10_000_000),
    }
    return table.get(key, MISSING)


def _psobject_member(value: PSObject, name: str, key: str) -> Any:
    found = value.get_folded(key)
    if found is not MISSING:
        return found
    if value.base is not None:
        return get_member(value.base, name)
    if key in ("count", "length") and not value.is_custom:
        return 1
    return MISSING


def _dict_member(value: PSDict, name: str, key: str) -> Any:
    entry = value.entry_folded(key)
    if entry is not None:
        return entry[1]
    if key == "count":
        return len(value)
    if key == "keys":
        return value.keys()
    if key == "values":
        return value.values()
    return MISSING


def _list_member(value: list[Any], name: str, key: str) -> Any:
    if key in ("count", "length"):
        return len(value)
    return _enumerate_member(value, name)


def _string_member(value: str, name: str, key: str) -> Any:
    if key == "length":
        return len(value)
    if key == "count":
        return 1
    return MISSING


def _xml_member(value: XmlNode, name: str, key: str) -> Any:
    return value.member_folded(key)


_MEMBERS_BY_TYPE: dict[type, Callable[[Any, str, str], Any]] = {
    PSObject: _psobject_member,
    PSDict: _dict_member,
    list: _list_member,
    ArrayList: _list_member,
    str: _string_member,
    XmlNode: _xml_member,
}
"""The common receivers by exact type, each the same branch get_member's chain would take."""


def get_member(value: Any, name: str) -> Any:
    """`$value.Name`; MISSING when the member does not exist."""
    return get_member_folded(value, name, name.casefold())


def get_member_folded(value: Any, name: str, key: str) -> Any:
    """`get_member` with the name already case-folded (`key`), as compiled member expressions have it."""
    if value is None:
        # PowerShell 3+ gives every object, $null included, a Count and Length (0 for $null).
        return 0 if key in ("count", "length") else MISSING
    if key == "psobject":
        return PSObjectView(value)
    by_type = _MEMBERS_BY_TYPE.get(type(value))
    if by_type is not None:
        return by_type(value, name, key)
    # Subclasses of the types above (and every other receiver) go down the chain.
    if isinstance(value, PSObject):
        return _psobject_member(value, name, key)
    if isinstance(value, PSDict):
        return _dict_member(value, name, key)
    if isinstance(value, list):
        return _list_member(value, name, key)
    if isinstance(value, str):
        return _string_member(value, name, key)
    if isinstance(value, bool | int | float):
        return 1 if key == "count" else MISSING
    if isinstance(value, PSEnum):
        if key == "value__":
            return value.value
        return 1 if key == "count" else MISSING
    if isinstance(value, PSDateTime):
        return _datetime_member(value, key)
    if isinstance(value, PSTimeSpan):
        return _timespan_member(value, key)
    if isinstance(value, PSGuid):
        return 1 if key == "count" else MISSING
    if isinstance(value, ErrorRecord):
        try:
            return value.member(name)
        except KeyError:
            return MISSING
    if isinstance(value, XmlNode):
        return value.member(name)
    if isinstance(value, PropertyInfo | PropertyCollection | PSObjectView):
        return value.ps_member(name)
    member = getattr(value, "ps_member", None)
    if callable(member):
        return member(name)
    return MISSING


def _enumerate_member(items: list[Any], name: str) -> Any:
    found: list[Any] = []
    for item in items:
        value = get_member(item, name)
        if value is MISSING:
            continue
        if isinstance(value, list):
            found.extend(value)
        else:
            found.append(value)
    if not found:
        return MISSING
    return found[0] if len(found) == 1 else found


def index(value: Any, key: Any) -> Any:
    """`$value[key]`."""
    if value is None:
        raise PSError(ErrorRecord("Cannot index into a null array.", "NullArray", "InvalidOperation"))
    if isinstance(value, PSObject) and value.base is not None:
        value = value.base
    if isinstance(value, PSDict):
        return value[key]
    if isinstance(value, PropertyCollection):
        return value.lookup(to_string(key))
    if isinstance(value, list):
        if isinstance(key, list):
            return [index(value, k) for k in key]
        position = to_integer(key, INT32, "System.Int32")
        if -len(value) <= position < len(value):
            return value[position]
        return None
    if isinstance(value, str):
        position = to_integer(key, INT32, "System.Int32")
        return value[position] if -len(value) <= position < len(value) else None
    raise NotEmulated(f"indexing a {type_name_of(value)}")


# --- methods ---------------------------------------------------------------------------------------


def _method_missing(value: Any, name: str) -> PSError:
    return PSError(
        ErrorRecord(
            f"Method invocation failed because [{type_name_of(value)}] does not contain a method named '{name}'.",
            "MethodNotFound",
            "InvalidOperation",
            exception_type="System.Management.Automation.RuntimeException",
        )
    )


def _argument_exception(
    method: str, argc: int, message: str, type_name: str = "System.ArgumentException"
) -> PSError:
    return method_exception(
        method, argc, ErrorRecord(message, type_name.rsplit(".", 1)[-1], exception_type=type_name)
    )


def _split(text: str, separators: Any) -> list[str]:
    """.NET Framework's String.Split(char[]): a string argument is used as a set of characters."""
    chars = (
        to_string(separators)
        if not isinstance(separators, list)
        else "".join(to_string(s) for s in separators)
    )
    if not chars:
        return text.split()
    return re.split("[" + re.escape(chars) + "]", text)


def _string_method(value: str, key: str, name: str, args: list[Any]) -> Any:
    argc = len(args)
    if key == "tolowerinvariant" or key == "tolower":
        return value.lower()
    if key == "toupperinvariant" or key == "toupper":
        return value.upper()
    if key == "trim":
        return value.strip(to_string(args[0])) if args else value.strip()
    if key == "trimend":
        return value.rstrip(to_string(args[0])) if args else value.rstrip()
    if key == "trimstart":
        return value.lstrip(to_string(args[0])) if args else value.lstrip()
    if key == "split":
        return _split(value, args[0] if args else "")
    if key == "replace" and argc == 2:
        return value.replace(to_string(args[0]), to_string(args[1]))
    if key == "startswith":
        return value.startswith(to_string(args[0]))
    if key == "endswith":
        return value.endswith(to_string(args[0]))
    if key == "contains":
        return to_string(args[0]) in value
    if key == "indexof":
        return value.find(to_string(args[0]))
    if key == "substring":
        start = to_integer(args[0], INT32, "System.Int32")
        length = to_integer(args[1], INT32, "System.Int32") if argc > 1 else len(value) - start
        if start < 0 or start > len(value) or length < 0 or start + length > len(value):
            raise _argument_exception(
                name,
                argc,
                "startIndex cannot be larger than length of string.\r\nParameter name: startIndex",
                "System.ArgumentOutOfRangeException",
            )
        return value[start : start + length]
    if key == "tostring":
        return value
    if key == "equals":
        return value == to_string(args[0])
    return MISSING


def call_method(value: Any, name: str, args: list[Any], clock: Callable[[], PSDateTime] | None = None) -> Any:
    """`$value.Name(args)`."""
    key = name.casefold()
    argc = len(args)
    if value is None:
        raise PSError(
            ErrorRecord(
                "You cannot call a method on a null-valued expression.",
                "InvokeMethodOnNull",
                "InvalidOperation",
            )
        )
    if key == "gettype":
        return PSObject(
            "System.RuntimeType",
            {"FullName": type_name_of(value), "Name": type_name_of(value).rsplit(".", 1)[-1]},
            string=type_name_of(value),
        )
    if isinstance(value, PSObject):
        method = value.methods.get(key)
        if method is not None:
            return method(*args)
        if value.base is not None:
            return call_method(value.base, name, args, clock)
        if key == "tostring" and argc == 0:
            return "" if value.is_custom else to_string(value)
        raise _method_missing(value, name)
    if isinstance(value, ArrayList):
        if key == "add":
            value.append(args[0] if args else None)
            return len(value) - 1
        if key == "toarray":
            return list(value)
        if key == "clear":
            value.clear()
            return None
        if key == "contains":
            return any(v == args[0] for v in value)
        if key == "remove":
            if args[0] in value:
                value.remove(args[0])
            return None
        if key == "insert":
            value.insert(to_integer(args[0], INT32, "System.Int32"), args[1])
            return None
    if isinstance(value, list):
        if key == "add":
            raise _argument_exception(
                name, argc, "Collection was of a fixed size.", "System.NotSupportedException"
            )
        if key == "tostring":
            return type_name_of(value)
        if key in ("contains", "indexof") and not isinstance(value, ArrayList):
            raise _method_missing(value, name)
        results = [call_method(item, name, args, clock) for item in value]
        return results
    if isinstance(value, PSDict):
        if key == "containskey":
            return args[0] in value
        if key == "add":
            if args[0] in value:
                raise _argument_exception(
                    name,
                    argc,
                    f"Item has already been added. Key in dictionary: '{args[0]}'  Key being added: '{args[0]}'",
                )
            value[args[0]] = args[1]
            return None
        if key == "remove":
            value.remove(args[0])
            return None
        if key == "contains":
            return args[0] in value
        if key == "tostring":
            return value.type_name
        raise _method_missing(value, name)
    if isinstance(value, str):
        result = _string_method(value, key, name, args)
        if result is MISSING:
            raise _method_missing(value, name)
        return result
    if isinstance(value, PSDateTime):
        if key == "touniversaltime":
            return PSDateTime(value.value, "Utc")
        if key == "tolocaltime":
            return PSDateTime(value.value, "Local")
        if key == "tostring":
            return format_datetime(value, to_string(args[0]) if args else None)
        adders = {
            "adddays": 86400,
            "addhours": 3600,
            "addminutes": 60,
            "addseconds": 1,
            "addmilliseconds": 0.001,
        }
        if key in adders:
            from hcibenefit.lab.powershell.convert import to_double

            return PSDateTime(
                value.value + dt.timedelta(seconds=to_double(args[0]) * adders[key]), value.kind
            )
        raise _method_missing(value, name)
    if isinstance(value, PSGuid):
        if key == "tostring":
            return value.text
        raise _method_missing(value, name)
    if isinstance(value, bool | int | float | PSEnum | PSTimeSpan):
        if key == "tostring" and argc == 0:
            return to_string(value)
        raise _method_missing(value, name)
    if isinstance(value, ScriptBlock):
        if key == "tostring":
            return value.text
        raise _method_missing(value, name)
    if isinstance(value, ErrorRecord):
        if key == "tostring":
            return value.text()
        raise _method_missing(value, name)
    call = getattr(value, "ps_call", None)
    if callable(call):
        result = call(name, args)
        if result is not MISSING:
            return result
    if key == "tostring":
        return to_string(value)
    raise _method_missing(value, name)


# --- static members ------------------------------------------------------------------------------------


def _type_key(type_name: str) -> str:
    key = type_name.casefold()
    return key[len("system.") :] if key.startswith("system.") else key


def static_member(runspace: Any, type_name: str, name: str) -> Any:
    """`[Type]::Name` for the few static members our scripts read."""
    type_key, key = _type_key(type_name), name.casefold()
    if type_key == "guid" and key == "empty":
        return EMPTY_GUID
    if type_key == "datetime" and key == "minvalue":
        return MIN_DATETIME
    if type_key == "datetime" and key in ("utcnow", "now"):
        now = runspace.machine.clock.now_datetime()
        return PSDateTime(now, "Utc" if key == "utcnow" else "Local")
    if type_key == "net.webrequest" and key == "defaultwebproxy":
        return (
            None
            if runspace.default_web_proxy is None
            else PSObject(
                "System.Net.WebRequest+WebProxyWrapper", {}, string="System.Net.WebRequest+WebProxyWrapper"
            )
        )
    if type_key == "environment" and key == "machinename":
        return runspace.computer_name
    if type_key in ("int", "int32") and key == "maxvalue":
        return INT32[1]
    if type_key == "text.encoding" and key == "utf8":
        # System.Text.Encoding.UTF8 (arc-run.ps1): byte arrays are Python bytes here.
        return PSObject(
            "System.Text.UTF8Encoding",
            {},
            methods={
                "GetString": lambda data: bytes(data).decode("utf-8", errors="replace"),
                "GetBytes": lambda text: to_string(text).encode("utf-8"),
            },
            string="System.Text.UTF8Encoding",
        )
    raise NotEmulated(f"[{type_name}]::{name}")


def set_static_member(runspace: Any, type_name: str, name: str, value: Any) -> None:
    type_key, key = _type_key(type_name), name.casefold()
    if type_key == "net.webrequest" and key == "defaultwebproxy":
        runspace.default_web_proxy = None if value is None else "custom"
        return
    raise NotEmulated(f"setting [{type_name}]::{name}")


def static_call(interpreter: Any, type_name: str, name: str, args: list[Any]) -> Any:
    """`[Type]::Method(args)` for the few static methods our scripts call."""
    from hcibenefit.lab.powershell.runspace import stopwatch

    type_key, key = _type_key(type_name), name.casefold()
    runspace = interpreter.runspace
    if type_key in ("diagnostics.stopwatch",) and key == "startnew":
        return stopwatch(runspace.machine.clock.monotonic)
    if type_key in ("scriptblock", "management.automation.scriptblock") and key == "create":
        from hcibenefit.lab.powershell import syntax

        text = to_string(args[0]) if args else ""
        try:
            return ScriptBlock(syntax.parse(text), text)
        except PSError as exc:
            raise method_exception(name, len(args), exc.record) from None
    if type_key == "management.automation.wildcardpattern" and key == "escape":
        return escape_wildcards(to_string(args[0]))
    if type_key == "guid" and key == "newguid":
        import uuid

        return PSGuid(uuid.uuid4())
    if type_key == "string" and key == "isnullorempty":
        return args[0] is None or to_string(args[0]) == ""
    if type_key == "string" and key == "join":
        items = args[1] if isinstance(args[1], list) else args[1:]
        return to_string(args[0]).join(to_string(i) for i in items)
    if type_key == "convert" and key == "frombase64string":
        import base64
        import binascii

        try:
            return base64.b64decode(to_string(args[0]), validate=True)
        except (binascii.Error, ValueError) as exc:
            inner = ErrorRecord(str(exc), "FormatException", exception_type="System.FormatException")
            raise method_exception(name, len(args), inner) from None
    if type_key == "convert" and key == "tobase64string":
        import base64

        return base64.b64encode(bytes(args[0])).decode("ascii")
    if type_key == "math" and key in ("min", "max") and len(args) == 2:
        return (min if key == "min" else max)(args[0], args[1])
    if type_key == "management.automation.powershell" and key == "create":
        from hcibenefit.lab.powershell.cmdlets.hosting import powershell_instance

        return powershell_instance(interpreter)
    if type_key == "guid" and key == "parse":
        from hcibenefit.lab.powershell.convert import cast

        try:
            return cast(args[0], "guid")
        except PSError:
            # Guid.Parse throws FormatException; from script it arrives as MethodInvocationException.
            raise _argument_exception(
                "Parse",
                len(args),
                "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
                "System.FormatException",
            ) from None
    raise NotEmulated(f"[{type_name}]::{name}()")


__all__ = [
    "PSObjectView",
    "PropertyCollection",
    "PropertyInfo",
    "SecureString",
    "call_method",
    "get_member",
    "index",
    "set_static_member",
    "static_call",
    "static_member",
]
