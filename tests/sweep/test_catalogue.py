"""`hcibenefit checks list`: the catalogue, from the one registry, in table, JSON and Markdown."""

from __future__ import annotations

import json

import pytest

from hcibenefit.checks.registry import all_checks
from hcibenefit.cli.app import run


def test_checks_list_json_is_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["checks", "list", "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["command"] == "checks list" and document["hcibenefit_version"]
    listed = document["checks"]
    assert {c["id"] for c in listed} == {m.id for m in all_checks()}
    for entry in listed:
        assert entry["scope"] in ("cluster", "node", "vm", "guest", "azure")
        assert entry["severity"] in ("info", "low", "medium", "high", "critical")
        assert entry["title"] and entry["remediation"]


@pytest.mark.parametrize(("fmt", "marker"), [("table", "ID"), ("markdown", "| id | scope |")])
def test_checks_list_for_people(fmt: str, marker: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["checks", "list", "-o", fmt]) == 0
    out = capsys.readouterr().out
    assert marker in out and "guest.activated" in out


def test_check_ids_are_unique_and_well_formed() -> None:
    ids = [m.id for m in all_checks()]
    assert len(ids) == len(set(ids))
    assert all(i == i.lower() and i.count(".") == 1 and "/" not in i for i in ids)


def test_every_check_has_a_title_scope_severity_remediation_and_documentation_link() -> None:
    for meta in all_checks():
        assert meta.title and meta.remediation, meta.id
        assert meta.scope in ("cluster", "node", "vm", "guest", "azure"), meta.id
        assert meta.doc_url.startswith("https://"), f"{meta.id} has no documentation link"
