"""Standard streams that are not what a program expects: a reader that leaves (`| head -1`), a closed
stdout (`>&-`), --ask-pass without a terminal. Each has one documented behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hcibenefit.exitcodes import ExitCode
from tests.integration.conftest import LabClient

INVENTORY = "clusters:\n" + "".join(
    f"  - name: c{i}\n    nodes: [{{name: n{i}, address: 127.0.0.1, port: 9}}]\n"
    "    credentials: {username: admin, password_env: HCIBENEFIT_TEST_UNSET}\n"
    for i in range(10)
)


def _hcibenefit(*argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCIBENEFIT_")}
    return subprocess.Popen([sys.executable, "-m", "hcibenefit", *argv], env=env, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    return path


def test_a_reader_that_goes_away_is_exit_141_and_silent(inventory: Path) -> None:
    process = _hcibenefit("inventory", "show", str(inventory), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head -0`: the reader is gone before the report is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == ExitCode.BROKEN_PIPE, err
    assert err == ""


def test_head_1_sees_the_first_line_and_no_error(inventory: Path) -> None:
    process = _hcibenefit("inventory", "show", str(inventory), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    code = process.wait(timeout=60)
    assert first.startswith(b"Inventory ")
    # Either the report fit in the pipe before head left (0), or it did not (141); never 1, never noise.
    assert code in (ExitCode.OK, ExitCode.BROKEN_PIPE) and err == ""


def test_a_closed_stdout_is_a_usage_error_naming_output(inventory: Path, tmp_path: Path) -> None:
    process = _hcibenefit(
        "inventory", "show", str(inventory), stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1)
    )
    _, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.USAGE
    assert b"standard output is closed" in err and b"--output-file PATH" in err and b"Traceback" not in err
    report = tmp_path / "report.txt"
    process = _hcibenefit(
        "--output-file", str(report), "inventory", "show", str(inventory), preexec_fn=lambda: os.close(1)
    )
    assert process.wait(timeout=60) == ExitCode.OK and report.read_text().startswith("Inventory ")


def test_ask_pass_without_a_terminal_never_reads_stdin(inventory: Path) -> None:
    process = _hcibenefit(
        "-i",
        str(inventory),
        "--ask-pass",
        "status",
        "--cluster",
        "c1",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # no controlling terminal, as under cron or CI
    )
    out, err = process.communicate(b"a-password-on-stdin\n", timeout=60)
    assert process.returncode == ExitCode.USAGE, err
    text = err.decode()
    assert "--ask-pass cannot ask for the password" in text and "no terminal" in text
    assert "password_env, password_cmd or keyring" in text
    assert "GetPassWarning" not in text and "a-password-on-stdin" not in text + out.decode()


def test_a_closed_stderr_changes_neither_the_exit_code_nor_stdout(lab: LabClient) -> None:
    """`hcibenefit status 2>&-`: the run goes on and exits with its own code; what it would have said on
    stderr (a node down) goes nowhere, least of all into the JSON on stdout."""
    lab.lab.set_faults("lab01-n3", down=True)
    argv = [sys.executable, "-m", "hcibenefit", "-i", str(lab.inventory), "status", "-o", "json"]
    env = dict(os.environ)
    told = subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)
    assert told.returncode == ExitCode.FINDINGS_AND_INCOMPLETE, told.stderr
    assert b"lab01-n3" in told.stderr  # there is something to say on stderr
    closed = subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2), timeout=120, check=False
    )
    assert closed.returncode == told.returncode
    document = json.loads(closed.stdout)
    assert document["command"] == "status" and {n["name"] for n in document["nodes"]} == {
        n["name"] for n in json.loads(told.stdout)["nodes"]
    }
    # A command whose summary line is printed for people: with fd 2 closed, print(file=sys.stderr) would
    # write to stdout (sys.stderr is None), into the JSON.
    validate = [*argv[:5], "inventory", "validate", "-o", "json"]
    checked = subprocess.run(
        validate, env=env, stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2), timeout=120, check=False
    )
    assert checked.returncode == ExitCode.OK and json.loads(checked.stdout)["valid"] is True
