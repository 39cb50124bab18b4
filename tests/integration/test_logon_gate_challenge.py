"""NTLM and Negotiate logons against the lab's NTLM endpoints (real pypsrp, real pyspnego on both sides):
the gate that keeps a wrong password to one failed logon per run sits where the password is first used,
inside the answer to the host's 401, so the round trips before it are not serialised behind the first node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.fleet import PASSWORD_ENV, Lab
from tests.integration.conftest import LabClient, fresh_client, running_lab


@pytest.fixture(scope="module")
def ntlm_lab() -> Iterator[Lab]:
    yield from running_lab(auth="ntlm")


@pytest.fixture(params=["ntlm", "negotiate"])
def client(
    request: pytest.FixtureRequest,
    ntlm_lab: Lab,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[LabClient]:
    for lab in fresh_client(ntlm_lab, tmp_path, monkeypatch, capsys):
        text = lab.inventory.read_text()
        assert "    auth: ntlm\n" in text
        lab.inventory.write_text(text.replace("    auth: ntlm\n", f"    auth: {request.param}\n"))
        yield lab


def _failed_logons(lab: LabClient) -> int:
    return sum(n["failed_logons"] for n in lab.state()["nodes"])


def test_every_node_logs_on(client: LabClient) -> None:
    result = client.cli("status", "-o", "json", "--fail-on", "none")
    assert result.code == ExitCode.OK, result.err
    nodes = json.loads(result.out)["nodes"]
    assert len(nodes) == 8 and all(n["verdict"] != "unreachable" for n in nodes), nodes
    assert _failed_logons(client) == 0


def test_a_wrong_password_is_one_failed_logon_for_the_whole_run(
    client: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "Wrong-Pa55word-123")
    before = _failed_logons(client)
    result = client.cli("status", "-o", "json")
    assert result.code == ExitCode.FINDINGS_AND_INCOMPLETE, result.err
    nodes = json.loads(result.out)["nodes"]
    refused = [n for n in nodes if n["verdict"] == "unreachable"]
    skipped = [n for n in nodes if n["verdict"] == "skipped"]
    assert len(refused) == 1 and refused[0]["reason"].startswith("authentication:"), nodes
    assert len(skipped) == len(nodes) - 1
    # Every other node got as far as the host's 401 (and, with NTLM, its challenge) and stopped there.
    assert _failed_logons(client) - before == 1
