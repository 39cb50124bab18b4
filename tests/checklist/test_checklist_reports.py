"""The checklist's formats from one real run against the lab: the JSON contract, Markdown a ticket renders as a
table, HTML that opens in headless Chromium without console errors, and the terminal table."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.report.checklist import render
from tests.checklist.conftest import checklist, run_cli
from tests.chromium import dump_dom
from tests.integration.conftest import LabClient

pytestmark = pytest.mark.lab


@pytest.fixture
def document(avd: LabClient) -> dict[str, Any]:
    with avd.lab.state.lock:
        avd.lab.state.vms["sh-w11-02"].guest.license_status = 5
    _, doc = checklist(avd, "--vm", "sh-w11-01", "--vm", "sh-w11-02", "--vm", "sh-w10-01")
    return doc


def test_json_is_the_contract(document: dict[str, Any]) -> None:
    assert document["go"] is False
    for vm in document["vms"]:
        assert {"vm", "cluster", "go", "items"} <= set(vm)
        assert isinstance(vm["go"], bool)
        for item in vm["items"]:
            assert {"item", "status", "evidence", "fix"} <= set(item)
            assert item["status"] in ("PASS", "FAIL", "WARN", "N/A")
    run = document["run"]
    assert run["operator"] and run["inventory_hash"].startswith("sha256:") and run["hcibenefit_version"]
    assert [vm["go"] for vm in document["vms"]] == [True, False, True]


def test_markdown_renders_as_a_readable_table(document: dict[str, Any]) -> None:
    out = io.StringIO()
    render(document, "markdown", out)
    text = out.getvalue()
    assert text.startswith("# Azure Virtual Desktop rollout checklist: NO-GO")
    for fact in ("| Time |", "| Operator |", "| Inventory |", "| hcibenefit |"):
        assert fact in text
    assert "**NO-GO: 1 of 3 session host(s) have a FAIL item: sh-w11-02**" in text
    assert "## sh-w11-02 (hci-avd, avd-n2): NO-GO" in text
    header = "| # | item | status | evidence | fix | who |"
    tables = text.split(header)[1:]
    assert len(tables) == 3
    for table in tables:
        rows = [line for line in table.strip().splitlines() if line.startswith("|")]
        assert rows[0] == "|---|---|---|---|---|---|"
        # Every row has the header's six cells: no stray pipe or line break from a message breaks it.
        for row in rows[1:]:
            cells = re.split(r"(?<!\\)\|", row)[1:-1]
            assert len(cells) == 6, row
    assert "| **FAIL** |" in text and "`hcibenefit guest kick --vm sh-w11-02" in text


def test_markdown_and_html_keep_hostile_text_inert(document: dict[str, Any]) -> None:
    hostile = json.loads(json.dumps(document))
    hostile["vms"][0]["items"][0]["evidence"] = "<script>alert(1)</script> | **bold**\nnext"
    out = io.StringIO()
    render(hostile, "html", out)
    assert "<script>" not in out.getvalue() and "&lt;script&gt;" in out.getvalue()
    out = io.StringIO()
    render(hostile, "markdown", out)
    line = next(line for line in out.getvalue().splitlines() if "alert(1)" in line)
    assert "\\<script\\>" in line and "\\|" in line and "\\*\\*bold" in line
    hostile["vms"][0]["vm"] = "evil\x1b[2Jvm"
    out = io.StringIO()
    render(hostile, "table", out, 100)
    assert "\x1b" not in out.getvalue() and "evil\\x1b[2Jvm" in out.getvalue()


def test_the_table_fits_the_terminal_and_ends_with_the_verdict(avd: LabClient, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    result = run_cli(avd, "--vm", "sh-w11-01")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[-1].startswith("GO: all 1 session host(s)")
    assert all(len(line) <= 100 for line in lines if " " in line.strip()), max(lines, key=len)
    assert "sh-w11-01 (hci-avd, avd-n1): GO" in result.out


def test_html_opens_in_headless_chromium_without_console_errors(avd: LabClient, tmp_path: Path) -> None:
    with avd.lab.state.lock:
        avd.lab.state.vms["sh-w11-02"].guest.license_status = 5
    page = tmp_path / "checklist.html"
    result = run_cli(avd, "--vm", "sh-w11-0*", "-o", "html", "--output-file", str(page))
    assert result.code == 1 and page.is_file()
    dom, console = dump_dom(page, tmp_path)
    assert console == [], console
    assert "Azure Virtual Desktop rollout checklist" in dom
    assert "NO-GO: 1 of 2 session host(s) have a FAIL item: sh-w11-02" in dom
    assert "sh-w11-01 (hci-avd, avd-n1): GO" in dom and "Operator" in dom and "sha256:" in dom
