"""Checks of what a guest itself says: Windows activated, its LicenseImdsIntegration task healthy, IMDS
reachable from inside, and the attested document it was served valid for a while yet.

Pure: the sweep's collector asked the guest (guest-probe) and verified the document; these functions only
read what came back. They run for guests that answered; a guest that could not be asked gets an ERROR
for each of them from checks.evaluate, with the reason, and a VM that does not need Azure Benefits (or is
not running) gets N/A.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from hcibenefit.checks.guest_checks import (
    HOST_CAUSES,
    DocumentCheck,
    GuestContext,
    GuestVerdict,
    transports,
)
from hcibenefit.checks.model import CheckMeta, Finding, Severity
from hcibenefit.checks.registry import guest_check
from hcibenefit.facts.guest import HOST_IMDS_ADDRESS, GuestProbe, license_status_name
from hcibenefit.facts.host import HostFacts, VMFacts

DOC_VERIFICATION = "https://learn.microsoft.com/azure/azure-local/deploy/azure-verification"
DOC_IMDS = "https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#attested-data"
DOCUMENT_MIN_LIFETIME = dt.timedelta(hours=1)
"""ASSUMPTION: IMDS issues documents for six hours (the IMDS documentation's samples); one that reaches the
guest with less than an hour left is served stale, and the next activation attempt will fail."""


@dataclass(frozen=True)
class GuestCheckContext:
    """One guest that answered the probe, with its owner node's view of it."""

    guest: GuestContext
    vm: VMFacts
    host: HostFacts
    probe: GuestProbe
    document: DocumentCheck | None
    """None when no document was fetched (V2 guests get theirs over VMBus)."""
    document_expires: dt.datetime | None
    verdict: GuestVerdict
    """The one-word guest verdict (guest check's), whose reason and fix the findings reuse."""
    now: dt.datetime

    @property
    def uses_v2(self) -> bool:
        return "V2" in transports(self.vm, self.host)

    def finding(self, meta: CheckMeta, detail: str, **values: str) -> Finding:
        return Finding(
            meta,
            self.guest.cluster,
            self.vm.name,
            detail,
            {"vm": self.vm.name, "node": self.host.node, "fix": self.verdict.fix or "", **values},
        )


ACTIVATED = CheckMeta(
    "guest.activated",
    "Windows is activated in the guest",
    Severity.HIGH,
    "guest",
    "{fix}",
    doc_url=DOC_VERIFICATION,
)
TASK = CheckMeta(
    "guest.license-task",
    "LicenseImdsIntegration task present, enabled and last run successful",
    Severity.MEDIUM,
    "guest",
    "{task_fix}",
    doc_url=DOC_VERIFICATION,
)
IMDS_REACHABLE = CheckMeta(
    "guest.imds-reachable",
    "IMDS answers at 169.254.169.253 inside the guest",
    Severity.HIGH,
    "guest",
    "{fix}",
    doc_url=DOC_IMDS,
)
DOCUMENT_VALID = CheckMeta(
    "guest.attested-document",
    "The attested document verifies and is not about to expire",
    Severity.HIGH,
    "guest",
    "{fix}",
    doc_url=DOC_IMDS,
)


@guest_check(ACTIVATED, needs=("license",))
def activated(meta: CheckMeta, ctx: GuestCheckContext) -> Iterator[Finding]:
    if ctx.probe.licensed is False:
        product = ctx.probe.license
        if product is None:
            detail = "no Windows product with a key is installed"
        else:
            detail = f"LicenseStatus {product.license_status} ({license_status_name(product.license_status)})"
        why = ctx.verdict.detail
        # The verdict's detail starts with the same LicenseStatus text; say it once.
        if why.startswith("LicenseStatus") and ": " in why:
            why = why.split(": ", 1)[1]
        elif why.startswith("LicenseStatus") or ctx.verdict.reason == "no-product-key":
            why = ""
        if ctx.verdict.reason in HOST_CAUSES:
            why = ""  # the host-side cause is a result of its own (vm.* or node.*), with the detail
        yield ctx.finding(meta, f"{detail}; {ctx.verdict.title}" + (f" ({why})" if why else ""))


@guest_check(TASK, needs=("task",))
def license_task(meta: CheckMeta, ctx: GuestCheckContext) -> Iterator[Finding]:
    task = ctx.probe.task
    vm = ctx.vm.name
    if not task.present:
        yield ctx.finding(
            meta,
            "no \\Microsoft\\Windows\\Clip\\LicenseImdsIntegration task",
            task_fix=f"install the latest cumulative update in {vm}; the task ships with it",
        )
    elif task.state == "Disabled":
        yield ctx.finding(
            meta, "the task is Disabled", task_fix=f"hcibenefit guest kick --vm {vm} --enable-task"
        )
    elif task.never_ran:
        if ctx.probe.licensed is not True:
            yield ctx.finding(
                meta, f"the task ({task.state}) has never run", task_fix=f"hcibenefit guest kick --vm {vm}"
            )
    elif task.last_task_result not in (0, None):
        latest = next((e for e in ctx.probe.spp_events if e.id == 8198), None)
        extra = f"; Security-SPP {latest.id}: {latest.message}" if latest else ""
        yield ctx.finding(
            meta,
            f"last run {task.last_run_time:%Y-%m-%d %H:%M} UTC ended with {task.last_result_hex}{extra}"
            if task.last_run_time
            else f"last run ended with {task.last_result_hex}{extra}",
            task_fix=f"hcibenefit guest kick --vm {vm}",
        )


def _v1_only(ctx: GuestCheckContext) -> str | None:
    if ctx.uses_v2:
        return (
            "the guest uses V2 (VMBus): its document does not travel over HTTP, so there is nothing to reach"
        )
    return None


@guest_check(IMDS_REACHABLE, applies=_v1_only)
def imds_reachable(meta: CheckMeta, ctx: GuestCheckContext) -> Iterator[Finding]:
    attempt = ctx.probe.attempt(HOST_IMDS_ADDRESS)
    if attempt is None:
        yield ctx.finding(meta, f"the probe did not try {HOST_IMDS_ADDRESS}")
    elif not attempt.ok:
        status = f"HTTP {attempt.status_code}: " if attempt.status_code else ""
        detail = f"{HOST_IMDS_ADDRESS}: {status}{attempt.error or 'no answer'}"
        if not ctx.probe.imds_addresses:
            detail += "; the guest has no 169.254.x.x address"
        yield ctx.finding(meta, detail)


def _has_document(ctx: GuestCheckContext) -> str | None:
    if ctx.document is None:
        if ctx.uses_v2:
            return "V2 guests get their document over VMBus, out of the probe's reach"
        return "IMDS served no document to fetch (see guest.imds-reachable)"
    return None


@guest_check(DOCUMENT_VALID, applies=_has_document)
def attested_document(meta: CheckMeta, ctx: GuestCheckContext) -> Iterator[Finding]:
    document = ctx.document
    assert document is not None
    if not document.ok:
        yield ctx.finding(meta, f"{document.failure_kind}: {document.reason}")
        return
    expires = ctx.document_expires
    if expires is not None and expires - ctx.now < DOCUMENT_MIN_LIFETIME:
        left = max(0, int((expires - ctx.now).total_seconds() // 60))
        yield ctx.finding(
            meta,
            f"the document expires at {expires:%Y-%m-%d %H:%M} UTC, {left} minute(s) after it was fetched",
            fix=f"hcibenefit host sync --cluster {ctx.guest.cluster}; then hcibenefit guest kick --vm {ctx.vm.name}",
        )
