"""`hcibenefit guest check|kick`: ask the guests themselves whether Windows activated through Azure Benefits.

Round trips: one host-facts call per node of the selected clusters (to find each VM's owner node and
state), then ONE guest-probe call per owner node carrying all its VMs (PowerShell Direct fans out on the
node), or one call per guest reached over WinRM. VMs that are not running are never sent. A kick adds
one guest-kick call per owner node and one more guest-probe call per owner node to re-check.

Every guest probe carries a fresh nonce (10 digits from `secrets`); the document the guest fetched is
verified here, offline, with the inventory's attestation trust material. The guest password travels
only as a PSCredential parameter (SecureString) or as WinRM authentication; never in text.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from hcibenefit.checks.eligibility import Requirement, requirement
from hcibenefit.checks.guest_checks import (
    FINDING_VERDICTS,
    HOST_CAUSES,
    INCOMPLETE_VERDICTS,
    REASONS,
    DocumentCheck,
    GuestContext,
    GuestVerdict,
    NotProbed,
    assess_failure,
    assess_not_probed,
    assess_probe,
    not_running,
    transports,
)
from hcibenefit.errors import UsageError
from hcibenefit.facts.guest import (
    EventFacts,
    FanOut,
    GuestError,
    GuestProbe,
    KickResult,
    body_document,
    license_status_name,
    parse_fan_out,
    parse_kick_body,
    parse_probe_body,
)
from hcibenefit.facts.host import FactsError, HostFacts, VMFacts
from hcibenefit.inventory import Cluster, CredentialResolver, GuestVM, Inventory, Node, ResolvedCredential
from hcibenefit.operations.audit import AuditLog
from hcibenefit.operations.gather import connections, gather_clusters
from hcibenefit.operations.lookup import find_by_name, unknown_vm_error
from hcibenefit.operations.status import select_clusters
from hcibenefit.remoting.catalog import GUEST_KICK, GUEST_KICK_BODY, GUEST_PROBE, GUEST_PROBE_BODY, Script
from hcibenefit.remoting.errors import (
    AuthenticationFailed,
    MalformedOutputError,
    ModuleMissingError,
    RemotingError,
    ScriptError,
)
from hcibenefit.remoting.runner import DEFAULT_WORKERS, run_per_host
from hcibenefit.remoting.session import CredentialParameter, Endpoint, run_script
from hcibenefit.report import Report, Table, columns

if TYPE_CHECKING:
    from hcibenefit.attestation import TrustStore, VerificationReport

log = logging.getLogger(__name__)

NONCE_DIGITS = 10
IMDS_TIMEOUT_S = 3
"""Per IMDS address inside the guest: .254 never answers on HCI, so this is paid once per guest."""
THROTTLE_LIMIT = 32
PROBE_TIMEOUT_S = 600.0
KICK_MAX_RUNS = 2
KICK_WAIT_S = 120
KICK_TIMEOUT_S = 1200.0

GuestAnswer: TypeAlias = "GuestProbe | KickResult"
Answer: TypeAlias = "GuestProbe | KickResult | tuple[GuestError, ...] | NotProbed"
"""Per VM: what its body returned, the errors PowerShell gave instead, or why it was not asked."""


def new_nonce() -> str:
    """IMDS nonces are 10 digits (platform.md section 8); fresh and unpredictable for every call."""
    return "".join(secrets.choice("0123456789") for _ in range(NONCE_DIGITS))


# --- locating the VMs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GuestTarget:
    """One VM asked about: where it lives, how to reach it, and why it will not be sent (if so)."""

    name: str
    cluster: Cluster | None
    """None only for a VM found nowhere while some nodes were unreachable (it may live on one of them)."""
    node: Node | None
    vm: VMFacts | None
    host: HostFacts | None
    requirement: Requirement | None
    access: GuestVM | None
    not_probed: NotProbed | None = None

    @property
    def cluster_name(self) -> str | None:
        return self.cluster.name if self.cluster else None

    @property
    def access_mode(self) -> str | None:
        return self.access.access if self.access else None

    def context(self) -> GuestContext:
        return GuestContext(
            vm=self.name,
            cluster=self.cluster.name if self.cluster else "?",
            node=self.node.name if self.node else None,
            vm_facts=self.vm,
            host=self.host,
            requirement=self.requirement,
        )


def locate(
    inventory: Inventory,
    resolver: CredentialResolver,
    vm_names: Sequence[str],
    *,
    cluster_names: Sequence[str] = (),
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
) -> tuple[list[GuestTarget], dict[str, str]]:
    """Each named VM with its owner node's facts (one host-facts call per node); unreachable nodes."""
    if not vm_names:
        raise UsageError("name at least one VM with --vm")
    clusters = select_clusters(inventory, cluster_names)
    gathered, _ = gather_clusters(inventory, clusters, resolver, workers=workers, cancel=cancel)
    unreachable = {name: why for facts in gathered for name, why in facts.unreachable.items()}
    candidates = [
        (vm, host, cluster)
        for facts, cluster in zip(gathered, clusters, strict=True)
        for host in facts.hosts
        for vm in host.vms
    ]
    lookup = find_by_name(vm_names, candidates, name_of=lambda c: c[0].name, node_of=lambda c: c[1].node)
    targets = [_target(inventory, vm, host, cluster) for _, (vm, host, cluster) in lookup.found]
    missing = lookup.missing
    if lookup.ambiguous:
        raise UsageError(
            f"VM name on more than one node: {'; '.join(lookup.ambiguous)}; nothing was sent to any guest"
        )
    if missing:
        if not unreachable:
            known = [vm.name for vm, _, _ in candidates]
            raise unknown_vm_error(missing, known, nothing_done="nothing was sent to any guest")
        why = f"not found on the nodes that answered; unreachable: {', '.join(unreachable)}"
        only = clusters[0] if len(clusters) == 1 else None
        for name in missing:
            access = only.guests.vm(name) if only else None
            targets.append(
                GuestTarget(name, only, None, None, None, None, access, NotProbed("node-unreachable", why))
            )
    order = {n.casefold(): i for i, n in enumerate(vm_names)}
    targets.sort(key=lambda t: order.get(t.name.casefold(), len(order)))
    return targets, unreachable


