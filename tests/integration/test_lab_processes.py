"""A lab served by several processes (`lab serve --processes N`) answers exactly as the one-process lab:
the same commands give the same results, their effects show in /lab/state and in the lab's Azure, faults
reach the nodes the workers serve, and no worker outlives the lab however it ends."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab import shards
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import default_fleet, generate_fleet
from tests.integration.conftest import LabClient, fresh_client, running_lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not shards.can_fork(), reason="a lab forks its processes on Linux only"),
]

# Fresh on every run or every lab: times, nonces, ports, process ids, durations.
# (latency_ms: measured on the lab clock, which every sleeping pipeline moves on, in any process or thread.)
_VOLATILE_KEYS = {"port", "pid", "processes", "inventory", "duration_s", "latency_ms"}
_VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{4}"), "<time>"),
    (re.compile(r"https?://127\.0\.0\.1:\d+"), "<url>"),
    (re.compile(r"-[0-9a-f]{12}\b"), "-<run command>"),
    (re.compile(r"\b\d{6,}\b"), "<nonce>"),
]


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        for pattern, replacement in _VOLATILE:
            value = pattern.sub(replacement, value)
        return value
    return value


def _scenario(client: LabClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Real commands, reads and changes, then the lab's state: what must not depend on the processes."""
    tmp_path.mkdir()
    for name, value in client.lab.environment().items():  # each lab has its own Azure token
        monkeypatch.setenv(name, value)
    seen: dict[str, Any] = {}
    # WinRM counters are not reset with the lab (a session's lab has served other tests): compare what
    # this scenario added.
    counted = ("requests", "shells_created", "failed_logons")
    before = {n["name"]: {k: n[k] for k in counted} for n in client.state()["nodes"]}

    def step(name: str, *argv: str) -> None:
        # One node at a time: the lab clock is one for the lab, and pipelines sleeping on it in parallel
        # (probe timeouts, waiting for a task) would make what they see depend on the order they ran in.
        serial = () if argv[0] == "host" else ("--parallel", "1")
        result = client.cli(*argv, *serial, "-o", "json")
        seen[name] = (result.code, _normal(result.json()) if result.out.strip() else result.err)

    step("status", "status", "--fail-on", "none")
    step("enable", "enable", "--vm", "avd-missing-nic", "--yes")
    step("enable-v2", "enable", "--vm", "w11ms-gsi-off", "--yes")
    step("host-sync", "host", "sync", "--cluster", "hci-lab-01", "--yes")
    step("guest-check", "guest", "check", "--all")
    step("guest-kick", "guest", "kick", "--vm", "avd-twice", "--yes")
    step("reconcile", "reconcile", "--fail-on", "none")
    step("status-after", "status", "--fail-on", "none")
    # The Arc transport: run commands through the lab's ARM, run by the process serving the node.
    arc = LabClient(
        client.lab,
        client.lab.write_inventory(tmp_path / "arc.yaml", arc_clusters=["hci-lab-02"]),
        client._capsys,
    )
    result = arc.cli(
        "status", "--cluster", "hci-lab-02", "--fail-on", "none", "--parallel", "1", "-o", "json"
    )
    seen["arc-status"] = (result.code, _normal(result.json()))
    state = client.state()
    for node in state["nodes"]:
        node.update({k: node[k] - before[node["name"]][k] for k in counted})
        # How many connections a run opens is a matter of timing: a node connects ahead only while
        # another is trying the password.
        node.pop("connections")
    azure = state.pop("azure")
    seen["state"] = _normal(state)
    # (How often the client polls a run command, and whether its deletion is over, are a matter of timing.)
    commands = {k: azure["run_commands"][k] for k in ("created", "scripts_run")}
    seen["azure"] = {
        "run_commands": commands,
        **{k: azure[k] for k in ("subscriptions", "graph_requests", "arm_reads")},
    }
    return seen


def _differences(one: Any, two: Any, path: str = "") -> list[str]:
    if isinstance(one, dict) and isinstance(two, dict):
        found = [f"{path}/{k}: only in one" for k in one.keys() - two.keys()]
        found += [f"{path}/{k}: only in two" for k in two.keys() - one.keys()]
        for key in one.keys() & two.keys():
            found += _differences(one[key], two[key], f"{path}/{key}")
        return found
    if isinstance(one, list | tuple) and isinstance(two, list | tuple) and len(one) == len(two):
        return [
            d
            for i, (a, b) in enumerate(zip(one, two, strict=True))
            for d in _differences(a, b, f"{path}[{i}]")
        ]
    return [] if one == two else [f"{path}: {one!r} != {two!r}"[:300]]


@pytest.fixture(scope="module")
def two_process_lab() -> Iterator[Lab]:
    yield from running_lab(processes=2)


