"""cert_validation: false is said on every command that connects, naming the hosts, once per run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import LabClient

WARNING = re.compile(r"TLS certificate validation is off \(cert_validation: false\) for (\d+) hosts?: (.*?);")


@pytest.fixture
def unvalidated(lab: LabClient, tmp_path: Path) -> LabClient:
    text = lab.inventory.read_text()
    text = re.sub(r"    cert_validation: .*\n", "    cert_validation: false\n", text)
    # One cluster keeps checking certificates: the warning must name only the others.
    text = text.replace(
        "  - name: hci-lab-02\n", "  - name: hci-lab-02\n    winrm: {cert_validation: true}\n"
    )
    path = tmp_path / "unvalidated.yaml"
    path.write_text(text.replace("{cert_validation: true}", f"{{cert_validation: {_ca(lab)}}}"))
    return LabClient(lab.lab, path, lab._capsys)


def _ca(lab: LabClient) -> str:
    bundle = lab.lab.ca_bundle
    assert bundle is not None
    return f'"{bundle}"'


@pytest.mark.parametrize(
    "argv",
    [
        ("status", "--fail-on", "none"),
        ("enable", "--vm", "avd-missing-nic"),
        ("guest", "check", "--vm", "avd-ok-01"),
        ("sweep", "--no-history"),
        ("inventory", "test"),
    ],
    ids=lambda a: a[0] if a[0] != "guest" else "guest-check",
)
def test_every_connecting_command_names_the_unvalidated_nodes_once(
    unvalidated: LabClient, argv: tuple[str, ...]
) -> None:
    result = unvalidated.cli(*argv)
    warnings = WARNING.findall(result.err)
    assert len(warnings) == 1, result.err
    count, names = warnings[0]
    assert count == "5" and names == "lab01-n1, lab01-n2, lab01-n3, lab04-n1, lab04-n2", result.err


def test_quiet_commands_that_do_not_connect_stay_quiet(unvalidated: LabClient) -> None:
    result = unvalidated.cli("attest", "verify", "--help")
    assert not WARNING.findall(result.err)
