"""`hcibenefit guest check`: per VM, what the guest itself says about its activation."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hcibenefit.checks.guest_checks import (
    FINDING_VERDICTS,
    INCOMPLETE_VERDICTS,
    DocumentCheck,
    GuestVerdict,
    NotProbed,
    assess_failure,
    assess_not_probed,
    assess_probe,
    transports,
)
from hcibenefit.facts.guest import (
    EventFacts,
    GuestProbe,
    parse_probe_body,
)
from hcibenefit.facts.host import VMFacts
from hcibenefit.inventory import CredentialResolver, Inventory
from hcibenefit.remoting.catalog import GUEST_PROBE, GUEST_PROBE_BODY
from hcibenefit.remoting.runner import DEFAULT_WORKERS, SessionHolder
from hcibenefit.remoting.session import Cancellation
from hcibenefit.report import Column, DetailItem, Details, Report, Table, columns

if TYPE_CHECKING:
    from hcibenefit.attestation import TrustStore, VerificationReport

from hcibenefit.operations.guests.targets import (
    IMDS_TIMEOUT_S,
    PROBE_TIMEOUT_S,
    Answer,
    Batch,
    GuestTarget,
    locate,
    new_nonce,
    plan_batches,
    run_batch,
    run_batches,
)
from hcibenefit.operations.selection import Selection

log = logging.getLogger(__name__)

# --- the check --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuestRecord:
    target: GuestTarget
    verdict: GuestVerdict
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "vm": self.target.name,
            "cluster": self.target.cluster_name,
            "node": self.target.node.name if self.target.node else None,
            "access": self.target.access_mode,
            "verdict": v.verdict,
            "reason": v.reason,
            "title": v.title,
            "detail": v.detail,
            "fix": v.fix,
            "problems": list(v.problems),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class GuestCheckResult:
    records: tuple[GuestRecord, ...]
    unreachable_nodes: Mapping[str, str] = field(default_factory=dict)

    @property
    def findings(self) -> bool:
        return any(r.verdict.verdict in FINDING_VERDICTS for r in self.records)

    @property
    def incomplete(self) -> bool:
        return any(r.verdict.verdict in INCOMPLETE_VERDICTS for r in self.records)


def trust_for(inventory: Inventory) -> TrustStore:
    """certifi, the system store and the inventory's CA files (which carry the intermediates)."""
    from hcibenefit.attestation import TrustStore

    return TrustStore.default(inventory.attestation.ca_files)


def document_check(report: VerificationReport) -> DocumentCheck:
    failing = next((c for c in report.checks if c.ok is False), None)
    return DocumentCheck(
        report.ok,
        report.failure_kind,
        failing.reason if failing else "all checks passed",
        report.missing_issuer_urls[0] if report.missing_issuer_urls else None,
    )


def _verify(
    probe: GuestProbe, inventory: Inventory, trust: TrustStore, nonce: str, at: dt.datetime
) -> VerificationReport | None:
    if probe.document_raw is None:
        return None
    from hcibenefit.attestation import verify_document

    return verify_document(
        probe.document_raw, nonce=nonce, at=at, trust=trust, san_pattern=inventory.attestation.san_pattern
    )


def probe_targets(
    inventory: Inventory,
    resolver: CredentialResolver,
    targets: Sequence[GuestTarget],
    *,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
    trust: TrustStore | None = None,
    holder: SessionHolder | None = None,
) -> list[GuestRecord]:
    """One probe call per owner node (or WinRM guest), then a verdict per target.

    With `holder` (from `locate`), an owner node's probe runs on the session its host facts came through.
    """
    batches = plan_batches(targets, resolver, azure=inventory.azure)
    trust = trust if trust is not None else trust_for(inventory)
    # One fresh nonce per call; a VM belongs to exactly one batch, so its nonce is its batch's.
    nonce_of = {t.name.casefold(): nonce for b in batches for nonce in [new_nonce()] for t in b.targets}

    def work(batch: Batch, ev: threading.Event) -> dict[str, Answer]:
        return run_batch(
            batch,
            ev,
            host_script=GUEST_PROBE,
            body_script=GUEST_PROBE_BODY,
            parameters={"Nonce": nonce_of[batch.targets[0].name.casefold()], "TimeoutSec": IMDS_TIMEOUT_S},
            body_text_parameter="ProbeScript",
            parse=parse_probe_body,
            timeout_s=PROBE_TIMEOUT_S,
            holder=holder,
        )

    answers = run_batches(batches, work, workers=workers, cancel=cancel)
    at = (now or (lambda: dt.datetime.now(dt.timezone.utc)))()
    records = []
    for target in targets:
        key = target.name.casefold()
        answer: Answer = target.not_probed or answers.get(key) or NotProbed("no-answer", "no answer")
        records.append(_record(target, answer, inventory, trust, nonce_of.get(key), at))
    return records


