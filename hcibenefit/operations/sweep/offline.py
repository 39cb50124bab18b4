"""Offline sites: `scripts export DIR` writes the collection scripts for a node where WinRM from outside is
not allowed, and `sweep --from-dir DIR` judges what they produced exactly as if it had been collected
remotely (the same parsers, the same checks).

Layout of DIR, as collect.ps1 writes it:

    DIR/<cluster>/<node>/host-facts.json     output of host-facts.ps1
    DIR/<cluster>/<node>/guest-probe.json    output of guest-probe.ps1 (optional: needs guest credentials)

Attested documents are verified at the time the probe ran (its collected_at), against the nonce the probe
was given: the nonce proves freshness only as far as the person who ran collect.ps1 is trusted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hcibenefit.checks.eligibility import requirement
from hcibenefit.checks.evaluate import ClusterEvidence, GuestEvidence, guest_not_applicable
from hcibenefit.checks.guest_checks import NotProbed
from hcibenefit.errors import UsageError
from hcibenefit.facts.guest import PROBE_BODY_SCHEMAS, GuestProbe, parse_fan_out, parse_probe_body
from hcibenefit.facts.host import FactsError, HostFacts, parse_host_facts
from hcibenefit.inventory import Cluster, Inventory, Node
from hcibenefit.operations.guests.check import trust_for
from hcibenefit.operations.guests.targets import GuestTarget, answers_from_fan_out
from hcibenefit.operations.sweep.collect import Collected, Scope, probe_evidence
from hcibenefit.remoting.catalog import GUEST_PROBE, GUEST_PROBE_BODY, HOST_FACTS

HOST_FILE = "host-facts.json"
GUEST_FILE = "guest-probe.json"
EXPORTED = (HOST_FACTS, GUEST_PROBE, GUEST_PROBE_BODY)


def _read_json(path: Path) -> Any:
    # utf-8-sig: Windows PowerShell 5.1's Set-Content -Encoding UTF8 writes a byte-order mark.
    return json.loads(path.read_text(encoding="utf-8-sig"))


def _node_dir(cluster_dir: Path, node: Node) -> Path | None:
    """The node's folder: named as the inventory names the node, or as the node names itself (its
    COMPUTERNAME, the first label of an FQDN), in any case."""
    wanted = {node.name.casefold(), node.name.split(".")[0].casefold()}
    for child in sorted(cluster_dir.iterdir()) if cluster_dir.is_dir() else ():
        if child.is_dir() and child.name.casefold() in wanted:
            return child
    return None


def _cluster_dir(root: Path, cluster: Cluster) -> Path:
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.casefold() == cluster.name.casefold():
            return child
    return root / cluster.name


def collect_from_dir(
    inventory: Inventory, root: Path, scope: Scope, *, now: Callable[[], dt.datetime]
) -> Collected:
    if not root.is_dir():
        raise UsageError(
            f"--from-dir {root}: no such directory",
            hint="`hcibenefit scripts export DIR` explains the layout",
        )
    trust = trust_for(inventory)
    evidence = []
    for cluster in scope.clusters:
        cluster_dir = _cluster_dir(root, cluster)
        hosts: list[HostFacts] = []
        unreachable: dict[str, str] = {}
        guests: dict[str, GuestEvidence] = {}
        for node in scope.nodes_of(cluster):
            folder = _node_dir(cluster_dir, node)
            if folder is None or not (folder / HOST_FILE).is_file():
                unreachable[node.name] = f"not collected: no {cluster.name}/{node.name}/{HOST_FILE} in {root}"
                continue
            try:
                facts = parse_host_facts(_read_json(folder / HOST_FILE), node=node.name, cluster=cluster.name)
            except (OSError, ValueError, FactsError) as exc:
                unreachable[node.name] = f"{folder / HOST_FILE}: {exc}"
                continue
            hosts.append(facts)
            guests.update(_guests(inventory, cluster, node, facts, folder / GUEST_FILE, scope, trust, now))
        evidence.append(
            ClusterEvidence(
                cluster.name,
                tuple(n.name for n in scope.nodes_of(cluster)),
                tuple(hosts),
                unreachable,
                guests,
            )
        )
    return Collected(tuple(evidence), deadline_reached=False)


def _guests(
    inventory: Inventory,
    cluster: Cluster,
    node: Node,
    facts: HostFacts,
    path: Path,
    scope: Scope,
    trust: Any,
    now: Callable[[], dt.datetime],
) -> dict[str, GuestEvidence]:
    wanted = [
        GuestTarget(
            vm.name,
            cluster,
            node,
            vm,
            facts,
            requirement(vm, facts, inventory.policy),
            cluster.guests.vm(vm.name),
        )
        for vm in scope.vms(facts.vms)
        if guest_not_applicable(vm, requirement(vm, facts, inventory.policy)) is None
    ]
    if not wanted:
        return {}
    if not path.is_file():
        missing = NotProbed(
            "no-answer", f"not collected: no {path.name} beside {HOST_FILE} (collect.ps1 -GuestCredential)"
        )
        return {t.name.casefold(): GuestEvidence(missing) for t in wanted}
    try:
        # guest-probe/2 is what collect.ps1 wrote before the fan-out read its node's clock.
        fan = parse_fan_out(_read_json(path), schema=("guest-probe/2", GUEST_PROBE.key))
    except (OSError, ValueError, FactsError) as exc:
        failed = NotProbed("probe-failed", f"{path}: {exc}")
        return {t.name.casefold(): GuestEvidence(failed) for t in wanted}
    # Files an older collect.ps1 wrote carry guest-probe-body/1: still read, without the newer facts.
    answers = answers_from_fan_out(wanted, fan, PROBE_BODY_SCHEMAS, parse_probe_body)
    out = {}
    for target in wanted:
        answer = answers[target.name.casefold()]
        if isinstance(answer, GuestProbe):
            at = answer.collected_at or now()
            out[target.name.casefold()] = probe_evidence(answer, inventory, trust, at, answer.nonce)
        elif isinstance(answer, NotProbed | tuple):
            out[target.name.casefold()] = GuestEvidence(answer)
    return out


# --- export ---------------------------------------------------------------------------------------

COLLECT_SCRIPT = """\
# hcibenefit offline collection: run on each node, as an administrator, in Windows PowerShell 5.1.
# Writes <OutputDirectory>\\<Cluster>\\<COMPUTERNAME>\\host-facts.json (and guest-probe.json with
# -GuestCredential), which `hcibenefit sweep --from-dir <OutputDirectory>` reads. Read-only on the node.
param(
    [Parameter(Mandatory = $true)]
    [string]$Cluster,
    [string]$OutputDirectory = '.',
    [pscredential]$GuestCredential
)

