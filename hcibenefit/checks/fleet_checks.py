"""Checks that answer "will it stay so?": the 30-day sync that keeps attestation alive, legacy OS support on
every node a legacy guest can run on, and the IMDS switch on every node a V1 VM can fail over to.

They look across a cluster (ClusterView.hosts), because a VM that works tonight on its owner node breaks the
day it live-migrates to a node without the switch, and a node that stopped syncing expires weeks later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from hcibenefit.checks import fixes
from hcibenefit.checks.eligibility import requirement
from hcibenefit.checks.model import CheckMeta, ClusterView, Finding, Severity
from hcibenefit.checks.registry import VMContext, node_check, vm_check
from hcibenefit.facts.host import HOST_SWITCH, HostFacts

DOC_VERIFICATION = "https://learn.microsoft.com/azure/azure-local/deploy/azure-verification"
DOC_FAQ = "https://learn.microsoft.com/azure/azure-local/faq"
SYNC_FAILING_AFTER = dt.timedelta(days=2)
"""Sync is attempted every 12 hours; two days without one means it is failing, not late."""
SYNC_LIMIT = dt.timedelta(days=30)
SYNC_NEAR_LIMIT = dt.timedelta(days=25)
"""Out of policy at 30 days without a sync (attestation expires with it): five days' notice."""

SYNC_OVERDUE = CheckMeta(
    "node.sync-overdue",
    "No successful sync with Azure for more than two days",
    Severity.MEDIUM,
    "node",
    "{fix}; if the sync fails, check {node}'s outbound connectivity to Azure (on {node}: "
    "Test-AzureLocalConnectivity)",
    doc_url=DOC_FAQ,
)
SYNC_NEAR_LIMIT_META = CheckMeta(
    "node.sync-near-limit",
    "Days away from the 30-day sync limit (out of policy, attestation expires)",
    Severity.HIGH,
    "node",
    "{fix} now; at 30 days without a sync the cluster is out of policy and every guest loses Azure Benefits",
    doc_url=DOC_FAQ,
)
LEGACY_NEEDED = CheckMeta(
    "node.legacy-os-support-needed",
    "Legacy OS support off on a node that legacy guests (V1) can run on",
    Severity.HIGH,
    "node",
    "{fix}  (Enable-AzStackHCIAttestation turns on legacy OS support, which Windows 10 multi-session and ESU "
    "guests need)",
    doc_url=DOC_VERIFICATION,
)
FAILOVER_SWITCH = CheckMeta(
    "vm.failover-node-lacks-switch",
    "A node the V1 VM can fail over to has no usable IMDS switch",
    Severity.MEDIUM,
    "vm",
    "{fix}",
    doc_url=DOC_VERIFICATION,
)


def _registered(host: HostFacts) -> str | None:
    reg = host.registration
    if reg is None or reg.registration_status != "Registered":
        return "the cluster is not registered (see node.not-registered)"
    if reg.last_connected is None:
        return "Get-AzureStackHCI reports no LastConnected time"
    return None


def _since_sync(host: HostFacts, view: ClusterView) -> dt.timedelta:
    assert host.registration is not None and host.registration.last_connected is not None
    return view.now - host.registration.last_connected


@node_check(SYNC_OVERDUE, needs=("registration",), applies=_registered)
def sync_overdue(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if _registered(host) is not None:
        return
    since = _since_sync(host, view)
    if SYNC_FAILING_AFTER <= since < SYNC_NEAR_LIMIT:
        assert host.registration is not None and host.registration.last_connected is not None
        yield Finding(
            meta,
            view.name,
            host.node,
            f"last sync {host.registration.last_connected:%Y-%m-%d %H:%M} UTC, {since.days} day(s) ago "
            f"(ConnectionStatus {host.registration.connection_status or 'unknown'}); syncs run every 12 hours",
            {"node": host.node, "fix": fixes.host_sync(view.name, host.node)},
        )


@node_check(SYNC_NEAR_LIMIT_META, needs=("registration",), applies=_registered)
def sync_near_limit(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if _registered(host) is not None:
        return
    since = _since_sync(host, view)
    if since >= SYNC_NEAR_LIMIT:
        left = (SYNC_LIMIT - since).days
        when = f"{left} day(s) left" if left > 0 else f"over the limit by {-left} day(s)"
        yield Finding(
            meta,
            view.name,
            host.node,
            f"no sync for {since.days} days: {when}",
            {"node": host.node, "fix": fixes.host_sync(view.name, host.node)},
        )


def _v2_host(host: HostFacts) -> str | None:
    if not host.supports_v2:
        return f"{host.node} runs {host.release}, where every guest uses V1 and needs no legacy OS support"
    return None


@node_check(LEGACY_NEEDED, needs=("attestation",), applies=_v2_host)
def legacy_needed(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if _v2_host(host) is not None or host.legacy_os_support or view.policy is None:
        return
    # Any node of the cluster can own any clustered VM after a failover, so every legacy guest counts.
    legacy = sorted(
        vm.name
        for other in view.hosts
        for vm in other.vms
        if (req := requirement(vm, other, view.policy)).needed is True and req.transport == "V1"
    )
    if legacy:
        shown = ", ".join(legacy[:5]) + (f" and {len(legacy) - 5} more" if len(legacy) > 5 else "")
        yield Finding(
            meta,
            view.name,
            host.node,
            f"LegacyOsSupport is Disabled, and {shown} need V1 (legacy OS support) to activate",
            {
                "node": host.node,
                "fix": fixes.steps(*fixes.node_enable_steps(view.name, host.node, host.module_version)),
            },
        )


def _switch_steps(cluster: str, host: HostFacts) -> list[str]:
    """A missing switch comes with Enable-AzStackHCIAttestation; an altered one has to be rebuilt."""
    if host.switch is None and host.attestation_switch is None:
        return fixes.node_enable_steps(cluster, host.node, host.module_version)
    return [fixes.rebuild_switch(host.node)]


def _usable_switch(host: HostFacts) -> bool:
    return host.switch is not None and host.switch.switch_type == "Internal"


def _uses_v1(ctx: VMContext) -> str | None:
    if ctx.vm.imds_nic is None:
        return "the VM has no guest IMDS NIC (V1)"
    if ctx.host.supports_v2 and ctx.vm.gsi_enabled:
        return "the VM also has V2 (Guest Service Interface), which needs no switch"
    if not ctx.vm.is_clustered:
        return "the VM is not clustered: it does not fail over"
    return None


@vm_check(FAILOVER_SWITCH, applies=_uses_v1)
def failover_switch(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if _uses_v1(ctx) is not None:
        return
    # ASSUMPTION: every node of the cluster is a possible owner (preferred/possible owners are not collected).
    lacking_hosts = sorted(
        (h for h in ctx.cluster.hosts if h.node != ctx.host.node and not _usable_switch(h)),
        key=lambda h: h.node,
    )
    if not lacking_hosts:
        return
    lacking = [h.node for h in lacking_hosts]
    unknown = sorted(ctx.cluster.unreachable)
    detail = f"{', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no usable {HOST_SWITCH}"
    detail += "; a failover or live migration there leaves the guest NIC unconnected"
    if unknown:
        detail += f" (not checked: {', '.join(unknown)})"
    fix = fixes.steps(*(step for h in lacking_hosts for step in _switch_steps(ctx.cluster.name, h)))
    yield Finding(
        meta, ctx.cluster.name, ctx.vm.name, detail, {"vm": ctx.vm.name, "node": ctx.host.node, "fix": fix}
    )
