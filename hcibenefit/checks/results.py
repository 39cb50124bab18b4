"""Results: what one check says about one target, PASS, FAIL, ERROR or N/A, under an id that stays the same
from run to run, so two runs can be compared line by line.

A Finding (checks.model) is a failure a check reports; a Result is the verdict for every check and every
target the check is about, including the ones that passed, the ones it does not apply to and the ones it
could not assess (with why).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hcibenefit.checks.model import CheckMeta, Severity

NO_PART = "-"
"""The id part of a target level that does not apply (the node of a cluster result, the VM of a node's)."""


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    """Could not be assessed; the message says why."""
    NA = "N/A"

    @property
    def rank(self) -> int:
        """Worst first: FAIL, ERROR, N/A, PASS."""
        return {"FAIL": 0, "ERROR": 1, "N/A": 2, "PASS": 3}[self.value]


def id_part(name: str | None) -> str:
    """One level of a result id: lower case (Windows names are not case-sensitive), '/' escaped."""
    if not name:
        return NO_PART
    return name.lower().replace("%", "%25").replace("/", "%2F")


@dataclass(frozen=True, slots=True)
class Target:
    cluster: str
    node: str | None = None
    vm: str | None = None
    key: str = field(init=False, repr=False, compare=False)
    """The target's part of a result id. Computed once: a VM's ~14 results share one Target, and every
    format reads each result's id."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", "/".join(id_part(p) for p in (self.cluster, self.node, self.vm)))

    @property
    def label(self) -> str:
        """For people: the most specific name, with where it is."""
        if self.vm:
            return f"{self.vm} ({self.node})" if self.node else self.vm
        return self.node or self.cluster


@dataclass(frozen=True)
class Waiver:
    """The waiver that matched a result, as the report shows it (see sweep.waivers for the file)."""

    check: str
    target: str
    reason: str
    owner: str | None
    expires: dt.datetime | None
    expired: bool
    where: str
    """file:line of the entry, so a reader finds it."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "target": self.target,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat() if self.expires else None,
            "expired": self.expired,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class Result:
    check: CheckMeta
    target: Target
    status: Status
    message: str
    remediation: str | None = None
    """The exact fix for a FAIL; for an ERROR, what would make the target assessable."""
    waiver: Waiver | None = None
    """The waiver that matches this result (an expired one is kept to say so, and does not waive)."""

    @property
    def id(self) -> str:
        return f"{self.check.id}/{self.target.key}"

    @property
    def severity(self) -> Severity:
        return self.check.severity

    @property
    def waived(self) -> bool:
        return self.waiver is not None and not self.waiver.expired and self.status in WAIVABLE

    @property
    def counts_as_failure(self) -> bool:
        return self.status is Status.FAIL and not self.waived

    @property
    def counts_as_unassessed(self) -> bool:
        return self.status is Status.ERROR and not self.waived

    def with_waiver(self, waiver: Waiver | None) -> Result:
        return dataclasses.replace(self, waiver=waiver)

    def to_dict(self) -> dict[str, Any]:
        """The record every format shares (JSON findings, CSV rows, history): the fields of
        `_RECORD_FIELDS`, in its order (spelled out: this runs once per result per format)."""
        waiver = self.waiver
        check = self.check
        target = self.target
        return {
            "id": f"{check.id}/{target.key}",
            "check": check.id,
            "title": check.title,
            "scope": check.scope,
            "status": self.status.value,
            "severity": check.severity.label,
            "cluster": target.cluster,
            "node": target.node,
            "vm": target.vm,
            "message": self.message,
            "remediation": self.remediation,
            "waived": self.waived,
            "waiver_reason": waiver.reason if waiver else None,
            "waiver_owner": waiver.owner if waiver else None,
            "waiver_expires": waiver.expires.isoformat() if waiver and waiver.expires else None,
            "waiver_expired": waiver.expired if waiver else None,
            "doc_url": check.doc_url or None,
        }

    def record(self) -> ResultRecord:
        """The same record, read from this result when asked instead of held as a dict."""
        return ResultRecord(self)


def _waiver_expires(result: Result) -> str | None:
    waiver = result.waiver
    return waiver.expires.isoformat() if waiver and waiver.expires else None


_RECORD_FIELDS: dict[str, Callable[[Result], Any]] = {
    "id": lambda r: r.id,
    "check": lambda r: r.check.id,
    "title": lambda r: r.check.title,
    "scope": lambda r: r.check.scope,
    "status": lambda r: r.status.value,
    "severity": lambda r: r.check.severity.label,
    "cluster": lambda r: r.target.cluster,
    "node": lambda r: r.target.node,
    "vm": lambda r: r.target.vm,
    "message": lambda r: r.message,
    "remediation": lambda r: r.remediation,
    "waived": lambda r: r.waived,
    "waiver_reason": lambda r: r.waiver.reason if r.waiver else None,
    "waiver_owner": lambda r: r.waiver.owner if r.waiver else None,
    "waiver_expires": _waiver_expires,
    "waiver_expired": lambda r: r.waiver.expired if r.waiver else None,
    "doc_url": lambda r: r.check.doc_url or None,
}
"""A result record's fields, in order, and how each is read from the result."""


class ResultRecord(Mapping[str, Any]):
    """A result's record (`Result.to_dict`) as a read-only mapping that reads each field from the result
    when asked.

    A 10,000-VM sweep has about 140,000 results; as dicts their records were some 65 MB (a dict of 17
    entries is 464 bytes) on top of the results themselves. Everything in a record is in the result or
    its check, so this holds one reference. `dict(record)`, `record.to_dict()` and comparing with a dict
    give exactly the dict, in the same key order; JSON encoders take it through `plain`.
    """

    __slots__ = ("result",)

    def __init__(self, result: Result) -> None:
        self.result = result

    def __getitem__(self, key: str) -> Any:
        return _RECORD_FIELDS[key](self.result)

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping.get goes through __getitem__ and a KeyError; ordering and counting call this per result.
        getter = _RECORD_FIELDS.get(key)
        return default if getter is None else getter(self.result)

    def __iter__(self) -> Iterator[str]:
        return iter(_RECORD_FIELDS)

    def __len__(self) -> int:
        return len(_RECORD_FIELDS)

    def __repr__(self) -> str:
        return f"ResultRecord({self.to_dict()!r})"

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict()


def plain(value: Any) -> dict[str, Any]:
    """A record as a dict (a dict as it is), and `default=` for a JSON encoder given records: a
    ResultRecord (or any other mapping) encodes as its dict."""
    if type(value) is dict:
        return value
    if isinstance(value, ResultRecord):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


WAIVABLE = frozenset({Status.FAIL, Status.ERROR})
"""A waiver silences failures and targets that cannot be assessed (a node being rebuilt); PASS and N/A
need no silencing."""


def sort_key(result: Result) -> tuple[Any, ...]:
    """Worst first: by cluster, unwaived before waived, status, severity (high first), then by id."""
    return (
        result.target.cluster.lower(),
        result.waived,
        result.status.rank,
        -int(result.severity),
        result.id,
    )
