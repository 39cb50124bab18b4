"""Fixtures for the sweep: a lab of its own (the default fleet, reset per test) and helpers to run sweeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.cli.sweep_cmd import lab_waivers
from hcibenefit.lab.fleet import Lab
from tests.integration.conftest import CliResult, LabClient, fresh_client, running_lab


@pytest.fixture(scope="session")
def sweep_lab() -> Iterator[Lab]:
    yield from running_lab()


@pytest.fixture
def lab(
    sweep_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    """The default fleet reset to its spec; no remote shell may be left open after a test."""
    yield from fresh_client(sweep_lab, tmp_path, monkeypatch, capsys)  # history in tmp_path


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
