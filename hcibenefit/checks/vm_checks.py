"""Checks of one VM's Azure Benefits configuration as its owner node reports it (docs/platform.md).

Remediations are exact commands (`checks.fixes`), with what has to happen first where the command
cannot work yet: a Generation 1 VM that runs, an owner node that does not serve IMDS, a missing module."""

from __future__ import annotations

from collections.abc import Iterator

from hcibenefit.checks import fixes
from hcibenefit.checks.model import CheckMeta, Finding, Severity
from hcibenefit.checks.registry import VMContext, vm_check
from hcibenefit.facts.host import HOST_SWITCH

BENEFITS_MISSING = CheckMeta(
    "vm.benefits-missing",
    "VM needs Azure Benefits but has none",
    Severity.HIGH,
    "vm",
    "{fix}",
    verdict="missing",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
NIC_DISCONNECTED = CheckMeta(
    "vm.guest-nic-disconnected",
    "Guest IMDS NIC not connected to the IMDS switch",
    Severity.HIGH,
    "vm",
    "{fix}",
    verdict="broken",
    doc_url="https://learn.microsoft.com/azure-stack/hci/manage/azure-benefits",
)
NODE_NOT_SERVING = CheckMeta(
    "vm.owner-node-not-active",
    "Owner node's IMDS attestation is not active",
    Severity.HIGH,
    "vm",
    "{fix}  (the VM's own configuration is in place)",
    verdict="broken",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
LEGACY_OFF = CheckMeta(
    "vm.legacy-os-support-off",
    "V1 guest on a 23H2 node without legacy OS support",
    Severity.HIGH,
    "vm",
    "{fix}",
    verdict="broken",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
SWITCH_BROKEN = CheckMeta(
    "vm.owner-node-switch-broken",
    "Owner node's IMDS switch is missing or altered",
    Severity.HIGH,
    "vm",
    "{fix}",
    verdict="broken",
    doc_url="https://learn.microsoft.com/azure-stack/hci/manage/azure-benefits",
)
KVP_OFF = CheckMeta(
    "vm.data-exchange-off",
    "Hyper-V data exchange (KVP) is off",
    Severity.MEDIUM,
    "vm",
    # By id: -VMName takes a wildcard pattern (a VM named "avd-[ab]" would match others).
    "on {node}: Get-VM -Id {vm_id} | Enable-VMIntegrationService -Name 'Key-Value Pair Exchange'",
    verdict="unknown",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
OS_UNKNOWN = CheckMeta(
    "vm.guest-os-unknown",
    "Guest OS unknown, policy cannot decide",
    Severity.LOW,
    "vm",
    "{fix} (so its guest OS can be read); or list it in policy.require_benefits.name_globs",
    verdict="unknown",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
ATTESTATION_DISCONNECTED = CheckMeta(
    # Get-AzStackHCIVMAttestation never reports Disconnected (its Status means "configured"), so this id
    # fires on what a real host does report: a running guest that took no address on its IMDS NIC.
    "vm.attestation-disconnected",
    "Guest has no 169.254.x.x address on its IMDS NIC",
    Severity.MEDIUM,
    "vm",
    "inside {vm}: enable the AZSHCI_GUEST-IMDS_DO_NOT_MODIFY adapter and leave it on DHCP (it takes a "
    "169.254.x.x address); hcibenefit guest check --vm {vm_sh} shows what the guest sees",
    verdict="broken",
    doc_url="https://learn.microsoft.com/azure-stack/hci/manage/azure-benefits",
)


def _values(ctx: VMContext, **extra: str) -> dict[str, str]:
    return {
        "vm": ctx.vm.name,
        "vm_ps": fixes.ps(ctx.vm.name),
        "vm_sh": fixes.sh(ctx.vm.name),
        "vm_id": ctx.vm.id,
        "node": ctx.host.node,
        **extra,
    }


def _enable_fix(ctx: VMContext) -> str:
    """Give the VM benefits (or reconnect them), with what its node needs first."""
    transport = ctx.requirement.transport or (
        "V1" if _configured_v1(ctx) and not _configured_v2(ctx) else None
    )
    return fixes.enable_fix(ctx.vm, ctx.host, transport)


def _switch_fix(ctx: VMContext) -> str:
    """The owner node's switch: created by host enable when missing, rebuilt when altered."""
    switch = ctx.host.switch or ctx.host.attestation_switch
    if switch is None:
        node_steps = fixes.node_enable_steps(ctx.host.cluster, ctx.host.node, ctx.host.module_version)
    else:
        node_steps = [fixes.rebuild_switch(ctx.host.node)]
    return fixes.steps(*node_steps, fixes.enable_vm(ctx.vm.name))


def _configured_v1(ctx: VMContext) -> bool:
    return ctx.vm.imds_nic is not None


def _configured_v2(ctx: VMContext) -> bool:
    return ctx.host.supports_v2 and ctx.vm.gsi_enabled


# Applicability (checks.registry): None when the check is about the VM, else why it is not.


def _needs_benefits(ctx: VMContext) -> str | None:
    return None if ctx.requirement.needed is True else ctx.requirement.reason


def _has_guest_nic(ctx: VMContext) -> str | None:
    return None if _configured_v1(ctx) else "the VM has no guest IMDS NIC (V1)"


def _configured(ctx: VMContext) -> str | None:
    if _configured_v1(ctx) or _configured_v2(ctx):
        return None
    return "the VM has no Azure Benefits configured"


def _v1_on_v2_host(ctx: VMContext) -> str | None:
    if not _configured_v1(ctx) or _configured_v2(ctx):
        return "the VM does not rely on the V1 guest NIC"
    if not ctx.host.supports_v2:
        return f"{ctx.host.node} runs 22H2, where V1 needs no legacy OS support"
    return None


def _v1_only(ctx: VMContext) -> str | None:
    if not _configured_v1(ctx) or _configured_v2(ctx):
        return "the VM does not rely on the V1 guest NIC"
    return None


def _guest_addresses_visible(ctx: VMContext) -> str | None:
    if not _configured_v1(ctx):
        return "the VM has no guest IMDS NIC (V1)"
    if not ctx.vm.running or not ctx.vm.kvp_enabled:
        return "Hyper-V reports a guest's addresses only while it runs with data exchange on"
    return None


@vm_check(BENEFITS_MISSING, applies=_needs_benefits)
def benefits_missing(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    req = ctx.requirement
    if req.needed is not True:
        return
    if req.transport == "V1" and _configured_v1(ctx):
        return
    if req.transport == "V2" and _configured_v2(ctx):
        return
    if req.transport is None and (_configured_v1(ctx) or _configured_v2(ctx)):
        return
    wanted = {"V1": "guest NIC on the IMDS switch (V1)", "V2": "Guest Service Interface (V2)"}.get(
        req.transport or "", "Azure Benefits"
    )
    yield Finding(
        meta, ctx.cluster.name, ctx.vm.name, f"{req.reason}; no {wanted}", _values(ctx, fix=_enable_fix(ctx))
    )


@vm_check(NIC_DISCONNECTED, applies=_has_guest_nic)
def nic_disconnected(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    nics = ctx.vm.imds_nics
    loose = [n for n in nics if not n.connected or n.switch_name != HOST_SWITCH]
    if not loose:
        return
    nic = loose[0]
    where = f"connected to {nic.switch_name}" if nic.connected else "not connected"
    detail = f"guest NIC is {where}"
    if len(nics) > 1:
        # What a failed Add-AzStackHCIVMAttestation leaves behind: a second, half-configured NIC.
        verb = "is" if len(loose) == 1 else "are"
        detail = f"{len(nics)} guest NICs named {nic.name}; {len(loose)} {verb} {where} (left over)"
    switch = ctx.host.switch
    fix = _switch_fix(ctx) if switch is None or switch.switch_type != "Internal" else _enable_fix(ctx)
    yield Finding(meta, ctx.cluster.name, ctx.vm.name, detail, _values(ctx, fix=fix))


@vm_check(NODE_NOT_SERVING, applies=_configured)
def node_not_serving(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if not (_configured_v1(ctx) or _configured_v2(ctx)):
        return
    att = ctx.host.attestation
    status = att.status if att else "unknown"
    if status != "Active":
        fix = fixes.steps(*fixes.node_serving_steps(ctx.host)) or fixes.hcibenefit(
            "status", node=ctx.host.node
        )
        yield Finding(
            meta,
            ctx.cluster.name,
            ctx.vm.name,
            f"node {ctx.host.node} attestation is {status}",
            _values(ctx, fix=fix),
        )


@vm_check(LEGACY_OFF, applies=_v1_on_v2_host)
def legacy_off(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if _configured_v1(ctx) and not _configured_v2(ctx) and not ctx.host.legacy_os_support:
        yield Finding(
            meta,
            ctx.cluster.name,
            ctx.vm.name,
            f"node {ctx.host.node} has LegacyOsSupport Disabled",
            _values(ctx, fix=fixes.enable_fix(ctx.vm, ctx.host, "V1")),
        )


@vm_check(SWITCH_BROKEN, applies=_v1_only)
def switch_broken(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if not _configured_v1(ctx) or _configured_v2(ctx):
        return
    switch = ctx.host.switch
    if switch is None or switch.switch_type != "Internal":
        yield Finding(
            meta,
            ctx.cluster.name,
            ctx.vm.name,
            f"node {ctx.host.node} has no usable {HOST_SWITCH}",
            _values(ctx, fix=_switch_fix(ctx)),
        )


@vm_check(KVP_OFF)
def kvp_off(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if not ctx.vm.kvp_enabled and ctx.requirement.needed is None:
        yield Finding(
            meta, ctx.cluster.name, ctx.vm.name, "guest OS cannot be read without data exchange", _values(ctx)
        )


@vm_check(OS_UNKNOWN)
def os_unknown(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    # Data exchange off has its own check (vm.data-exchange-off) with its own fix.
    if ctx.requirement.needed is None and ctx.vm.kvp_enabled:
        start = fixes.start_vm(ctx.vm.name, ctx.host.node, ctx.vm.state, ctx.vm.id)
        if ctx.vm.running:
            start = f"on {ctx.host.node}: check the guest's Hyper-V integration services (Get-VM -Id {ctx.vm.id} | Get-VMIntegrationService)"
        yield Finding(meta, ctx.cluster.name, ctx.vm.name, ctx.requirement.reason, _values(ctx, fix=start))


@vm_check(ATTESTATION_DISCONNECTED, applies=_guest_addresses_visible)
def attestation_disconnected(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    nic = ctx.vm.imds_nic
    # Only when the NIC itself is fine: otherwise vm.guest-nic-disconnected already says why.
    if nic is None or not nic.connected or nic.switch_name != HOST_SWITCH:
        return
    if not ctx.vm.running or not ctx.vm.kvp_enabled:
        return
    if not any(address.startswith("169.254.") for address in nic.ip_addresses):
        shown = ", ".join(nic.ip_addresses) or "none"
        yield Finding(meta, ctx.cluster.name, ctx.vm.name, f"IMDS NIC addresses: {shown}", _values(ctx))
