"""The CLI skeleton: fast start-up, inventory commands, the error boundary and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hcibenefit.cli.app import run
from hcibenefit.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "pypsrp",
    "psrpcore",
    "azure",
    "spnego",
    "cryptography",
    "requests",
    "tree_sitter",
    "tree_sitter_powershell",
)


MINIMAL = ROOT / "tests" / "cli" / "minimal-inventory.yaml"


@pytest.mark.parametrize("argv", [["--help"], ["inventory", "validate", str(MINIMAL)]])
def test_startup_imports_no_remoting_or_azure(argv: list[str]) -> None:
    probe = (
        "import contextlib, io, sys\n"
        "from hcibenefit.cli.app import run\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    code = run({argv!r})\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(code, ','.join(heavy))\n"
    )
    env = {**os.environ, "HCIBENEFIT_MINIMAL_PASSWORD": "set"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert out[0] == "0"
    assert out[1:] == [], f"start-up imported {out[1:]}"


def test_a_command_imports_its_own_module_only() -> None:
    """`hcibenefit inventory validate` imports `inventory_cmd`, not the other command modules (each is
    named in app.COMMANDS and imported when first used; together they were ~12 ms of every start)."""
    probe = (
        "import contextlib, io, sys\n"
        "from hcibenefit.cli.app import run\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    code = run(['inventory', 'validate', {str(MINIMAL)!r}])\n"
        "print(code, ' '.join(sorted(m for m in sys.modules if m.endswith('_cmd'))))\n"
    )
    env = {**os.environ, "HCIBENEFIT_MINIMAL_PASSWORD": "set"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    code, *modules = out.stdout.split()
    assert code == "0", out.stderr
    assert modules == ["hcibenefit.cli.inventory_cmd"]


def test_every_command_module_is_named_in_the_command_table() -> None:
    """A new `*_cmd.py` must be added to app.COMMANDS, or its commands would never be reachable."""
    from hcibenefit.cli.app import COMMANDS

    on_disk = {path.stem for path in (ROOT / "hcibenefit" / "cli").glob("*_cmd.py")}
    assert on_disk == {entry.module for entry in COMMANDS}
    assert len({entry.name for entry in COMMANDS}) == len(COMMANDS)


def test_version_and_module_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "hcibenefit", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("hcibenefit ")


def test_validate_example_inventory_names_what_is_missing_on_this_machine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HCIBENEFIT_PASSWORD", raising=False)
    assert run(["inventory", "validate", str(ROOT / "inventory.example.yaml")]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "pki/microsoft-tls-rsa-root-g2-xsign.crt does not exist" in err
    assert (
        "inventory.example.yaml:54:5: defaults.credentials: password_env HCIBENEFIT_PASSWORD is not set"
        in err
    )
    assert "problem(s)" in err and "Traceback" not in err


def test_validate_checks_ca_files_parse_and_sources_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    monkeypatch.setenv("FLEET_PW", "not-printed-Pa55")
    good = tmp_path / "good.yaml"
    good.write_text(
        f"defaults:\n  credentials: {{username: svc, password_env: FLEET_PW}}\n"
        f"clusters:\n  - name: c1\n    nodes: [n1]\n    winrm: {{cert_validation: {certifi.where()}}}\n"
        f"attestation:\n  ca_files: [{certifi.where()}]\n"
    )
    assert run(["inventory", "validate", str(good)]) == ExitCode.OK
    assert "ok (1 clusters, 1 nodes)" in capsys.readouterr().err
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "defaults:\n  credentials: {username: svc, password_cmd: [no-such-program-hcib, x]}\n"
        f"clusters:\n  - name: c1\n    nodes: [n1]\nattestation:\n  ca_files: [{broken}]\n"
    )
    assert run(["inventory", "validate", str(bad)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "certificate #1 is malformed" in err and "'no-such-program-hcib' is not found on PATH" in err
    assert "not-printed-Pa55" not in err


def test_validate_reports_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text("clusters:\n  - name: c1\n    nodes:\n      - {name: n1, port: 59x5}\n")
    assert run(["inventory", "validate", str(bad)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"{bad}:4:" in err and "clusters[0].nodes[0].port" in err and "59x5" in err
    assert "Traceback" not in err


def test_missing_inventory_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HCIBENEFIT_INVENTORY", raising=False)
    assert run(["status"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "no inventory given" in err and "hint:" in err


def test_show_masks_secrets_and_names_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_FOR_SHOW", "hunter2-do-not-print")
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "defaults:\n  credentials: {username: admin, password_env: SECRET_FOR_SHOW}\n"
        "clusters:\n  - name: c1\n    nodes: [n1, {name: n2, port: 5999}]\n"
    )
    out = tmp_path / "show.json"
    assert (
        run(["-i", str(inventory), "--output-file", str(out), "inventory", "show", "--format", "json"])
        == ExitCode.OK
    )
    text = out.read_text()
    assert "hunter2" not in text
    document = json.loads(text)
    nodes = document["clusters"][0]["nodes"]
    assert nodes[1]["winrm"]["port"] == 5999 and nodes[0]["winrm"]["port"] == 5986
    assert nodes[0]["credentials"] == {
        "username": "admin",
        "password_env": "SECRET_FOR_SHOW",
        "password": "***",
    }


def test_unknown_format_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["inventory", "show", str(ROOT / "inventory.example.yaml"), "--format", "yaml"])
    assert code == ExitCode.USAGE
    assert "format 'yaml' is not available" in capsys.readouterr().err


def test_unexpected_errors_are_short_without_vv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hcibenefit.cli.inventory_cmd as inventory_cmd

    def boom(*_: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(inventory_cmd, "_node_row", boom)
    assert run(["inventory", "show", str(ROOT / "inventory.example.yaml")]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaboom" in err and "Traceback" not in err
    assert run(["-vv", "inventory", "show", str(ROOT / "inventory.example.yaml")]) == ExitCode.USAGE
    assert "Traceback" in capsys.readouterr().err
