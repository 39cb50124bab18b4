"""Findings: what a check says about one target, with a stable id, a severity and the fix."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `--fail-on` parsing imports this module before any request
    from hcibenefit.facts.host import HostFacts, VMFacts
    from hcibenefit.inventory.model import Policy


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        # One string per severity, not a new one per call: every result record carries its label.
        return _SEVERITY_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            from hcibenefit.errors import UsageError

            raise UsageError(
                f"unknown severity {text!r}", hint="choose one of: " + ", ".join(s.label for s in cls)
            ) from None


_SEVERITY_LABELS = tuple(s.name.lower() for s in Severity)


@dataclass(frozen=True)
class CheckMeta:
    id: str
    title: str
    severity: Severity
    scope: str
    """Which targets it judges: cluster, node, vm, guest (inside the VM) or azure."""
    remediation: str
    """A template; {node}, {vm} and {cluster} are filled in for the finding."""
    verdict: str | None = None
    """For VM checks: the one-word status verdict a finding implies (missing, broken, unknown)."""
    doc_url: str = ""
    """Where the failure mode and its fix are documented."""


@dataclass(frozen=True)
class Finding:
    check: CheckMeta
    cluster: str
    target: str
    detail: str
    values: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        # Deterministic, so runs can be compared: check id, cluster, target.
        return f"{self.check.id}:{self.cluster}/{self.target}".lower()

    @property
    def severity(self) -> Severity:
        return self.check.severity

    @property
    def remediation(self) -> str:
        return self.check.remediation.format(**{"cluster": self.cluster, **self.values})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check": self.check.id,
            "severity": self.severity.label,
            "cluster": self.cluster,
            "target": self.target,
            "title": self.check.title,
            "detail": self.detail,
            "remediation": self.remediation,
        }


@dataclass(frozen=True)
class ClusterView:
    """What checks see of one cluster: the facts of every node that answered, and which did not."""

    name: str
    hosts: tuple[HostFacts, ...]
    unreachable: Mapping[str, str]
    """node name → why it could not be assessed."""
    now: dt.datetime
    expiry_warning_days: int
    policy: Policy | None = None
    """Which VMs need Azure Benefits, for checks that look at a cluster's guests from a node."""

    def all_vms(self) -> tuple[tuple[VMFacts, HostFacts], ...]:
        return tuple((vm, host) for host in self.hosts for vm in host.vms)