def _record(
    target: GuestTarget,
    answer: Answer,
    inventory: Inventory,
    trust: TrustStore,
    nonce: str | None,
    at: dt.datetime,
) -> GuestRecord:
    try:
        return _judge(target, answer, inventory, trust, nonce, at)
    except Exception as exc:
        # Each VM is judged in isolation: whatever one guest sent, a bug it triggers in our parsing is that
        # VM's verdict (with the reason), never the end of the run for every other VM.
        log.debug("%s: judging the guest's answer failed", target.name, exc_info=True)
        detail = f"its answer could not be judged ({type(exc).__name__}: {str(exc)[:200]})"
        return GuestRecord(
            target,
            assess_not_probed(target.context(), NotProbed("probe-failed", detail)),
            _host_evidence(target),
        )


def _judge(
    target: GuestTarget,
    answer: Answer,
    inventory: Inventory,
    trust: TrustStore,
    nonce: str | None,
    at: dt.datetime,
) -> GuestRecord:
    ctx = target.context()
    evidence = _host_evidence(target)
    if isinstance(answer, GuestProbe):
        report = _verify(answer, inventory, trust, nonce or "", at)
        verdict = assess_probe(ctx, answer, document_check(report) if report else None)
        evidence.update(_probe_evidence(answer, report, nonce, target.vm))
    elif isinstance(answer, NotProbed):
        verdict = assess_not_probed(ctx, answer)
    elif isinstance(answer, tuple):
        verdict = assess_failure(ctx, answer)
        evidence["errors"] = [
            {"message": f.message, "error_id": f.error_id, "category": f.category} for f in answer
        ]
    else:
        raise TypeError(f"a kick result is not a probe answer: {type(answer).__name__}")
    return GuestRecord(target, verdict, evidence)


def _host_evidence(target: GuestTarget) -> dict[str, Any]:
    vm, host, req = target.vm, target.host, target.requirement
    return {
        "vm_state": vm.state if vm else None,
        "vm_id": vm.id if vm else None,
        "transports": list(transports(vm, host)) if vm and host else [],
        "owner_attestation": host.attestation.status if host and host.attestation else None,
        "needs_benefits": req.needed if req else None,
    }


