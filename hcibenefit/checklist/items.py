"""The AVD go/no-go items, in the order a change board reads them, each judged for one VM. Pure.

An item is a selection of catalogue checks (their results, as the sweep computes them) plus, where the
catalogue has no check for the criterion, an AVD judgement of its own (checklist.avd). A catalogue FAIL
becomes the item's FAIL or WARN (each item says which checks only warn), an ERROR a FAIL "not assessed",
N/A stays N/A. A PASS states the evidence positively (every node Active until when), so the sheet says
why it may be signed, not only that nothing was found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hcibenefit.checklist import avd
from hcibenefit.checklist.context import VMEvidence
from hcibenefit.checklist.model import Item, ItemStatus, Remedy, worst
from hcibenefit.checks import fixes
from hcibenefit.checks.results import Result, Status
from hcibenefit.facts.guest import HOST_IMDS_ADDRESS
from hcibenefit.facts.host import GSI, HOST_SWITCH, KVP, HostFacts

HCIBENEFIT = "hcibenefit (--fix)"
HCI_ADMIN = "HCI admin"
AZURE_ADMIN = "Azure admin"
AVD_ADMIN = "AVD admin"
GUEST_ADMIN = "guest OS admin"

FAIL, WARN, PASS, NA = ItemStatus.FAIL, ItemStatus.WARN, ItemStatus.PASS, ItemStatus.NA
NO_AZURE = "needs Azure: the inventory has no azure: section"
SYNC_LIMIT_DAYS = 30


@dataclass(frozen=True)
class Part:
    """One piece of an item's verdict: a catalogue result, or an AVD judgement."""

    status: ItemStatus
    text: str = ""
    fix: str | None = None
    owner: str | None = None
    assessed: bool = True
    remedies: tuple[Remedy, ...] = ()


@dataclass(frozen=True)
class ItemDef:
    id: str
    title: str
    ref: str
    owner: str
    """Who acts when no hcibenefit command can."""
    checks: Mapping[str, ItemStatus]
    """Catalogue check id → what its FAIL makes of the item (FAIL or WARN)."""
    judge: Callable[[VMEvidence], list[Part]] | None = None
    evidence: Callable[[VMEvidence], str] | None = None
    """The positive statement for a PASS."""
    applies: Callable[[VMEvidence], str | None] | None = None
    """None when the item is about the VM, else why not (N/A)."""
    needs_azure: bool = False


# --- from catalogue results to parts ----------------------------------------------------------------


def _label(results: Sequence[Result]) -> str:
    """The message of one or more results that say the same thing, with the nodes they are about."""
    message = results[0].message
    nodes = [r.target.node for r in results if r.target.node and not r.target.vm]
    nodes = [n for n in nodes if n.casefold() not in message.casefold()]
    return f"{', '.join(nodes)}: {message}" if nodes else message


def _first_node(ctx: VMEvidence) -> str:
    """The node a cluster-wide sync runs on: the one that synced longest ago, else the owner."""
    synced = [
        (h.registration.last_connected, h.node)
        for h in ctx.hosts
        if h.registration is not None and h.registration.last_connected is not None
    ]
    return min(synced)[1] if synced else ctx.host.node


def _host(ctx: VMEvidence, name: str | None) -> HostFacts | None:
    key = (name or "").casefold()
    return next((h for h in ctx.hosts if h.node.casefold() == key), None)


def _node_remedy(ctx: VMEvidence, node: str) -> Remedy:
    """Sync for a node that only needs its certificate renewed, enable for one that never served."""
    host = _host(ctx, node)
    status = host.attestation.status if host and host.attestation else "unknown"
    name = host.node if host else node
    if status in ("Expired", "Active"):
        return Remedy("host-sync", ctx.cluster, name)
    return Remedy("host-enable", ctx.cluster, name)


def _missing_switch_nodes(ctx: VMEvidence) -> list[str]:
    return [h.node for h in ctx.hosts if h.switch is None and h.attestation_switch is None]


_SYNC_NODE = frozenset(
    {
        "node.attestation-expired",
        "node.attestation-expiring",
        "node.attestation-error",
        "node.sync-overdue",
        "node.sync-near-limit",
    }
)
_SYNC_CLUSTER = frozenset(
    {"azure.sync-out-of-policy", "azure.sync-near-limit", "azure.sync-late", "azure.cluster-not-connected"}
)
_ENABLE_VM = frozenset({"vm.benefits-missing", "vm.guest-nic-disconnected", "vm.attestation-disconnected"})


