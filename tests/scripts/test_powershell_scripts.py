"""Every shipped .ps1 parses, has a header and a param() block, and reads only documented members.

The member allow-list is the test's copy of the object members Microsoft Learn documents (docs/platform.md
and the sources named in hcibenefit/lab/powershell/cmdlets/parameters.json)
for the cmdlets the scripts call; the cmdlets and their parameters are checked against the repository's
table by test_static_checks.py. A script that needs something new must add it here, with its source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from hcibenefit.remoting.catalog import ALL_SCRIPTS, HEADER, parse_header

ts = pytest.importorskip("tree_sitter")
tsp = pytest.importorskip("tree_sitter_powershell")

# fmt: off
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
    # Enable-AzStackHCIAttestation's output (cmdlets.md 9.8); Get-NetAdapter's MSFT_NetAdapter (2.1)
    "ComputerName", "ifIndex",
    # ErrorRecord and .NET plumbing every script uses
    "Exception", "FullyQualifiedErrorId", "CategoryInfo", "Category", "PSObject", "Properties", "Count",
    "ContainsKey", "Add", "ToArray", "ToLowerInvariant", "ToUniversalTime", "ToString", "MinValue", "Empty",
    "INSTANCE", "PROPERTY", "NAME", "VALUE", "DefaultWebProxy", "Create", "TotalMilliseconds", "Elapsed",
    "StartNew", "Stop", "Trim", "Split", "Length", "Substring", "UtcNow", "GetString", "UTF8",
    "FromBase64String",
    # arc-run.ps1: System.Management.Automation.PowerShell (AddScript, AddParameter, Invoke, Streams, Dispose),
    # MethodInvocationException.InnerException.ErrorRecord, System.Convert, System.Text.Encoding, System.Math
    "AddScript", "AddParameter", "Invoke", "Streams", "Error", "Warning", "Dispose", "InnerException",
    "ErrorRecord", "Value", "GetBytes", "ToBase64String", "Min",
    # Registry values the guest probe reads: CurrentVersion's UBR and DisplayVersion (the update level),
    # the AVD agent's RDInfraAgent IsRegistered (azure-local.md C14, AVD agent troubleshooting) and W32Time's
    # Parameters Type (Windows Time service tools and settings, C13)
    "UBR", "DisplayVersion", "IsRegistered", "Type",
    # FailoverClusters objects (FailoverClusterDsc's stubs of FailoverClusters 2.0.0.0, cmdlets.md 3.2-3.3):
    # ClusterNetwork Role/Address/AddressMask, ClusterNetworkInterface Network/Adapter, ClusterGroup
    # GroupType/OwnerNode; MSFT_NetAdapter InterfaceDescription (2.1)
    "Role", "Address", "AddressMask", "Network", "Adapter", "GroupType", "OwnerNode", "InterfaceDescription",
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
