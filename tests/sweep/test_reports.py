"""Every report format from one real sweep of the lab: JSON against its schema, CSV with the JSON's fields,
JUnit as valid XML with one test case per check and target, Markdown, and HTML in headless Chromium."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.cli.app import run
from hcibenefit.cli.sweep_cmd import lab_waivers
from hcibenefit.lab.fleet import Lab
from hcibenefit.report.sweep import render
from hcibenefit.sweep.model import RECORD_FIELDS
from tests.chromium import dump_dom
from tests.sweep.conftest import validate

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def reports(
    sweep_lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Two sweeps (so changes and the trend have something to show), the second writing every format.
    Module-scoped: one pair of sweeps serves every format's test."""
    tmp = tmp_path_factory.mktemp("reports")
    directory = tmp / "reports"
    sweep_lab.reset()
    inventory = sweep_lab.write_inventory(tmp / "inventory.yaml")
    args = ["-q", "-i", str(inventory), "sweep", "--waivers", str(lab_waivers())]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in sweep_lab.environment().items():
            patch.setenv(name, value)
        patch.setenv("HCIBENEFIT_HISTORY", str(tmp / "history.sqlite"))
        with contextlib.redirect_stdout(io.StringIO()):
            assert run(args) == 1
            with sweep_lab.state.lock:
                sweep_lab.state.node("lab01-n3").attestation = "Active"
            assert run([*args, "--report-dir", str(directory)]) == 1
    sweep_lab.reset()
    assert sweep_lab.open_shells() == 0
    yield directory, json.loads((directory / "hcibenefit-sweep-latest.json").read_text())


def test_json_matches_its_schema(reports: tuple[Path, dict[str, Any]]) -> None:
    _, document = reports
    validate(document)
    assert document["run"]["id"] == 2
    assert document["changes"]["previous_run"]["id"] == 1
    assert [p["run"] for p in document["trend"]] == [1, 2]
    resolved = {r["id"] for r in document["changes"]["resolved"]}
    assert "node.attestation-expired/hci-lab-01/lab01-n3/-" in resolved


def test_schema_rejects_a_broken_document(reports: tuple[Path, dict[str, Any]]) -> None:
    import jsonschema

    _, document = reports
    broken = json.loads(json.dumps(document))
    broken["findings"][0]["status"] = "OK"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    del broken["findings"][0]["waived"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_csv_has_the_json_fields(reports: tuple[Path, dict[str, Any]]) -> None:
    directory, document = reports
    text = next(directory.glob("hcibenefit-sweep-2*.csv")).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == RECORD_FIELDS
    assert set(RECORD_FIELDS) == set(document["findings"][0].keys())
    assert [r["id"] for r in rows] == [f["id"] for f in document["findings"]]
    by_id = {r["id"]: r for r in rows}
    one = document["findings"][0]
    assert by_id[one["id"]]["status"] == one["status"] and by_id[one["id"]]["message"] == one["message"]


def test_csv_neutralises_spreadsheet_formulas() -> None:
    from hcibenefit.report.sweep.machine import _csv_value

    assert _csv_value("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _csv_value("plain") == "plain"


def test_junit_is_valid_xml_with_one_case_per_check_and_target(reports: tuple[Path, dict[str, Any]]) -> None:
    directory, document = reports
    root = ET.parse(directory / "hcibenefit-sweep-latest.junit.xml").getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(document["findings"]) == int(root.get("tests", "0"))
    assert len({c.get("id") for c in cases}) == len(cases)
    statuses = {r["id"]: r for r in document["findings"]}
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == sum(1 for r in statuses.values() if r["status"] == "FAIL" and not r["waived"])
    assert int(root.get("failures", "0")) == len(failures)
    skipped = root.findall("./testsuite/testcase/skipped")
    assert any((s.get("message") or "").startswith("waived: ") for s in skipped)


def test_junit_survives_control_characters_from_a_guest(reports: tuple[Path, dict[str, Any]]) -> None:
    _, document = reports
    hostile = json.loads(json.dumps(document))
    hostile["findings"][0]["message"] = "bad \x1b[31m\x00 text"
    hostile["findings"][0]["status"] = "FAIL"
    out = io.StringIO()
    render(hostile, "junit", out)
    ET.fromstring(out.getvalue().split("\n", 1)[1])


def test_markdown_fits_a_ticket(reports: tuple[Path, dict[str, Any]]) -> None:
    directory, _ = reports
    text = (directory / "hcibenefit-sweep-latest.md").read_text()
    assert text.startswith("# Azure Benefits sweep")
    assert "## hci-lab-01" in text and "| status | severity | target |" in text
    assert "## Changes since the previous run" in text


def test_html_escapes_hostile_text(reports: tuple[Path, dict[str, Any]]) -> None:
    _, document = reports
    hostile = json.loads(json.dumps(document))
    hostile["findings"][0]["message"] = "<script>alert(1)</script>"
    hostile["findings"][0]["status"] = "FAIL"
    out = io.StringIO()
    render(hostile, "html", out)
    assert "<script>" not in out.getvalue() and "&lt;script&gt;" in out.getvalue()


def test_html_opens_in_headless_chromium_without_console_errors(
    reports: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    directory, document = reports
    page = directory / "hcibenefit-sweep-latest.html"
    dom, console = dump_dom(page, tmp_path)
    assert console == [], console
    assert "Azure Benefits sweep" in dom
    assert "hci-lab-01" in dom and "hci-lab-02" in dom
    assert "<svg" in dom and "polyline" in dom, "the trend chart is drawn"
    assert "Since run #1" in dom
    assert f"{document['summary']['FAIL']}</b>FAIL" in dom
