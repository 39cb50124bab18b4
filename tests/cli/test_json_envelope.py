"""Every command's `-o json` is one object that says when it was made, by which hcibenefit, from which
inventory and by which command (the envelope `status` has), before whatever the command reports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hcibenefit import __version__
from hcibenefit.exitcodes import ExitCode
from tests.integration.conftest import LabClient

ENVELOPE = ("generated_at", "hcibenefit_version", "inventory", "command")

# (argv, the command's name in the envelope, a field of its own that must still be there)
COMMANDS: list[tuple[list[str], str, str]] = [
    (["status", "--cluster", "hci-lab-01"], "status", "vms"),
    (["enable", "--vm", "avd-missing-nic", "--what-if"], "enable", "vms"),
    (["disable", "--vm", "avd-ok-01", "--what-if"], "disable", "vms"),
    (["host", "enable", "--cluster", "hci-lab-01", "--what-if"], "host enable", "nodes"),
    (["host", "sync", "--cluster", "hci-lab-01", "--what-if"], "host sync", "nodes"),
    (["inventory", "validate"], "inventory validate", "valid"),
    (["inventory", "show"], "inventory show", "clusters"),
    (["inventory", "test", "--cluster", "hci-lab-01"], "inventory test", "nodes"),
    (["guest", "check", "--vm", "avd-ok-01"], "guest check", "vms"),
    (["guest", "kick", "--vm", "avd-twice", "--what-if"], "guest kick", "vms"),
    (["reconcile", "--cluster", "hci-lab-01"], "reconcile", "findings"),
    (["arm", "query"], "arm query", "clusters"),
    (["checks", "list"], "checks list", "checks"),
    (["checklist", "avd", "--vm", "avd-ok-01"], "checklist avd", "go"),
    (["sweep", "--cluster", "hci-lab-01"], "sweep", "findings"),
    (["history", "list"], "history list", "runs"),
    (["history", "show"], "history show", "run"),
    (["history", "prune", "--keep-days", "30"], "history prune", "removed"),
]


def test_every_commands_json_carries_the_envelope(lab: LabClient, tmp_path: Path) -> None:
    exported = tmp_path / "offline"
    for argv, name, own in [*COMMANDS, (["scripts", "export", str(exported)], "scripts export", "files")]:
        result = lab.cli(*argv, "-o", "json")
        assert result.code != ExitCode.USAGE, (argv, result.err)
        document = result.json()
        assert isinstance(document, dict), argv
        assert list(document)[: len(ENVELOPE)] == list(ENVELOPE), (argv, list(document))
        assert document["command"] == name, argv
        assert document["hcibenefit_version"] == __version__, argv
        assert document["inventory"] == str(lab.inventory), argv
        assert dt.datetime.fromisoformat(document["generated_at"]).tzinfo is not None, argv
        assert own in document, (argv, list(document))


def test_lists_became_objects_under_a_named_key(lab: LabClient) -> None:
    checked = lab.cli("guest", "check", "--vm", "avd-ok-01", "--vm", "avd-twice", "-o", "json").json()
    assert sorted(r["vm"] for r in checked["vms"]) == ["avd-ok-01", "avd-twice"]
    assert checked["unreachable_nodes"] == {}
    kick = lab.cli("guest", "kick", "--vm", "avd-twice", "--what-if", "-o", "json").json()
    assert kick["what_if"] is True and kick["declined"] is False
    assert [r["vm"] for r in kick["vms"]] == ["avd-twice"] and kick["calls"][0]["script"].startswith(
        "guest-kick"
    )
    assert lab.invocations("guest-kick") == 0


def test_an_unusable_inventory_says_so_in_json_too(lab: LabClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCIBENEFIT_LAB_PASSWORD")
    result = lab.cli("inventory", "validate", "-o", "json")
    assert result.code == ExitCode.USAGE
    document = result.json()
    assert document["valid"] is False and document["command"] == "inventory validate"
    assert any("HCIBENEFIT_LAB_PASSWORD" in p["message"] for p in document["problems"]), document["problems"]