def _probe_evidence(
    probe: GuestProbe, report: VerificationReport | None, nonce: str | None, vm: VMFacts | None
) -> dict[str, Any]:
    lic = probe.license
    task = probe.task
    document: dict[str, Any] | None = None
    if report is not None:
        payload_vm = (report.payload or {}).get("vmId")
        document = {
            "fetched_from": probe.document_from,
            "nonce_sent": nonce,
            # ASSUMPTION: what HCI puts in vmId is unverified (docs/platform.md §8), so a mismatch is
            # evidence to read, not a verdict.
            "vm_id_matches": (str(payload_vm).lower() == vm.id.lower()) if payload_vm and vm else None,
            "verification": report.to_dict(),
        }
    return {
        "computer_name": probe.computer_name,
        "os": None
        if probe.os is None
        else {"caption": probe.os.caption, "edition_id": probe.os.edition_id, "build": probe.os.build},
        "license": None
        if lic is None
        else {
            "status": lic.license_status,
            "status_name": lic.status_name,
            "name": lic.name,
            "description": lic.description,
            "family": lic.license_family,
            "channel": lic.product_key_channel,
            "grace_minutes": lic.grace_minutes,
        },
        "task": {
            "present": task.present,
            "state": task.state,
            "last_run_time": task.last_run_time if task.present and not task.never_ran else None,
            "last_result": task.last_task_result,
            "last_result_hex": task.last_result_hex,
            "never_ran": task.never_ran if task.present else None,
            "next_run_time": task.next_run_time,
        }
        if probe.task_known
        else None,
        "imds": [
            {
                "address": a.address,
                "reachable": a.ok,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in probe.imds
        ],
        "imds_addresses": list(probe.imds_addresses),
        "addresses": [f"{a.address}/{a.prefix_length}" for a in probe.addresses],
        "document": document,
        "events": {
            "security_spp": [_event_dict(e) for e in probe.spp_events],
            "clip": [_event_dict(e) for e in probe.clip_events],
        },
        "probe_problems": [
            {"source": p.source, "message": p.message, "error_id": p.error_id} for p in probe.problems
        ],
    }


def _event_dict(event: EventFacts) -> dict[str, Any]:
    return {"id": event.id, "time": event.time, "level": event.level, "message": event.message}


def check_guests(
    inventory: Inventory,
    resolver: CredentialResolver,
    selection: Selection,
    *,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> GuestCheckResult:
    """Probe every selected guest; with --verdict, only the records with those verdicts are kept.

    One session per owner node: the host-facts pass keeps it open for that node's probe call, and one
    cancellation covers both passes so that Ctrl-C also closes the sessions held in between.
    """
    token = cancel if cancel is not None else Cancellation()
    with SessionHolder(workers=workers) as holder:
        targets, unreachable = locate(
            inventory, resolver, selection, workers=workers, cancel=token, holder=holder
        )
        # Trust material is read before any guest is asked: a bad CA file is a usage error, not a finding.
        trust = trust_for(inventory)
        records = probe_targets(
            inventory, resolver, targets, workers=workers, cancel=token, now=now, trust=trust, holder=holder
        )
    kept = [r for r in records if selection.keeps(r.verdict.verdict)]
    return GuestCheckResult(tuple(kept), unreachable)


# --- reports ----------------------------------------------------------------------------------------


def _short_license(record: GuestRecord) -> str | None:
    lic = record.evidence.get("license")
    return f"{lic['status']} {lic['status_name']}" if lic else None


def _short_task(record: GuestRecord) -> str | None:
    task = record.evidence.get("task")
    if not task:
        return None
    if not task["present"]:
        return "missing"
    if task["never_ran"]:
        return f"{task['state']}, never ran"
    return f"{task['state']}, last {task['last_result_hex']}"


def _short_imds(record: GuestRecord) -> str | None:
    attempts = record.evidence.get("imds") or []
    host = next((a for a in attempts if a["address"] == "169.254.169.253"), None)
    if host is None:
        return None
    return f"ok {host['latency_ms']} ms" if host["reachable"] else "unreachable"


def _short_document(record: GuestRecord) -> str | None:
    document = record.evidence.get("document")
    if not document:
        return None
    verification = document["verification"]
    return "verified" if verification["ok"] else str(verification["failure_kind"])


def guest_rows(records: Sequence[GuestRecord]) -> list[dict[str, Any]]:
    return [
        {
            **r.to_dict(),
            "license": _short_license(r),
            "task": _short_task(r),
            "imds": _short_imds(r),
            "document": _short_document(r),
        }
        for r in records
    ]


def _counts(values: Sequence[str]) -> str:
    counted: dict[str, int] = {}
    for v in values:
        counted[v] = counted.get(v, 0) + 1
    return ", ".join(f"{k} {n}" for k, n in sorted(counted.items()))


def check_report(result: GuestCheckResult, run_info: Mapping[str, Any] | None = None) -> Report:
    records = [r.to_dict() for r in result.records]
    # An object, not a bare list: the run's envelope (time, version, inventory, command) beside the VMs.
    data = {
        **(run_info or {}),
        "vms": records,
        "unreachable_nodes": dict(result.unreachable_nodes),
    }
    table = Table(
        "Guests",
        columns(
            ("cluster", "CLUSTER"),
            ("node", "NODE"),
            ("vm", "VM"),
            ("verdict", "VERDICT"),
            ("reason", "REASON"),
            Column("license", "LICENSE", wide=True),
            Column("task", "TASK", wide=True),
            Column("imds", "IMDS .253", wide=True),
            Column("document", "DOCUMENT", wide=True),
            Column("title", "WHY", wrap=True),
        ),
        lambda: guest_rows(result.records),
    )
    details = Details(
        "Every VM that is not activated, with why and the fix:",
        [
            DetailItem(
                f"{r.target.name} ({r.target.cluster_name or '?'}/{r.target.node.name if r.target.node else '?'}): "
                f"{r.verdict.verdict}, {r.verdict.reason}",
                [
                    r.verdict.detail,
                    *(f"also: {code}" for code in r.verdict.problems[1:]),
                    *([f"fix: {r.verdict.fix}"] if r.verdict.fix else []),
                ],
            )
            for r in result.records
            if r.verdict.verdict != "activated"
        ],
    )
    notes = ["guests: " + (_counts([r.verdict.verdict for r in result.records]) or "none")]
    notes += [f"! {node}: {why}" for node, why in result.unreachable_nodes.items()]
    return Report(data=data, tables=[table], notes=notes, details=[details])
