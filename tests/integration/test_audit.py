"""Changes are audited before they are sent: an unwritable log sends nothing, every call is written
ahead, an interrupted change leaves a record, and exit codes never claim less was done than was."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.spec import parse_fleet
from tests.integration.conftest import LabClient, start_lab

CHANGES = {
    "enable": ("enable", "--vm", "avd-missing-nic"),
    "disable": ("disable", "--vm", "avd-ok-01"),
    "host-enable": ("host", "enable", "--cluster", "hci-lab-02", "--node", "lab02-n3"),
    "host-sync": ("host", "sync", "--cluster", "hci-lab-01"),
    "guest-kick": ("guest", "kick", "--vm", "avd-twice"),
}


def _model(lab: LabClient) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """The fleet's state (VMs, node attestation) and how many requests the nodes have seen so far."""
    state = lab.state()
    nodes = {n["name"]: (n["attestation"], n["expiration"], n["switch"]) for n in state["nodes"]}
    return state["vms"], nodes, sum(n["requests"] for n in state["nodes"])


@pytest.fixture
def immutable_file(tmp_path: Path) -> Iterator[Path]:
    """A file nobody may append to: mode 0444, or (root ignores modes) the immutable attribute."""
    path = tmp_path / "readonly" / "audit.log"
    path.parent.mkdir()
    path.write_text("")
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        yield path
        path.parent.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no read-only file to test with")
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


@pytest.mark.parametrize("command", sorted(CHANGES))
@pytest.mark.parametrize("kind", ["directory", "under-a-file", "read-only"])
def test_an_unwritable_audit_log_sends_nothing(
    lab: LabClient, tmp_path: Path, request: pytest.FixtureRequest, command: str, kind: str
) -> None:
    if kind == "directory":
        path = tmp_path / "a-directory"
        path.mkdir()
    elif kind == "under-a-file":
        (tmp_path / "plain-file").write_text("")
        path = tmp_path / "plain-file" / "audit.log"
    else:
        path = request.getfixturevalue("immutable_file")
    before = _model(lab)
    result = lab.cli(*CHANGES[command], "--yes", "--audit-log", str(path))
    assert result.code == ExitCode.USAGE, result.out + result.err
    assert f"cannot write the audit log {path}" in result.err and "nothing was sent" in result.err
    assert "internal error" not in result.err
    assert _model(lab) == before  # not even a read: the log is checked before anything is sent


def test_an_unwritable_output_file_sends_nothing(lab: LabClient, tmp_path: Path) -> None:
    before = _model(lab)
    result = lab.cli(
        "--output-file", str(tmp_path), "enable", "--vm", "avd-missing-nic", "--vm", "w11ms-gsi-off", "-y"
    )
    assert result.code == ExitCode.USAGE and "nothing was sent" in result.err, result.err
    assert _model(lab) == before


