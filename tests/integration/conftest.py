"""The lab, started in-process on loopback, and hcibenefit run against it as a user would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.cli.app import run
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import default_fleet

HOST_PASSWORD = "Lab-Host-Pa55word!"
GUEST_PASSWORD = "Lab-Guest-Pa55word!"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class LabClient:
    """Runs hcibenefit commands against a running lab and reads the lab's state."""

    def __init__(self, lab: Lab, inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.lab = lab
        self.inventory = inventory
        self._capsys = capsys

    def cli(self, *argv: str) -> CliResult:
        self._capsys.readouterr()
        code = run(["-i", str(self.inventory), *argv])
        captured = self._capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    def state(self) -> dict[str, Any]:
        return self.lab.snapshot()

    def vm(self, name: str) -> dict[str, Any]:
        return next(v for v in self.state()["vms"] if v["name"] == name)

    def invocations(self, script_id: str) -> int:
        return sum(n["invocations"].get(script_id, 0) for n in self.state()["nodes"])


def start_lab(spec: Any, **kwargs: Any) -> Lab:
    lab = Lab(
        spec,
        password=HOST_PASSWORD,
        guest_password=GUEST_PASSWORD,
        read_timeout=kwargs.pop("read_timeout", 6.0),
        **kwargs,
    )
    lab.start()
    return lab


def running_lab(spec: Any = None, **kwargs: Any) -> Iterator[Lab]:
    """`spec` (the default fleet if None) served until the generator is closed (a fixture's body)."""
    lab = start_lab(default_fleet() if spec is None else spec, **kwargs)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="session")
def default_lab() -> Iterator[Lab]:
    yield from running_lab()


def client_for(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> LabClient:
    for name, value in lab.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HCIBENEFIT_AUDIT_LOG", str(tmp_path / "audit.log"))
    # Nothing a test runs may write to the user's own state: VM-name cache, sweep history.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HCIBENEFIT_HISTORY", str(tmp_path / "history.sqlite"))
    for name in ("COLUMNS", "HCIBENEFIT_OUTPUT", "HCIBENEFIT_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    return LabClient(lab, lab.write_inventory(tmp_path / "inventory.yaml"), capsys)


@pytest.fixture
def lab(
    default_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    """The default fleet, reset to its spec for every test; no remote shell may be left open after it."""
    yield from fresh_client(default_lab, tmp_path, monkeypatch, capsys)


def fresh_client(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    """A client of `lab` reset to its spec (a fixture's body); no remote shell may be left open after it."""
    lab.reset()
    yield client_for(lab, tmp_path, monkeypatch, capsys)
    assert lab.open_shells() == 0, "a test left remote shells open"


def requests_when_azure_opens(lab: LabClient, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each time a command opens Azure, how many WinRM requests the lab's nodes had received by then."""
    import hcibenefit.operations.azure_read as azure_read

    counts: list[int] = []
    real_open = azure_read.open_azure

    def open_azure(*args: Any, **kwargs: Any) -> Any:
        counts.append(sum(n["requests"] for n in lab.state()["nodes"]))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(azure_read, "open_azure", open_azure)
    return counts