def remedies_for(ctx: VMEvidence, result: Result) -> tuple[Remedy, ...]:
    """What hcibenefit can do about a catalogue FAIL, through host sync/enable, enable or guest kick."""
    check, node, vm = result.check.id, result.target.node, ctx.vm.name
    if check in _SYNC_NODE and node:
        return (Remedy("host-sync", ctx.cluster, node),)
    if check in ("node.attestation-inactive", "node.switch-missing") and node:
        return (Remedy("host-enable", ctx.cluster, node),)
    if check in _SYNC_CLUSTER:
        return (Remedy("host-sync", ctx.cluster, _first_node(ctx)),)
    if check == "azure.imds-enabled-node-not-active" and node:
        return (_node_remedy(ctx, node),)
    if check == "azure.imds-disabled":
        inactive = [h.node for h in ctx.hosts if h.attestation is None or h.attestation.status != "Active"]
        if inactive:
            return tuple(_node_remedy(ctx, n) for n in inactive)
        return (Remedy("host-sync", ctx.cluster, _first_node(ctx)),)
    if check == "vm.owner-node-not-active":
        return (_node_remedy(ctx, ctx.host.node),)
    if check in ("vm.owner-node-switch-broken", "vm.failover-node-lacks-switch"):
        return tuple(Remedy("host-enable", ctx.cluster, n) for n in _missing_switch_nodes(ctx))
    if check in _ENABLE_VM:
        return (Remedy("vm-enable", ctx.cluster, vm),)
    if check == "guest.activated":
        return (Remedy("guest-kick", ctx.cluster, vm, enable_task=_task_disabled(ctx)),)
    if check == "guest.license-task":
        probe = ctx.probe
        if probe is not None and not probe.task.present:
            return ()  # a missing task comes with the cumulative update, not with a kick
        return (Remedy("guest-kick", ctx.cluster, vm, enable_task=_task_disabled(ctx)),)
    return ()


def _task_disabled(ctx: VMEvidence) -> bool:
    probe = ctx.probe
    return probe is not None and probe.task.state == "Disabled"


def catalogue_parts(ctx: VMEvidence, levels: Mapping[str, ItemStatus], owner: str) -> list[Part]:
    """Parts from the catalogue's results; results of one check that say the same about several nodes are
    one part naming the nodes."""
    parts: list[Part] = []
    for check, level in levels.items():
        groups: dict[tuple[Status, str], list[Result]] = {}
        for result in ctx.results_of(check):
            groups.setdefault((result.status, result.message), []).append(result)
        for (status, message), results in groups.items():
            fix = merge_fixes(r.remediation for r in results)
            if status is Status.PASS:
                parts.append(Part(PASS))
            elif status is Status.NA:
                parts.append(Part(NA, message))
            elif status is Status.ERROR:
                parts.append(Part(FAIL, f"not assessed: {_label(results)}", fix, owner, assessed=False))
            else:
                remedies = tuple(dict.fromkeys(r for result in results for r in remedies_for(ctx, result)))
                parts.append(
                    Part(level, _label(results), fix, HCIBENEFIT if remedies else owner, True, remedies)
                )
    return parts


# --- from parts to an item ----------------------------------------------------------------------------


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def combine(defn: ItemDef, ctx: VMEvidence, parts: Sequence[Part]) -> Item:
    status = worst([p.status for p in parts])
    bad = [p for p in parts if p.status in (FAIL, WARN)]
    if status in (FAIL, WARN):
        shown = [p for p in bad if p.status is FAIL] + [p for p in bad if p.status is WARN]
        evidence = "; ".join(_unique(p.text for p in shown))
        fix = merge_fixes(p.fix for p in shown)
        owner = ", ".join(_unique(p.owner or defn.owner for p in shown))
        assessed = any(p.assessed for p in bad if p.status is status)
        remedies = tuple(dict.fromkeys(r for p in bad for r in p.remedies))
        return Item(
            defn.id, defn.title, defn.ref, status, evidence, fix, owner, assessed, _ids(defn), remedies
        )
    if status is NA:
        return Item(
            defn.id,
            defn.title,
            defn.ref,
            NA,
            _unique(p.text for p in parts)[0] if parts else "",
            checks=_ids(defn),
        )
    evidence = defn.evidence(ctx) if defn.evidence is not None else ""
    return Item(defn.id, defn.title, defn.ref, PASS, evidence or "every check passes", checks=_ids(defn))


def _steps(text: str) -> list[str]:
    body = text[len("first ") :] if text.startswith("first ") else text
    return [step.strip() for step in body.split("; then ") if step.strip()]


def merge_fixes(texts: Iterable[str | None]) -> str | None:
    """Several fixes as one text: each once, and one whose every step an earlier one already has is left
    out ("first A; then B" covers "B"), so overlapping remediations of one item do not repeat."""
    seen: list[str] = []
    kept: list[str] = []
    for text in _unique(texts):
        steps = _steps(text)
        if steps and all(step in seen for step in steps):
            continue
        kept.append(text)
        seen += steps
    return "; also ".join(kept) or None


def _ids(defn: ItemDef) -> tuple[str, ...]:
    return tuple(defn.checks)


def judge_item(defn: ItemDef, ctx: VMEvidence) -> Item:
    if defn.needs_azure and ctx.azure is None:
        return Item(defn.id, defn.title, defn.ref, NA, NO_AZURE, checks=_ids(defn))
    if defn.needs_azure and ctx.azure is not None and ctx.azure.unreadable:
        # The catalogue's results say the same (ERROR: the subscription could not be read): say it once.
        return combine(defn, ctx, _azure_unreadable(ctx))
    why = defn.applies(ctx) if defn.applies is not None else None
    if why is not None:
        return Item(defn.id, defn.title, defn.ref, NA, why, checks=_ids(defn))
    parts = catalogue_parts(ctx, defn.checks, defn.owner)
    if defn.judge is not None:
        parts += defn.judge(ctx)
    if not parts:
        return Item(defn.id, defn.title, defn.ref, NA, "nothing to judge", checks=_ids(defn))
    return combine(defn, ctx, parts)


def checklist_for(ctx: VMEvidence) -> tuple[Item, ...]:
    return tuple(judge_item(defn, ctx) for defn in ITEMS)


