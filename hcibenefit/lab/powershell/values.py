"""The objects scripts see: Windows PowerShell 5.1's runtime values, modelled in Python.

Mapping (what the evaluator and the cmdlet emulations use):
- `$null` is None; [bool], [int]/[long], [double], [string] are bool, int, float, str;
- an `object[]` is a Python list; `System.Collections.ArrayList` is `ArrayList` (a list subclass);
- `@{}` and `[ordered]@{}` are `PSDict` (case-insensitive keys, insertion order kept);
- a .NET enum value is `PSEnum` ([string] gives its name, ConvertTo-Json its number);
- DateTime, TimeSpan and Guid are `PSDateTime`, `PSTimeSpan` and `PSGuid`;
- everything else a cmdlet returns (a VirtualMachine, a CIM instance, a PSCustomObject) is a `PSObject`
  with named properties, optional methods and, for wrapped values, a base object.

Sources: powershell51.md sections 2-4 (string conversion, member access) for
how these behave; the conversions themselves live in `convert`.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

MISSING: Any = object()
"""Returned by member look-ups when the member does not exist (PowerShell then gives $null)."""

TICKS_PER_SECOND = 10_000_000
_EPOCH = dt.datetime(1, 1, 1)


class ArrayList(list[Any]):
    """System.Collections.ArrayList: Add returns the index (which is output unless discarded)."""

    type_name = "System.Collections.ArrayList"


def is_array(value: Any) -> bool:
    """What PowerShell enumerates in a pipeline: arrays and lists, never strings or dictionaries."""
    return isinstance(value, list)


class PSDict:
    """A Hashtable or an [ordered] dictionary: keys compared case-insensitively, insertion order kept.

    5.1's Hashtable enumerates in hash-bucket order; the lab keeps insertion order for both kinds
    (Assumption: nothing we ship depends on a Hashtable's order; the scripts serialise [ordered] only).
    """

    __slots__ = ("_items", "ordered")

    def __init__(self, items: Iterable[tuple[Any, Any]] = (), *, ordered: bool = False) -> None:
        self.ordered = ordered
        self._items: dict[Any, tuple[Any, Any]] = {}
        for key, value in items:
            self[key] = value

    @classmethod
    def of_folded(cls, items: dict[Any, tuple[Any, Any]], *, ordered: bool = False) -> PSDict:
        """A dictionary from {folded key: (key, value)}, taken as it is (compiled hash literals build it)."""
        table = cls(ordered=ordered)
        table._items = items
        return table

    @property
    def type_name(self) -> str:
        return (
            "System.Collections.Specialized.OrderedDictionary"
            if self.ordered
            else "System.Collections.Hashtable"
        )

    @staticmethod
    def _fold(key: Any) -> Any:
        return key.casefold() if isinstance(key, str) else key

    def __setitem__(self, key: Any, value: Any) -> None:
        folded = self._fold(key)
        existing = self._items.get(folded)
        self._items[folded] = (existing[0] if existing else key, value)

    def __getitem__(self, key: Any) -> Any:
        found = self._items.get(self._fold(key))
        return None if found is None else found[1]

    def __contains__(self, key: Any) -> bool:
        return self._fold(key) in self._items

    def entry_folded(self, key: Any) -> tuple[Any, Any] | None:
        """(original key, value) for a key already case-folded, or None."""
        return self._items.get(key)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> Iterator[tuple[Any, Any]]:
        yield from self._items.values()

    def keys(self) -> list[Any]:
        return [k for k, _ in self._items.values()]

    def values(self) -> list[Any]:
        return [v for _, v in self._items.values()]

    def remove(self, key: Any) -> None:
        self._items.pop(self._fold(key), None)


class PSEnum:
    """A .NET enum value: `[string]` gives the name, `[int]` and 5.1's ConvertTo-Json the number."""

    __slots__ = ("name", "type_name", "value")

    def __init__(self, type_name: str, name: str, value: int) -> None:
        self.type_name = type_name
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"[{self.type_name}]::{self.name}"


class EnumType:
    """The members of one enum type, to make values by name."""

    def __init__(self, type_name: str, members: Mapping[str, int]) -> None:
        self.type_name = type_name
        self.members = dict(members)
        self._by_name = {m.casefold(): (m, v) for m, v in self.members.items()}

    def __call__(self, name: str) -> PSEnum:
        found = self._by_name.get(name.casefold())
        if found is None:
            raise KeyError(f"{name!r} is not a member of {self.type_name}")
        return PSEnum(self.type_name, found[0], found[1])

    def from_value(self, value: int) -> PSEnum:
        for member, number in self.members.items():
            if number == value:
                return PSEnum(self.type_name, member, number)
        return PSEnum(self.type_name, str(value), value)


class PSDateTime:
    """System.DateTime with its Kind. The lab's local time zone is UTC, so Local and Utc agree on ticks."""

    __slots__ = ("kind", "value")

    def __init__(self, value: dt.datetime, kind: str = "Local") -> None:
        self.value = (
            value.replace(tzinfo=None)
            if value.tzinfo is None
            else value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        )
        self.kind = kind  # Utc, Local, Unspecified

    @property
    def ticks(self) -> int:
        delta = self.value - _EPOCH
        return (delta.days * 86400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10

    def aware(self) -> dt.datetime:
        return self.value.replace(tzinfo=dt.timezone.utc)

    def __repr__(self) -> str:
        return f"PSDateTime({self.value.isoformat()}, {self.kind})"


MIN_DATETIME = PSDateTime(dt.datetime(1, 1, 1), "Unspecified")


class PSTimeSpan:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class PSGuid:
    """System.Guid: shown in lower case ("D" format), compared case-insensitively with strings."""

    __slots__ = ("text",)

    def __init__(self, value: str | uuid.UUID) -> None:
        self.text = _guid_text(value) if isinstance(value, str) else str(uuid.UUID(str(value)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PSGuid) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"PSGuid({self.text})"


@functools.lru_cache(maxsize=65536)
def _guid_text(text: str) -> str:
    """A GUID's text in the "D" format (raises ValueError as uuid.UUID does); cmdlets make one per VM
    object, and the fleet's ids are few."""
    return str(uuid.UUID(text))


EMPTY_GUID = PSGuid("00000000-0000-0000-0000-000000000000")


Method = Callable[..., Any]


class Computed:
    """A property whose value is computed when read (a Stopwatch's Elapsed)."""

    __slots__ = ("getter",)

    def __init__(self, getter: Callable[[], Any]) -> None:
        self.getter = getter


class PSObject:
    """An object with named properties: a PSCustomObject, a CIM instance, a Hyper-V object, a wrapper.

    `base` set: a wrapped value (a string that came back from a remote runspace with PSComputerName);
    `[string]` then gives the base. Property names are case-insensitive; order is kept.
    """

    __slots__ = ("_props", "base", "methods", "string", "type_names")

    def __init__(
        self,
        type_name: str | Iterable[str] = "System.Management.Automation.PSCustomObject",
        props: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        *,
        base: Any = None,
        methods: Mapping[str, Method] | None = None,
        string: str | None = None,
    ) -> None:
        self.type_names = [type_name] if isinstance(type_name, str) else list(type_name)
        # Cmdlets build thousands of these per script: a dict is tested by exact type before the
        # (slow) Mapping ABC check.
        pairs = props.items() if type(props) is dict or isinstance(props, Mapping) else props
        self._props: dict[str, tuple[str, Any]] = {name.casefold(): (name, value) for name, value in pairs}
        self.base = base
        self.methods = {k.casefold(): v for k, v in methods.items()} if methods else {}
        self.string = string
        """What ToString()/[string] gives for a .NET object (None: the type name, or @{...} for PSCustomObject)."""

    @property
    def type_name(self) -> str:
        return self.type_names[0]

    @property
    def is_custom(self) -> bool:
        return self.type_name == "System.Management.Automation.PSCustomObject" and self.base is None

    def get(self, name: str) -> Any:
        return self.get_folded(name.casefold())

    def get_folded(self, key: str) -> Any:
        """`get` for a name already case-folded."""
        found = self._props.get(key)
        if found is None:
            return MISSING
        value = found[1]
        return value.getter() if isinstance(value, Computed) else value

    def has(self, name: str) -> bool:
        return name.casefold() in self._props

    def set(self, name: str, value: Any) -> None:
        existing = self._props.get(name.casefold())
        self._props[name.casefold()] = (existing[0] if existing else name, value)

    def properties(self) -> list[tuple[str, Any]]:
        return [(k, v.getter() if isinstance(v, Computed) else v) for k, v in self._props.values()]

    def __repr__(self) -> str:
        return f"PSObject({self.type_name}, {dict(self.properties())!r})"


class ScriptBlock:
    """A script block: its parsed body and its text (what Invoke-Command sends to the other side)."""

    __slots__ = ("block", "text")

    def __init__(self, block: Any, text: str) -> None:
        self.block = block
        self.text = text


class SecureString:
    """A SecureString as scripts see it: opaque; the lab keeps the plain text only to check it."""

    __slots__ = ("_plain",)
    type_name = "System.Security.SecureString"

    def __init__(self, plain: str | None) -> None:
        self._plain = plain

    def reveal(self) -> str | None:
        return self._plain


def credential(username: str, password: str | None) -> PSObject:
    return PSObject(
        "System.Management.Automation.PSCredential",
        {"UserName": username, "Password": SecureString(password)},
        string="System.Management.Automation.PSCredential",
    )


def ticks_to_datetime(ticks: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ticks // 10)


class PSVersion:
    """System.Version: compared part by part, `[string]` gives "2.3.1"."""

    __slots__ = ("version_tuple",)
    type_name = "System.Version"

    def __init__(self, text: str) -> None:
        self.version_tuple = tuple(int(p) for p in text.split(".") if p.isdigit())

    def ps_string(self) -> str:
        return ".".join(str(p) for p in self.version_tuple)

    def ps_member(self, name: str) -> Any:
        parts = {"major": 0, "minor": 1, "build": 2, "revision": 3}
        index = parts.get(name.casefold())
        if index is None:
            return MISSING
        return self.version_tuple[index] if index < len(self.version_tuple) else -1
