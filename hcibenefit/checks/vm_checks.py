"""Checks of one VM's Azure Benefits configuration as its owner node reports it (platform.md §4-§6, §9)."""

from __future__ import annotations

from collections.abc import Iterator

from hcibenefit.checks.model import CheckMeta, Finding, Severity
from hcibenefit.checks.registry import VMContext, vm_check
from hcibenefit.facts.host import HOST_SWITCH

BENEFITS_MISSING = CheckMeta(
    "vm.benefits-missing",
    "VM needs Azure Benefits but has none",
    Severity.HIGH,
    "vm",
    "hcibenefit enable --vm {vm}{extra}",
    verdict="missing",
)
NIC_DISCONNECTED = CheckMeta(
    "vm.guest-nic-disconnected",
    "Guest IMDS NIC not connected to the IMDS switch",
    Severity.HIGH,
    "vm",
    "hcibenefit enable --vm {vm}  (reconnects the NIC once {node} has the switch)",
    verdict="broken",
)
NODE_NOT_SERVING = CheckMeta(
    "vm.owner-node-not-active",
    "Owner node's IMDS attestation is not active",
    Severity.HIGH,
    "vm",
    "Fix node {node} first (see its findings); the VM's configuration itself is in place",
    verdict="broken",
)
LEGACY_OFF = CheckMeta(
    "vm.legacy-os-support-off",
    "V1 guest on a 23H2 node without legacy OS support",
    Severity.HIGH,
    "vm",
    "On {node}: Enable-AzStackHCIAttestation -Force (turns on legacy OS support), then hcibenefit enable --vm {vm}",
    verdict="broken",
)
SWITCH_BROKEN = CheckMeta(
    "vm.owner-node-switch-broken",
    "Owner node's IMDS switch is missing or altered",
    Severity.HIGH,
    "vm",
    "Fix the switch on {node} (see its findings), then hcibenefit enable --vm {vm}",
    verdict="broken",
)
KVP_OFF = CheckMeta(
    "vm.data-exchange-off",
    "Hyper-V data exchange (KVP) is off",
    Severity.MEDIUM,
    "vm",
    "Enable-VMIntegrationService -VMName {vm} -Name 'Key-Value Pair Exchange'  (on {node})",
    verdict="unknown",
)
OS_UNKNOWN = CheckMeta(
    "vm.guest-os-unknown",
    "Guest OS unknown, policy cannot decide",
    Severity.LOW,
    "vm",
    "Start {vm} so its guest OS can be read, or list it in policy.require_benefits.name_globs",
    verdict="unknown",
)
ATTESTATION_DISCONNECTED = CheckMeta(
    "vm.attestation-disconnected",
    "Get-AzStackHCIVMAttestation reports Disconnected",
    Severity.MEDIUM,
    "vm",
    "hcibenefit enable --vm {vm}",
    verdict="broken",
)


def _values(ctx: VMContext, **extra: str) -> dict[str, str]:
    return {"vm": ctx.vm.name, "node": ctx.host.node, **extra}


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


def _listed_by_module(ctx: VMContext) -> str | None:
    return None if ctx.vm.attestation is not None else "Get-AzStackHCIVMAttestation does not list the VM"


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
    extra = ""
    if req.transport == "V1" and ctx.vm.generation == 1 and ctx.vm.state != "Off":
        extra = "  (Generation 1: power the VM off first, Hyper-V cannot add the NIC while it runs)"
    yield Finding(
        meta, ctx.cluster.name, ctx.vm.name, f"{req.reason}; no {wanted}", _values(ctx, extra=extra)
    )


@vm_check(NIC_DISCONNECTED, applies=_has_guest_nic)
def nic_disconnected(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    nic = ctx.vm.imds_nic
    if nic is not None and (not nic.connected or nic.switch_name != HOST_SWITCH):
        where = f"connected to {nic.switch_name}" if nic.connected else "not connected"
        yield Finding(meta, ctx.cluster.name, ctx.vm.name, f"guest NIC is {where}", _values(ctx))


@vm_check(NODE_NOT_SERVING, applies=_configured)
def node_not_serving(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if not (_configured_v1(ctx) or _configured_v2(ctx)):
        return
    att = ctx.host.attestation
    status = att.status if att else "unknown"
    if status != "Active":
        yield Finding(
            meta, ctx.cluster.name, ctx.vm.name, f"node {ctx.host.node} attestation is {status}", _values(ctx)
        )


@vm_check(LEGACY_OFF, applies=_v1_on_v2_host)
def legacy_off(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if _configured_v1(ctx) and not _configured_v2(ctx) and not ctx.host.legacy_os_support:
        yield Finding(
            meta,
            ctx.cluster.name,
            ctx.vm.name,
            f"node {ctx.host.node} has LegacyOsSupport Disabled",
            _values(ctx),
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
            _values(ctx),
        )


@vm_check(KVP_OFF)
def kvp_off(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    if not ctx.vm.kvp_enabled and ctx.requirement.needed is None:
        yield Finding(
            meta, ctx.cluster.name, ctx.vm.name, "guest OS cannot be read without data exchange", _values(ctx)
        )


@vm_check(OS_UNKNOWN)
def os_unknown(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    configured = _configured_v1(ctx) or _configured_v2(ctx)
    if ctx.requirement.needed is None and ctx.vm.kvp_enabled and not configured:
        yield Finding(meta, ctx.cluster.name, ctx.vm.name, ctx.requirement.reason, _values(ctx))


@vm_check(ATTESTATION_DISCONNECTED, applies=_listed_by_module)
def attestation_disconnected(meta: CheckMeta, ctx: VMContext) -> Iterator[Finding]:
    att = ctx.vm.attestation
    nic = ctx.vm.imds_nic
    # Only when the NIC itself looks fine: otherwise vm.guest-nic-disconnected already says why.
    if att is not None and att.status == "Disconnected" and (nic is None or nic.connected):
        yield Finding(
            meta, ctx.cluster.name, ctx.vm.name, "Get-AzStackHCIVMAttestation: Disconnected", _values(ctx)
        )
