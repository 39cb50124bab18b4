"""Mutation tests: an edit to a shipped script that would break hcibenefit on a real cluster fails here.

Each row of MUTATIONS is one such edit, applied in memory to the script text we ship. The mutated script is
run through the lab (which evaluates the PowerShell against emulated cmdlets) in a scenario that exercises
it, and what the client makes of the result (the parsed facts, the parsed per-VM answers, the state the
verifying read sees afterwards) is compared with what the unmodified script gives. The edit is caught when
the two differ or the script fails. A row whose edit no longer applies (the text changed) fails too, so
the table keeps up with the scripts.

The first rows are the edits issue 8 opens with; the rest are edits of the same kind elsewhere: a wrong
cmdlet, parameter or property name, a missing or short -Depth, a changed constant (NIC or switch name, IMDS
address, task path, header), positional arguments in the wrong order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from hcibenefit.facts.guest import (
    FactsError,
    body_document,
    parse_fan_out,
    parse_kick_body,
    parse_probe_body,
)
from hcibenefit.facts.host import parse_host_facts
from hcibenefit.lab.powershell.cmdlets.base import REGISTRY
from hcibenefit.lab.spec import default_fleet, parse_fleet
from hcibenefit.lab.state import LabClock
from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall, TerminatingError
from hcibenefit.remoting.arc import read_frame, run_command_parameters
from hcibenefit.remoting.catalog import (
    ARC_RUN,
    GUEST_KICK,
    GUEST_KICK_BODY,
    GUEST_PROBE,
    GUEST_PROBE_BODY,
    HOST_ATTESTATION_ENABLE,
    HOST_FACTS,
    HOST_SYNC,
    VM_BENEFITS_DISABLE,
    VM_BENEFITS_ENABLE,
    Script,
)
from tests.conftest import CollectingOutput
from tests.guest.conftest import GUEST_PASSWORD, FakeCredential, GuestDriver

Texts = Mapping[str, str]
"""Script key -> the text to run in place of the shipped one."""


@dataclass(frozen=True)
class Mutation:
    id: str
    script: Script
    old: str
    new: str
    why: str
    """What the edit breaks on a real cluster."""


MUTATIONS = [
    # --- the edits issue 8 opens with ---
    Mutation(
        "host-facts-no-depth", HOST_FACTS, "-InputObject $facts -Depth 8 -Compress", "-InputObject $facts -Compress",
        "5.1 serialises 2 levels: every VM becomes the string System.Collections.Specialized.OrderedDictionary",
    ),
    Mutation(
        "host-facts-nic-enabled", HOST_FACTS, "[bool]$adapter.Connected", "[bool]$adapter.Enabled",
        "VMNetworkAdapter has no Enabled: every guest NIC reads as not connected",
    ),
    Mutation(
        "probe-arguments-swapped", GUEST_PROBE, "-ArgumentList $Nonce, $TimeoutSec", "-ArgumentList $TimeoutSec, $Nonce",
        "the 10-digit nonce binds to [int]$TimeoutSec inside the guest",
    ),
    Mutation(
        "enable-gsi-name", VM_BENEFITS_ENABLE, "-Name 'Guest Service Interface'", "-Name 'Guest Services'",
        "no integration service has that name: V2 is never turned on",
    ),
    Mutation(
        "host-enable-no-force", HOST_ATTESTATION_ENABLE, "Enable-AzStackHCIAttestation -Force -Confirm:$false",
        "Enable-AzStackHCIAttestation", "the module's ShouldContinue prompts, and a WinRM pool has no host to ask",
    ),
    # --- host facts: names, properties, constants, depth ---
    Mutation(
        "host-facts-short-depth", HOST_FACTS, "-InputObject $facts -Depth 8 -Compress",
        "-InputObject $facts -Depth 3 -Compress", "network adapters and integration services are cut to type names",
    ),
    Mutation(
        "host-facts-switch-name", HOST_FACTS, "$SwitchName = 'AZSHCI_HOST-IMDS_DO_NOT_MODIFY'",
        "$SwitchName = 'AZSHCI_HOST-IMDS'", "the IMDS switch is never found",
    ),
    Mutation(
        "host-facts-cmdlet-name", HOST_FACTS, "@(Get-VMNetworkAdapter -VM $vms", "@(Get-VMNetworkAdapters -VM $vms",
        "no such cmdlet: no VM has network adapters",
    ),
    Mutation(
        "host-facts-parameter-name", HOST_FACTS, "@(Get-VMIntegrationService -VM $vms",
        "@(Get-VMIntegrationService -VMObject $vms", "no such parameter: no VM has integration services",
    ),
    Mutation(
        "host-facts-build-property", HOST_FACTS, "build = [string]$os.BuildNumber", "build = [string]$os.Build",
        "Win32_OperatingSystem has no Build: the release is unknown",
    ),
    Mutation(
        "host-facts-vnic-by-alias", HOST_FACTS, "-InterfaceIndex $netAdapter.ifIndex", "-InterfaceAlias $SwitchName",
        "where Az.StackHCI's rename failed the alias is vEthernet (...): the 169.254.169.253 address is lost",
    ),
    Mutation(
        "host-facts-kvp-namespace", HOST_FACTS, "-Namespace 'root\\virtualization\\v2'", "-Namespace 'root\\virtualization'",
        "the KVP class lives in root\\virtualization\\v2: no guest OS names",
    ),
    Mutation(
        "host-facts-kvp-item-name", HOST_FACTS, "if ($property.NAME -eq 'Name')", "if ($property.NAME -eq 'OSName')",
        "an exchange item's name is its Name property: no guest OS names",
    ),
    Mutation(
        "host-facts-kvp-item-data", HOST_FACTS, "{ $data = $property.VALUE }", "{ $data = $property.NAME }",
        "an exchange item's value is its Data property's VALUE: every guest OS reads as 'Data'",
    ),
    Mutation(
        "host-facts-vm-ip-loop", HOST_FACTS, "{ [string]$address })", "{ [string]$_ })",
        "$_ is the pipeline's variable, not the loop's: every VM address reads as empty",
    ),
    # --- host facts: cluster networks (issue 11) and the VM roles other nodes own (issue 10) ---
    Mutation(
        "host-facts-network-cmdlet", HOST_FACTS, "@(Get-ClusterNetwork |", "@(Get-ClusterNetworks |",
        "no such cmdlet: the IMDS adapter's cluster network is never seen",
    ),
    Mutation(
        "host-facts-network-name", HOST_FACTS, "name         = [string]$_.Name", "name         = [string]$_.Id",
        "networks named by id: the interface's network name matches none",
    ),
    Mutation(
        "host-facts-network-role", HOST_FACTS, "role         = [int]$_.Role", "role         = [int]$_.Metric",
        "a Cluster network reads as some other role",
    ),
    Mutation(
        "host-facts-network-state", HOST_FACTS, "state        = [string]$_.State", "state        = [string]$_.Status",
        "ClusterNetwork has no Status: a Partitioned network reads as no state",
    ),
    Mutation(
        "host-facts-network-address", HOST_FACTS, "address      = [string]$_.Address",
        "address      = [string]$_.Ipv4Addresses", "the subnet the adapter is matched by is lost",
    ),
    Mutation(
        "host-facts-network-mask", HOST_FACTS, "address_mask = [string]$_.AddressMask",
        "address_mask = [string]$_.Mask", "ClusterNetwork has no Mask: the subnet the adapter is matched by is lost",
    ),
    Mutation(
        "host-facts-interfaces-all-nodes", HOST_FACTS, "Get-ClusterNetworkInterface -Node $env:COMPUTERNAME |",
        "Get-ClusterNetworkInterface |", "every node's interfaces: another node's adapter is taken for this one's",
    ),
    Mutation(
        "host-facts-interface-name", HOST_FACTS, "[ordered]@{ name = [string]$_.Name; network",
        "[ordered]@{ name = [string]$_.Node; network", "interfaces named by node only",
    ),
    Mutation(
        "host-facts-interface-network", HOST_FACTS, "network = [string]$_.Network;",
        "network = [string]$_.NetworkName;", "ClusterNetworkInterface has no NetworkName: no adapter has a network",
    ),
    Mutation(
        "host-facts-interface-adapter", HOST_FACTS, "adapter = [string]$_.Adapter;", "adapter = [string]$_.AdapterId;",
        "the adapter's id never equals its InterfaceDescription: the IMDS interface is not recognised",
    ),
    Mutation(
        "host-facts-interface-state", HOST_FACTS, "adapter = [string]$_.Adapter; state = [string]$_.State }",
        "adapter = [string]$_.Adapter; state = [string]$_.Status }", "ClusterNetworkInterface has no Status",
    ),
    Mutation(
        "host-facts-vnic-description", HOST_FACTS, "$description = [string]$netAdapter.InterfaceDescription",
        "$description = [string]$netAdapter.Description", "NetAdapter's Description is not what the cluster names",
    ),
    Mutation(
        "host-facts-group-type", HOST_FACTS, "[string]$_.GroupType -eq 'VirtualMachine'",
        "[string]$_.GroupType -eq 'Virtual Machine'", "the enum's name has no space: no VM role is ever listed",
    ),
    Mutation(
        "host-facts-group-owner-filter", HOST_FACTS, "[string]$_.OwnerNode.Name -ne $env:COMPUTERNAME",
        "[string]$_.OwnerNode.Name -eq $env:COMPUTERNAME", "only this node's own roles: the unreachable node's VMs are never named",
    ),
    Mutation(
        "host-facts-group-name", HOST_FACTS, "[ordered]@{ name = [string]$_.Name; owner_node",
        "[ordered]@{ name = [string]$_.Id; owner_node", "VM roles named by their group id",
    ),
    Mutation(
        "host-facts-group-owner", HOST_FACTS, "owner_node = [string]$_.OwnerNode.Name;",
        "owner_node = [string]$_.Owner;", "ClusterGroup has no Owner: no role has an owner node",
    ),
    Mutation(
        "host-facts-group-state", HOST_FACTS, "owner_node = [string]$_.OwnerNode.Name; state = [string]$_.State }",
        "owner_node = [string]$_.OwnerNode.Name; state = [string]$_.Status }", "ClusterGroup has no Status",
    ),
    Mutation(
        "host-facts-network-problem-source", HOST_FACTS, "catch { Add-Problem 'Get-ClusterNetwork' $_ }",
        "catch { Add-Problem 'ClusterNetwork' $_ }", "the check's ERROR cannot say Get-ClusterNetwork failed, nor why",
    ),
    Mutation(
        "host-facts-interface-problem-source", HOST_FACTS, "catch { Add-Problem 'Get-ClusterNetworkInterface' $_ }",
        "catch { }", "a node without FailoverClusters would not say why its interfaces are missing",
    ),
    Mutation(
        "host-facts-group-problem-source", HOST_FACTS, "catch { Add-Problem 'Get-ClusterGroup' $_ }",
        "catch { Add-Problem 'Get-ClusterNode' $_ }", "the failure is blamed on the wrong cmdlet",
    ),
    Mutation(
        "host-facts-networks-outside-try", HOST_FACTS,
        "$facts.cluster_networks = $null\ntry {\n    $facts.cluster_networks = @(Get-ClusterNetwork",
        "$facts.cluster_networks = @(Get-ClusterNetwork -ErrorAction SilentlyContinue); try {\n    $facts.cluster_networks = @(Get-ClusterNetwork",
        "a node without FailoverClusters fails the whole script (CommandNotFoundException outside the try)",
    ),
    # --- VM changes ---
    Mutation(
        "enable-nic-name", VM_BENEFITS_ENABLE, "$GuestNicName = 'AZSHCI_GUEST-IMDS_DO_NOT_MODIFY'",
        "$GuestNicName = 'AZSHCI_GUEST_IMDS_DO_NOT_MODIFY'", "the NIC is added under a name nothing recognises",
    ),
    Mutation(
        "enable-switch-name", VM_BENEFITS_ENABLE, "$SwitchName = 'AZSHCI_HOST-IMDS_DO_NOT_MODIFY'",
        "$SwitchName = 'AZSHCI-HOST-IMDS'", "the NIC cannot be connected: no such switch",
    ),
    Mutation(
        "enable-by-name", VM_BENEFITS_ENABLE, "$vm = Get-VM -Id $id\n        Enable-VMIntegrationService",
        "$vm = Get-VM -Name $id\n        Enable-VMIntegrationService", "the id is not a VM name: nothing is selected",
    ),
    Mutation(
        "enable-no-depth", VM_BENEFITS_ENABLE, "results = $results.ToArray() }) -Depth 5", "results = $results.ToArray() })",
        "each VM's error is cut to a type name",
    ),
    Mutation(
        "disable-gsi-name", VM_BENEFITS_DISABLE, "-Name 'Guest Service Interface'", "-Name 'Guest Service'",
        "the Guest Service Interface stays on",
    ),
    Mutation(
        "disable-nic-name", VM_BENEFITS_DISABLE, "$GuestNicName = 'AZSHCI_GUEST-IMDS_DO_NOT_MODIFY'",
        "$GuestNicName = 'AZSHCI-GUEST-IMDS_DO_NOT_MODIFY'", "the guest NIC is never removed",
    ),
    # --- node changes ---
    Mutation(
        "sync-cmdlet", HOST_SYNC, "    Sync-AzureStackHCI | Out-Null", "    Get-AzureStackHCI | Out-Null",
        "nothing renews the node's attestation",
    ),
    # --- guests ---
    Mutation(
        "probe-by-name", GUEST_PROBE, "Invoke-Command -VMId $targets.ToArray()", "Invoke-Command -VMName $targets.ToArray()",
        "the ids are not VM names: no guest is reached",
    ),
    Mutation(
        "probe-depth-1", GUEST_PROBE, "failures      = $failureRecords.ToArray()\n    }) -Depth 4",
        "failures      = $failureRecords.ToArray()\n    }) -Depth 1", "every guest's answer is cut to a type name",
    ),
    Mutation(
        "probe-body-imds-address", GUEST_PROBE_BODY, "@('169.254.169.254', '169.254.169.253')",
        "@('169.254.169.254', '169.254.169.252')", "the guest asks an address nobody answers",
    ),
    Mutation(
        "probe-body-metadata-header", GUEST_PROBE_BODY, "-Headers @{ Metadata = 'true' }", "-Headers @{ Metadata = 'yes' }",
        "IMDS refuses a request without Metadata: true",
    ),
    Mutation(
        "probe-body-task-path", GUEST_PROBE_BODY, "$TaskPath = '\\Microsoft\\Windows\\Clip\\'",
        "$TaskPath = '\\Microsoft\\Windows\\Clip'", "a task path without its trailing backslash matches no task",
    ),
    Mutation(
        "probe-body-system-proxy", GUEST_PROBE_BODY, "[System.Net.WebRequest]::DefaultWebProxy = $null", "",
        "a machine-wide proxy gets the request for 169.254.169.253",
    ),
    Mutation(
        "probe-body-progress", GUEST_PROBE_BODY, "$ProgressPreference = 'SilentlyContinue'\n", "",
        "5.1's Invoke-RestMethod writes progress records, streamed to the client: more Receives per guest",
    ),
    Mutation(
        "probe-body-no-depth", GUEST_PROBE_BODY, "    }) -Depth 6 -Compress", "    }) -Compress",
        "licenses, task and events are cut to type names",
    ),
    Mutation(
        "probe-body-license-property", GUEST_PROBE_BODY, "[int]$product.GracePeriodRemaining",
        "[int]$product.GraceRemaining", "no such property: the grace period reads 0",
    ),
    Mutation(
        "probe-body-update-revision", GUEST_PROBE_BODY, "{ [int]$currentVersion.UBR }",
        "{ [int]$currentVersion.CurrentBuild }", "the build number read as the update revision: every guest looks patched",
    ),
    Mutation(
        "probe-body-agent-key", GUEST_PROBE_BODY, "'HKLM:\\SOFTWARE\\Microsoft\\RDInfraAgent'",
        "'HKLM:\\SOFTWARE\\Microsoft\\RDAgent'", "no such key: a registered AVD agent reads as not installed",
    ),
    Mutation(
        "probe-body-agent-missing-is-a-problem", GUEST_PROBE_BODY, "-notlike 'PathNotFound*'",
        "-notlike 'ItemNotFound*'", "a guest without the AVD agent reports a problem instead of its absence",
    ),
    Mutation(
        "probe-node-clock-missing", GUEST_PROBE, "$nodeFinishedAt = (Get-Date).ToUniversalTime().ToString('o')",
        "$nodeFinishedAt = $null", "no node clock: the guests' clocks cannot be judged",
    ),
    Mutation(
        "kick-arguments-swapped", GUEST_KICK, "-ArgumentList $EnableTask, $MaxRuns, $WaitSec",
        "-ArgumentList $MaxRuns, $EnableTask, $WaitSec", "[bool]$EnableTask gets 2 and [int]$MaxRuns gets $true",
    ),
    Mutation(
        "kick-body-task-name", GUEST_KICK_BODY, "$TaskName = 'LicenseImdsIntegration'",
        "$TaskName = 'LicenseIMDSIntegrationTask'", "no such task: nothing is started",
    ),
    # --- the Arc run-command wrapper ---
    Mutation(
        "arc-run-no-decode", ARC_RUN, "[void]$ps.AddScript((ConvertFrom-Base64Text $Script))",
        "[void]$ps.AddScript($Script)", "the script's base64 text is run as PowerShell",
    ),
    Mutation(
        "arc-run-no-parameters", ARC_RUN, "            [void]$ps.AddParameter($property.Name, $property.Value)\n",
        "", "the script's parameters are dropped: the VMs to change never arrive",
    ),
    Mutation(
        "arc-run-no-credential", ARC_RUN, "[void]$ps.AddParameter($property.Name, $credential)",
        "[void]$ps.AddParameter($property.Name, [string]$property.Value.username)",
        "a user name where a PSCredential is expected: PowerShell Direct cannot log on",
    ),
    Mutation(
        "arc-run-frame-length", ARC_RUN, "'hcibenefit-arc-run/1 begin ' + $encoded.Length",
        "'hcibenefit-arc-run/1 begin ' + $json.Length", "the frame's length is wrong: every answer reads as truncated",
    ),
    Mutation(
        "kick-body-start-cmdlet", GUEST_KICK_BODY, "        Start-ScheduledTask -TaskPath",
        "        Start-ScheduledJob -TaskPath", "no such cmdlet in the guest: nothing is started",
    ),
]  # fmt: skip


# --- running scripts the way the client does ------------------------------------------------------

FROZEN = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def _frozen_lab_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab's clock stands still (but for what scripts sleep), so two runs can be compared."""
    monkeypatch.setattr(LabClock, "now", lambda self: FROZEN + dt.timedelta(seconds=self._offset))
    monkeypatch.setattr(LabClock, "monotonic", lambda self: 1_000.0 + self._offset)


