"""`hcibenefit lab serve` with bad options or a busy port: one error line, and never a private directory
(which holds the nodes' TLS keys) left behind, whether it fails, is stopped or is terminated mid-start."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcibenefit.cli.app import run
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import parse_fleet

TINY = parse_fleet("clusters:\n  - name: c\n    nodes: [n1]\n", "tiny.yaml")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where this test's labs make their directories, so other runs on the machine do not interfere."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    monkeypatch.setenv("TMPDIR", str(directory))
    yield directory
    assert _lab_dirs(directory) == [], "a lab left its private directory behind"


def _lab_dirs(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("hcibenefit-"))


def _serve(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = run(["lab", "serve", *argv])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def test_a_control_port_out_of_range_is_one_error_line(
    private_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _serve(capsys, "--control-port", "70000", "--write-inventory", str(tmp_path / "lab.yaml"))
    assert code == ExitCode.USAGE
    assert lines == ["error: --control-port must be a port number 0-65535 (0: any free port), got 70000"]


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_process_count_that_is_not_one_is_one_error_line(
    value: str, private_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _serve(
        capsys, "--processes", value, "--control-port", "0", "--write-inventory", str(tmp_path / "lab.yaml")
    )
    assert code == ExitCode.USAGE
    assert lines == [f"error: --processes must be a number of processes (1 or more) or auto, got {value!r}"]
    assert not (tmp_path / "lab.yaml").exists()


def test_a_directory_as_the_inventory_is_one_error_line_before_anything_starts(
    private_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _serve(capsys, "--write-inventory", str(private_tmp.parent), "--control-port", "0")
    assert code == ExitCode.USAGE
    assert len(lines) == 1 and lines[0].startswith(
        f"error: --write-inventory {private_tmp.parent} is a directory"
    )


def test_a_busy_control_port_is_one_error_and_cleans_up(
    private_tmp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, lines = _serve(
            capsys, "--control-port", str(port), "--write-inventory", str(tmp_path / "lab.yaml")
        )
    assert code == ExitCode.USAGE
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [
        f"error: cannot start the lab: control endpoint 127.0.0.1:{port}: Address already in use"
    ]
    assert not any("Traceback" in line or "internal error" in line for line in lines)
    assert not (tmp_path / "lab.yaml").exists()


def test_the_private_directories_are_private_and_go_with_the_lab(private_tmp: Path) -> None:
    lab = Lab(TINY)
    assert _lab_dirs(private_tmp) == []  # nothing on disk before start
    lab.start()
    try:
        dirs = [private_tmp / name for name in _lab_dirs(private_tmp)]
        assert len(dirs) >= 2  # the lab's own and the WinRM server's (node keys)
        for directory in dirs:
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
            for key in directory.glob("*.pem"):
                if b"PRIVATE KEY" in key.read_bytes():
                    assert stat.S_IMODE(key.stat().st_mode) & 0o077 == 0, key
    finally:
        lab.stop()
    assert _lab_dirs(private_tmp) == []


@pytest.mark.parametrize("prefix", ["hcibenefit-lab-", "hcibenefit-wsman-"])
def test_an_interrupt_the_moment_a_private_directory_is_made_leaves_nothing(
    private_tmp: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    """SIGTERM (KeyboardInterrupt) may land right after the directory exists and before the lab has noted
    it: the test below sends it as soon as the directory appears. The lab must still remove it."""
    real_mkdir = os.mkdir

    def mkdir_then_interrupted(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]
        if Path(path).name.startswith(prefix):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "mkdir", mkdir_then_interrupted)
    lab = Lab(TINY)
    with pytest.raises(KeyboardInterrupt):
        lab.start()
    monkeypatch.undo()  # private_tmp's own check reads the directory
    assert _lab_dirs(private_tmp) == []


def test_sigterm_while_the_lab_starts_leaves_nothing_behind(private_tmp: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    argv = ["lab", "serve", "--control-port", "0", "--write-inventory", str(tmp_path / "lab.yaml")]
    process = subprocess.Popen(
        [sys.executable, "-m", "hcibenefit", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90  # a loaded CI machine may take long to import and start
        while not _lab_dirs(private_tmp) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _lab_dirs(private_tmp), "the lab never made its directory"
        process.send_signal(signal.SIGTERM)  # at the latest while it generates keys and binds ports
        _, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:  # never leave a lab serving after a failed test
            process.kill()
            process.communicate()
    assert process.returncode in (ExitCode.OK, ExitCode.INTERRUPTED), err
    assert "Traceback" not in err
    assert _lab_dirs(private_tmp) == []
