"""Every shipped .ps1 parses, has a header and a param() block, and uses only documented cmdlets/members.

The allow-lists below are the test's copy of what docs/platform.md documents (host
cmdlets §2, standard cmdlets §11, guest checks §7), plus the PowerShell language's own utility cmdlets.
A script that needs something new must add it here, with where it is documented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from hcibenefit.lab.engine import LabEngine
from hcibenefit.lab.guest_emulation import KICK_BODY_SIGNATURE, PROBE_BODY_SIGNATURE
from hcibenefit.lab.spec import default_fleet
from hcibenefit.lab.state import FleetState
from hcibenefit.remoting.catalog import ALL_SCRIPTS, HEADER, parse_header

ts = pytest.importorskip("tree_sitter")
tsp = pytest.importorskip("tree_sitter_powershell")

# fmt: off
PLATFORM_CMDLETS = {
    # docs/platform.md §2: AzureStackHCI (in-box) and Az.StackHCI
    "Get-AzureStackHCI", "Sync-AzureStackHCI", "Get-AzureStackHCIAttestation", "Set-AzureStackHCIAttestation",
    "Enable-AzStackHCIAttestation", "Disable-AzStackHCIAttestation", "Add-AzStackHCIVMAttestation",
    "Remove-AzStackHCIVMAttestation", "Get-AzStackHCIVMAttestation",
    # docs/platform.md §11: Hyper-V, FailoverClusters, NetTCPIP, NetSecurity, CIM, modules
    "Get-VM", "Get-VMSwitch", "Get-VMNetworkAdapter", "Add-VMNetworkAdapter", "Connect-VMNetworkAdapter",
    "Remove-VMNetworkAdapter", "Set-VMNetworkAdapter", "Set-VMNetworkAdapterVlan", "Get-VMIntegrationService",
    "Enable-VMIntegrationService", "Get-ClusterNode", "Get-NetIPAddress", "Get-NetFirewallRule", "Get-Module",
    "Get-CimInstance", "Invoke-Command",
    # docs/platform.md §7 and §11: guest side
    "Get-ItemProperty", "Get-ScheduledTask", "Get-ScheduledTaskInfo", "Start-ScheduledTask", "Get-WinEvent",
    "Invoke-RestMethod",
    # Counterparts of documented cmdlets in the same Microsoft Learn module references docs/platform.md cites
    # (Hyper-V: Disable-VMIntegrationService; ScheduledTasks: Enable-ScheduledTask for --enable-task).
    "Disable-VMIntegrationService", "Enable-ScheduledTask",
}
LANGUAGE_CMDLETS = {
    "ConvertTo-Json", "ConvertFrom-Json", "ForEach-Object", "Where-Object", "Select-Object", "Sort-Object",
    "New-Object", "Out-Null", "Get-Date", "Start-Sleep", "Measure-Object", "Write-Output",
}
# Members of the documented objects (PascalCase) that the scripts may read; our own JSON keys are snake_case.
DOCUMENTED_MEMBERS = {
    # Get-AzureStackHCI / Get-AzureStackHCIAttestation / Get-AzStackHCIVMAttestation (§2)
    "ClusterStatus", "RegistrationStatus", "RegistrationDate", "AzureResourceName", "AzureResourceUri",
    "ConnectionStatus", "LastConnected", "NextSync", "IMDSAttestation", "Status", "Expiration",
    "AttestationSwitchId", "LegacyOsSupport", "Name", "AttestationHost", "SupportedVersions",
    # §11 object members
    "Id", "Generation", "State", "IsClustered", "SwitchType", "Notes", "VMName", "VMId", "SwitchName",
    "Connected", "MacAddress", "IPAddresses", "Enabled", "PrimaryStatusDescription",
    "GuestIntrinsicExchangeItems",
    "SystemName", "IPAddress", "PrefixLength", "Direction", "Action", "Version", "Caption", "BuildNumber",
    "Description", "LicenseStatus", "LicenseFamily", "ProductKeyChannel", "GracePeriodRemaining", "EditionID",
    "LastRunTime", "LastTaskResult", "NextRunTime", "NumberOfMissedRuns", "Actions", "Execute", "TimeCreated",
    "LevelDisplayName", "Message", "TargetObject", "OriginInfo", "PSComputerName", "StatusCode", "Response",
    # ErrorRecord and .NET plumbing every script uses
    "Exception", "FullyQualifiedErrorId", "CategoryInfo", "Category", "PSObject", "Properties", "Count",
    "ContainsKey", "Add", "ToArray", "ToLowerInvariant", "ToUniversalTime", "ToString", "MinValue", "Empty",
    "INSTANCE", "PROPERTY", "NAME", "VALUE", "DefaultWebProxy", "Create", "TotalMilliseconds", "Elapsed",
    "StartNew", "Stop", "Trim", "Split", "Length", "Substring", "UtcNow", "GetString", "UTF8",
    "FromBase64String",
}
# fmt: on

SCRIPT_DIR = Path(str(files("hcibenefit.remoting").joinpath("scripts")))
SCRIPTS = sorted(SCRIPT_DIR.glob("*.ps1"))


def _parser() -> object:
    return ts.Parser(ts.Language(tsp.language()))


def _walk(node: object) -> Iterator[object]:
    yield node
    for child in node.children:  # type: ignore[attr-defined]
        yield from _walk(child)


def _text(source: bytes, node: object) -> str:
    return source[node.start_byte : node.end_byte].decode()  # type: ignore[attr-defined]


def _tree(path: Path) -> tuple[bytes, object]:
    source = path.read_bytes()
    return source, _parser().parse(source).root_node  # type: ignore[attr-defined]


def _local_functions(source: bytes, root: object) -> set[str]:
    return {
        _text(source, c).split()[1]
        for c in _walk(root)
        if c.type == "function_statement"  # type: ignore[attr-defined]
    }


def test_every_shipped_script_is_in_the_catalog() -> None:
    assert {p.name for p in SCRIPTS} == {s.filename for s in ALL_SCRIPTS}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_parses_without_errors(path: Path) -> None:
    source, root = _tree(path)
    errors = [_text(source, n)[:60] for n in _walk(root) if n.type == "ERROR" or n.is_missing]  # type: ignore[attr-defined]
    assert not root.has_error, f"{path.name}: parse errors near {errors}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_has_header_and_param_block(path: Path) -> None:
    source, root = _tree(path)
    first_line = source.decode().splitlines()[0]
    assert HEADER.match(first_line), f"{path.name}: first line must be '# hcibenefit-script: id/version'"
    script_id, version = parse_header(source.decode()) or ("", 0)
    entry = next(s for s in ALL_SCRIPTS if s.filename == path.name)
    assert (script_id, version) == (entry.id, entry.version)
    top_level = [c.type for c in root.children]  # type: ignore[attr-defined]
    assert "param_block" in top_level, f"{path.name}: needs a top-level param() block"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_uses_only_documented_cmdlets(path: Path) -> None:
    source, root = _tree(path)
    allowed = PLATFORM_CMDLETS | LANGUAGE_CMDLETS | _local_functions(source, root)
    used = {_text(source, n) for n in _walk(root) if n.type == "command_name"}  # type: ignore[attr-defined]
    assert used, f"{path.name}: no commands found, the walk is broken"
    assert used <= allowed, f"{path.name}: undocumented cmdlets {sorted(used - allowed)}"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_reads_only_documented_members(path: Path) -> None:
    source, root = _tree(path)
    members = {
        _text(source, n)
        for n in _walk(root)
        if n.type == "member_name" and re.fullmatch(r"[A-Z][A-Za-z0-9]*", _text(source, n))  # type: ignore[attr-defined]
    }
    assert members, f"{path.name}: no members found, the walk is broken"
    assert members <= DOCUMENTED_MEMBERS, (
        f"{path.name}: undocumented members {sorted(members - DOCUMENTED_MEMBERS)}"
    )


def _declared_parameters(path: Path) -> dict[str, tuple[str, bool]]:
    source, root = _tree(path)
    block = next(c for c in root.children if c.type == "param_block")  # type: ignore[attr-defined]
    declared = {}
    for parameter in (n for n in _walk(block) if n.type == "script_parameter"):  # type: ignore[attr-defined]
        text = _text(source, parameter)
        name = re.search(r"\$(\w+)", text)
        types = re.findall(r"\[([A-Za-z\[\]]+)\]", text)
        assert name is not None
        type_name = next((t for t in types if t.lower() != "parameter"), "object").lower()
        mandatory = re.search(r"Mandatory(\s*=\s*\$true)?\b", text, re.IGNORECASE) is not None
        declared[name.group(1)] = (type_name, mandatory)
    return declared


def _lab_signatures() -> dict[str, tuple[object, ...]]:
    """Every signature the lab binds parameters with: host scripts, guest fan-out, guest bodies."""
    engine = LabEngine(FleetState(default_fleet()))
    signatures: dict[str, tuple[object, ...]] = {k: e.signature for k, e in engine.emulations.items()}
    signatures["guest-probe-body/1"] = PROBE_BODY_SIGNATURE
    signatures["guest-kick-body/1"] = KICK_BODY_SIGNATURE
    return signatures


def test_the_lab_emulates_every_shipped_script() -> None:
    assert set(_lab_signatures()) == {s.key for s in ALL_SCRIPTS}


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda s: s.key)
def test_lab_binds_the_same_parameters_the_script_declares(script: object) -> None:
    signature = _lab_signatures()[script.key]  # type: ignore[attr-defined]
    declared = _declared_parameters(SCRIPT_DIR / script.filename)  # type: ignore[attr-defined]
    bound = {p.name: (p.type, p.mandatory) for p in signature}  # type: ignore[attr-defined]
    assert bound == declared