def _run(
    driver: GuestDriver,
    node: str,
    text: str,
    params: Mapping[str, Any] | None = None,
    progress: list[int] | None = None,
    **call: Any,
) -> Any:
    """Run `text` on `node` as one WinRM pipeline; the parsed JSON document, or why there is none.

    `progress`, when given, gets the number of progress records the pipeline wrote: each is a message the
    client must receive, so they cost round trips."""
    out = CollectingOutput()
    command = CommandSpec(text, True, tuple((params or {}).items()))
    try:
        out.output += driver.engine.execute(
            PipelineCall(node, "labadmin", "Microsoft.PowerShell", (command,), (), **call), out
        )
    except TerminatingError as exc:
        return ("terminating", exc.error_id)
    finally:
        if progress is not None:
            progress.append(len(out.progress))
    if out.errors:
        return ("errors", [e["error_id"] for e in out.errors])
    if len(out.output) != 1:
        return ("outputs", len(out.output))
    try:
        return json.loads(out.output[0])
    except ValueError:
        return ("not JSON", out.output[0][:80])


def _plain(value: Any) -> Any:
    """Dataclasses to dicts and datetimes to text, without what varies between two runs of the same script
    (measured latencies, signatures)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if k not in ("latency_ms", "document_raw")}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _host_view(driver: GuestDriver, node: str, text: str | None = None) -> Any:
    document = _run(driver, node, text or HOST_FACTS.text(), {"IncludeGuestOs": True})
    if not isinstance(document, dict):
        return document
    try:
        facts = parse_host_facts(document, node=node, cluster=driver.state.node(node).cluster)
    except FactsError as exc:
        return ("FactsError", str(exc))
    return _plain(facts)


def _text(texts: Texts, script: Script) -> str:
    return texts.get(script.key, script.text())


# --- scenarios: what the client sees from one script in the situations it is meant for ------------


CLUSTER_CMDLETS = ("get-clusternetwork", "get-clusternetworkinterface", "get-clustergroup")


def host_facts_scenario(texts: Texts) -> Any:
    """22H2, 23H2 with V2, a renamed switch, 24H2 whose host vNIC kept its default name; and a node where the
    FailoverClusters cmdlets the script added for issues 10 and 11 do not exist (the script says why)."""
    driver = GuestDriver(default_fleet())
    nodes = ["lab01-n1", "lab02-n1", "lab02-n2", "lab04-n2"]
    views = {node: _host_view(driver, node, _text(texts, HOST_FACTS)) for node in nodes}
    saved = {name: REGISTRY.cmdlets[name].available for name in CLUSTER_CMDLETS}
    try:
        for name in CLUSTER_CMDLETS:
            REGISTRY.cmdlets[name].available = lambda machine: False
        views["no-failover-clustering"] = _host_view(driver, "lab02-n1", _text(texts, HOST_FACTS))
    finally:
        for name, available in saved.items():
            REGISTRY.cmdlets[name].available = available
    return views


def vm_enable_scenario(texts: Texts) -> Any:
    driver = GuestDriver(default_fleet())
    calls = {
        "lab01-n1": {"NicVMId": driver.ids(["avd-missing-nic"])},
        # A running Generation 1 VM cannot take a NIC: the failure path (error record, leftovers) too.
        "lab01-n2": {"NicVMId": driver.ids(["avd-gen1-running"])},
        "lab02-n1": {
            "GsiVMId": driver.ids(["w11ms-gsi-off"]),
            "ReconnectVMId": driver.ids(["w10ms-legacy-ok"]),
        },
    }
    sent = {
        node: _run(driver, node, _text(texts, VM_BENEFITS_ENABLE), params) for node, params in calls.items()
    }
    return {"sent": sent, "after": {node: _host_view(driver, node) for node in calls}}


def vm_disable_scenario(texts: Texts) -> Any:
    driver = GuestDriver(default_fleet())
    calls = {
        "lab01-n1": {"NicVMId": driver.ids(["avd-ok-01"])},
        "lab02-n1": {"GsiVMId": driver.ids(["w11ms-v2-ok"])},
    }
    sent = {
        node: _run(driver, node, _text(texts, VM_BENEFITS_DISABLE), params) for node, params in calls.items()
    }
    return {"sent": sent, "after": {node: _host_view(driver, node) for node in calls}}


NEW_NODES = """
clusters:
  - name: old
    version: 22H2
    nodes: [{name: o1}, {name: o2, attestation: Inactive, switch: missing}]
  - name: new
    version: 24H2
    nodes: [{name: n1}, {name: n2, attestation: Inactive, switch: missing}]
