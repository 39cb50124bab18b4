"""The AVD go/no-go items, in the order a change board reads them, each judged for one VM. Pure.

An item is a selection of catalogue checks (their results, as the sweep computes them) plus, where the
catalogue has no check for the criterion, an AVD judgement of its own (checklist.avd). A catalogue FAIL
becomes the item's FAIL or WARN (each item says which checks only warn), an ERROR a FAIL "not assessed",
N/A stays N/A. A PASS states the evidence positively (every node Active until when), so the sheet says
why it may be signed, not only that nothing was found.
"""

from __future__ import annotations

import datetime as dt

from hcibenefit.checklist import avd
from hcibenefit.checklist.azure_items import (
    arc,
    arc_evidence,
    bridge,
    bridge_evidence,
    pools,
    pools_applies,
    pools_evidence,
    session_evidence,
    session_host,
)
from hcibenefit.checklist.context import VMEvidence
from hcibenefit.checklist.judge import (
    AVD_ADMIN,
    AZURE_ADMIN,
    FAIL,
    GUEST_ADMIN,
    HCI_ADMIN,
    HCIBENEFIT,
    NA,
    PASS,
    SYNC_LIMIT_DAYS,
    WARN,
    ItemDef,
    Part,
    catalogue_parts,
    day_text,
    judge_item,
    merge_fixes,
    when_text,
)
from hcibenefit.checklist.model import Item, Remedy
from hcibenefit.checks import fixes
from hcibenefit.facts.guest import HOST_IMDS_ADDRESS
from hcibenefit.facts.host import GSI, HOST_SWITCH, KVP, HostFacts


def checklist_for(ctx: VMEvidence) -> tuple[Item, ...]:
    return tuple(judge_item(defn, ctx) for defn in ITEMS)


# --- helpers for evidence ------------------------------------------------------------------------------


def _nodes(ctx: VMEvidence) -> list[HostFacts]:
    order = {n.casefold(): i for i, n in enumerate(ctx.node_order)}
    return sorted(ctx.hosts, key=lambda h: order.get(h.node.casefold(), len(order)))


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
                f"{', '.join(nodes)}: last sync {when_text(last)}, {left:.1f} day(s) before the 30-day limit, inside the "
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
    text = f"last sync {when_text(oldest)} ({days:.1f} day(s) ago), {SYNC_LIMIT_DAYS - days:.1f} day(s) before the 30-day limit"
    pair = ctx.azure.pair if ctx.azure else None
    if pair is not None and pair.azure is not None:
        azure = pair.azure
        text += f"; Azure: lastSyncTimestamp {when_text(azure.last_sync)}, {azure.status}, {azure.connectivity_status}"
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
            f"{host.node} {att.status} until {day_text(att.expiration)}" if att else f"{host.node} unknown"
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
        ran = f", last run {when_text(task.last_run_time)} with {task.last_result_hex}"
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
            text += f", valid until {when_text(guest.document_expires)}"
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
        judge=arc,
        evidence=arc_evidence,
        needs_azure=True,
    ),
    ItemDef(
        "resource-bridge",
        "Arc resource bridge Running",
        "C6",
        AZURE_ADMIN,
        {"azure.resource-bridge-not-running": FAIL},
        judge=bridge,
        evidence=bridge_evidence,
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
        judge=session_host,
        evidence=session_evidence,
        needs_azure=True,
    ),
    ItemDef(
        "host-pool",
        "Host pool holds Azure Local VMs only (no mixing with Azure VMs)",
        "C15",
        AVD_ADMIN,
        {},
        judge=pools,
        evidence=pools_evidence,
        applies=pools_applies,
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
