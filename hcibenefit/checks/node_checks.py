"""Checks of a node's attestation service, switch, host vNIC, firewall and module (docs/platform.md).

Every remediation is the exact command that fixes the finding (see `checks.fixes`); where that command
cannot work yet it starts with what to do first ("first ...; then ...")."""

from __future__ import annotations

from collections.abc import Iterator

from hcibenefit.checks import fixes
from hcibenefit.checks.model import CheckMeta, ClusterView, Finding, Severity
from hcibenefit.checks.registry import cluster_check, node_check
from hcibenefit.facts.host import HOST_IMDS_ADDRESS, HOST_SWITCH, HostFacts

UNREACHABLE = CheckMeta(
    "cluster.node-unreachable",
    "Node could not be assessed",
    Severity.HIGH,
    "cluster",
    "{fix}",
    doc_url="https://learn.microsoft.com/windows/win32/winrm/installation-and-configuration-for-windows-remote-management",
)
NOT_REGISTERED = CheckMeta(
    "node.not-registered",
    "Cluster not registered with Azure",
    Severity.CRITICAL,
    "node",
    "register {cluster} with Azure: Register-AzStackHCI on one of its nodes (repair an OutOfPolicy registration in the Azure portal)",
    doc_url="https://learn.microsoft.com/azure/azure-local/faq",
)
EXPIRED = CheckMeta(
    "node.attestation-expired",
    "IMDS attestation expired",
    Severity.HIGH,
    "node",
    "hcibenefit host sync --cluster {cluster_arg} --node {node_arg}",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
INACTIVE = CheckMeta(
    "node.attestation-inactive",
    "IMDS attestation not active on node",
    Severity.HIGH,
    "node",
    "{first}hcibenefit host enable --cluster {cluster_arg} --node {node_arg}",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
ERROR = CheckMeta(
    "node.attestation-error",
    "IMDS attestation in error",
    Severity.HIGH,
    "node",
    "on {node}: Get-WinEvent -LogName 'Microsoft-AzureStack-HCI/Admin' -MaxEvents 20 says why; then hcibenefit host sync --cluster {cluster_arg} --node {node_arg}",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
EXPIRING = CheckMeta(
    "node.attestation-expiring",
    "IMDS attestation expires soon",
    Severity.MEDIUM,
    "node",
    "hcibenefit host sync --cluster {cluster_arg} --node {node_arg}",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)
SWITCH_MISSING = CheckMeta(
    "node.switch-missing",
    "IMDS switch missing",
    Severity.HIGH,
    "node",
    "{first}hcibenefit host enable --cluster {cluster_arg} --node {node_arg}",
    doc_url="https://learn.microsoft.com/azure-stack/hci/manage/azure-benefits",
)
SWITCH_ALTERED = CheckMeta(
    "node.switch-altered",
    "IMDS switch renamed or of the wrong type",
    Severity.HIGH,
    "node",
    "{first}on {node}: Disable-AzStackHCIAttestation -RemoveVM -Force; then on {node}: Enable-AzStackHCIAttestation -AddVM -Force",
    doc_url="https://learn.microsoft.com/azure-stack/hci/manage/azure-benefits",
)
VNIC_ADDRESS = CheckMeta(
    "node.host-vnic-address",
    "Host vNIC lacks 169.254.169.253",
    Severity.HIGH,
    "node",
    "{first}on {node}: Disable-AzStackHCIAttestation -RemoveVM -Force; then on {node}: Enable-AzStackHCIAttestation -AddVM -Force",
    doc_url="https://learn.microsoft.com/azure-stack/hci/manage/azure-benefits",
)
FIREWALL = CheckMeta(
    "node.firewall-rule",
    "IMDS attestation firewall rule missing or disabled",
    Severity.MEDIUM,
    "node",
    "on {node}: Enable-NetFirewallRule -Name '{rule}'",
    doc_url="https://learn.microsoft.com/azure-stack/hci/manage/azure-benefits",
)
MODULE_MISSING = CheckMeta(
    "node.module-missing",
    "Az.StackHCI module missing",
    Severity.MEDIUM,
    "node",
    "on {node}: Install-Module -Name Az.StackHCI -MinimumVersion 2.3.0 -Force",
    doc_url="https://www.powershellgallery.com/packages/Az.StackHCI",
)
MODULE_OLD = CheckMeta(
    "node.module-old",
    "Az.StackHCI older than 2.3",
    Severity.LOW,
    "node",
    "on {node}: Update-Module -Name Az.StackHCI -Force",
    doc_url="https://www.powershellgallery.com/packages/Az.StackHCI",
)
CLUSTER_NODE_DOWN = CheckMeta(
    "node.cluster-node-down",
    "Cluster node not Up",
    Severity.HIGH,
    "node",
    "{fix}  (attestation changes need every node Up)",
    doc_url="https://learn.microsoft.com/powershell/module/failoverclusters/get-clusternode",
)
IMDS_CLUSTER_NETWORK = CheckMeta(
    "node.imds-cluster-network",
    "Host IMDS adapter in a cluster network",
    Severity.MEDIUM,
    "node",
    # Azure Local's TSG for a Partitioned network after the 22H2 to 23H2 upgrade: append the adapter's
    # InterfaceDescription to ClusSvc's ExcludeAdaptersByDescription, then restart the node (drained) for the
    # cluster service to read it.
    "on {node}: $p = 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\ClusSvc\\Parameters'; "
    "$v = (Get-ItemProperty -Path $p).ExcludeAdaptersByDescription; "
    "New-ItemProperty -Path $p -Name ExcludeAdaptersByDescription "
    "-Value ((@($v, {description}) -ne $null) -join ',') -Force; "
    "then Suspend-ClusterNode -Name {node_ps} -Drain -Wait; then on {node}: Restart-Computer -Force; "
    "then Resume-ClusterNode -Name {node_ps} -Failback Immediate",
    doc_url="https://github.com/Azure/AzureLocal-Supportability/blob/main/TSG/Upgrade/"
    "Known-issue-%2D-Cluster-network-shows-as-'Partitioned'-after-OS-upgrade-from-22H2-to-23H2.md",
)
SCRIPT_PROBLEM = CheckMeta(
    "node.facts-incomplete",
    "Some facts could not be read on the node",
    Severity.LOW,
    "node",
    "on {node}: run {source} to see its error; hcibenefit -vv status --node {node_arg} shows what came back",
    doc_url="https://learn.microsoft.com/azure/azure-local/deploy/azure-verification",
)


# Applicability (checks.registry): None when the check is about the node, else why it is not.


def _active(host: HostFacts) -> str | None:
    status = host.attestation.status if host.attestation else "unknown"
    return None if status == "Active" else f"attestation is {status}, not Active"


def _has_switch(host: HostFacts) -> str | None:
    return None if (host.switch or host.attestation_switch) else "the node has no IMDS switch"


def _has_named_switch(host: HostFacts) -> str | None:
    return None if host.switch else f"the node has no switch named {HOST_SWITCH}"


def _has_host_vnic(host: HostFacts) -> str | None:
    return None if host.host_vnic_addresses is not None else "the node has no host IMDS adapter"


def _has_module(host: HostFacts) -> str | None:
    return None if host.module_version else "Az.StackHCI is not installed"


def _values(host: HostFacts, view: ClusterView) -> dict[str, str]:
    """Template values: names (shell-quoted for commands) and what must happen first on this node."""
    first = f"first {fixes.install_module(host.node)}; then " if host.module_version is None else ""
    return {
        "node": host.node,
        "node_arg": fixes.sh(host.node),
        "cluster_arg": fixes.sh(view.name),
        "first": first,
    }


@cluster_check(UNREACHABLE)
def unreachable_nodes(meta: CheckMeta, view: ClusterView) -> Iterator[Finding]:
    for node, why in view.unreachable.items():
        test = fixes.hcibenefit("inventory", "test", node=node)
        if why.startswith("skipped:"):
            fix = f"fix the credential named above; {test} checks logon on every node without locking it out"
        else:
            fix = f"{test} shows whether {node} answers, its TLS and the logon; then hcibenefit status --node {fixes.sh(node)}"
        yield Finding(meta, view.name, node, why, {"node": node, "fix": fix})


@node_check(NOT_REGISTERED, needs=("registration",))
def not_registered(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    status = host.registration.registration_status if host.registration else "unknown"
    if status != "Registered":
        yield Finding(meta, view.name, host.node, f"RegistrationStatus is {status}", _values(host, view))


@node_check(EXPIRED, needs=("attestation",))
def attestation_expired(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.attestation and host.attestation.status == "Expired":
        when = (
            host.attestation.expiration.date().isoformat() if host.attestation.expiration else "unknown date"
        )
        yield Finding(meta, view.name, host.node, f"expired {when}: no sync with Azure", _values(host, view))


@node_check(INACTIVE, needs=("attestation",))
def attestation_inactive(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.attestation and host.attestation.status == "Inactive":
        yield Finding(
            meta, view.name, host.node, "status Inactive (new or never enabled node)", _values(host, view)
        )


@node_check(ERROR, needs=("attestation",))
def attestation_error(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.attestation and host.attestation.status not in ("Active", "Expired", "Inactive"):
        yield Finding(meta, view.name, host.node, f"status {host.attestation.status}", _values(host, view))


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
                _values(host, view),
            )


@node_check(SWITCH_MISSING)
def switch_missing(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.switch is None and host.attestation_switch is None:
        yield Finding(meta, view.name, host.node, f"no switch named {HOST_SWITCH}", _values(host, view))


@node_check(SWITCH_ALTERED, applies=_has_switch)
def switch_altered(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    found = host.switch or host.attestation_switch
    if found is None:
        return
    if found.name != HOST_SWITCH:
        yield Finding(
            meta, view.name, host.node, f"the attestation switch is named {found.name!r}", _values(host, view)
        )
    elif found.switch_type != "Internal":
        yield Finding(
            meta,
            view.name,
            host.node,
            f"switch type is {found.switch_type}, expected Internal",
            _values(host, view),
        )


@node_check(VNIC_ADDRESS, applies=_has_named_switch)
def host_vnic_address(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.switch is not None and HOST_IMDS_ADDRESS not in (host.host_vnic_addresses or ()):
        shown = ", ".join(host.host_vnic_addresses or ()) or "none"
        yield Finding(meta, view.name, host.node, f"host vNIC addresses: {shown}", _values(host, view))


@node_check(FIREWALL, applies=_has_named_switch)
def firewall_rule(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.switch is None:
        return
    allow = "AzsHci-ImdsAttestation-Allow-In"
    rule = next((r for r in host.firewall if r.name == allow), None)
    if rule is None or not rule.enabled:
        state = "missing" if rule is None else "disabled"
        yield Finding(
            meta, view.name, host.node, f"{allow} is {state}", {**_values(host, view), "rule": allow}
        )


@node_check(MODULE_MISSING)
def module_missing(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.module_version is None:
        yield Finding(meta, view.name, host.node, "Az.StackHCI is not installed", _values(host, view))


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@node_check(MODULE_OLD, applies=_has_module)
def module_old(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.module_version is not None and _version_tuple(host.module_version) < (2, 3):
        yield Finding(meta, view.name, host.node, f"Az.StackHCI {host.module_version}", _values(host, view))


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
                    {
                        "node": member.name,
                        "fix": fixes.start_cluster_node(member.name, member.state, host.node),
                    },
                )


@node_check(IMDS_CLUSTER_NETWORK, needs=("cluster_networks",), applies=_has_host_vnic)
def imds_cluster_network(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    """Az.StackHCI keeps the host IMDS adapter out of the cluster (ExcludeAdaptersByFriendlyName, and Role
    None on a network holding only that adapter). After a 22H2 to 23H2 upgrade the adapter can come back as
    a cluster network the cluster uses, Partitioned since each node's switch is Internal. A network of Role
    None that is not Partitioned is what Az.StackHCI itself leaves: the cluster does not use it."""
    for network in host.imds_cluster_networks():
        if network.role == "None" and network.state != "Partitioned":
            continue
        adapter = host.host_vnic_alias or HOST_SWITCH
        detail = (
            f"cluster network {network.name!r} (Role {network.role}, State {network.state}) "
            f"holds the host IMDS adapter {adapter!r}"
        )
        # Found by MAC address in host-facts; without it, read it by the adapter's name on the node.
        description = (
            fixes.ps(host.host_vnic_description)
            if host.host_vnic_description
            else f"(Get-NetAdapter -Name {fixes.ps(adapter)}).InterfaceDescription"
        )
        values = {**_values(host, view), "description": description, "node_ps": fixes.ps(host.node)}
        yield Finding(meta, view.name, host.node, detail, values)


@node_check(SCRIPT_PROBLEM)
def facts_incomplete(meta: CheckMeta, host: HostFacts, view: ClusterView) -> Iterator[Finding]:
    if host.problems:
        detail = "; ".join(f"{p.source}: {p.message}" for p in host.problems)
        sources = ", ".join(sorted({p.source for p in host.problems}))
        yield Finding(meta, view.name, host.node, detail, {**_values(host, view), "source": sources})
