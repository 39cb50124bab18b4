"""Fixtures for the sweep: a lab of its own (the default fleet, reset per test) and helpers to run sweeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.cli.sweep_cmd import lab_waivers
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import default_fleet
from tests.integration.conftest import CliResult, LabClient, client_for, start_lab


@pytest.fixture(scope="session")
def sweep_lab() -> Iterator[Lab]:
    lab = start_lab(default_fleet())
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(
    sweep_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    """The default fleet reset to its spec; no remote shell may be left open after a test."""
    sweep_lab.reset()
    monkeypatch.setenv("HCIBENEFIT_HISTORY", str(tmp_path / "history.sqlite"))
    yield client_for(sweep_lab, tmp_path, monkeypatch, capsys)
    assert sweep_lab.open_shells() == 0, "a test left remote shells open"


def sweep(client: LabClient, *args: str, waivers: Path | None = None) -> CliResult:
    """`hcibenefit sweep` against the lab, with the lab's waivers unless others are given."""
    return client.cli("sweep", "--waivers", str(waivers or lab_waivers()), *args)


def sweep_json(client: LabClient, *args: str, waivers: Path | None = None) -> tuple[int, dict[str, Any]]:
    result = sweep(client, "-o", "json", *args, waivers=waivers)
    return result.code, json.loads(result.out)


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in document["findings"]}


def validate(document: dict[str, Any]) -> None:
    import jsonschema

    from hcibenefit.report.sweep import schema

    jsonschema.validate(document, schema(), format_checker=jsonschema.FormatChecker())