def _target(inventory: Inventory, vm: VMFacts, host: HostFacts, cluster: Cluster) -> GuestTarget:
    node = next(n for n in cluster.nodes if n.name.casefold() == host.node.casefold())
    access = cluster.guests.vm(vm.name)
    reason = None
    if not vm.running:
        reason = NotProbed(not_running(vm.state), f"the VM is {vm.state}; only a running guest can be asked")
    return GuestTarget(
        vm.name, cluster, node, vm, host, requirement(vm, host, inventory.policy), access, reason
    )


# --- batches: one call per owner node (PowerShell Direct) or per guest (WinRM) -----------------------


@dataclass(frozen=True)
class Batch:
    name: str
    """The node's name, or the guest's for WinRM: for log lines."""
    endpoint: Endpoint
    targets: tuple[GuestTarget, ...]
    direct: bool
    """True: PowerShell Direct from the owner node; False: WinRM straight to the guest."""
    credential: CredentialParameter | None


def _guest_credential(target: GuestTarget, resolver: CredentialResolver) -> ResolvedCredential:
    assert target.cluster is not None
    cluster = target.cluster
    # The node carries the effective guest credentials (the inventory merges them like host ones).
    spec = target.node.guest_credentials if target.node is not None else cluster.guest_credentials
    if spec is None:
        raise UsageError(
            f'cluster "{cluster.name}" has no guest_credentials; nothing was sent to any guest',
            hint="add guest_credentials (username plus password_env, password_cmd or keyring) under "
            "defaults or the cluster in the inventory",
        )
    resolved = resolver.resolve(spec)
    if resolved.username is None or resolved.password is None:
        raise UsageError(f'guest_credentials of cluster "{cluster.name}" give no user name and password')
    return resolved


