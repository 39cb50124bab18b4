"""The checklist items only Azure can answer: the Arc resource and its guest management, the resource
bridge, the AVD session host and its health checks, the host pool. Pure, over what the Azure side read."""

from __future__ import annotations

from hcibenefit.checklist import avd
from hcibenefit.checklist.context import VMEvidence
from hcibenefit.checklist.judge import AVD_ADMIN, AZURE_ADMIN, FAIL, PASS, WARN, Part, when_text
from hcibenefit.checks import fixes


def arc(ctx: VMEvidence) -> list[Part]:
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


def arc_evidence(ctx: VMEvidence) -> str:
    pair = ctx.azure.vm if ctx.azure else None
    if pair is None:
        return "Arc VM present"
    instance = pair.azure.instance
    return (
        f"Arc machine {pair.azure.machine.name} {pair.azure.machine.status}, guest management "
        f"{instance.guest_agent_status if instance else 'unknown'} (joined by {pair.joined_by})"
    )


def bridge(ctx: VMEvidence) -> list[Part]:
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


def bridge_evidence(ctx: VMEvidence) -> str:
    pair = ctx.azure.pair if ctx.azure else None
    bridges = pair.bridges if pair else ()
    return ", ".join(f"{b.name} {b.status}" for b in bridges) or "resource bridge Running"


def session_host(ctx: VMEvidence) -> list[Part]:
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


def session_evidence(ctx: VMEvidence) -> str:
    hosts = ctx.azure.session_hosts if ctx.azure else ()
    shown = []
    for host in hosts:
        passed = [c.name for c in host.health_checks if c.succeeded and c.name in avd.REQUIRED_HEALTH_CHECKS]
        beat = f", heartbeat {when_text(host.last_heartbeat)}" if host.last_heartbeat else ""
        shown.append(f"{host.name} {host.status}{beat}; {', '.join(passed)} succeeded")
    return "; ".join(shown)


def _my_pools(ctx: VMEvidence) -> list[str]:
    hosts = ctx.azure.session_hosts if ctx.azure else ()
    return sorted({h.host_pool_id for h in hosts if h.host_pool_id})


def pools(ctx: VMEvidence) -> list[Part]:
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


def pools_applies(ctx: VMEvidence) -> str | None:
    if ctx.azure is not None and not ctx.azure.session_hosts and not ctx.azure.unreadable:
        return "not a session host of any host pool (see the session host item)"
    return None


def pools_evidence(ctx: VMEvidence) -> str:
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
