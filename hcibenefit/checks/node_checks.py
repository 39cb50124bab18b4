"""Checks of a node's attestation service, switch, host vNIC, firewall and module (platform.md §3, §4, §9)."""

from __future__ import annotations

from collections.abc import Iterator

from hcibenefit.checks.model import CheckMeta, ClusterView, Finding, Severity
from hcibenefit.checks.registry import cluster_check, node_check
from hcibenefit.facts.host import HOST_IMDS_ADDRESS, HOST_SWITCH, HostFacts

UNREACHABLE = CheckMeta(
    "cluster.node-unreachable",
    "Node could not be assessed",
    Severity.HIGH,
    "cluster",
    "Check that {node} is up and WinRM answers (Test-WSMan {node}), then rerun",
)
NOT_REGISTERED = CheckMeta(
    "node.not-registered",
    "Cluster not registered with Azure",
    Severity.CRITICAL,
    "node",
    "Register the cluster: Register-AzStackHCI (or repair the registration if OutOfPolicy)",
)
EXPIRED = CheckMeta(
    "node.attestation-expired",
    "IMDS attestation expired",
    Severity.HIGH,
    "node",
    "hcibenefit host sync --cluster {cluster}  (runs Sync-AzureStackHCI on {node})",
)
INACTIVE = CheckMeta(
    "node.attestation-inactive",
    "IMDS attestation not active on node",
    Severity.HIGH,
    "node",
    "hcibenefit host enable --cluster {cluster} --node {node}  (Enable-AzStackHCIAttestation on {node})",
)
ERROR = CheckMeta(
    "node.attestation-error",
    "IMDS attestation in error",
    Severity.HIGH,
    "node",
    "Inspect Microsoft-AzureStack-HCI/Admin events on {node}; then Sync-AzureStackHCI",
)
EXPIRING = CheckMeta(
    "node.attestation-expiring",
    "IMDS attestation expires soon",
    Severity.MEDIUM,
    "node",
    "hcibenefit host sync --cluster {cluster}; check why {node} has not synced with Azure",
)
SWITCH_MISSING = CheckMeta(
    "node.switch-missing",
    "IMDS switch missing",
    Severity.HIGH,
    "node",
    "hcibenefit host enable --cluster {cluster} --node {node}  (creates AZSHCI_HOST-IMDS_DO_NOT_MODIFY)",
)
SWITCH_ALTERED = CheckMeta(
    "node.switch-altered",
    "IMDS switch renamed or of the wrong type",
    Severity.HIGH,
    "node",
    "On {node}: Disable-AzStackHCIAttestation -RemoveVM, then Enable-AzStackHCIAttestation -AddVM",
)
VNIC_ADDRESS = CheckMeta(
    "node.host-vnic-address",
    "Host vNIC lacks 169.254.169.253",
    Severity.HIGH,
    "node",
    "On {node}: Disable-AzStackHCIAttestation -RemoveVM, then Enable-AzStackHCIAttestation -AddVM",
)
FIREWALL = CheckMeta(
    "node.firewall-rule",
    "IMDS attestation firewall rule missing or disabled",
    Severity.MEDIUM,
    "node",
    "On {node}: Enable-NetFirewallRule -Name {rule}, or re-run Enable-AzStackHCIAttestation",
)
MODULE_MISSING = CheckMeta(
    "node.module-missing",
    "Az.StackHCI module missing",
    Severity.MEDIUM,
    "node",
    "On {node}: Install-Module -Name Az.StackHCI (2.3 or later)",
)
MODULE_OLD = CheckMeta(
    "node.module-old",
    "Az.StackHCI older than 2.3",
    Severity.LOW,
    "node",
    "On {node}: Update-Module -Name Az.StackHCI",
)
CLUSTER_NODE_DOWN = CheckMeta(
    "node.cluster-node-down",
    "Cluster node not Up",
    Severity.HIGH,
    "node",
    "Bring {node} up (Get-ClusterNode); attestation changes need every node Up",
)
SCRIPT_PROBLEM = CheckMeta(
    "node.facts-incomplete",
    "Some facts could not be read on the node",
    Severity.LOW,
    "node",
    "Run `{source}` on {node} to see the error",
)


# Applicability (checks.registry): None when the check is about the node, else why it is not.


def _active(host: HostFacts) -> str | None:
    status = host.attestation.status if host.attestation else "unknown"
    return None if status == "Active" else f"attestation is {status}, not Active"


def _has_switch(host: HostFacts) -> str | None:
    return None if (host.switch or host.attestation_switch) else "the node has no IMDS switch"


def _has_named_switch(host: HostFacts) -> str | None:
    return None if host.switch else f"the node has no switch named {HOST_SWITCH}"