def plan_batches(targets: Sequence[GuestTarget], resolver: CredentialResolver) -> list[Batch]:
    """Group the sendable targets; every credential is resolved before the first connection."""
    sendable = [
        t
        for t in targets
        if t.not_probed is None and t.node is not None and t.cluster is not None and t.access is not None
    ]
    guest_creds = {t.name.casefold(): _guest_credential(t, resolver) for t in sendable}
    batches: list[Batch] = []
    by_node: dict[str, list[GuestTarget]] = {}
    for target in sendable:
        assert target.access is not None
        if target.access.access == "winrm":
            cred = guest_creds[target.name.casefold()]
            endpoint = Endpoint(target.name, target.access.address, target.access.winrm, cred)
            batches.append(Batch(target.name, endpoint, (target,), False, None))
        else:
            assert target.node is not None
            by_node.setdefault(target.node.name, []).append(target)
    for node_name, mine in by_node.items():
        node = mine[0].node
        assert node is not None
        cred = guest_creds[mine[0].name.casefold()]
        assert cred.username is not None and cred.password is not None
        endpoint = connections([node], resolver)[0].endpoint
        batches.append(
            Batch(node_name, endpoint, tuple(mine), True, CredentialParameter(cred.username, cred.password))
        )
    return batches


def _answers_from_fan_out(
    batch: Batch, fan: FanOut, body_schema: str, parse: Callable[[Mapping[str, Any]], GuestAnswer]
) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    for target in batch.targets:
        outputs = fan.output_of(target.name)
        failures = fan.failures_of(target.name)
        if outputs:
            try:
                answers[target.name.casefold()] = parse(body_document(outputs, schema=body_schema))
            except FactsError as exc:
                answers[target.name.casefold()] = NotProbed("probe-failed", f"{body_schema}: {exc}")
        elif failures:
            answers[target.name.casefold()] = failures
        elif fan.unattributed and len(batch.targets) == 1:
            answers[target.name.casefold()] = fan.unattributed
        else:
            extra = "; ".join(f"{f.message} [{f.error_id}]" for f in fan.unattributed)
            answers[target.name.casefold()] = NotProbed(
                "no-answer",
                "PowerShell Direct returned nothing for this VM" + (f" ({extra})" if extra else ""),
            )
    return answers


def _run_batch(
    batch: Batch,
    cancel: threading.Event,
    *,
    host_script: Script,
    body_script: Script,
    parameters: Mapping[str, Any],
    body_text_parameter: str,
    parse: Callable[[Mapping[str, Any]], GuestAnswer],
    timeout_s: float,
) -> dict[str, Answer]:
    if batch.direct:
        params = {
            "VMName": [t.name for t in batch.targets],
            "Credential": batch.credential,
            body_text_parameter: body_script.text(),
            **parameters,
            "ThrottleLimit": THROTTLE_LIMIT,
        }
        log.info("%s: %s for %d guest(s)", batch.name, host_script.key, len(batch.targets))
        document = run_script(batch.endpoint, host_script, params, cancel=cancel, timeout_s=timeout_s)
        try:
            fan = parse_fan_out(document, schema=host_script.key)
        except FactsError as exc:
            raise MalformedOutputError(batch.name, f"{host_script.key}: {exc}") from None
        return _answers_from_fan_out(batch, fan, body_script.key, parse)
    log.info("%s: %s over WinRM", batch.name, body_script.key)
    document = run_script(batch.endpoint, body_script, dict(parameters), cancel=cancel, timeout_s=timeout_s)
    try:
        return {batch.targets[0].name.casefold(): parse(document)}
    except FactsError as exc:
        raise MalformedOutputError(batch.name, f"{body_script.key}: {exc}") from None


def _batch_error(batch: Batch, error: RemotingError) -> Answer:
    text = f"{error.kind}: {error.detail}"
    if batch.direct:
        if isinstance(error, ScriptError | MalformedOutputError | ModuleMissingError):
            return NotProbed("probe-failed", f"on {batch.name}: {text}")
        return NotProbed("node-unreachable", f"{batch.name}: {text}")
    if isinstance(error, AuthenticationFailed):
        return (GuestError(error.detail, "AuthenticationFailed", "AuthenticationError", batch.name),)
    if isinstance(error, ScriptError | MalformedOutputError):
        return NotProbed("probe-failed", text)
    return NotProbed("guest-unreachable", text)