@pytest.fixture
def sharded(
    two_process_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    (tmp_path / "sharded").mkdir()
    yield from fresh_client(two_process_lab, tmp_path / "sharded", monkeypatch, capsys)


def test_the_clusters_are_shared_out_whole_and_balanced() -> None:
    spec = generate_fleet(10, 4, 25, seed=1)
    plan = shards.plan(spec, 3)
    assert sorted(c.name for shard in plan for c in shard) == sorted(c.name for c in spec.clusters)
    assert [len(shard) for shard in plan] == [4, 3, 3]
    assert len(shards.plan(spec, 64)) == 10  # never more processes than clusters
    assert len(shards.plan(default_fleet(), 2)) == 2


def test_two_processes_give_what_one_gives(
    lab: LabClient, sharded: LabClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sharded.lab.processes == 2 and len(sharded.lab.shards) == 2
    one = _scenario(lab, tmp_path / "one", monkeypatch)
    two = _scenario(sharded, tmp_path / "two", monkeypatch)
    differences = _differences(one, two)
    assert not differences, "\n".join(differences)
    # Not vacuous: the changes were made, and show in the state and in Azure.
    vms = {v["name"]: v for v in two["state"]["vms"]}
    assert vms["avd-missing-nic"]["benefits"] == "v1" and vms["w11ms-gsi-off"]["gsi"] is True
    nodes = {n["name"]: n for n in two["state"]["nodes"]}
    assert nodes["lab01-n3"]["attestation"] == "Active"
    assert vms["avd-twice"]["guest"]["runs"] >= 1
    assert two["azure"]["run_commands"]["scripts_run"] >= 2
    assert {n["invocations"].get("host-facts", 0) for n in two["state"]["nodes"]} != {0}


def test_faults_reach_the_nodes_a_worker_serves(sharded: LabClient) -> None:
    lab = sharded.lab
    sharded_node = next(n for n in ("lab04-n2", "lab02-n1") if lab._owner(n) is not lab._owner("lab01-n1"))
    request = urllib.request.Request(
        f"{lab.control_url}/lab/faults",
        data=json.dumps({"node": sharded_node, "down": True}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["changed"] == {"down": True}
    report = sharded.cli("status", "--fail-on", "none", "-o", "json")
    verdicts = {n["name"]: n["verdict"] for n in report.json()["nodes"]}
    assert verdicts[sharded_node] == "unreachable" and verdicts["lab01-n1"] != "unreachable"
    lab.set_faults(sharded_node, down=False, auth_fail=True)
    before = next(n for n in lab.snapshot()["nodes"] if n["name"] == sharded_node)["requests"]
    report = sharded.cli("status", "--node", sharded_node, "--fail-on", "none", "-o", "json")
    assert report.code == ExitCode.INCOMPLETE and "authentication" in report.out.lower()
    node = next(n for n in lab.snapshot()["nodes"] if n["name"] == sharded_node)
    assert node["faults"]["auth_fail"] is True and node["requests"] == before  # refused before any request
    lab.reset()
    node = next(n for n in lab.snapshot()["nodes"] if n["name"] == sharded_node)
    assert node["faults"]["auth_fail"] is False and node["invocations"] == {}
    assert (
        sharded.cli("status", "--node", sharded_node, "--fail-on", "none", "-o", "json").code == ExitCode.OK
    )


def test_a_hop_to_another_process_cluster_is_refused_clearly(sharded: LabClient) -> None:
    from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall

    lab = sharded.lab
    text = "Invoke-Command -ComputerName lab02-n1 -ScriptBlock { $env:COMPUTERNAME }"
    call = PipelineCall(
        "lab01-n1", "labadmin", "Microsoft.PowerShell", (CommandSpec(text, True, ()),), (), can_delegate=True
    )
    _, _, error = lab._owner("lab01-n1").call("execute", call)
    assert error is not None and error["error_id"] == "LabNotEmulated"
    assert "lab serve --processes 1" in error["message"]


# --- `lab serve --processes 2` as a process -----------------------------------------------------------


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """A lab in its own process, with a temporary directory of its own (one killed cannot clean up)."""
    (tmp_path / "tmp").mkdir()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "hcibenefit", "lab", "serve", "--processes", "2"),
            *("--control-port", "0", "--write-inventory", str(tmp_path / "lab.yaml")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp")},
        start_new_session=True,  # its own process group, as a shell gives a job: Ctrl-C reaches all of it
    )
    assert process.stdout is not None
    ready = process.stdout.readline()
    assert "WinRM in 2 processes by cluster" in ready, ready
    match = re.search(r"control (http://\S+)/lab/state", ready)
    assert match
    return process, match.group(1)


def _workers(control: str) -> list[int]:
    with urllib.request.urlopen(f"{control}/lab/state", timeout=10) as response:
        return [p["pid"] for p in json.load(response)["processes"] if p["serves"] == "winrm"]


def _gone(pid: int, within_s: float = 10) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigkill"])
def test_no_worker_outlives_lab_serve(tmp_path: Path, how: str) -> None:
    process, control = _serve(tmp_path)
    try:
        workers = _workers(control)
        assert len(workers) == 2
        if how == "ctrl-c":  # the terminal sends SIGINT to the whole foreground process group
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        process.wait(timeout=20)
        assert all(_gone(pid) for pid in workers), "a worker outlived the lab"
        if how != "sigkill":
            assert process.returncode == 0
            assert list((tmp_path / "tmp").iterdir()) == [], "the lab left its private directories"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_worker_that_dies_stops_the_lab_with_a_clear_error(tmp_path: Path) -> None:
    process, control = _serve(tmp_path)
    try:
        workers = _workers(control)
        os.kill(workers[1], signal.SIGKILL)
        _, err = process.communicate(timeout=30)
        assert process.returncode == ExitCode.INCOMPLETE
        assert re.search(
            rf"error: lab process 2 \(pid {workers[1]}, clusters .*\) was killed by signal 9", err
        ), err
        assert _gone(workers[0]), "the other worker outlived the lab"
        assert list((tmp_path / "tmp").iterdir()) == [], "the lab left its private directories"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
