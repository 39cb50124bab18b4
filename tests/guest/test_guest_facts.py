"""Parsing what the guest scripts print: shapes PowerShell 5.1 really produces, and shapes it must refuse."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from hcibenefit.facts.guest import (
    TASK_NOT_YET_RUN,
    body_document,
    license_status_name,
    parse_fan_out,
    parse_kick_body,
    parse_probe_body,
)
from hcibenefit.facts.host import FactsError


def _body(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema": "guest-probe-body/1",
        "computer_name": "AVD-01",
        "collected_at": "2025-01-31T10:00:00.1234567Z",
        "nonce": "0123456789",
        "os": {"caption": "Microsoft Windows 11 Enterprise multi-session", "edition_id": "ServerRdsh",
               "build": "22631", "version": "10.0.22631"},
        "licenses": [{"name": "Windows(R), ServerRdsh edition", "description": "x", "license_status": 5,
                      "license_family": "ServerRdsh", "product_key_channel": "Volume:GVLK", "grace_minutes": 0}],
        "task": {"present": True, "state": "Ready", "execute": ["%SystemRoot%\\system32\\fclip.exe"],
                 "last_run_time": "1999-11-30T00:00:00.0000000Z", "last_task_result": TASK_NOT_YET_RUN,
                 "next_run_time": None, "missed_runs": 0},
        "imds": [
            {"address": "169.254.169.254", "ok": False, "status_code": None, "latency_ms": 3000,
             "error": "The operation has timed out."},
            {"address": "169.254.169.253", "ok": True, "status_code": 200, "latency_ms": 4, "error": None},
        ],
        "document": {"fetched_from": "169.254.169.253", "raw": '{"data":"e30="}'},
        "addresses": [{"address": "10.0.0.5", "prefix_length": 24}, {"address": "169.254.3.4", "prefix_length": 16}],
        "events": {"security_spp": [{"id": 8198, "time": "2025-01-31T09:00:00Z", "level": "Error",
                                     "message": "License Activation (slui.exe) failed"}], "clip": []},
        "problems": [],
    }  # fmt: skip
    document.update(changes)
    return document


def test_probe_body_parses_every_section() -> None:
    probe = parse_probe_body(_body())
    assert probe.os is not None and probe.os.edition_id == "ServerRdsh"
    assert probe.license is not None and probe.license.status_name == "Notification"
    assert probe.licensed is False
    assert probe.task.present and probe.task.never_ran and probe.task.last_result_hex == "0x00041303"
    assert probe.attempt("169.254.169.253") is not None and probe.attempt("169.254.169.253").ok  # type: ignore[union-attr]
    assert probe.imds_addresses == ("169.254.3.4",)
    assert probe.document_raw == '{"data":"e30="}' and probe.document_from == "169.254.169.253"
    assert probe.spp_events[0].id == 8198 and probe.spp_events[0].time == dt.datetime(
        2025, 1, 31, 9, tzinfo=dt.timezone.utc
    )
    assert probe.collected_at is not None and probe.collected_at.microsecond == 123456


def test_single_element_arrays_that_powershell_unrolled_are_accepted() -> None:
    # 5.1 turns a one-element array into a bare object in some paths; the parser takes both.
    lic = _body()["licenses"][0]
    probe = parse_probe_body(_body(licenses=lic, addresses={"address": "169.254.9.9", "prefix_length": 16}))
    assert len(probe.licenses) == 1 and probe.imds_addresses == ("169.254.9.9",)


def test_licensed_prefers_a_licensed_product_over_the_first() -> None:
    first = {**_body()["licenses"][0], "license_status": 5}
    second = {**first, "name": "other", "license_status": 1}
    probe = parse_probe_body(_body(licenses=[first, second]))
    assert probe.licensed is True and probe.license is not None and probe.license.name == "other"


def test_license_query_failure_is_unknown_not_unlicensed() -> None:
    problem = {"source": "license", "message": "Invalid class", "error_id": "HRESULT 0x80041010"}
    probe = parse_probe_body(_body(licenses=[], problems=[problem]))
    assert probe.licensed is None
    assert parse_probe_body(_body(licenses=[])).licensed is False


def test_missing_task_versus_unreadable_task() -> None:
    absent = {"present": False, "state": None, "execute": [], "last_run_time": None, "last_task_result": None,
              "next_run_time": None, "missed_runs": None}  # fmt: skip
    probe = parse_probe_body(_body(task=absent))
    assert not probe.task.present and probe.task_known
    broken = parse_probe_body(
        _body(task=absent, problems=[{"source": "task", "message": "Access denied", "error_id": "x"}])
    )
    assert not broken.task_known


def test_a_task_that_ran_is_not_never_ran() -> None:
    task = {**_body()["task"], "last_run_time": "2025-01-31T08:00:01Z", "last_task_result": 0}
    parsed = parse_probe_body(_body(task=task)).task
    assert not parsed.never_ran and parsed.last_result_hex == "0x00000000"
    negative = {**task, "last_task_result": -2147012866}  # 0x80072EFE as a signed Int32
    assert parse_probe_body(_body(task=negative)).task.last_result_hex == "0x80072EFE"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"schema": "guest-probe/1"}, "schema"),
        ({"licenses": [{"name": "x"}]}, "probe.licenses[0].license_status: missing"),
        ({"licenses": [{"license_status": "five"}]}, "probe.licenses[0].license_status"),
        ({"imds": [{"address": "169.254.169.253", "ok": "yes"}]}, "probe.imds[0].ok"),
        ({"imds": "169.254.169.253"}, "probe.imds: expected a list"),
        ({"task": {"present": True, "last_task_result": True}}, "probe.task.last_task_result"),
    ],
)
def test_wrong_shapes_are_facts_errors_naming_the_field(change: dict[str, Any], words: str) -> None:
    with pytest.raises(
        FactsError, match="^" + words.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        parse_probe_body(_body(**change))


def test_fan_out_maps_outputs_and_failures_by_vm_case_insensitively() -> None:
    fan = parse_fan_out(
        {
            "schema": "guest-probe/1",
            "computer_name": "NODE1",
            "results": {"vm": "AVD-01", "output": "{}"},
            "failures": [
                {
                    "vm": "avd-02",
                    "message": "The credential is invalid.",
                    "error_id": "InvalidCredential",
                    "category": "x",
                },
                {"vm": None, "message": "boom", "error_id": "Other", "category": "x"},
            ],
        },
        schema="guest-probe/1",
    )
    assert fan.output_of("avd-01") == ("{}",)
    assert [f.error_id for f in fan.failures_of("AVD-02")] == ["InvalidCredential"]
    assert [f.message for f in fan.unattributed] == ["boom"]
    with pytest.raises(FactsError, match="schema"):
        parse_fan_out({"schema": "guest-kick/1"}, schema="guest-probe/1")


def test_body_document_ignores_stray_output_but_not_ambiguity() -> None:
    body = json.dumps(_body())
    assert (
        body_document(("Welcome to the profile", body), schema="guest-probe-body/1")["nonce"] == "0123456789"
    )
    with pytest.raises(FactsError, match="no guest-probe-body/1"):
        body_document(("hello",), schema="guest-probe-body/1")
    with pytest.raises(FactsError, match="2 guest-probe-body/1"):
        body_document((body, body), schema="guest-probe-body/1")


def test_kick_body_runs_and_error() -> None:
    result = parse_kick_body(
        {
            "schema": "guest-kick-body/1",
            "task_present": True,
            "task_state_before": "Disabled",
            "enabled_task": True,
            "license_before": 5,
            "license_after": 1,
            "runs": {"run": 1, "started_at": "2025-01-31T10:00:00Z", "finished": True, "state_after": "Ready",
                     "last_run_time": "2025-01-31T10:00:01Z", "last_task_result": 0, "license_status": 1},
            "error": None,
            "problems": [],
        }
    )  # fmt: skip
    assert result.enabled_task and result.license_after == 1 and len(result.runs) == 1
    assert result.runs[0].last_result_hex == "0x00000000" and result.error is None
    failed = parse_kick_body(
        {"schema": "guest-kick-body/1", "task_present": False, "runs": [], "error": {"message": "No MSFT_ScheduledTask",
         "error_id": "CmdletizationQuery_NotFound_TaskName,Get-ScheduledTask", "category": "ObjectNotFound"}}
    )  # fmt: skip
    assert failed.error is not None and failed.error.error_id.startswith("CmdletizationQuery_NotFound")


def test_license_status_names() -> None:
    assert [license_status_name(i) for i in range(7)] == [
        "Unlicensed", "Licensed", "OOBGrace", "OOTGrace", "NonGenuineGrace", "Notification", "ExtendedGrace",
    ]  # fmt: skip
    assert license_status_name(None) == "unknown" and license_status_name(9) == "status 9"


def test_probe_body_2_carries_update_level_agent_and_clock_and_1_still_parses() -> None:
    from hcibenefit.facts.guest import parse_probe_body

    old = {
        "schema": "guest-probe-body/1",
        "computer_name": "VM1",
        "nonce": "",
        "licenses": [],
        "problems": [],
    }
    probe = parse_probe_body(old)
    assert probe.started_at is None and probe.avd_agent is None and probe.time is None
    new = {
        **old,
        "schema": "guest-probe-body/2",
        "started_at": "2026-11-29T10:00:00.1234567Z",
        "os": {
            "caption": "c",
            "edition_id": "ServerRdsh",
            "build": "22631",
            "version": "10.0.22631",
            "ubr": 3447,
        },
        "avd_agent": {"installed": True, "is_registered": 1},
        "time": {"w32time_type": "NT5DS"},
    }
    probe = parse_probe_body(new)
    assert probe.os is not None and probe.os.ubr == 3447
    assert probe.avd_agent is not None and probe.avd_agent.is_registered == 1
    assert probe.time is not None and probe.time.w32time_type == "NT5DS"
    assert probe.started_at is not None and probe.started_at.microsecond == 123456
    with pytest.raises(FactsError, match=r"avd_agent\.is_registered"):
        parse_probe_body({**new, "avd_agent": {"installed": True, "is_registered": "yes"}})
    with pytest.raises(FactsError, match="schema"):
        parse_probe_body({**new, "schema": "guest-probe-body/3"})