def _run_batches(
    batches: Sequence[Batch],
    work: Callable[[Batch, threading.Event], dict[str, Answer]],
    *,
    workers: int,
    cancel: threading.Event | None,
) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    for outcome in run_per_host(batches, work, name_of=lambda b: b.name, workers=workers, cancel=cancel):
        if outcome.value is not None:
            answers.update(outcome.value)
            continue
        assert outcome.error is not None
        log.warning("%s: %s", outcome.target.name, outcome.error.detail)
        failed = _batch_error(outcome.target, outcome.error)
        for target in outcome.target.targets:
            answers[target.name.casefold()] = failed
    return answers


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
    return DocumentCheck(report.ok, report.failure_kind, failing.reason if failing else "all checks passed")


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
) -> list[GuestRecord]:
    """One probe call per owner node (or WinRM guest), then a verdict per target."""
    batches = plan_batches(targets, resolver)
    trust = trust if trust is not None else trust_for(inventory)
    # One fresh nonce per call; a VM belongs to exactly one batch, so its nonce is its batch's.
    nonce_of = {t.name.casefold(): nonce for b in batches for nonce in [new_nonce()] for t in b.targets}

    def work(batch: Batch, ev: threading.Event) -> dict[str, Answer]:
        return _run_batch(
            batch,
            ev,
            host_script=GUEST_PROBE,
            body_script=GUEST_PROBE_BODY,
            parameters={"Nonce": nonce_of[batch.targets[0].name.casefold()], "TimeoutSec": IMDS_TIMEOUT_S},
            body_text_parameter="ProbeScript",
            parse=parse_probe_body,
            timeout_s=PROBE_TIMEOUT_S,
        )

    answers = _run_batches(batches, work, workers=workers, cancel=cancel)
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
            # ASSUMPTION: what HCI puts in vmId is unverified (platform.md section 8), so a mismatch is
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
    *,
    vm_names: Sequence[str],
    cluster_names: Sequence[str] = (),
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> GuestCheckResult:
    targets, unreachable = locate(
        inventory, resolver, vm_names, cluster_names=cluster_names, workers=workers, cancel=cancel
    )
    # Trust material is read before any guest is asked: a bad CA file is a usage error, not a finding.
    trust = trust_for(inventory)
    records = probe_targets(
        inventory, resolver, targets, workers=workers, cancel=cancel, now=now, trust=trust
    )
    return GuestCheckResult(tuple(records), unreachable)


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


def check_report(result: GuestCheckResult) -> Report:
    data = [r.to_dict() for r in result.records]
    table = Table(
        "Guests",
        columns(
            ("cluster", "CLUSTER"),
            ("node", "NODE"),
            ("vm", "VM"),
            ("verdict", "VERDICT"),
            ("reason", "REASON"),
            ("license", "LICENSE"),
            ("task", "TASK"),
            ("imds", "IMDS .253"),
            ("document", "DOCUMENT"),
            ("detail", "WHY"),
            ("fix", "FIX"),
        ),
        guest_rows(result.records),
    )
    notes = ["guests: " + _counts([r.verdict.verdict for r in result.records])]
    notes += [f"! {node}: {why}" for node, why in result.unreachable_nodes.items()]
    return Report(data=data, tables=[table], notes=notes)


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
        return self.declined or any(
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
    template = REASONS[code].fix
    if template is None:
        return None
    t = record.target
    return template.format(
        vm=t.name, cluster=t.cluster_name or "?", node=t.node.name if t.node else "the owner node"
    )


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
                "parameters": {
                    "VMName": [],
                    "EnableTask": enable_task,
                    "MaxRuns": KICK_MAX_RUNS,
                    "WaitSec": KICK_WAIT_S,
                    "KickScript": f"<{GUEST_KICK_BODY.key}>",
                    "Credential": "<guest_credentials as a PSCredential>",
                },
            },
        )
        call["parameters"]["VMName"].append(target.name)
    return list(calls.values())


