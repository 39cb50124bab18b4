"""The CLI as an admin who lives in az, kubectl and PowerShell uses it, against the lab (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hcibenefit.cli.app import run
from hcibenefit.exitcodes import ExitCode
from tests.integration.conftest import LabClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "inventory.example.yaml")


# --- options -------------------------------------------------------------------------------------


def test_output_format_works_before_and_after_the_subcommand_in_any_case(lab: LabClient) -> None:
    for argv in (
        ("-o", "json", "status"),
        ("status", "-o", "json"),
        ("status", "--output", "JSON"),
        ("-f", "table", "status", "-f", "Json"),  # after the subcommand wins
        ("status", "--format", "json"),
    ):
        result = lab.cli(*argv, "--fail-on", "none")
        assert result.code == ExitCode.OK, (argv, result.err)
        assert result.json()["vms"], argv


def test_output_file_is_a_separate_option_and_o_is_never_a_file(lab: LabClient, tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    result = lab.cli("status", "-o", "json", "--output-file", str(target), "--fail-on", "none")
    assert result.code == ExitCode.OK and result.out == ""
    assert json.loads(target.read_text())["vms"]
    wrong = lab.cli("status", "-o", str(tmp_path / "x.json"))
    assert wrong.code == ExitCode.USAGE and "--output-file" in wrong.err
    assert not (tmp_path / "x.json").exists()


def test_format_from_the_environment(lab: LabClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCIBENEFIT_OUTPUT", "json")
    assert lab.cli("status", "--fail-on", "none").json()["vms"]


def test_global_options_after_the_subcommand(lab: LabClient, tmp_path: Path) -> None:
    inventory = str(lab.inventory)
    result = lab.cli("inventory", "show", "-i", inventory, "-o", "json", "-q")
    assert result.code == ExitCode.OK and json.loads(result.out)["clusters"]
    assert run(["status", "--inventory", inventory, "--output", "json", "--fail-on", "none"]) == 0


def test_repeated_options_accumulate(lab: LabClient) -> None:
    vms = lab.cli("status", "--vm", "avd-*", "--vm", "w11*", "-o", "json", "--fail-on", "none").json()["vms"]
    names = {v["name"] for v in vms}
    assert "avd-ok-01" in names and "w11ms-v2-ok" in names and "sql-01" not in names
    plan = lab.cli(
        "host",
        "sync",
        "-c",
        "hci-lab-01",
        "-c",
        "hci-lab-02",
        "--node",
        "lab01-n2",
        "--node",
        "lab02-n1",
        "--what-if",
        "-o",
        "json",
    )
    assert [n["node"] for n in plan.json()["nodes"]] == ["lab01-n2", "lab02-n1"]


def test_enum_values_are_case_insensitive(lab: LabClient) -> None:
    result = lab.cli("enable", "--vm", "w11ms-gsi-off", "--transport", "v2", "--what-if", "-o", "JSON")
    assert result.code == ExitCode.OK, result.err
    assert result.json()["vms"][0]["transport"] == "V2"
    result = lab.cli("status", "--fail-on", "CRITICAL", "--verdict", "OK", "-o", "json")
    assert result.code == ExitCode.OK and {v["verdict"] for v in result.json()["vms"]} == {"ok"}
    assert (
        lab.cli("lab", "state", "--control-port", "1", "-o", "TABLE").code == ExitCode.USAGE
    )  # no lab there


def test_habits_from_other_tools_get_a_hint(lab: LabClient) -> None:
    verbose = lab.cli("-v", "2", "status")
    assert verbose.code == ExitCode.USAGE and "use -vv" in verbose.err
    dry = lab.cli("enable", "--vm", "avd-missing-nic", "--dry-run")
    assert dry.code == ExitCode.USAGE and "--what-if" in dry.err
    assert lab.invocations("vm-benefits-enable") == 0


def test_no_help_page_shows_a_python_type(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from hcibenefit.cli.app import cli_command

    def leaves(command, path):  # type: ignore[no-untyped-def]
        names = command.list_commands(None) if hasattr(command, "list_commands") else []
        if not names:
            return [path]
        return [p for n in names for p in leaves(command.get_command(None, n), [*path, n])]

    pages = leaves(cli_command(), [])
    assert len(pages) > 15
    for page in pages:
        assert run([*page, "--help"]) == ExitCode.OK
        text = capsys.readouterr().out
        assert not re.search(r"<(bool|str|int|path|float|list\[|int range)", text), (page, text)


def test_help_reads_naturally_and_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["status", "--help"], ["enable", "--help"], ["guest", "check", "--help"]):
        assert run(argv) == ExitCode.OK
        text = capsys.readouterr().out
        assert "<bool>" not in text and "list[str]" not in text and "<str>" not in text, argv
        assert "Examples:" in text, argv
    run(["status", "--help"])
    text = capsys.readouterr().out
    assert "NAME|GLOB" in text and "--output-file" in text and "--verdict" in text


# --- selection -----------------------------------------------------------------------------------


def test_a_selection_that_matches_nothing_is_exit_2_with_the_closest_names(lab: LabClient) -> None:
    for argv in (
        ("status", "--vm", "avd-ok-0l"),
        ("guest", "check", "--vm", "avd-ok-0*x"),
        ("enable", "--vm", "avd-missing-nik"),
    ):
        result = lab.cli(*argv)
        assert result.code == ExitCode.USAGE, argv
        assert "did you mean" in result.err and "avd-" in result.err, argv
    assert lab.invocations("guest-probe") == 0 and lab.invocations("vm-benefits-enable") == 0


def test_a_glob_that_changes_things_shows_its_expansion_and_asks(lab: LabClient) -> None:
    result = lab.cli("enable", "--vm", "avd-missing-*")
    assert result.code == ExitCode.USAGE and "--yes" in result.err
    assert "--vm 'avd-missing-*' matched: avd-missing-nic" in result.err
    assert lab.invocations("vm-benefits-enable") == 0
    done = lab.cli("enable", "--vm", "avd-missing-*", "--yes", "-o", "json")
    assert done.code == ExitCode.OK and done.json()["vms"][0]["result"] == "changed"


def test_changing_commands_need_a_selection(lab: LabClient) -> None:
    for argv in (
        ("enable",),
        ("enable", "--cluster", "hci-lab-01"),
        ("disable",),
        ("host", "sync"),
        ("guest", "kick"),
    ):
        result = lab.cli(*argv)
        assert result.code == ExitCode.USAGE and "--all" in result.err, argv
    assert lab.invocations("host-facts") == 0


def test_verdict_filter_selects_what_status_and_enable_work_on(lab: LabClient) -> None:
    result = lab.cli("status", "--verdict", "missing", "--verdict", "broken", "-o", "json")
    verdicts = {v["name"]: v["verdict"] for v in result.json()["vms"]}
    assert set(verdicts.values()) == {"missing", "broken"} and "avd-missing-nic" in verdicts
    plan = lab.cli("enable", "--cluster", "hci-lab-02", "--verdict", "missing", "--what-if", "-o", "json")
    assert [v["vm"] for v in plan.json()["vms"]] == ["w11ms-gsi-off"]


def test_guest_check_can_say_every_vm(lab: LabClient) -> None:
    result = lab.cli("guest", "check", "--all", "--cluster", "hci-lab-02", "-o", "json")
    assert {r["vm"] for r in result.json()["vms"]} == {
        v["name"] for v in lab.state()["vms"] if v["cluster"] == "hci-lab-02"
    }
    # One probe call per owner node that has a running VM, whatever the number of VMs.
    assert lab.invocations("guest-probe") <= 3


# --- exit codes scoped to the selection ----------------------------------------------------------


def test_exit_code_counts_only_what_was_selected(lab: LabClient) -> None:
    healthy = lab.cli(
        "status", "--cluster", "hci-lab-01", "--vm", "avd-ok-01", "--fail-on", "medium", "-o", "json"
    )
    assert healthy.code == ExitCode.OK, healthy.json()["findings"]
    assert [n["name"] for n in healthy.json()["nodes"]] == ["lab01-n1"]
    sick = lab.cli("status", "--vm", "avd-on-expired-node", "--fail-on", "high", "-o", "json")
    assert sick.code == ExitCode.FINDINGS
    assert {f["target"] for f in sick.json()["findings"]} == {"avd-on-expired-node", "lab01-n3"}


# --- status output -------------------------------------------------------------------------------


def test_status_json_carries_time_version_inventory_and_selection(lab: LabClient) -> None:
    from hcibenefit import __version__

    document = lab.cli("status", "--cluster", "hci-lab-01", "-o", "json", "--fail-on", "none").json()
    assert document["hcibenefit_version"] == __version__
    assert document["inventory"] == str(lab.inventory)
    assert document["generated_at"].endswith("+00:00") and document["command"] == "status"
    assert document["selection"]["clusters"] == ["hci-lab-01"]


def test_vms_that_are_off_saved_or_paused_are_unknown_with_a_reason_and_fix(lab: LabClient) -> None:
    result = lab.cli("status", "--vm", "avd-off", "--vm", "avd-saved", "--vm", "w11ms-paused", "-o", "json")
    document = result.json()
    assert {v["name"]: v["verdict"] for v in document["vms"]} == dict.fromkeys(
        ("avd-off", "avd-saved", "w11ms-paused"), "unknown"
    )
    fixes = {f["target"]: f["remediation"] for f in document["findings"]}
    # By id: Start-VM -Name takes a wildcard pattern.
    assert (
        f"Get-VM -Id {lab.vm('avd-off')['id']} | Start-VM" in fixes["avd-off"]
        and f"Get-VM -Id {lab.vm('w11ms-paused')['id']} | Resume-VM" in fixes["w11ms-paused"]
    )


def test_every_reason_and_its_fix_is_shown_under_the_table(lab: LabClient) -> None:
    result = lab.cli("status", "--fail-on", "none")
    document = lab.cli("status", "-o", "json", "--fail-on", "none").json()
    assert "(+" not in result.out
    for finding in document["findings"]:
        assert finding["detail"] in result.out.replace("\n      ", " ")
        assert f"fix: {finding['remediation']}" in result.out.replace("\n      ", " ")


@pytest.mark.parametrize("argv", [("status", "--fail-on", "none"), ("guest", "check")])
def test_tables_fit_120_columns(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    result = lab.cli(*argv)
    assert result.out.count("\n") > 20
    too_wide = [line for line in result.out.splitlines() if len(line) > 120]
    assert not too_wide, too_wide[:3]


def test_piped_output_never_wraps_and_wide_shows_every_column(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    piped = lab.cli("status", "--fail-on", "none").out
    assert "GUEST OS" not in piped
    # Not a terminal: one line per row, so grep finds a VM with its whole reason.
    assert any(
        "w10ms-no-switch" in line and "Owner node's IMDS switch" in line for line in piped.splitlines()
    )
    monkeypatch.setenv("COLUMNS", "100")
    wide = lab.cli("status", "--wide", "--fail-on", "none").out
    assert "GUEST OS" in wide and "HOST VNIC" in wide
    assert any(len(line) > 100 for line in wide.splitlines())
