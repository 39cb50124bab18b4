"""Offline sites: `scripts export` writes what collect.ps1 needs; `sweep --from-dir` judges files produced by the
same scripts exactly as a live sweep judges their answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hcibenefit.inventory import CredentialResolver, load_inventory
from hcibenefit.lab.fleet import Lab
from hcibenefit.operations.gather import connections
from hcibenefit.remoting.catalog import GUEST_PROBE, GUEST_PROBE_BODY, HOST_FACTS
from hcibenefit.remoting.session import CredentialParameter, run_script
from tests.integration.conftest import LabClient
from tests.sweep.conftest import by_id, sweep_json

pytestmark = pytest.mark.lab


def test_scripts_export_writes_the_collection_kit(lab: LabClient, tmp_path: Path) -> None:
    out = tmp_path / "kit"
    result = lab.cli("scripts", "export", str(out))
    assert result.code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "collect.ps1", "guest-probe-body.ps1", "guest-probe.ps1", "host-facts.ps1"]
    assert (out / "host-facts.ps1").read_bytes().replace(b"\r\n", b"\n").decode() == HOST_FACTS.text()
    collect = (out / "collect.ps1").read_text()
    for needed in (
        "host-facts.ps1",
        "guest-probe.ps1",
        "-ProbeScript",
        "-Nonce",
        "host-facts.json",
        "guest-probe.json",
    ):
        assert needed in collect
    assert "--from-dir" in (out / "README.md").read_text()


@pytest.fixture(scope="module")
def collected(sweep_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What collect.ps1 writes for every node of the lab, collected once for this module's tests."""
    tmp = tmp_path_factory.mktemp("offline")
    sweep_lab.reset()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in sweep_lab.environment().items():
            patch.setenv(name, value)
        _collect_like_collect_ps1(sweep_lab.write_inventory(tmp / "inventory.yaml"), tmp / "collected")
    assert sweep_lab.open_shells() == 0
    return tmp / "collected"


def _collect_like_collect_ps1(inventory_path: Path, root: Path) -> None:
    """What collect.ps1 does on each node, done through the lab: the same scripts, the same parameters."""
    inventory = load_inventory(inventory_path)
    resolver = CredentialResolver()
    guest = resolver.resolve(inventory.clusters[0].guest_credentials)
    assert guest.username and guest.password
    for conn in connections(inventory.all_nodes(), resolver):
        folder = root / conn.node.cluster / conn.node.name.upper()
        folder.mkdir(parents=True)
        facts = run_script(conn.endpoint, HOST_FACTS, {"IncludeGuestOs": True})
        (folder / "host-facts.json").write_text("\ufeff" + json.dumps(facts), encoding="utf-8")
        running = [vm["id"] for vm in facts["vms"] if vm["state"] == "Running"]
        if running:
            probe = run_script(
                conn.endpoint,
                GUEST_PROBE,
                {
                    "VMId": running,
                    "Credential": CredentialParameter(guest.username, guest.password),
                    "ProbeScript": GUEST_PROBE_BODY.text(),
                    "Nonce": "4711471147",
                },
            )
            (folder / "guest-probe.json").write_text(json.dumps(probe), encoding="utf-8")


def test_from_dir_judges_like_a_live_sweep(lab: LabClient, collected: Path) -> None:
    root = collected
    _, live = sweep_json(lab, "--no-history")
    code, offline = sweep_json(lab, "--no-history", "--from-dir", str(root))
    assert code == 1
    assert offline["run"]["source"] == f"from-dir:{root}"
    hosts_only = {i: r["status"] for i, r in by_id(live).items() if r["scope"] != "azure"}
    assert {i: r["status"] for i, r in by_id(offline).items()} == hosts_only
    assert any(r["scope"] == "azure" for r in live["findings"]), "the live sweep read Azure too"


def test_from_dir_reports_missing_nodes_as_not_assessed(
    lab: LabClient, collected: Path, tmp_path: Path
) -> None:
    root = tmp_path / "collected"
    shutil.copytree(collected, root)
    for path in (root / "hci-lab-02" / "LAB02-N3").iterdir():
        path.unlink()
    (root / "hci-lab-02" / "LAB02-N3").rmdir()
    code, doc = sweep_json(lab, "--no-history", "--from-dir", str(root))
    assert code == 5
    missing = [t for t in doc["run"]["targets"]["not_assessed"] if t["vm"] is None]
    assert [t["node"] for t in missing] == ["lab02-n3"] and "not collected" in missing[0]["reason"]


def test_from_dir_without_an_inventory_uses_the_folders(
    lab: LabClient, collected: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hcibenefit.cli.app import run

    root = collected
    capsys.readouterr()
    code = run(["sweep", "--from-dir", str(root), "--no-history", "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code in (1, 5)
    assert doc["run"]["targets"]["assessed"]["nodes"] == 8
