"""What a run loads before its first request: only what that request needs (issue 14).

On one cluster at 200 ms a round trip, every 10 ms of imports before the first request is 1% of the run:
the checks, the host-facts records and the renderers load while the hosts work (the runner's when_idle),
and spnego only when a session negotiates. Here the idle-time loading is turned off, so whatever is
imported by the first connection was imported on the way to it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.integration.conftest import LabClient

PROBE = """
import contextlib, io, socket, sys
import hcibenefit.operations.gather as gather
import hcibenefit.operations.status as status

gather.load_checks = lambda: None  # no idle-time loading: see the module docstring
status._load_what_follows = lambda: None
loaded = []
connect = socket.socket.connect

def first_connect(self, address):
    if not loaded:
        loaded.append(sorted(sys.modules))
    return connect(self, address)

socket.socket.connect = first_connect
from hcibenefit.cli.app import run
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = run(["-i", sys.argv[1], "status", "-o", "json", "--fail-on", "none"])
print(code)
print(" ".join(loaded[0]))
"""

LATER = (
    "hcibenefit.checks.assess",
    "hcibenefit.checks.registry",
    "hcibenefit.facts.host",
    "hcibenefit.report",
    "hcibenefit.operations.status_report",
    "spnego",
    "pypsrp.negotiate",
    "azure",
)


def test_status_sends_its_first_request_before_loading_checks_reports_or_spnego(lab: LabClient) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(lab.inventory)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    code, modules = done.stdout.splitlines()
    assert code == "0", done.stderr
    loaded = set(modules.split())
    assert "pypsrp.wsman" in loaded  # the probe saw the first WinRM connection, not something earlier
    early = sorted(m for m in loaded if m.startswith(LATER))
    assert early == [], f"loaded before the first request: {early}"