"""


def host_enable_scenario(texts: Texts) -> Any:
    """Enable from a session that can delegate (CredSSP), in a pool without a host, on 22H2 and 24H2."""
    driver = GuestDriver(parse_fleet(NEW_NODES, "mutations.yaml"))
    text = _text(texts, HOST_ATTESTATION_ENABLE)
    sent = {node: _run(driver, node, text, auth="credssp", can_delegate=True) for node in ("o2", "n2")}
    return {"sent": sent, "after": {node: _host_view(driver, node) for node in ("o1", "o2", "n1", "n2")}}


def host_sync_scenario(texts: Texts) -> Any:
    driver = GuestDriver(default_fleet())
    sent = _run(driver, "lab01-n3", _text(texts, HOST_SYNC))
    return {"sent": sent, "after": _host_view(driver, "lab01-n3")}


PROXY_GUEST = """
clusters:
  - name: c
    version: 23H2
    nodes: [n1]
    vms:
      - {name: behind-proxy, node: n1, benefits: v2, guest: {license_status: 5, system_proxy: true}}
      # An AVD session host whose clock is off: its agent's registration and clock are read (checklist avd).
      - {name: session-host, node: n1, benefits: v2, azure: {host_pool: pool}, guest: {clock_skew_s: 90}}
"""


def _fan_out_view(
    driver: GuestDriver, document: Any, vms: list[str], parse: Callable[[Any], Any], body: str
) -> Any:
    if not isinstance(document, dict):
        return document
    try:
        fan = parse_fan_out(document, schema=document.get("schema", ""))
    except FactsError as exc:
        return ("FactsError", str(exc))
    view: dict[str, Any] = {}
    for name, vm_id in zip(vms, driver.ids(vms), strict=True):
        outputs = fan.output_of(name, vm_id)
        if outputs:
            try:
                view[name] = _plain(parse(body_document(outputs, schema=body)))
            except FactsError as exc:
                view[name] = ("FactsError", str(exc))
        else:
            view[name] = [(f.error_id, f.vm_id) for f in fan.failures_of(name, vm_id)]
    # The node's clock around the fan-out (guest-probe/3): what the guests' clocks are judged by.
    view["node_clock"] = _plain(fan.node_clock)
    return view


def _ran_once(driver: GuestDriver, name: str) -> None:
    vm = driver.state.vm(name)
    assert vm is not None
    driver.state.start_task(vm)
    driver.state.clock.sleep(vm.guest.task_run_seconds + 1)
    driver.state.advance_guest(vm)


def guest_probe_scenario(texts: Texts) -> Any:
    views = {}
    for spec, node, vms in (
        (
            default_fleet(),
            "lab01-n1",
            ["avd-ok-01", "avd-twice", "avd-imds-blocked", "avd-off", "avd-wrong-nonce"],
        ),
        (parse_fleet(PROXY_GUEST, "proxy.yaml"), "n1", ["behind-proxy", "session-host"]),
    ):
        driver = GuestDriver(spec)
        for name in vms[1:3]:
            _ran_once(driver, name)  # so the guest has events to report
        params = {
            "VMId": driver.ids(vms),
            "Credential": FakeCredential("Administrator", GUEST_PASSWORD),
            "ProbeScript": _text(texts, GUEST_PROBE_BODY),
            "Nonce": "4711471147",
        }
        progress: list[int] = []
        document = _run(driver, node, _text(texts, GUEST_PROBE), params, progress=progress)
        views[node] = _fan_out_view(driver, document, vms, parse_probe_body, GUEST_PROBE_BODY.key)
        views[f"{node}: progress records"] = progress
    return views


def guest_kick_scenario(texts: Texts) -> Any:
    driver = GuestDriver(default_fleet())
    vms = ["avd-twice", "azedition-task-disabled", "avd-missing-nic"]
    owners = {driver.state.vm(v).node for v in vms}  # type: ignore[union-attr]
    views = {}
    for node in sorted(owners):
        on_node = [v for v in vms if driver.state.vm(v).node == node]  # type: ignore[union-attr]
        params = {
            "VMId": driver.ids(on_node),
            "Credential": FakeCredential("Administrator", GUEST_PASSWORD),
            "KickScript": _text(texts, GUEST_KICK_BODY),
            "EnableTask": True,
        }
        document = _run(driver, node, _text(texts, GUEST_KICK), params)
        views[node] = _fan_out_view(driver, document, on_node, parse_kick_body, GUEST_KICK_BODY.key)
    return views


def arc_run_scenario(texts: Texts) -> Any:
    """Host facts and a VM change through the Arc run-command wrapper, read back as the Arc transport does."""
    from hcibenefit.inventory.credentials import Secret
    from hcibenefit.remoting.session import CredentialParameter

    driver = GuestDriver(default_fleet())
    views = {}
    calls: list[tuple[str, Script, dict[str, Any]]] = [
        ("lab02-n1", HOST_FACTS, {"IncludeGuestOs": True}),
        ("lab01-n1", VM_BENEFITS_ENABLE, {"NicVMId": driver.ids(["avd-missing-nic"])}),
        ("lab01-n1", GUEST_PROBE, {
            "VMId": driver.ids(["avd-ok-01"]),
            "Credential": CredentialParameter("Administrator", Secret(GUEST_PASSWORD)),
            "ProbeScript": GUEST_PROBE_BODY.text(),
            "Nonce": "4711471147",
        }),
    ]  # fmt: skip
    for node, script, parameters in calls:
        public, protected = run_command_parameters(script, parameters)
        params = {p["name"]: p["value"] for p in public + protected}
        out = CollectingOutput()
        command = CommandSpec(_text(texts, ARC_RUN), True, tuple(params.items()))
        try:
            out.output += driver.engine.execute(
                PipelineCall(node, "SYSTEM", "Microsoft.PowerShell", (command,), ()), out
            )
        except TerminatingError as exc:
            views[script.key] = ("terminating", exc.error_id)
            continue
        answer = read_frame("\n".join(str(line) for line in out.output))
        if answer is None:
            views[script.key] = ("no frame", out.output[:3], [e["error_id"] for e in out.errors])
            continue
        if answer.get("errors"):
            views[script.key] = ("errors", [e.get("error_id") for e in answer["errors"]])
            continue
        document = json.loads(answer["output"][0])
        if script is HOST_FACTS:
            views[script.key] = _plain(parse_host_facts(document, node=node, cluster="hci-lab-02"))
        elif script is GUEST_PROBE:
            views[script.key] = _fan_out_view(
                driver, document, ["avd-ok-01"], parse_probe_body, GUEST_PROBE_BODY.key
            )
        else:
            views[script.key] = document
    views["after"] = _host_view(driver, "lab01-n1")
    return views


SCENARIOS: dict[str, Callable[[Texts], Any]] = {
    ARC_RUN.key: arc_run_scenario,
    HOST_FACTS.key: host_facts_scenario,
    VM_BENEFITS_ENABLE.key: vm_enable_scenario,
    VM_BENEFITS_DISABLE.key: vm_disable_scenario,
    HOST_ATTESTATION_ENABLE.key: host_enable_scenario,
    HOST_SYNC.key: host_sync_scenario,
    GUEST_PROBE.key: guest_probe_scenario,
    GUEST_PROBE_BODY.key: guest_probe_scenario,
    GUEST_KICK.key: guest_kick_scenario,
    GUEST_KICK_BODY.key: guest_kick_scenario,
}
_BASELINES: dict[str, Any] = {}


def _baseline(key: str) -> Any:
    if key not in _BASELINES:
        _BASELINES[key] = SCENARIOS[key]({})
    return _BASELINES[key]


def test_every_script_has_a_scenario_and_the_baselines_are_clean() -> None:
    from hcibenefit.remoting.catalog import ALL_SCRIPTS

    assert {s.key for s in ALL_SCRIPTS} == set(SCENARIOS)
    for key in SCENARIOS:
        text = json.dumps(_baseline(key))
        for failure in ('"terminating"', '"errors"', '"FactsError"', '"not JSON"'):
            assert failure not in text, f"{key}: the shipped script fails in its own scenario: {text[:400]}"


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_a_breaking_edit_is_caught(mutation: Mutation) -> None:
    shipped = mutation.script.text()
    assert shipped.count(mutation.old) == 1, (
        f"{mutation.id}: the text to mutate is not (once) in {mutation.script.key}"
    )
    mutated = shipped.replace(mutation.old, mutation.new)
    seen = SCENARIOS[mutation.script.key]({mutation.script.key: mutated})
    assert seen != _baseline(mutation.script.key), f"{mutation.id} went unnoticed: {mutation.why}"
