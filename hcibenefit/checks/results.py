"""Results: what one check says about one target, PASS, FAIL, ERROR or N/A, under an id that stays the same
from run to run, so two runs can be compared line by line.

A Finding (checks.model) is a failure a check reports; a Result is the verdict for every check and every
target the check is about, including the ones that passed, the ones it does not apply to and the ones it
could not assess (with why).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Target:
    cluster: str
    node: str | None = None
    vm: str | None = None

    @property
    def key(self) -> str:
        return "/".join(id_part(p) for p in (self.cluster, self.node, self.vm))

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


@dataclass(frozen=True)
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
        """The record every format shares (JSON findings, CSV rows, history)."""
        return {
            "id": self.id,
            "check": self.check.id,
            "title": self.check.title,
            "scope": self.check.scope,
            "status": self.status.value,
            "severity": self.severity.label,
            "cluster": self.target.cluster,
            "node": self.target.node,
            "vm": self.target.vm,
            "message": self.message,
            "remediation": self.remediation,
            "waived": self.waived,
            "waiver_reason": self.waiver.reason if self.waiver else None,
            "waiver_owner": self.waiver.owner if self.waiver else None,
            "waiver_expires": self.waiver.expires.isoformat()
            if self.waiver and self.waiver.expires
            else None,
            "waiver_expired": self.waiver.expired if self.waiver else None,
            "doc_url": self.check.doc_url or None,
        }


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