def _has_module(host: HostFacts) -> str | None:
    return None if host.module_version else "Az.StackHCI is not installed"


@cluster_check(UNREACHABLE)
def unreachable_nodes(meta: CheckMeta, view: ClusterView) -> Iterator[Finding]:
    for node, why in view.unreachable.items():
        yield Finding(meta, view.name, node, why, {"node": node})


@node_check(NOT_REGISTERED, needs=("registration",))
def not_registered(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    status = host.registration.registration_status if host.registration else "unknown"
    if status != "Registered":
        yield Finding(meta, view.name, host.node, f"RegistrationStatus is {status}", {"node": host.node})


@node_check(EXPIRED, needs=("attestation",))
def attestation_expired(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.attestation and host.attestation.status == "Expired":
        when = (
            host.attestation.expiration.date().isoformat() if host.attestation.expiration else "unknown date"
        )
        yield Finding(meta, view.name, host.node, f"expired {when}: no sync with Azure", {"node": host.node})


@node_check(INACTIVE, needs=("attestation",))
def attestation_inactive(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.attestation and host.attestation.status == "Inactive":
        yield Finding(
            meta, view.name, host.node, "status Inactive (new or never enabled node)", {"node": host.node}
        )


@node_check(ERROR, needs=("attestation",))
def attestation_error(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.attestation and host.attestation.status not in ("Active", "Expired", "Inactive"):
        yield Finding(meta, view.name, host.node, f"status {host.attestation.status}", {"node": host.node})


@node_check(EXPIRING, needs=("attestation",), applies=_active)
def attestation_expiring(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    att = host.attestation
    if att and att.status == "Active" and att.expiration is not None:
        left = att.expiration - view.now
        if left.total_seconds() < view.expiry_warning_days * 86400:
            yield Finding(
                meta,
                view.name,
                host.node,
                f"expires in {max(0, left.days)} day(s), {att.expiration:%Y-%m-%d}",
                {"node": host.node},
            )


@node_check(SWITCH_MISSING)
def switch_missing(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.switch is None and host.attestation_switch is None:
        yield Finding(meta, view.name, host.node, f"no switch named {HOST_SWITCH}", {"node": host.node})


@node_check(SWITCH_ALTERED, applies=_has_switch)
def switch_altered(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    found = host.switch or host.attestation_switch
    if found is None:
        return
    if found.name != HOST_SWITCH:
        yield Finding(
            meta, view.name, host.node, f"the attestation switch is named {found.name!r}", {"node": host.node}
        )
    elif found.switch_type != "Internal":
        yield Finding(
            meta,
            view.name,
            host.node,
            f"switch type is {found.switch_type}, expected Internal",
            {"node": host.node},
        )


@node_check(VNIC_ADDRESS, applies=_has_named_switch)
def host_vnic_address(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.switch is not None and HOST_IMDS_ADDRESS not in (host.host_vnic_addresses or ()):
        shown = ", ".join(host.host_vnic_addresses or ()) or "none"
        yield Finding(meta, view.name, host.node, f"host vNIC addresses: {shown}", {"node": host.node})


@node_check(FIREWALL, applies=_has_named_switch)
def firewall_rule(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.switch is None:
        return
    allow = "AzsHci-ImdsAttestation-Allow-In"
    rule = next((r for r in host.firewall if r.name == allow), None)
    if rule is None or not rule.enabled:
        state = "missing" if rule is None else "disabled"
        yield Finding(meta, view.name, host.node, f"{allow} is {state}", {"node": host.node, "rule": allow})


@node_check(MODULE_MISSING)
def module_missing(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.module_version is None:
        yield Finding(meta, view.name, host.node, "Az.StackHCI is not installed", {"node": host.node})


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@node_check(MODULE_OLD, applies=_has_module)
def module_old(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.module_version is not None and _version_tuple(host.module_version) < (2, 3):
        yield Finding(meta, view.name, host.node, f"Az.StackHCI {host.module_version}", {"node": host.node})


@node_check(CLUSTER_NODE_DOWN, needs=("cluster_nodes",))
def cluster_node_down(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    # Reported once, by the first node that answered, for every member it sees not Up.
    if view.hosts and host is view.hosts[0]:
        for member in host.cluster_nodes:
            if member.state != "Up":
                yield Finding(
                    meta,
                    view.name,
                    member.name.lower(),
                    f"state {member.state} in Get-ClusterNode",
                    {"node": member.name},
                )


@node_check(SCRIPT_PROBLEM)
def facts_incomplete(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.problems:
        detail = "; ".join(f"{p.source}: {p.message}" for p in host.problems)
        sources = ", ".join(sorted({p.source for p in host.problems}))
        yield Finding(meta, view.name, host.node, detail, {"node": host.node, "source": sources})