def test_a_closed_stdout_sends_no_change(lab: LabClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # what Python makes of a closed file descriptor 1
    requests = sum(n["requests"] for n in lab.state()["nodes"])
    result = lab.cli("enable", "--vm", "avd-missing-nic")
    assert result.code == ExitCode.USAGE
    assert "standard output is closed" in result.err and "nothing was sent" in result.err
    assert sum(n["requests"] for n in lab.state()["nodes"]) == requests


def test_the_audit_option_wins_over_the_environment(lab: LabClient, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.log"
    assert lab.cli("enable", "--vm", "avd-missing-nic", "--audit-log", str(chosen)).code == ExitCode.OK
    assert len(chosen.read_text().splitlines()) == 2
    assert not (tmp_path / "audit.log").exists()  # HCIBENEFIT_AUDIT_LOG, set by the fixture


def test_each_call_is_written_ahead_and_when_done(lab: LabClient, tmp_path: Path) -> None:
    result = lab.cli("enable", "--vm", "avd-missing-nic", "--vm", "w11ms-gsi-off", "--yes")
    assert result.code == ExitCode.OK, result.err
    records = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    by_change: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_change.setdefault(record["change"], []).append(record)
    assert len(by_change) == 2  # one mutating call per node
    assert len({r["run"] for r in records}) == 1
    for intended, done in by_change.values():
        assert (intended["phase"], done["phase"]) == ("intended", "done")
        assert intended["local_user"] and intended["remote_user"] == "labadmin"
        assert intended["node"] in ("lab01-n1", "lab02-n1") and intended["script"] == "vm-benefits-enable/2"
        assert done["result"] == "changed" and done["after"] and done["before"] == intended["before"]
        assert done["time"] >= intended["time"]


def test_an_intent_that_cannot_be_written_is_not_sent(lab: LabClient, tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to fill the disk with")
    vms_before = lab.state()["vms"]
    result = lab.cli("enable", "--vm", "avd-missing-nic", "--audit-log", "/dev/full", "--format", "json")
    assert result.code == ExitCode.INCOMPLETE, result.err
    [record] = result.json()["vms"]
    assert record["result"] == "failed" and record["error"].startswith("not sent: cannot write the audit log")
    assert lab.state()["vms"] == vms_before and lab.invocations("vm-benefits-enable") == 0


def test_a_failure_after_sending_never_exits_2(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import hcibenefit.operations.benefits as benefits

    def broken_report(*_: Any) -> Any:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(benefits, "benefits_report", broken_report)
    result = lab.cli("enable", "--vm", "avd-missing-nic")
    assert result.code == ExitCode.INCOMPLETE, result.err
    assert "changes were sent before this error" in result.err and str(tmp_path / "audit.log") in result.err
    assert lab.vm("avd-missing-nic")["benefits"] == "v1"
    # The next command starts with a clean slate: its own usage error is a plain 2 again.
    assert lab.cli("enable", "--vm", "no-such-vm").code == ExitCode.USAGE


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "argv",
    [
        ("enable", "--vm", "avd-missing-nic", "--vm", "w11ms-gsi-off"),
        ("guest", "kick", "--vm", "avd-twice", "--vm", "avd-missing-nic"),
    ],
    ids=["enable", "guest-kick"],
)
def test_no_at_the_prompt_changes_nothing_says_so_and_exits_0(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    vms_before = lab.state()["vms"]
    result = lab.cli(*argv)
    assert result.code == ExitCode.OK, result.err
    assert "not confirmed: nothing was changed" in result.out
    assert lab.state()["vms"] == vms_before
    assert not (tmp_path / "audit.log").exists() or not (tmp_path / "audit.log").read_text()


def test_ctrl_c_after_sending_leaves_a_record(tmp_path: Path) -> None:
    """SIGINT while the change is on its way back: exit 130, and the log says what was sent."""
    spec = parse_fleet(
        """
clusters:
  - name: c
    version: 22H2
    nodes:
      - {name: n1, faults: {latency_ms: 150}}
      - {name: n2, faults: {latency_ms: 150}}
    vms:
      - {name: avd-a, node: n1, benefits: none}
      - {name: avd-b, node: n2, benefits: none}
""",
        "interrupt.yaml",
    )
    lab = start_lab(spec)
    try:
        inventory = lab.write_inventory(tmp_path / "inventory.yaml")
        audit = tmp_path / "audit.log"
        env = {**os.environ, **lab.environment(), "HCIBENEFIT_AUDIT_LOG": str(audit)}
        argv = ["-i", str(inventory), "enable", "--vm", "avd-a", "--vm", "avd-b", "--yes", "--parallel", "2"]
        process = subprocess.Popen(
            [sys.executable, "-m", "hcibenefit", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def changed() -> set[str]:
            return {v["name"] for v in lab.snapshot()["vms"] if v["benefits"] != "none"}

        deadline = time.monotonic() + 30
        while not changed() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        assert changed(), "the change never reached the lab"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == ExitCode.INTERRUPTED, err
        assert "Traceback" not in err
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        intended = {r["vm"]: r for r in records if r["phase"] == "intended"}
        done = {r["vm"]: r for r in records if r["phase"] == "done"}
        # Every change that reached a host was written before it was sent.
        assert changed() <= set(intended), records
        for vm, record in done.items():
            # A worker that finished in the grace period after Ctrl-C says what became of its call; one
            # that did not leaves its intended record alone, which says the call may have been sent.
            assert record["change"] == intended[vm]["change"]
            assert record["result"] in ("interrupted", "unverified", "changed"), record
            if record["result"] != "changed":
                assert record["error"], record
        assert lab.open_shells() == 0
    finally:
        lab.stop()