# --- helpers for evidence ------------------------------------------------------------------------------


def _day(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "unknown"


def _when(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "unknown"


def _nodes(ctx: VMEvidence) -> list[HostFacts]:
    order = {n.casefold(): i for i, n in enumerate(ctx.node_order)}
    return sorted(ctx.hosts, key=lambda h: order.get(h.node.casefold(), len(order)))


def _azure_unreadable(ctx: VMEvidence) -> list[Part]:
    azure = ctx.azure
    if azure is not None and azure.unreadable:
        # What would make the subscription readable (a role, a login), when the read says.
        fix = azure.pair.unread[1] if azure.pair is not None and azure.pair.unread else None
        return [Part(FAIL, f"not assessed: {azure.unreadable}", fix, AZURE_ADMIN, assessed=False)]
    return []


# --- the items ------------------------------------------------------------------------------------------


def _release(ctx: VMEvidence) -> list[Part]:
    parts: list[Part] = []
    by_verdict: dict[tuple[str, str, str], list[str]] = {}
    for host in _nodes(ctx):
        release = avd.release_of(host.release, host.os_build, ctx.now)
        if release.verdict == "ok":
            parts.append(Part(PASS))
            continue
        key = (release.verdict, f"{release.name} (build {host.os_build or 'unknown'})", release.why)
        by_verdict.setdefault(key, []).append(host.node)
    for (verdict, name, why), nodes in by_verdict.items():
        parts.append(
            Part(
                FAIL if verdict == "fail" else WARN,
                f"{', '.join(nodes)}: {name}: {why}",
                "update the cluster to Azure Local 12.x (24H2): Azure portal, the cluster's Updates",
                HCI_ADMIN,
            )
        )
    return parts


def _release_evidence(ctx: VMEvidence) -> str:
    releases = {
        f"{avd.release_of(h.release, h.os_build, ctx.now).name} (build {h.os_build})" for h in ctx.hosts
    }
    text = f"{', '.join(sorted(releases))} on every node ({len(ctx.hosts)})"
    pair = ctx.azure.pair if ctx.azure else None
    if pair is not None and pair.azure is not None and pair.azure.cluster_version:
        text += f"; Azure: clusterVersion {pair.azure.cluster_version}"
    return text


def _registration_evidence(ctx: VMEvidence) -> str:
    statuses = {h.registration.registration_status for h in ctx.hosts if h.registration}
    text = f"RegistrationStatus {', '.join(sorted(statuses)) or 'unknown'} on every node"
    pair = ctx.azure.pair if ctx.azure else None
    if pair is not None and pair.azure is not None:
        text += f"; Azure: {pair.azure.name} in {pair.azure.resource_group}"
    return text


def _sync(ctx: VMEvidence) -> list[Part]:
    """Far enough from the 30-day limit that the rollout window fits before it."""
    late: dict[dt.datetime, list[str]] = {}
    for host in _nodes(ctx):
        reg = host.registration
        if reg is None or reg.registration_status != "Registered" or reg.last_connected is None:
            continue
        if SYNC_LIMIT_DAYS - (ctx.now - reg.last_connected).total_seconds() / 86400 <= ctx.window_days:
            late.setdefault(reg.last_connected, []).append(host.node)
    parts: list[Part] = []
    for last, nodes in late.items():
        left = SYNC_LIMIT_DAYS - (ctx.now - last).total_seconds() / 86400
        parts.append(
            Part(
                FAIL,
                f"{', '.join(nodes)}: last sync {_when(last)}, {left:.1f} day(s) before the 30-day limit, inside the "
                f"{ctx.window_days}-day window",
                merge_fixes(fixes.host_sync(ctx.cluster, n) for n in nodes),
                HCIBENEFIT,
                remedies=tuple(Remedy("host-sync", ctx.cluster, n) for n in nodes),
            )
        )
    return parts


def _sync_evidence(ctx: VMEvidence) -> str:
    last = [
        h.registration.last_connected for h in ctx.hosts if h.registration and h.registration.last_connected
    ]
    if not last:
        return "no node reports a last sync"
    oldest = min(last)
    days = (ctx.now - oldest).total_seconds() / 86400
    text = f"last sync {_when(oldest)} ({days:.1f} day(s) ago), {SYNC_LIMIT_DAYS - days:.1f} day(s) before the 30-day limit"
    pair = ctx.azure.pair if ctx.azure else None
    if pair is not None and pair.azure is not None:
        azure = pair.azure
        text += f"; Azure: lastSyncTimestamp {_when(azure.last_sync)}, {azure.status}, {azure.connectivity_status}"
    return text


def _imds_cluster(ctx: VMEvidence) -> list[Part]:
    parts: list[Part] = []
    for host in _nodes(ctx):
        reg = host.registration
        if reg is not None and reg.imds_attestation and reg.imds_attestation.casefold() == "disabled":
            parts.append(
                Part(
                    FAIL,
                    f"{host.node}: Get-AzureStackHCI reports IMDSAttestation Disabled",
                    fixes.host_enable(ctx.cluster, host.node),
                    HCIBENEFIT,
                    remedies=(Remedy("host-enable", ctx.cluster, host.node),),
                )
            )
        elif reg is not None and reg.imds_attestation:
            parts.append(Part(PASS))
    return parts


def _imds_cluster_evidence(ctx: VMEvidence) -> str:
    values = {
        h.registration.imds_attestation
        for h in ctx.hosts
        if h.registration and h.registration.imds_attestation
    }
    text = f"Get-AzureStackHCI IMDSAttestation {', '.join(sorted(values)) or 'unknown'} on every node"
    pair = ctx.azure.pair if ctx.azure else None
    if pair is not None and pair.azure is not None:
        text += f"; Azure: imdsAttestation {pair.azure.imds_attestation or 'not reported'}"
    return text


def _nodes_active_evidence(ctx: VMEvidence) -> str:
    shown = []
    for host in _nodes(ctx):
        att = host.attestation
        shown.append(
            f"{host.node} {att.status} until {_day(att.expiration)}" if att else f"{host.node} unknown"
        )
    return ", ".join(shown) + f" (window {ctx.window_days} days)"


def _switch_applies(ctx: VMEvidence) -> str | None:
    if ctx.uses_v1:
        return None
    return "the VM uses V2 (VMBus, Guest Service Interface): the IMDS switch is not on its path"


def _switch_evidence(ctx: VMEvidence) -> str:
    return f"{HOST_SWITCH} (Internal, host vNIC {HOST_IMDS_ADDRESS}) on every node: " + ", ".join(
        h.node for h in _nodes(ctx)
    )


def _legacy_needed_parts(ctx: VMEvidence) -> list[Part]:
    """node.legacy-os-support-needed speaks for every legacy guest of the cluster: only V1 VMs take it."""
    if not ctx.uses_v1:
        return []
    return catalogue_parts(ctx, {"node.legacy-os-support-needed": FAIL}, HCI_ADMIN)


def _benefits_evidence(ctx: VMEvidence) -> str:
    os_name = ctx.vm.os_name or "guest OS unknown"
    if ctx.uses_v1:
        nic = ctx.vm.imds_nic
        where = f"connected to {nic.switch_name}" if nic and nic.connected else "not connected"
        legacy = (
            ", legacy OS support Enabled on every node"
            if all(h.legacy_os_support for h in ctx.hosts) and ctx.host.supports_v2
            else ""
        )
        return f"{os_name}: V1, guest NIC {where}{legacy}"
    if ctx.requirement.needed is False:
        return f"{os_name}: needs no Azure Benefits ({ctx.requirement.reason})"
    return f"{os_name}: V2, {GSI} on ({ctx.host.release} node)"


def _power(ctx: VMEvidence) -> list[Part]:
    vm = ctx.vm
    parts = [Part(PASS)]
    if not vm.running:
        parts.append(
            Part(
                FAIL,
                f"the VM is {vm.state}: a session host must run, and only a running guest can be checked",
                fixes.start_vm(vm.name, ctx.host.node, vm.state),
                HCI_ADMIN,
            )
        )
    if vm.generation == 1 and ctx.uses_v1 and vm.imds_nic is None and vm.state != "Off":
        parts.append(
            Part(
                FAIL,
                "Generation 1 VM that runs: Hyper-V adds the V1 guest NIC only while it is off",
                fixes.enable_fix(vm, ctx.host, "V1"),
                HCI_ADMIN,
            )
        )
    return parts


def _power_evidence(ctx: VMEvidence) -> str:
    return f"Generation {ctx.vm.generation}, {ctx.vm.state} on {ctx.host.node}"


def _kvp(ctx: VMEvidence) -> list[Part]:
    if ctx.vm.kvp_enabled:
        return [Part(PASS)]
    return [
        Part(
            WARN,
            "Hyper-V data exchange (Key-Value Pair Exchange) is off: the host cannot read the guest OS "
            "(Windows Admin Center shows the VM as Unknown)",
            f"on {ctx.host.node}: Enable-VMIntegrationService -VMName {fixes.ps(ctx.vm.name)} -Name '{KVP}'",
            HCI_ADMIN,
        )
    ]


def _kvp_evidence(ctx: VMEvidence) -> str:
    return f"{KVP} on; the guest reports {ctx.vm.os_name or 'no OS name'}"


def _activated_evidence(ctx: VMEvidence) -> str:
    probe = ctx.probe
    product = probe.license if probe else None
    if product is None:
        return "Windows is activated"
    return f"LicenseStatus {product.license_status} ({product.status_name}), {product.name}"


def _task_evidence(ctx: VMEvidence) -> str:
    probe = ctx.probe
    if probe is None:
        return "the task is healthy"
    task = probe.task
    if task.never_ran:
        ran = ", has not run yet (Windows is activated)"
    else:
        ran = f", last run {_when(task.last_run_time)} with {task.last_result_hex}"
    return f"\\Microsoft\\Windows\\Clip\\LicenseImdsIntegration {task.state}{ran}"


def _imds_evidence(ctx: VMEvidence) -> str:
    probe = ctx.probe
    attempt = probe.attempt(HOST_IMDS_ADDRESS) if probe else None
    text = (
        f"{HOST_IMDS_ADDRESS} answered in {attempt.latency_ms} ms"
        if attempt is not None and attempt.ok
        else "IMDS answered"
    )
    guest = ctx.guest
    if guest is not None and guest.document is not None and guest.document.ok:
        text += "; the attested document verifies (signature, chain, SAN, nonce)"
        if guest.document_expires is not None:
            text += f", valid until {_when(guest.document_expires)}"
    return text


def _guest_unasked(ctx: VMEvidence) -> list[Part] | None:
    """Why the guest's own facts are missing (a FAIL not assessed), or None when the probe answered."""
    if ctx.probe is not None:
        return None
    from hcibenefit.checks.guest_checks import REASONS, NotProbed, classify_failure

    answer = ctx.guest.answer if ctx.guest is not None else None
    if answer is None:
        code, detail = "no-answer", "the guest was not asked"
    elif isinstance(answer, NotProbed):
        code, detail = answer.reason, answer.detail
    elif isinstance(answer, tuple) and answer:
        _, code = classify_failure(answer[0])
        detail = "; ".join(e.message for e in answer)
    else:
        code, detail = "no-answer", "the guest sent no answer"
    reason = REASONS.get(code)
    title = reason.title if reason is not None else code
    fix = (
        reason.fix.format(vm=ctx.vm.name, cluster=ctx.cluster, node=ctx.host.node)
        if reason and reason.fix
        else None
    )
    return [Part(FAIL, f"not assessed: {title}: {detail}", fix, HCI_ADMIN, assessed=False)]


def _running(ctx: VMEvidence) -> str | None:
    if not ctx.vm.running:
        return f"the VM is {ctx.vm.state}; only a running guest can be asked (see vm-generation-power)"
    return None


def _update_applies(ctx: VMEvidence) -> str | None:
    if ctx.requirement.needed is False:
        return f"needs no Azure Benefits: {ctx.requirement.reason}"
    return _running(ctx)


def _update(ctx: VMEvidence) -> list[Part]:
    unasked = _guest_unasked(ctx)
    if unasked is not None:
        return unasked
    probe = ctx.probe
    assert probe is not None
    if probe.os is None:
        problem = probe.problem("os")
        why = f": {problem.message}" if problem else ""
        return [
            Part(FAIL, f"not assessed: the guest could not read its OS build{why}", None, GUEST_ADMIN, False)
        ]
    level = avd.update_level(probe.os.build, probe.os.ubr)
    fix = f"inside {ctx.vm.name}: install the latest cumulative update (Windows Update), then restart it"
    if level.verdict == "fail":
        return [
            Part(
                FAIL,
                f"{level.why}: this guest cannot activate through Azure VM verification",
                fix,
                GUEST_ADMIN,
            )
        ]
    if level.verdict == "unknown":
        return [Part(WARN, level.why, fix, GUEST_ADMIN)]
    return [Part(PASS)]


def _update_evidence(ctx: VMEvidence) -> str:
    probe = ctx.probe
    if probe is None or probe.os is None:
        return "the cumulative update supports Azure VM verification"
    return f"{probe.os.caption}: {avd.update_level(probe.os.build, probe.os.ubr).why}"


def _time(ctx: VMEvidence) -> list[Part]:
    unasked = _guest_unasked(ctx)
    if unasked is not None:
        return unasked
    probe = ctx.probe
    assert probe is not None
    window = probe.node_clock
    if probe.started_at is None:
        return [
            Part(FAIL, "not assessed: the guest did not report its clock", None, GUEST_ADMIN, assessed=False)
        ]
    if window is None:
        return [
            Part(NA, "the guest was reached over WinRM, not through its node: no node clock to judge it by")
        ]
    interval = avd.clock_skew(probe.started_at, window)
    skew = avd.nearest_zero(interval)
    parts = [Part(PASS)]
    fix = (
        f"inside {ctx.vm.name}: w32tm /resync /rediscover (a domain member follows the domain hierarchy: "
        "w32tm /config /syncfromflags:domhier /update); check the domain controllers' time source"
    )
    if abs(skew) > avd.KERBEROS_SKEW_S:
        parts.append(
            Part(
                FAIL,
                f"{_skew_text(interval, ctx.host.node)}: beyond Kerberos' 5-minute tolerance, users cannot sign in",
                fix,
                GUEST_ADMIN,
            )
        )
    elif abs(skew) > avd.CLOCK_WARN_S:
        parts.append(Part(WARN, f"{_skew_text(interval, ctx.host.node)}: drifting", fix, GUEST_ADMIN))
    w32time = probe.time.w32time_type if probe.time else None
    service = ctx.vm.service("Time Synchronization")
    if (w32time or "").casefold() == "nosync" and (service is None or not service.enabled):
        parts.append(
            Part(
                WARN,
                "nothing keeps the clock in sync: W32Time Type NoSync and Hyper-V Time Synchronization off",
                fix,
                GUEST_ADMIN,
            )
        )
    return parts


def _skew_text(interval: tuple[float, float], node: str) -> str:
    least, most = sorted(abs(v) for v in interval)
    ahead = "ahead of" if avd.nearest_zero(interval) > 0 else "behind"
    return f"the guest's clock is {least:.0f} to {most:.0f} s {ahead} {node}'s"


def _time_evidence(ctx: VMEvidence) -> str:
    probe = ctx.probe
    window = probe.node_clock if probe is not None else None
    if probe is None or probe.started_at is None or window is None:
        return "the clock is in sync"
    interval = avd.clock_skew(probe.started_at, window)
    service = ctx.vm.service("Time Synchronization")
    sync = "on" if service is not None and service.enabled else "off"
    w32time = probe.time.w32time_type if probe.time and probe.time.w32time_type else "unknown"
    if avd.nearest_zero(interval) == 0:
        close = f"within {max(abs(v) for v in interval):.0f} s of"
    else:
        close = _skew_text(interval, ctx.host.node).removeprefix("the guest's clock is ").rsplit(" ", 1)[0]
    return f"the guest's clock is {close} {ctx.host.node}'s; W32Time {w32time}, Hyper-V Time Synchronization {sync}"


def _agent(ctx: VMEvidence) -> list[Part]:
    unasked = _guest_unasked(ctx)
    if unasked is not None:
        return unasked
    probe = ctx.probe
    assert probe is not None
    agent = probe.avd_agent
    fix = (
        f"register {ctx.vm.name} with its host pool: a registration token (az desktopvirtualization hostpool "
        "retrieve-registration-token --name POOL --resource-group RG), then reinstall the Azure Virtual Desktop "
        f"Agent with it inside {ctx.vm.name}"
    )
    problem = probe.problem("avd_agent")
    if agent is None or problem is not None:
        why = problem.message if problem else "the guest did not report it"
        return [
            Part(FAIL, f"not assessed: the AVD agent's registry key: {why}", None, AVD_ADMIN, assessed=False)
        ]
    if not agent.installed:
        return [
            Part(
                FAIL,
                "the AVD agent is not installed (no HKLM\\SOFTWARE\\Microsoft\\RDInfraAgent)",
                fix,
                AVD_ADMIN,
            )
        ]
    if agent.is_registered != 1:
        shown = "missing" if agent.is_registered is None else str(agent.is_registered)
        return [Part(FAIL, f"the AVD agent is not registered (IsRegistered {shown})", fix, AVD_ADMIN)]
    return [Part(PASS)]


def _imds_applies(ctx: VMEvidence) -> str | None:
    vm = ctx.vm
    if vm.imds_nic is None and not (ctx.host.supports_v2 and vm.gsi_enabled):
        return "the VM has no Azure Benefits configured, so no path to IMDS (see benefits-configured)"
    return None


def _arc(ctx: VMEvidence) -> list[Part]:
    azure = ctx.azure
    assert azure is not None
    if azure.pair is None or azure.pair.azure is None:
        return []  # the cluster has no Azure resource: the registration item says so
    pair = azure.vm
    if pair is None:
        return [
            Part(
                FAIL,
                f"no Arc VM (Microsoft.HybridCompute/machines, kind HCI) in Azure for {ctx.vm.name}",
                "create session hosts through Azure Local VM management (Azure portal or az stack-hci-vm), which "
                "projects them into Azure with guest management",
                AZURE_ADMIN,
            )
        ]
    machine, instance = pair.azure.machine, pair.azure.instance
    parts = [Part(PASS)]
    agent = instance.guest_agent_status if instance else None
    if agent != "Succeeded":
        parts.append(
            Part(
                FAIL,
                f"guest management is not installed (guestAgentInstallStatus {agent or 'not reported'})",
                f"az stack-hci-vm update --name {fixes.sh(ctx.vm.name)} --resource-group "
                f"{fixes.sh(machine.resource_group)} --enable-vm-config-agent true  (then check the Arc agent in the guest)",
                AZURE_ADMIN,
            )
        )
    if machine.status != "Connected":
        parts.append(
            Part(
                FAIL,
                f"Arc machine {machine.name} is {machine.status or 'in no state'}",
                f"inside {ctx.vm.name}: azcmagent show, then azcmagent check",
                AZURE_ADMIN,
            )
        )
    return parts


def _arc_evidence(ctx: VMEvidence) -> str:
    pair = ctx.azure.vm if ctx.azure else None
    if pair is None:
        return "Arc VM present"
    instance = pair.azure.instance
    return (
        f"Arc machine {pair.azure.machine.name} {pair.azure.machine.status}, guest management "
        f"{instance.guest_agent_status if instance else 'unknown'} (joined by {pair.joined_by})"
    )


def _bridge(ctx: VMEvidence) -> list[Part]:
    azure = ctx.azure
    assert azure is not None
    pair = azure.pair
    if pair is None or pair.azure is None:
        return []
    if not pair.bridges:
        return [
            Part(
                FAIL,
                f"no Arc resource bridge serves {ctx.cluster}: AVD on Azure Local deploys and manages session hosts "
                "through Azure Local VM management",
                "deploy Azure Local VM management (the Arc resource bridge) for the cluster",
                AZURE_ADMIN,
            )
        ]
    return [Part(PASS)]


def _bridge_evidence(ctx: VMEvidence) -> str:
    pair = ctx.azure.pair if ctx.azure else None
    bridges = pair.bridges if pair else ()
    return ", ".join(f"{b.name} {b.status}" for b in bridges) or "resource bridge Running"


def _session_host(ctx: VMEvidence) -> list[Part]:
    azure = ctx.azure
    assert azure is not None
    if not azure.session_hosts:
        why = (
            "it has no Arc VM in Azure to be a session host"
            if azure.vm is None
            else "no AVD host pool has it as a session host"
        )
        return [
            Part(
                FAIL,
                f"not an AVD session host: {why}",
                "add it to the host pool (register the AVD agent with the pool's registration token)",
                AVD_ADMIN,
            )
        ]
    parts: list[Part] = []
    for host in azure.session_hosts:
        label = host.name
        if host.status != "Available":
            parts.append(
                Part(FAIL, f"{label}: status {host.status or 'unknown'}", _health_fix(ctx), AVD_ADMIN)
            )
        for check in host.health_checks:
            if check.succeeded:
                continue
            level = FAIL if check.name in avd.REQUIRED_HEALTH_CHECKS else WARN
            why = f" ({check.message})" if check.message else ""
            parts.append(
                Part(level, f"{label}: {check.name} {check.result}{why}", _health_fix(ctx), AVD_ADMIN)
            )
        for required in avd.REQUIRED_HEALTH_CHECKS:
            if host.health_check(required) is None:
                parts.append(Part(WARN, f"{label}: the service reported no {required}", None, AVD_ADMIN))
        if not parts:
            parts.append(Part(PASS))
    return parts


def _health_fix(ctx: VMEvidence) -> str:
    return (
        f"Azure portal, host pool, Session hosts, {ctx.vm.name}: read the failing health check; inside "
        f"{ctx.vm.name}: Get-Service RDAgentBootLoader, RDAgent, and the RDInfraAgent event log"
    )


def _session_evidence(ctx: VMEvidence) -> str:
    hosts = ctx.azure.session_hosts if ctx.azure else ()
    shown = []
    for host in hosts:
        passed = [c.name for c in host.health_checks if c.succeeded and c.name in avd.REQUIRED_HEALTH_CHECKS]
        beat = f", heartbeat {_when(host.last_heartbeat)}" if host.last_heartbeat else ""
        shown.append(f"{host.name} {host.status}{beat}; {', '.join(passed)} succeeded")
    return "; ".join(shown)


def _my_pools(ctx: VMEvidence) -> list[str]:
    hosts = ctx.azure.session_hosts if ctx.azure else ()
    return sorted({h.host_pool_id for h in hosts if h.host_pool_id})


def _pools(ctx: VMEvidence) -> list[Part]:
    azure = ctx.azure
    assert azure is not None
    parts: list[Part] = []
    for pool_id in _my_pools(ctx):
        name = pool_id.rsplit("/", 1)[-1]
        if pool_id in azure.pool_errors:
            parts.append(
                Part(
                    FAIL,
                    f"not assessed: host pool {name}: {azure.pool_errors[pool_id]}",
                    None,
                    AVD_ADMIN,
                    False,
                )
            )
            continue
        members = azure.pools.get(pool_id)
        if members is None:
            parts.append(Part(FAIL, f"not assessed: host pool {name} was not read", None, AVD_ADMIN, False))
            continue
        cloud = sorted(m.name.split("/", 1)[-1] for m in members.members if m.on_azure_vm)
        if cloud:
            parts.append(
                Part(
                    FAIL,
                    f"host pool {name} mixes Azure VMs ({', '.join(cloud)}) with Azure Local VMs: unsupported",
                    f"move the Azure VM session hosts to a host pool of their own (remove them from {name})",
                    AVD_ADMIN,
                )
            )
            continue
        stale = sorted(
            m.name.split("/", 1)[-1] for m in members.members if m.vm_resource_id not in azure.machines
        )
        if stale:
            parts.append(
                Part(
                    WARN,
                    f"host pool {name} also has {', '.join(stale)}, whose Arc machine is not in Azure (deleted, or in a "
                    "subscription not read): not a VM this checklist can vouch for",
                    f"remove the stale session hosts from {name}, or check them: hcibenefit checklist avd --host-pool "
                    f"{fixes.sh(members.pool.id)}",
                    AVD_ADMIN,
                )
            )
            continue
        parts.append(Part(PASS))
    return parts


def _pools_applies(ctx: VMEvidence) -> str | None:
    if ctx.azure is not None and not ctx.azure.session_hosts and not ctx.azure.unreadable:
        return "not a session host of any host pool (see the session host item)"
    return None


def _pools_evidence(ctx: VMEvidence) -> str:
    azure = ctx.azure
    if azure is None:
        return ""
    shown = []
    for pool_id in _my_pools(ctx):
        members = azure.pools.get(pool_id)
        if members is not None:
            count = len(members.members)
            shown.append(f"{members.pool.name}: {count} session host(s), every one an Azure Local VM")
    return "; ".join(shown)


ITEMS: tuple[ItemDef, ...] = (
    ItemDef(
        "cluster-release",
        "Cluster on a supported Azure Local release (23H2 or later)",
        "C1",
        HCI_ADMIN,
        {},
        judge=_release,
        evidence=_release_evidence,
    ),
    ItemDef(
        "cluster-registered",
        "Cluster registered with Azure",
        "C2",
        HCI_ADMIN,
        {
            "node.not-registered": FAIL,
            "azure.cluster-not-in-azure": FAIL,
        },
        evidence=_registration_evidence,
    ),
    ItemDef(
        "cluster-sync",
        "Synced with Azure recently and connected, far from the 30-day limit",
        "C2, C20",
        HCI_ADMIN,
        {
            "node.sync-overdue": WARN,
            "node.sync-near-limit": FAIL,
            "azure.sync-late": WARN,
            "azure.sync-near-limit": FAIL,
            "azure.sync-out-of-policy": FAIL,
            "azure.cluster-not-connected": WARN,
        },
        judge=_sync,
        evidence=_sync_evidence,
    ),
    ItemDef(
        "verification-enabled",
        "Azure VM verification on for the cluster",
        "C3",
        HCI_ADMIN,
        {"azure.imds-disabled": FAIL},
        judge=_imds_cluster,
        evidence=_imds_cluster_evidence,
    ),
    ItemDef(
        "verification-active",
        "Azure VM verification active on every node, not expiring within the window",
        "C3",
        HCI_ADMIN,
        {
            "node.attestation-expired": FAIL,
            "node.attestation-inactive": FAIL,
            "node.attestation-error": FAIL,
            "node.attestation-expiring": FAIL,
            "vm.owner-node-not-active": FAIL,
            "azure.imds-enabled-node-not-active": FAIL,
            "node.cluster-node-down": WARN,
        },
        evidence=_nodes_active_evidence,
    ),
    ItemDef(
        "imds-switch",
        "IMDS switch consistent on every node (V1)",
        "C3, C4",
        HCI_ADMIN,
        {
            "node.switch-missing": FAIL,
            "node.switch-altered": FAIL,
            "node.host-vnic-address": FAIL,
            "node.firewall-rule": FAIL,
            "vm.owner-node-switch-broken": FAIL,
            "vm.failover-node-lacks-switch": FAIL,
        },
        applies=_switch_applies,
        evidence=_switch_evidence,
    ),
    ItemDef(
        "benefits-configured",
        "Azure Benefits configured for the guest OS and platform (V2 GSI, or legacy OS support and guest NIC)",
        "C3, C4",
        HCI_ADMIN,
        {
            "vm.benefits-missing": FAIL,
            "vm.guest-nic-disconnected": FAIL,
            "vm.legacy-os-support-off": FAIL,
            "vm.attestation-disconnected": FAIL,
            "vm.guest-os-unknown": FAIL,
        },
        judge=_legacy_needed_parts,
        evidence=_benefits_evidence,
    ),
    ItemDef(
        "vm-generation-power",
        "VM running, and its Generation allows the configuration",
        "C4",
        HCI_ADMIN,
        {},
        judge=_power,
        evidence=_power_evidence,
    ),
    ItemDef(
        "kvp",
        "Hyper-V data exchange (KVP) on",
        "C4",
        HCI_ADMIN,
        {"vm.data-exchange-off": WARN},
        judge=_kvp,
        evidence=_kvp_evidence,
    ),
    ItemDef(
        "guest-update",
        "Guest cumulative update at or above the first that supports Azure VM verification",
        "C4",
        GUEST_ADMIN,
        {},
        judge=_update,
        evidence=_update_evidence,
        applies=_update_applies,
    ),
    ItemDef(
        "guest-activated",
        "Windows activated in the guest",
        "C4",
        GUEST_ADMIN,
        {"guest.activated": FAIL},
        evidence=_activated_evidence,
    ),
    ItemDef(
        "license-task",
        "LicenseImdsIntegration task healthy",
        "C4",
        GUEST_ADMIN,
        {"guest.license-task": FAIL},
        evidence=_task_evidence,
    ),
    ItemDef(
        "imds-document",
        "IMDS reachable, attested document valid and not about to expire",
        "C3, C4",
        HCI_ADMIN,
        {"guest.imds-reachable": FAIL, "guest.attested-document": FAIL},
        evidence=_imds_evidence,
        applies=_imds_applies,
    ),
    ItemDef(
        "time-sync",
        "Guest clock in sync (within Kerberos' 5 minutes of its node's)",
        "C13",
        GUEST_ADMIN,
        {},
        judge=_time,
        evidence=_time_evidence,
        applies=_running,
    ),
    ItemDef(
        "arc-guest-management",
        "Arc resource present with guest management installed",
        "C9",
        AZURE_ADMIN,
        {"azure.vm-not-projected": FAIL},
        judge=_arc,
        evidence=_arc_evidence,
        needs_azure=True,
    ),
    ItemDef(
        "resource-bridge",
        "Arc resource bridge Running",
        "C6",
        AZURE_ADMIN,
        {"azure.resource-bridge-not-running": FAIL},
        judge=_bridge,
        evidence=_bridge_evidence,
        needs_azure=True,
    ),
    ItemDef(
        "avd-agent",
        "AVD agent registered in the guest (RDInfraAgent IsRegistered 1)",
        "C14",
        AVD_ADMIN,
        {},
        judge=_agent,
        evidence=lambda ctx: "HKLM\\SOFTWARE\\Microsoft\\RDInfraAgent IsRegistered 1",
        applies=_running,
    ),
    ItemDef(
        "session-host",
        "AVD session host Available, MetaDataServiceCheck and DomainJoinedCheck passing",
        "C14",
        AVD_ADMIN,
        {},
        judge=_session_host,
        evidence=_session_evidence,
        needs_azure=True,
    ),
    ItemDef(
        "host-pool",
        "Host pool holds Azure Local VMs only (no mixing with Azure VMs)",
        "C15",
        AVD_ADMIN,
        {},
        judge=_pools,
        evidence=_pools_evidence,
        applies=_pools_applies,
        needs_azure=True,
    ),
)
ITEM_IDS: tuple[str, ...] = tuple(d.id for d in ITEMS)


def describe() -> list[dict[str, object]]:
    """Every item with its criterion and the catalogue checks behind it (for docs and `--help`)."""
    return [
        {"item": d.id, "title": d.title, "ref": d.ref, "checks": list(d.checks), "needs_azure": d.needs_azure}
        for d in ITEMS
    ]


__all__ = ["ITEMS", "ITEM_IDS", "ItemDef", "Part", "checklist_for", "describe"]