$ErrorActionPreference = 'Stop'
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$nodeDir = Join-Path (Join-Path $OutputDirectory $Cluster) $env:COMPUTERNAME
New-Item -ItemType Directory -Force -Path $nodeDir | Out-Null

$facts = & (Join-Path $here 'host-facts.ps1') -IncludeGuestOs $true
Set-Content -Path (Join-Path $nodeDir 'host-facts.json') -Value $facts -Encoding UTF8

if ($GuestCredential) {
    # By id: guest-probe.ps1 takes VM ids (a name would be a Hyper-V wildcard pattern).
    $running = @(Get-VM | Where-Object { $_.State -eq 'Running' } | ForEach-Object { $_.Id.ToString() })
    if ($running.Count -gt 0) {
        # A fresh 10-digit nonce: the attested documents must carry it back.
        $nonce = -join (1..10 | ForEach-Object { Get-Random -Minimum 0 -Maximum 10 })
        $body = Get-Content -Raw -Path (Join-Path $here 'guest-probe-body.ps1')
        $probe = & (Join-Path $here 'guest-probe.ps1') -VMId $running -Credential $GuestCredential -ProbeScript $body -Nonce $nonce
        Set-Content -Path (Join-Path $nodeDir 'guest-probe.json') -Value $probe -Encoding UTF8
    }
}
Write-Host "collected into $nodeDir"
"""

README = """\
# hcibenefit offline collection

For nodes that WinRM from outside cannot reach. These are the same scripts `hcibenefit sweep` sends over
WinRM; `hcibenefit sweep --from-dir DIR` judges their output with the same checks.

On every node of the cluster, in an elevated Windows PowerShell 5.1 (not PowerShell 7):

```powershell
Set-ExecutionPolicy -Scope Process Bypass
.\\collect.ps1 -Cluster <cluster name as in the inventory> -OutputDirectory \\\\share\\hcibenefit
# with guest checks (activation inside each running VM, over PowerShell Direct):
.\\collect.ps1 -Cluster <cluster> -OutputDirectory \\\\share\\hcibenefit -GuestCredential (Get-Credential)
```

Then, where hcibenefit runs:

```sh
hcibenefit -i inventory.yaml sweep --from-dir /mnt/share/hcibenefit
```

Layout read: `DIR/<cluster>/<node>/host-facts.json` and `guest-probe.json`; a node folder may be named as
the inventory names the node or by its computer name. Without `-i`, clusters and nodes are taken from the
folders. Nodes without files are reported as not assessed.

| file | what it does |
|---|---|
| `host-facts.ps1` | everything the node knows about Azure Benefits: registration, attestation, the IMDS switch, host vNIC, firewall rules, cluster members, VMs with NICs and integration services, guest OS names from Hyper-V data exchange |
| `guest-probe.ps1` | PowerShell Direct into the named running VMs, running `guest-probe-body.ps1` in each |
| `guest-probe-body.ps1` | inside a guest: activation state, the LicenseImdsIntegration task, IMDS reachability and the attested document |
| `collect.ps1` | runs the above and writes the files in the layout `--from-dir` reads |

Nothing here changes a node or a guest. Attested documents are checked at the time they were fetched and
against the nonce collect.ps1 generated.
"""


def export_scripts(target: Path) -> list[Path]:
    """Write the collection scripts, collect.ps1 and a README into `target`. Returns the files written."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for script in EXPORTED:
            path = target / script.filename
            path.write_text(script.text(), encoding="utf-8", newline="\r\n")
            written.append(path)
        for name, text in (("collect.ps1", COLLECT_SCRIPT), ("README.md", README)):
            path = target / name
            path.write_text(text, encoding="utf-8", newline="\r\n" if name.endswith(".ps1") else "\n")
            written.append(path)
    except OSError as exc:
        raise UsageError(f"cannot write to {target}: {exc.strerror or exc}") from None
    return written


def inventory_from_dir(root: Path) -> str:
    """Inventory text naming the clusters and nodes found in DIR, for --from-dir without -i."""
    if not root.is_dir():
        raise UsageError(f"--from-dir {root}: no such directory")
    lines = ["# made from the folders of " + json.dumps(str(root)), "clusters:"]
    for cluster_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        nodes = sorted(p.name for p in cluster_dir.iterdir() if p.is_dir() and (p / HOST_FILE).is_file())
        if nodes:
            lines.append(f"  - name: {json.dumps(cluster_dir.name)}")
            lines.append("    nodes: [" + ", ".join(json.dumps(n) for n in nodes) + "]")
    if len(lines) == 2:
        raise UsageError(
            f"no {HOST_FILE} files under {root}", hint="expected DIR/<cluster>/<node>/host-facts.json"
        )
    return "\n".join(lines) + "\n"
