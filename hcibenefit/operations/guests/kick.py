"""`hcibenefit guest kick`: run LicenseImdsIntegration in the guest, wait, re-check, and report before/after."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hcibenefit.checks.guest_checks import (
    FINDING_VERDICTS,
    HOST_CAUSES,
    INCOMPLETE_VERDICTS,
    REASONS,
    NotProbed,
    fix_for,
)
from hcibenefit.facts.guest import (
    KickResult,
    license_status_name,
    parse_kick_body,
)
from hcibenefit.inventory import CredentialResolver, Inventory
from hcibenefit.operations.audit import AuditError, AuditLog
from hcibenefit.remoting.catalog import GUEST_KICK, GUEST_KICK_BODY
from hcibenefit.remoting.errors import RemotingError
from hcibenefit.remoting.runner import DEFAULT_WORKERS, run_per_host
from hcibenefit.report import Column, DetailItem, Details, Report, Table, columns
from hcibenefit.report.text import Described

if TYPE_CHECKING:
    from hcibenefit.attestation import TrustStore

from hcibenefit.errors import UsageError
from hcibenefit.operations.guests.check import (
    GuestCheckResult,
    GuestRecord,
    check_guests,
    check_report,
    probe_targets,
    trust_for,
)
from hcibenefit.operations.guests.targets import (
    KICK_MAX_RUNS,
    KICK_TIMEOUT_S,
    KICK_WAIT_S,
    Answer,
    Batch,
    batch_error,
    locate,
    new_nonce,
    plan_batches,
    run_batch,
)
from hcibenefit.operations.selection import Selection

log = logging.getLogger(__name__)

# --- the kick ---------------------------------------------------------------------------------------

KickDecision = Literal["kick", "already", "refused", "skipped"]


@dataclass(frozen=True)
class KickPlan:
    record: GuestRecord
    decision: KickDecision
    enable_task: bool
    why: str
    fix: str | None = None


@dataclass(frozen=True)
class KickOutcome:
    plan: KickPlan
    result: str
    """planned, already, refused, skipped, kicked, failed"""
    kick: KickResult | None = None
    error: str | None = None
    after: GuestRecord | None = None

    @property
    def final(self) -> GuestRecord:
        return self.after or self.plan.record

    def to_dict(self) -> dict[str, Any]:
        final = self.final.to_dict()
        before = self.plan.record
        return {
            **{
                k: final[k]
                for k in ("vm", "cluster", "node", "access", "verdict", "reason", "title", "detail")
            },
            "fix": self.plan.fix if self.result == "refused" else final["fix"],
            "result": self.result,
            "why": self.plan.why,
            "enable_task": self.plan.enable_task,
            "before": _brief(before),
            "after": _brief(self.after) if self.after else None,
            "task_enabled": self.kick.enabled_task if self.kick else False,
            "runs": [
                {
                    "run": r.run,
                    "finished": r.finished,
                    "last_result_hex": r.last_result_hex,
                    "license_status": r.license_status,
                    "license_status_name": license_status_name(r.license_status),
                }
                for r in (self.kick.runs if self.kick else ())
            ],
            "error": self.error,
            "evidence": final["evidence"],
        }


def _brief(record: GuestRecord) -> dict[str, Any]:
    lic = record.evidence.get("license")
    return {
        "verdict": record.verdict.verdict,
        "reason": record.verdict.reason,
        "license_status": lic["status"] if lic else None,
    }


@dataclass(frozen=True)
class KickRunResult:
    outcomes: tuple[KickOutcome, ...]
    what_if: bool
    calls: tuple[dict[str, Any], ...]
    unreachable_nodes: Mapping[str, str] = field(default_factory=dict)
    declined: bool = False

    @property
    def findings(self) -> bool:
        return any(o.final.verdict.verdict in FINDING_VERDICTS for o in self.outcomes)

    @property
    def incomplete(self) -> bool:
        # A "no" at the prompt sent nothing and is not a failure.
        return any(
            o.final.verdict.verdict in INCOMPLETE_VERDICTS or o.result == "failed" for o in self.outcomes
        )


def plan_kick(record: GuestRecord, *, enable_task: bool) -> KickPlan:
    """What a kick would do for one VM, from its check before: pure."""
    verdict = record.verdict
    task = record.evidence.get("task")
    lic = record.evidence.get("license")
    licensed = bool(lic and lic["status"] == 1)
    if verdict.verdict in INCOMPLETE_VERDICTS:
        return KickPlan(record, "skipped", False, f"cannot reach the guest: {verdict.detail}", verdict.fix)
    if task is None:
        return KickPlan(record, "skipped", False, "the guest could not read its task state", verdict.fix)
    if not task["present"]:
        return KickPlan(
            record, "refused", False, REASONS["task-missing"].title, _fix_for("task-missing", record)
        )
    disabled = task["state"] == "Disabled"
    if disabled and not enable_task:
        return KickPlan(
            record,
            "refused",
            False,
            "the LicenseImdsIntegration task is disabled; not enabled without --enable-task",
            _fix_for("task-disabled", record),
        )
    if licensed:
        if disabled:
            return KickPlan(
                record, "kick", True, "already activated; enable the disabled task so it can renew"
            )
        return KickPlan(record, "already", False, "Windows is already activated")
    how = "enable the task, then run it" if disabled else "run the task"
    why = f"{how} (up to {KICK_MAX_RUNS} runs until activated)"
    if verdict.reason in HOST_CAUSES:
        # Kicked anyway, as asked: the runs record the failure in the guest's own logs.
        why += f"; it will fail until the host side is fixed ({verdict.title}: {verdict.fix})"
    return KickPlan(record, "kick", disabled, why)


def _fix_for(code: str, record: GuestRecord) -> str | None:
    return fix_for(code, record.target.context())


def describe_kick_calls(plans: Sequence[KickPlan], *, enable_task: bool) -> list[dict[str, Any]]:
    """The exact mutating calls a kick sends: one per owner node (or WinRM guest). No secrets."""
    calls: dict[str, dict[str, Any]] = {}
    for plan in plans:
        if plan.decision != "kick":
            continue
        target = plan.record.target
        if target.access_mode == "winrm":
            key = f"guest:{target.name}"
            calls[key] = {
                "target": target.name,
                "via": "winrm",
                "script": GUEST_KICK_BODY.key,
                "parameters": {"EnableTask": enable_task, "MaxRuns": KICK_MAX_RUNS, "WaitSec": KICK_WAIT_S},
            }
            continue
        node = target.node.name if target.node else "?"
        call = calls.setdefault(
            f"node:{node}",
            {
                "target": node,
                "via": "powershell-direct",
                "script": GUEST_KICK.key,
                "vms": [],
                "parameters": {
                    "VMId": [],
                    "EnableTask": enable_task,
                    "MaxRuns": KICK_MAX_RUNS,
                    "WaitSec": KICK_WAIT_S,
                    "KickScript": Described(f"the text of {GUEST_KICK_BODY.key}"),
                    "Credential": Described("PSCredential from guest_credentials"),
                },
            },
        )
        call["vms"].append(target.name)
        # By id: Hyper-V treats a VM name as a wildcard pattern.
        call["parameters"]["VMId"].append(target.vm.id if target.vm is not None else "")
    return list(calls.values())


def run_kick(
    inventory: Inventory,
    resolver: CredentialResolver,
    selection: Selection,
    *,
    what_if: bool = False,
    enable_task: bool = False,
    confirm: Callable[[Sequence[KickPlan]], bool] = lambda plans: True,
    audit: AuditLog | None = None,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> KickRunResult:
    if not selection.names_targets:
        raise UsageError(
            "say which VMs: --vm NAME|GLOB (repeatable), --verdict VERDICT, or --all for every VM of the "
            "selected clusters; nothing was sent to any guest"
        )
    targets, unreachable = locate(inventory, resolver, selection, workers=workers, cancel=cancel)
    trust = trust_for(inventory)
    checked = probe_targets(
        inventory, resolver, targets, workers=workers, cancel=cancel, now=now, trust=trust
    )
    before = [r for r in checked if selection.keeps(r.verdict.verdict)]
    plans = [plan_kick(r, enable_task=enable_task) for r in before]
    calls = tuple(describe_kick_calls(plans, enable_task=enable_task))
    kicks = [p for p in plans if p.decision == "kick"]
    passive = {"already": "already", "refused": "refused", "skipped": "skipped", "kick": "planned"}
    if what_if or not kicks:
        return KickRunResult(
            tuple(KickOutcome(p, passive[p.decision]) for p in plans), what_if, calls, unreachable
        )
    if not confirm(kicks):
        unchanged = tuple(KickOutcome(p, passive[p.decision]) for p in plans)
        return KickRunResult(unchanged, False, calls, unreachable, declined=True)

    if audit is None:
        raise ValueError("changes are sent only with an audit log (AuditLog.open)")
    # One EnableTask for all VMs of a batch: the body enables only a task that is disabled.
    plan_of = {p.record.target.name.casefold(): p for p in kicks}
    batches = plan_batches([p.record.target for p in kicks], resolver, azure=inventory.azure)

    def work(batch: Batch, ev: threading.Event) -> list[KickOutcome]:
        mine = [plan_of[t.name.casefold()] for t in batch.targets]
        return _kick_batch(batch, mine, ev, inventory, resolver, audit, enable_task, trust, now)

    done: dict[str, KickOutcome] = {}
    for outcome in run_per_host(batches, work, name_of=lambda b: b.name, workers=workers, cancel=cancel):
        if outcome.value is not None:
            done.update((o.plan.record.target.name.casefold(), o) for o in outcome.value)
            continue
        assert outcome.error is not None
        log.warning("%s: %s", outcome.target.name, outcome.error.detail)
        for target in outcome.target.targets:
            plan = plan_of[target.name.casefold()]
            done[target.name.casefold()] = KickOutcome(
                plan, "failed", None, f"{outcome.error.kind}: {outcome.error.detail}"
            )
    outcomes = [
        done.get(p.record.target.name.casefold()) or KickOutcome(p, passive[p.decision]) for p in plans
    ]
    return KickRunResult(tuple(outcomes), False, calls, unreachable)


def _kick_batch(
    batch: Batch,
    plans: Sequence[KickPlan],
    cancel: threading.Event,
    inventory: Inventory,
    resolver: CredentialResolver,
    audit: AuditLog,
    enable_task: bool,
    trust: TrustStore,
    now: Callable[[], dt.datetime] | None,
) -> list[KickOutcome]:
    """One kick call for the batch (one node or one WinRM guest), then one probe call to re-check.

    Written ahead to the audit log before the kick is sent, and done after the re-check.
    """
    parameters = {"EnableTask": enable_task, "MaxRuns": KICK_MAX_RUNS, "WaitSec": KICK_WAIT_S}
    host_user = batch.endpoint.credential.username if batch.endpoint.credential else None
    first = plans[0].record.target
    try:
        change = audit.begin(
            action="guest-kick",
            cluster=first.cluster_name,
            node=first.node.name if batch.direct and first.node else None,
            remote_user=batch.endpoint.account,
            call={
                "script": (GUEST_KICK if batch.direct else GUEST_KICK_BODY).key,
                "parameters": {
                    # What is sent: PowerShell Direct by VM id (names are wildcard patterns to Hyper-V).
                    **(
                        {"VMId": [p.record.target.vm.id for p in plans if p.record.target.vm is not None]}
                        if batch.direct
                        else {}
                    ),
                    **parameters,
                },
            },
            targets={
                p.record.target.name.casefold(): {
                    "vm": p.record.target.name,
                    "access": p.record.target.access_mode,
                    "guest_user": batch.credential.username if batch.credential else host_user,
                    "enable_task": p.enable_task,
                    "before": _brief(p.record),
                }
                for p in plans
            },
        )
    except AuditError as exc:
        return [KickOutcome(p, "failed", None, f"not sent: {exc}") for p in plans]
    with change:
        try:
            answers = run_batch(
                batch,
                cancel,
                host_script=GUEST_KICK,
                body_script=GUEST_KICK_BODY,
                parameters=parameters,
                body_text_parameter="KickScript",
                parse=parse_kick_body,
                timeout_s=KICK_TIMEOUT_S,
            )
        except RemotingError as exc:
            failed = batch_error(batch, exc)
            answers = {p.record.target.name.casefold(): failed for p in plans}
        # Re-check what the kick did: one more probe call to the same node, with a fresh nonce.
        after = {
            r.target.name.casefold(): r
            for r in probe_targets(
                inventory, resolver, list(batch.targets), workers=1, cancel=cancel, now=now, trust=trust
            )
        }
        outcomes = []
        for plan in plans:
            key = plan.record.target.name.casefold()
            outcome = _kick_outcome(plan, answers.get(key), after.get(key))
            change.finish(
                key,
                result=outcome.result,
                error=outcome.error,
                task_enabled=outcome.kick.enabled_task if outcome.kick else False,
                runs=len(outcome.kick.runs) if outcome.kick else 0,
                after=_brief(outcome.after) if outcome.after else None,
            )
            outcomes.append(outcome)
    return outcomes


def _kick_outcome(plan: KickPlan, answer: Answer | None, after: GuestRecord | None) -> KickOutcome:
    if isinstance(answer, KickResult):
        if answer.error is not None:
            return KickOutcome(
                plan, "failed", answer, f"{answer.error.message} [{answer.error.error_id}]", after
            )
        return KickOutcome(plan, "kicked", answer, None, after)
    if isinstance(answer, NotProbed):
        return KickOutcome(plan, "failed", None, f"{answer.reason}: {answer.detail}", after)
    if isinstance(answer, tuple) and answer:
        first = answer[0]
        return KickOutcome(plan, "failed", None, f"{first.message} [{first.error_id}]", after)
    return KickOutcome(plan, "failed", None, "no answer", after)


def kick_report(
    result: KickRunResult, run_info: Mapping[str, Any] | None = None, *, show_scripts: bool = False
) -> Report:
    from hcibenefit.operations.benefits import describe_script_call
    from hcibenefit.remoting.catalog import GUEST_KICK, GUEST_KICK_BODY

    records = [o.to_dict() for o in result.outcomes]
    rows = []
    for o, d in zip(result.outcomes, records, strict=True):
        runs = o.kick.runs if o.kick else ()
        rows.append(
            {
                **d,
                "result": "would kick" if o.result == "planned" and result.what_if else o.result,
                "before_text": f"{d['before']['verdict']} ({d['before']['reason']})",
                "after_text": f"{d['after']['verdict']} ({d['after']['reason']})" if d["after"] else None,
                "runs_text": ", ".join(
                    f"{r.last_result_hex} -> {license_status_name(r.license_status)}" for r in runs
                )
                or None,
                "why_text": o.error or o.plan.why,
            }
        )
    table = Table(
        f"guest kick {'(what-if: nothing was sent)' if result.what_if else ''}".strip(),
        columns(
            Column("cluster", "CLUSTER", wide=True),
            ("node", "NODE"),
            ("vm", "VM"),
            ("result", "RESULT"),
            ("before_text", "BEFORE"),
            ("after_text", "AFTER"),
            Column("runs_text", "RUNS", wide=True),
            Column("why_text", "WHY", wrap=True),
        ),
        rows,
    )
    scripts = {GUEST_KICK.key: GUEST_KICK, GUEST_KICK_BODY.key: GUEST_KICK_BODY}
    sent = Details(
        ("Would send" if result.what_if else "Sent") + " (one call per owner node or WinRM guest):",
        [
            describe_script_call(
                scripts[c["script"]],
                f"{c['target']} ({c['via']})",
                c["parameters"],
                show_scripts,
                vms=c.get("vms") or (),
            )
            for c in result.calls
        ],
    )
    left = Details(
        "What to do next:",
        [
            DetailItem(f"{d['vm']}: {d['verdict']} ({d['reason']})", [f"fix: {d['fix']}"])
            for d in records
            if d["fix"] and d["verdict"] != "activated"
        ],
    )
    # An object, not a bare list: the run's envelope and what was (or would be) sent, as enable's JSON has.
    data = {
        **(run_info or {}),
        "action": "guest kick",
        "what_if": result.what_if,
        "vms": records,
        "calls": [dict(c) for c in result.calls],
        "unreachable_nodes": dict(result.unreachable_nodes),
        "declined": result.declined,
    }
    notes = []
    if result.declined:
        notes.append("not confirmed: nothing was changed")
    notes += [f"! {node}: {why}" for node, why in result.unreachable_nodes.items()]
    return Report(data=data, tables=[table], notes=notes, details=[sent, left])


__all__ = [
    "GuestCheckResult",
    "GuestRecord",
    "KickRunResult",
    "check_guests",
    "check_report",
    "kick_report",
    "new_nonce",
    "plan_kick",
    "run_kick",
]