def run_kick(
    inventory: Inventory,
    resolver: CredentialResolver,
    *,
    vm_names: Sequence[str],
    cluster_names: Sequence[str] = (),
    what_if: bool = False,
    enable_task: bool = False,
    confirm: Callable[[Sequence[KickPlan]], bool] = lambda plans: True,
    audit: AuditLog | None = None,
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> KickRunResult:
    targets, unreachable = locate(
        inventory, resolver, vm_names, cluster_names=cluster_names, workers=workers, cancel=cancel
    )
    trust = trust_for(inventory)
    before = probe_targets(inventory, resolver, targets, workers=workers, cancel=cancel, now=now, trust=trust)
    plans = [plan_kick(r, enable_task=enable_task) for r in before]
    calls = tuple(describe_kick_calls(plans, enable_task=enable_task))
    kicks = [p for p in plans if p.decision == "kick"]
    passive = {"already": "already", "refused": "refused", "skipped": "skipped", "kick": "planned"}
    if what_if or not kicks:
        return KickRunResult(
            tuple(KickOutcome(p, passive[p.decision]) for p in plans), what_if, calls, unreachable
        )
    if len(kicks) > 1 and not confirm(kicks):
        unchanged = tuple(KickOutcome(p, passive[p.decision]) for p in plans)
        return KickRunResult(unchanged, False, calls, unreachable, declined=True)

    # One EnableTask for all VMs of a batch: the body enables only a task that is disabled.
    kick_targets = [p.record.target for p in kicks]
    batches = plan_batches(kick_targets, resolver)

    def work(batch: Batch, ev: threading.Event) -> dict[str, Answer]:
        return _run_batch(
            batch,
            ev,
            host_script=GUEST_KICK,
            body_script=GUEST_KICK_BODY,
            parameters={"EnableTask": enable_task, "MaxRuns": KICK_MAX_RUNS, "WaitSec": KICK_WAIT_S},
            body_text_parameter="KickScript",
            parse=parse_kick_body,
            timeout_s=KICK_TIMEOUT_S,
        )

    kicked = _run_batches(batches, work, workers=workers, cancel=cancel)
    # Re-check what the kick did: one more probe call per owner node, with a fresh nonce.
    after = {
        r.target.name.casefold(): r
        for r in probe_targets(
            inventory, resolver, kick_targets, workers=workers, cancel=cancel, now=now, trust=trust
        )
    }
    outcomes: list[KickOutcome] = []
    for plan in plans:
        if plan.decision != "kick":
            outcomes.append(KickOutcome(plan, passive[plan.decision]))
            continue
        key = plan.record.target.name.casefold()
        outcomes.append(_kick_outcome(plan, kicked.get(key), after.get(key)))
    if audit is not None:
        for outcome in outcomes:
            if outcome.plan.decision == "kick":
                _audit(audit, outcome)
    return KickRunResult(tuple(outcomes), False, calls, unreachable)


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


def _audit(audit: AuditLog, outcome: KickOutcome) -> None:
    target = outcome.plan.record.target
    audit.record(
        {
            "action": "guest-kick",
            "vm": target.name,
            "cluster": target.cluster_name,
            "node": target.node.name if target.node else None,
            "access": target.access_mode,
            "enable_task": outcome.plan.enable_task,
            "task_enabled": outcome.kick.enabled_task if outcome.kick else False,
            "runs": len(outcome.kick.runs) if outcome.kick else 0,
            "before": _brief(outcome.plan.record),
            "after": _brief(outcome.after) if outcome.after else None,
            "result": outcome.result,
            "error": outcome.error,
        }
    )


def kick_report(result: KickRunResult) -> Report:
    data = [o.to_dict() for o in result.outcomes]
    rows = []
    for o, d in zip(result.outcomes, data, strict=True):
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
            ("cluster", "CLUSTER"),
            ("node", "NODE"),
            ("vm", "VM"),
            ("result", "RESULT"),
            ("before_text", "BEFORE"),
            ("after_text", "AFTER"),
            ("runs_text", "RUNS"),
            ("why_text", "WHY"),
            ("fix", "FIX"),
        ),
        rows,
    )
    notes = []
    if result.what_if:
        for call in result.calls:
            params = " ".join(
                f"-{k} {','.join(v) if isinstance(v, list) else v}" for k, v in call["parameters"].items()
            )
            notes.append(f"would run {call['script']} on {call['target']} ({call['via']}): {params}")
    if result.declined:
        notes.append("not confirmed: nothing was changed")
    notes += [f"! {node}: {why}" for node, why in result.unreachable_nodes.items()]
    return Report(data=data, tables=[table], notes=notes)


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
