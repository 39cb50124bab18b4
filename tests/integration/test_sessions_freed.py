"""A node's session is freed by reference counting once the run lets it go, not left to the collector.

Functions put on a requests session, adapter, transport or authentication handler (prepared requests,
the shared TLS context, the logon gate) once held their object through a bound method: each node's
whole session (adapters, pools, connection, 118 objects) was then a reference cycle, freed only by a
garbage collection, and the full collections that found them scanned every object the run held (0.6 s
of a 400-node status). This runs a real `status` against the lab with the collector off, then collects
once and looks at what only the collector could free: nothing of a session may be there, for each way
of logging on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.lab.fleet import PASSWORD_ENV, Lab
from tests.integration.conftest import LabClient, fresh_client, running_lab

PROBE = """
import collections, contextlib, gc, io, json, sys
gc.disable()
from hcibenefit.cli.app import run
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    code = run(["-i", sys.argv[1], sys.argv[2], "-o", "json", "--fail-on", "none", *sys.argv[3:]])
document = json.loads(out.getvalue())
nodes = len(document["nodes"]) if "nodes" in document else document["run"]["targets"]["assessed"]["nodes"]
gc.set_debug(gc.DEBUG_SAVEALL)
gc.collect()
kinds = collections.Counter(
    f"{type(o).__module__}.{type(o).__qualname__}"
    for o in gc.garbage
    if type(o).__module__.split(".")[0] in ("requests", "urllib3", "pypsrp", "spnego")
    or type(o).__module__.startswith("hcibenefit.remoting")
)
print(json.dumps({"code": code, "nodes": nodes, "garbage": kinds}))
"""

# pypsrp's own: its pool manager wraps every new connection's `connect` in a closure over the bound
# method (pypsrp/_pool_manager.py), one small cycle per connection that this project does not change.
PYPSRPS_OWN = {"urllib3.connection.HTTPConnection", "urllib3.connection.HTTPSConnection"}


@pytest.fixture(scope="module", params=["basic", "certificate", "ntlm"])
def auth_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if request.param == "basic":
        yield request.getfixturevalue("default_lab")
    else:
        yield from running_lab(auth=request.param)


@pytest.fixture
def client(
    auth_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    for client in fresh_client(auth_lab, tmp_path, monkeypatch, capsys):
        if "certificate_pem" in client.inventory.read_text():
            monkeypatch.delenv(PASSWORD_ENV)  # the certificate logs on: no password exists
        yield client


def _left_for_the_collector(inventory: Path, *command: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(inventory), *command], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return seen


def test_no_session_is_left_for_the_garbage_collector(client: LabClient) -> None:
    seen = _left_for_the_collector(client.inventory, "status")
    assert seen["code"] == 0 and seen["nodes"] >= 4, seen
    garbage = seen["garbage"]
    left = {kind: count for kind, count in garbage.items() if kind not in PYPSRPS_OWN}
    assert left == {}, left
    assert sum(garbage.get(kind, 0) for kind in PYPSRPS_OWN) <= seen["nodes"], garbage


def test_a_sweep_leaves_no_session_for_the_garbage_collector(lab: LabClient) -> None:
    """The sweep's sessions also probe guests: a session key exchanged, a guest credential sent."""
    seen = _left_for_the_collector(lab.inventory, "sweep", "--no-history")
    assert seen["code"] in (0, 4) and seen["nodes"] >= 4, seen  # 4: the lab plants checks it cannot assess
    garbage = seen["garbage"]
    left = {kind: count for kind, count in garbage.items() if kind not in PYPSRPS_OWN}
    assert left == {}, left
    assert sum(garbage.get(kind, 0) for kind in PYPSRPS_OWN) <= seen["nodes"], garbage
