"""How a command's process ends: without the interpreter's module teardown when it is the last thread,
and still with everything a normal exit guarantees (its code, its buffered output, its atexit handlers);
as usual when another thread is still at work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A command stand-in: app.run is what entry_point() (through main()) calls after setting up; what it returns is the exit code.
PROBE = """
import atexit, os, sys, threading, time
from hcibenefit.cli import app

marker = sys.argv[1]

exit_now = os._exit

def exit_without_teardown(code):
    open(marker, "a").write("no teardown\\n")
    exit_now(code)

os._exit = exit_without_teardown

def command(*args):
    atexit.register(lambda: open(marker, "a").write("atexit ran\\n"))
    if "--with-thread" in sys.argv:
        def late_writer():
            time.sleep(0.3)
            open(marker, "a").write("thread finished\\n")
        threading.Thread(target=late_writer).start()
    sys.stdout.write("x" * 100)  # still buffered when main() ends: it must reach the pipe
    return 3

app.run = command
app.entry_point()
"""


def _run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
    marker = tmp_path / "marker"
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # output stays buffered
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(marker), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    return done, marker.read_text() if marker.exists() else ""


def test_the_last_thread_exits_with_its_code_output_and_atexit_handlers_but_no_teardown(
    tmp_path: Path,
) -> None:
    done, marker = _run(tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "x" * 100
    assert marker.splitlines() == ["atexit ran", "no teardown"]


def test_a_thread_still_at_work_is_waited_for_as_python_does(tmp_path: Path) -> None:
    done, marker = _run(tmp_path, "--with-thread")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "x" * 100
    assert marker.splitlines() == ["thread finished", "atexit ran"]  # and the interpreter's own exit


def test_main_called_by_a_program_hands_its_exit_code_back() -> None:
    """A benchmark or a wrapper that calls main() in its own process gets SystemExit, not a dead process."""
    probe = (
        "from hcibenefit.cli import app\n"
        "app.run = lambda *args: 3\n"
        "try:\n"
        "    app.main()\n"
        "except SystemExit as done:\n"
        "    print('handed back', done.code)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "handed back 3"
