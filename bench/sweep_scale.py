"""Fleet scale: is a run latency-bound, not CPU-bound? Real commands against lab fleets with injected latency.

For every fleet (CLUSTERS x NODES x VMS_PER_NODE) this starts `hcibenefit lab serve` in its own process,
injects a per-request latency on every node (`/lab/faults`), and runs the real CLI in a fresh process,
exactly as a user would. Per run it reports:

- wall time, and the latency bound R x latency (R = WinRM requests per node, as the lab counted them),
  their ratio, and the ratio to the 4-node fleet at the same latency;
- requests per node (mean and max), nodes lost (reported unreachable) and the exit code;
- client CPU: process CPU time (user + system, the client and any worker processes it started), not wall
  time, so that the other engineers' work on this shared machine does not distort it; per node and per
  VM, and a least-squares fit over the fleets: start-up + per node + per VM;
- peak memory: the largest resident set of any client process (exact, from the kernel) and the sampled
  sum over the client's process tree;
- the lab's own CPU time during the run (it shares the machine with the client), summed over its
  processes: the lab is started as a user with several cores would (`lab serve --processes auto`: the
  nodes' WinRM in one process per core, whole clusters each; `--lab-processes 1` for one process);
- a hand-written baseline measured in the same run (`bench/handwritten.py`): one session per VM, VM
  after VM, and one session per node, node after node; measured on a sample and extrapolated to the
  fleet, as marked.

Commands: `status` always; `guest-check` (host facts, then the guest probes: what the nightly sweep
does) for a few VMs per node; `sweep` once that command exists.

Run (defaults: fleets 1x4x25 10x4x25 40x4x60 100x4x25, latencies 0 50 200 ms):
    python bench/sweep_scale.py
    python bench/sweep_scale.py --fleet 1x4x25 --fleet 10x4x25 --latency 200 --command status
    python bench/sweep_scale.py --latency 0 --command status --repeat 5   # client CPU: least of 5 runs
Results are printed and written to bench/results/sweep_scale-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_FLEETS = ("1x4x25", "10x4x25", "40x4x60", "100x4x25")
DEFAULT_LATENCIES = (0, 50, 200)
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

TARGETS = {
    "requests_per_node_status": 5,
    "requests_per_node_sweep": 10,
    "one_cluster_ratio": 1.3,
    "fleet_40_vs_4_ratio": 1.5,
    "cpu_ms_per_node": 10.0,
    "cpu_ms_per_vm": 0.3,
    "peak_mb_10000_vms": 150.0,
}


@dataclass(frozen=True)
class Fleet:
    clusters: int
    nodes_per_cluster: int
    vms_per_node: int

    @classmethod
    def parse(cls, text: str) -> Fleet:
        parts = [int(p) for p in re.split(r"[x,]", text)]
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"fleet is CLUSTERSxNODESxVMS_PER_NODE, got {text!r}")
        return cls(*parts)

    @property
    def nodes(self) -> int:
        return self.clusters * self.nodes_per_cluster

    @property
    def vms(self) -> int:
        return self.nodes * self.vms_per_node

    def __str__(self) -> str:
        return f"{self.clusters}x{self.nodes_per_cluster}x{self.vms_per_node}"


@dataclass
class Run:
    command: str
    fleet: str
    nodes: int
    vms: int
    latency_ms: int
    parallel: int | None
    wall_s: float
    exit_code: int
    requests_per_node: float
    max_requests_per_node: int
    latency_bound_s: float | None
    ratio_to_bound: float | None
    ratio_to_gated_bound: float | None
    """Against (R + 1) x latency: a password is tried on one node first (issue 9), one round trip."""
    nodes_reported: int
    nodes_lost: int
    client_cpu_s: float
    client_cpu_ms_per_node: float
    client_cpu_ms_per_vm: float
    peak_rss_mb: float
    peak_tree_rss_mb: float
    lab_cpu_s: float
    lab_processes: int = 1
    """Processes serving the lab's WinRM (its control and ARM process besides, when more than one)."""
    lab_cpu_by_process_s: list[float] = field(default_factory=list)
    """The lab's CPU per process: the first (control, ARM; WinRM too when alone), then each WinRM worker."""
    repeats: list[dict[str, float]] = field(default_factory=list)
    """With --repeat N: each run's wall time and client CPU; this record keeps the median wall time and the
    least client CPU of them (see `combine`)."""
    ratio_to_4_nodes: float | None = None
    baseline: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""


# --- the lab, in its own process ---------------------------------------------------------------------


class LabProcess:
    def __init__(
        self, fleet: Fleet, workdir: Path, seed: int, auth: str = "basic", processes: str = "auto"
    ) -> None:
        self.fleet = fleet
        self.inventory = workdir / f"lab-{fleet}.yaml"
        self._out = (workdir / f"lab-{fleet}.out").open("w+")
        self._err = (workdir / f"lab-{fleet}.err").open("w+")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "hcibenefit", "lab", "serve"),
                *("--scale", f"{fleet.clusters},{fleet.nodes_per_cluster},{fleet.vms_per_node}"),
                *("--seed", str(seed), "--control-port", "0", "--write-inventory", str(self.inventory)),
                *("--auth", auth),
                *("--processes", processes),
            ],
            stdout=self._out,
            stderr=self._err,
            text=True,
        )
        deadline = time.monotonic() + 300
        ready = ""
        while "lab ready" not in ready:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._err.seek(0)
                raise SystemExit(f"the lab did not start: {self._err.read()[-2000:]}")
            time.sleep(0.1)
            self._out.seek(0)
            ready = self._out.read()
        match = re.search(r"control (http://\S+)/lab/state", ready)
        assert match, ready
        self.control = match.group(1)
        self._err.seek(0)
        self.environment = dict(re.findall(r"^export (\w+)=(\S+)$", self._err.read(), re.MULTILINE))
        state = self.state()
        self.node_names = [n["name"] for n in state["nodes"]]
        # The lab's processes: the one started here, and the workers serving WinRM when there are any.
        self.pids = [p["pid"] for p in state.get("processes") or [{"pid": self.process.pid}]]
        self.winrm_processes = sum(1 for p in state.get("processes") or [] if "winrm" in p["serves"]) or 1

    def _call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.control + path, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def state(self) -> dict[str, Any]:
        return self._call("/lab/state")  # type: ignore[no-any-return]

    def set_latency(self, latency_ms: int, connect_rtts: int = 0) -> None:
        faults = {"latency_ms": latency_ms, "connect_latency_ms": connect_rtts * latency_ms}
        for name in self.node_names:
            self._call("/lab/faults", {"node": name, **faults})

    def requests(self) -> dict[str, int]:
        return {n["name"]: n["requests"] for n in self.state()["nodes"]}

    def open_shells(self) -> int:
        return sum(n["open_shells"] for n in self.state()["nodes"])

    def running_vms(self, per_node: int) -> list[tuple[str, str]]:
        chosen: dict[str, list[str]] = {}
        for vm in self.state()["vms"]:
            mine = chosen.setdefault(vm["node"], [])
            if vm["state"] == "Running" and len(mine) < per_node:
                mine.append(vm["name"])
        return [(node, vm) for node, vms in chosen.items() for vm in vms]

    def cpu_s(self) -> list[float]:
        """CPU time of each of the lab's processes, read from the kernel."""
        return [_proc_cpu_s(pid) for pid in self.pids]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._err.close()


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime (all threads)


# --- the client, in a fresh process per run -----------------------------------------------------------


class TreeSampler:
    """Samples the summed resident set of a process and its descendants (shared pages count twice)."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval_s,), daemon=True)
        self._thread.start()

    def _tree(self, pid: int) -> list[int]:
        result = [pid]
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                    for child in children:
                        result += self._tree(int(child))
        return result

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            total = 0
            for pid in self._tree(self.pid):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
            self.peak_kb = max(self.peak_kb, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


@dataclass
class ClientResult:
    wall_s: float
    exit_code: int
    cpu_s: float
    peak_rss_kb: int
    peak_tree_kb: int
    stdout: str
    stderr: str


# A forked child's ru_maxrss starts at its parent's peak: Linux copies the memory map's high-water mark at
# fork and keeps the larger of it and the new program's through exec. Spawned from this process, which by
# then holds the reports of every earlier run, a 86 MB client read as 264 MB. So a small process (no site,
# a few stdlib modules: about 10 MB, less than any client) spawns the client and reports what wait4 says
# of it: wall time, exit code, CPU and peak memory, of the client and the children it waited for.
LAUNCHER = r"""
import json, os, subprocess, sys, time
result, out, err, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with open(out, "w") as stdout, open(err, "w") as stderr:
    started = time.perf_counter()
    client = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
    print(client.pid, flush=True)
    _, status, usage = os.wait4(client.pid, 0)
    wall = time.perf_counter() - started
with open(result, "w") as report:
    json.dump({"wall_s": wall, "exit_code": os.waitstatus_to_exitcode(status),
               "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_kb": usage.ru_maxrss}, report)
"""


def run_client(argv: list[str], env: dict[str, str], workdir: Path) -> ClientResult:
    out_path, err_path, result_path = workdir / "client.out", workdir / "client.err", workdir / "client.json"
    launcher = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, str(result_path), str(out_path), str(err_path), *argv],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert launcher.stdout is not None
    sampler = TreeSampler(int(launcher.stdout.readline()))
    launcher.wait()
    peak_tree = sampler.stop()
    if launcher.returncode != 0:
        raise SystemExit(f"the client launcher failed ({launcher.returncode}): {' '.join(argv)}")
    measured = json.loads(result_path.read_text())
    return ClientResult(
        wall_s=measured["wall_s"],
        exit_code=measured["exit_code"],
        cpu_s=measured["cpu_s"],
        peak_rss_kb=measured["peak_rss_kb"],
        peak_tree_kb=max(peak_tree, measured["peak_rss_kb"]),
        stdout=out_path.read_text(),
        stderr=err_path.read_text(),
    )


def client_environment(extra: dict[str, str]) -> dict[str, str]:
    """The user's environment, with Python's bytecode cache on as an installed package has it."""
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_package(env: dict[str, str]) -> str:
    """Write the bytecode cache once, so no run pays for compiling (a pip-installed package never does)."""
    where = subprocess.run(
        [sys.executable, "-c", "import hcibenefit, os; print(os.path.dirname(hcibenefit.__file__))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], env=env, check=True)
    subprocess.run([sys.executable, "-m", "hcibenefit", "--help"], env=env, capture_output=True, check=True)
    return where


def client_argv(command: str, inventory: Path, parallel: int | None, vms: list[tuple[str, str]]) -> list[str]:
    base = [sys.executable, "-m", "hcibenefit", "-i", str(inventory)]
    extra = ["--parallel", str(parallel)] if parallel else []
    if command == "status":
        return [*base, "status", "--format", "json", "--fail-on", "none", *extra]
    if command == "guest-check":
        names = [arg for _, vm in vms for arg in ("--vm", vm)]
        return [*base, "guest", "check", "--format", "json", *names, *extra]
    if command == "sweep":
        return [*base, "sweep", "--format", "json", "--no-history", "--fail-on", "none", *extra]
    raise SystemExit(f"unknown command {command}")


def nodes_in_report(command: str, stdout: str) -> tuple[int, int]:
    """(nodes reported, nodes lost) from the JSON report."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return 0, -1
    if command == "status" or (isinstance(document, dict) and "nodes" in document):
        nodes = document["nodes"]
        return len(nodes), sum(1 for n in nodes if n.get("verdict") == "unreachable")
    if command == "guest-check":
        records = (
            document["vms"] if isinstance(document, dict) else document
        )  # a bare list before the envelope
        reached = {r["node"] for r in records if r.get("node")}
        lost = {r["node"] for r in records if r.get("reason") == "node-unreachable"}
        return len(reached), len(lost)
    if command == "sweep":
        findings = document.get("findings") or []
        reached = {f["node"] for f in findings if f.get("node")}
        lost = {f["node"] for f in findings if f.get("scope") == "node" and f.get("status") == "ERROR"}
        return len(reached), len(lost)
    return 0, -1


def baseline(lab: LabProcess, env: dict[str, str], sample: int, workdir: Path) -> dict[str, Any]:
    """Hand-written scripts on a sample of VMs and nodes, extrapolated to the whole fleet."""
    if sample <= 0:
        return {}
    vms = lab.running_vms(per_node=1)[:sample]
    nodes = lab.node_names[:sample]
    script = str(HERE / "handwritten.py")
    result: dict[str, Any] = {"sample": sample, "extrapolated": True}
    for shape, targets in (("per-vm", [f"{n}:{v}" for n, v in vms]), ("per-node", nodes)):
        done = subprocess.run(
            [sys.executable, script, str(lab.inventory), shape, *targets],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
        total = lab.fleet.vms if shape == "per-vm" else lab.fleet.nodes
        result[shape] = {"measured_s": round(seconds, 3), "sessions": len(targets), "fleet_s": None}
        result[shape]["fleet_s"] = round(seconds / len(targets) * total, 1)
    return result


def measure(
    lab: LabProcess,
    command: str,
    latency_ms: int,
    parallel: int | None,
    args: argparse.Namespace,
    workdir: Path,
    with_baseline: bool = True,
) -> Run:
    env = client_environment({**lab.environment, "HCIBENEFIT_AUDIT_LOG": str(workdir / "audit.log")})
    vms = lab.running_vms(args.guest_vms_per_node) if command == "guest-check" else []
    before = lab.requests()
    lab_cpu_before = lab.cpu_s()
    result = run_client(client_argv(command, lab.inventory, parallel, vms), env, workdir)
    lab_cpu_by_process = [after - before for before, after in zip(lab_cpu_before, lab.cpu_s(), strict=True)]
    lab_cpu = sum(lab_cpu_by_process)
    after = lab.requests()
    fleet = lab.fleet
    worked = [n for n in after if after[n] - before.get(n, 0) > 0] or list(after)
    per_node = [after[n] - before.get(n, 0) for n in worked]
    mean_requests = sum(per_node) / len(per_node)
    bound = mean_requests * latency_ms / 1000 if latency_ms else None
    reported, lost = nodes_in_report(command, result.stdout)
    shells = lab.open_shells()
    if shells:
        print(f"  !! {shells} shells left open after {command}", file=sys.stderr)
    vm_count = len(vms) if command == "guest-check" else fleet.vms
    run = Run(
        command=command,
        fleet=str(fleet),
        nodes=fleet.nodes,
        vms=vm_count,
        latency_ms=latency_ms,
        parallel=parallel,
        wall_s=round(result.wall_s, 3),
        exit_code=result.exit_code,
        requests_per_node=round(mean_requests, 2),
        max_requests_per_node=max(per_node),
        latency_bound_s=round(bound, 3) if bound else None,
        ratio_to_bound=round(result.wall_s / bound, 2) if bound else None,
        ratio_to_gated_bound=round(result.wall_s / (bound + latency_ms / 1000), 2) if bound else None,
        nodes_reported=reported,
        nodes_lost=lost,
        client_cpu_s=round(result.cpu_s, 3),
        client_cpu_ms_per_node=round(result.cpu_s * 1000 / fleet.nodes, 2),
        client_cpu_ms_per_vm=round(result.cpu_s * 1000 / max(1, vm_count), 3),
        peak_rss_mb=round(result.peak_rss_kb / 1024, 1),
        peak_tree_rss_mb=round(result.peak_tree_kb / 1024, 1),
        lab_cpu_s=round(lab_cpu, 3),
        lab_processes=lab.winrm_processes,
        lab_cpu_by_process_s=[round(c, 3) for c in lab_cpu_by_process],
        stderr_tail=result.stderr[-400:] if result.exit_code not in (0, 1) else "",
    )
    if command == "status" and parallel is None and with_baseline:
        run.baseline = baseline(lab, env, args.baseline_sample, workdir)
    return run


def combine(runs: list[Run]) -> Run:
    """One record for N runs of the same command against the same lab (`--repeat N`).

    Wall time: the median run (wall time is what a user waits; one lucky run is not that). Client CPU: the
    least of the N. On a shared or virtual machine other work only ever adds to a process's CPU time (cache
    and core contention, a busy host), by 10-25% between runs here, never takes from it, so the least is the
    best estimate of what the code itself costs; every run's figures are kept in `repeats`. Requests per node
    and peak memory: the largest; nodes lost: the most; exit code and stderr: those of the first run that lost
    a node or exited unlike the median run.
    """
    if len(runs) == 1:
        return runs[0]
    by_wall = sorted(runs, key=lambda r: r.wall_s)
    chosen = by_wall[len(by_wall) // 2]
    least_cpu = min(runs, key=lambda r: r.client_cpu_s)
    unusual = next((r for r in runs if r.exit_code != chosen.exit_code or r.nodes_lost), chosen)
    combined = replace(
        chosen,
        client_cpu_s=least_cpu.client_cpu_s,
        client_cpu_ms_per_node=least_cpu.client_cpu_ms_per_node,
        client_cpu_ms_per_vm=least_cpu.client_cpu_ms_per_vm,
        requests_per_node=max(r.requests_per_node for r in runs),
        max_requests_per_node=max(r.max_requests_per_node for r in runs),
        nodes_lost=max(r.nodes_lost for r in runs),
        peak_rss_mb=max(r.peak_rss_mb for r in runs),
        peak_tree_rss_mb=max(r.peak_tree_rss_mb for r in runs),
        exit_code=unusual.exit_code,
        stderr_tail=unusual.stderr_tail,
        baseline=next((r.baseline for r in runs if r.baseline), {}),
        repeats=[
            {
                "wall_s": r.wall_s,
                "client_cpu_s": r.client_cpu_s,
                "lab_cpu_s": r.lab_cpu_s,
                "peak_rss_mb": r.peak_rss_mb,
                "exit_code": r.exit_code,
                "nodes_lost": r.nodes_lost,
            }
            for r in runs
        ],
    )
    return combined


# --- summary -------------------------------------------------------------------------------------------


def _solve3(a: list[list[float]], b: list[float]) -> list[float] | None:
    """Gaussian elimination for the 3x3 normal equations (no numpy on purpose)."""
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    n = len(m)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-12:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


def cpu_fit(runs: list[Run]) -> dict[str, float] | None:
    """client CPU = start-up + per_node x nodes + per_vm x VMs, least squares over the fleets."""
    points = [(1.0, float(r.nodes), float(r.vms), r.client_cpu_s) for r in runs]
    if len({(p[1], p[2]) for p in points}) < 3:
        return None
    ata = [[sum(p[i] * p[j] for p in points) for j in range(3)] for i in range(3)]
    atb = [sum(p[i] * p[3] for p in points) for i in range(3)]
    solved = _solve3(ata, atb)
    if solved is None:
        return None
    start, node, vm = solved
    return {
        "startup_s": round(start, 3),
        "ms_per_node": round(node * 1000, 2),
        "ms_per_vm": round(vm * 1000, 4),
    }


def marginal_cpu(runs: list[Run]) -> dict[str, float] | None:
    """Client CPU per additional node: from the smallest to the largest fleet with the same VMs per node."""
    by_vpn: dict[int, list[Run]] = {}
    for r in runs:
        by_vpn.setdefault(r.vms // max(1, r.nodes), []).append(r)
    best: dict[str, float] | None = None
    for vpn, group in by_vpn.items():
        group.sort(key=lambda r: r.nodes)
        if len(group) >= 2 and group[-1].nodes > group[0].nodes:
            small, large = group[0], group[-1]
            extra = large.nodes - small.nodes
            per_node = (large.client_cpu_s - small.client_cpu_s) * 1000 / extra
            best = {
                "vms_per_node": vpn,
                "from_nodes": small.nodes,
                "to_nodes": large.nodes,
                "ms_per_additional_node": round(per_node, 2),
            }
    return best


def summarise(runs: list[Run], gated: bool = True, connect_rtts: int = 0) -> dict[str, Any]:
    summary: dict[str, Any] = {"cpu": {}, "targets": []}
    for command in sorted({r.command for r in runs}):
        for latency in sorted({r.latency_ms for r in runs}):
            group = [r for r in runs if r.command == command and r.latency_ms == latency and not r.parallel]
            summary["cpu"][f"{command}@{latency}ms"] = {
                "fit": cpu_fit(group),
                "marginal": marginal_cpu(group),
            }

    def target(name: str, value: float | None, limit: float, ok: bool | None = None) -> None:
        passed = ok if ok is not None else (value is not None and value <= limit)
        summary["targets"].append({"target": name, "value": value, "limit": limit, "met": passed})

    status = [r for r in runs if r.command == "status"]
    for r in status:
        if not r.parallel:
            target(f"requests/node, status {r.fleet} @{r.latency_ms}ms", r.requests_per_node, 5)
    for r in runs:
        if r.command in ("guest-check", "sweep") and not r.parallel:
            target(f"requests/node, {r.command} {r.fleet} @{r.latency_ms}ms", r.requests_per_node, 10)
    for r in status:
        if r.nodes == 4 and r.latency_ms == 200 and not r.parallel:
            target(f"one cluster {r.fleet} @200ms: wall / bound", r.ratio_to_bound, 1.3)
        if r.nodes == 4 and r.latency_ms == 200 and not r.parallel and gated:
            target(
                f"one cluster {r.fleet} @200ms: wall / (bound + the first logon's round trip)",
                r.ratio_to_gated_bound,
                1.3,
            )
        if r.nodes == 4 and r.latency_ms == 200 and not r.parallel and connect_rtts and r.latency_bound_s:
            # Connecting is paid once before the first request; with a password, the first node's
            # connection and logon come before the others' first requests (they connect meanwhile).
            rtts = connect_rtts + (1 if gated else 0)
            ideal = r.latency_bound_s + rtts * r.latency_ms / 1000
            target(
                f"one cluster {r.fleet} @200ms: wall / (bound + {connect_rtts} connection round trip(s)"
                f"{' + the first logon' if gated else ''}) [informational]",
                round(r.wall_s / ideal, 2),
                1.3,
            )
        if r.nodes == 40 and r.latency_ms == 200 and not r.parallel:
            target(f"{r.fleet} vs 4 nodes @200ms", r.ratio_to_4_nodes, 1.5)
    for r in runs:  # every command: the sweep holds the most
        if r.vms >= 10000 and not r.parallel:
            target(f"peak MB {r.command} {r.fleet} @{r.latency_ms}ms (largest process)", r.peak_rss_mb, 150)
    for key, cpu in summary["cpu"].items():
        if not key.startswith("status@"):
            continue
        if cpu["fit"]:
            target(f"client CPU ms per node ({key}, fit)", cpu["fit"]["ms_per_node"], 10)
            target(f"client CPU ms per VM ({key}, fit)", cpu["fit"]["ms_per_vm"], 0.3)
        if cpu["marginal"]:
            vpn = cpu["marginal"]["vms_per_node"]
            target(
                f"client CPU ms per additional node with its {vpn} VMs ({key}, "
                f"{cpu['marginal']['from_nodes']}->{cpu['marginal']['to_nodes']} nodes; limit 10 + {vpn} x 0.3)",
                cpu["marginal"]["ms_per_additional_node"],
                10 + 0.3 * vpn,
            )
    lost = sum(max(0, r.nodes_lost) for r in runs)
    target("nodes lost, all runs", lost, 0, ok=lost == 0 and all(r.nodes_lost == 0 for r in runs))
    return summary


def print_table(runs: list[Run]) -> None:
    header = (
        f"{'command':<12}{'fleet':>10}{'nodes':>6}{'VMs':>7}{'lat':>5}{'par':>5}{'wall s':>8}"
        f"{'bound':>7}{'ratio':>6}{'/4n':>6}{'req/n':>6}{'cpu s':>7}{'ms/n':>7}{'ms/VM':>7}"
        f"{'MB':>6}{'treeMB':>7}{'lab s':>7}{'lab p':>6}{'lost':>5}{'exit':>5}  baseline per-VM / per-node (extrap.)"
    )
    print(header)
    for r in runs:
        base = ""
        if r.baseline:
            base = f"{r.baseline['per-vm']['fleet_s']:.0f} s / {r.baseline['per-node']['fleet_s']:.1f} s"
        print(
            f"{r.command:<12}{r.fleet:>10}{r.nodes:>6}{r.vms:>7}{r.latency_ms:>5}{r.parallel or '-':>5}"
            f"{r.wall_s:>8.2f}{(r.latency_bound_s or 0):>7.2f}{(r.ratio_to_bound or 0):>6.2f}"
            f"{(r.ratio_to_4_nodes or 0):>6.2f}{r.requests_per_node:>6.1f}{r.client_cpu_s:>7.2f}"
            f"{r.client_cpu_ms_per_node:>7.1f}{r.client_cpu_ms_per_vm:>7.2f}{r.peak_rss_mb:>6.0f}"
            f"{r.peak_tree_rss_mb:>7.0f}{r.lab_cpu_s:>7.2f}{r.lab_processes:>6}{r.nodes_lost:>5}{r.exit_code:>5}  {base}"
        )
        if r.stderr_tail:
            print(f"    stderr: {r.stderr_tail.strip()[-300:]}")


def has_command(name: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "hcibenefit", name, "--help"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fleet", action="append", type=Fleet.parse, help="CxNxV (repeatable)")
    parser.add_argument("--latency", action="append", type=int, help="ms per WinRM request (repeatable)")
    parser.add_argument(
        "--command",
        action="append",
        choices=("status", "guest-check", "sweep"),
        help="default: status, guest-check, and sweep when it exists",
    )
    parser.add_argument(
        "--parallel", action="append", type=int, default=[], help="extra status runs with --parallel N"
    )
    parser.add_argument("--guest-vms-per-node", type=int, default=2)
    parser.add_argument("--baseline-sample", type=int, default=3, help="sessions per hand-written shape")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--lab-processes",
        default="auto",
        metavar="N|auto",
        help="lab serve --processes: the lab's WinRM over N processes by cluster (default auto: one per core)",
    )
    parser.add_argument("--label", default="", help="a word for the results file, e.g. before/after")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each command N times against the same lab: the median wall time and the least client "
        "CPU are reported (other work only ever adds to CPU time), every run is kept in the results",
    )
    parser.add_argument(
        "--lab-auth",
        choices=("basic", "ntlm", "certificate"),
        default="basic",
        help="how the client logs on (lab serve --auth): basic, a password, is tried on one node before the "
        "others (one round trip); a certificate cannot be locked out and is not",
    )
    parser.add_argument(
        "--connect-rtts",
        type=int,
        default=0,
        metavar="K",
        help="round trips each new connection costs before its first request, as on a real network "
        "(TCP 1 + TLS 1.3 1 = 2; the lab's connect_latency_ms = K x latency). Default 0: latency per "
        "request only, as the bound R x latency counts it",
    )
    args = parser.parse_args(argv)
    fleets = args.fleet or [Fleet.parse(f) for f in DEFAULT_FLEETS]
    latencies = args.latency or list(DEFAULT_LATENCIES)
    commands = args.command or ["status", "guest-check", *(["sweep"] if has_command("sweep") else [])]

    package = compile_package(client_environment({}))
    commit = subprocess.run(
        ["git", "-C", package, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(
        f"sweep_scale: hcibenefit from {package} at commit {commit or '?'}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "CPU figures are process CPU time (user+system), not wall time: what else runs on this machine adds "
        "to them far less than to wall times, but on a shared or virtual machine still 10-25% from one run "
        "to the next (use --repeat N). Bytecode cache on (PYTHONDONTWRITEBYTECODE dropped)."
    )
    if args.connect_rtts:
        print(
            f"every new connection costs {args.connect_rtts} round trip(s) before its first request "
            "(the lab's connect_latency_ms); the bound R x latency does not count them"
        )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="sweep-scale-") as tmp:
        workdir = Path(tmp)
        for fleet in fleets:
            started = time.perf_counter()
            lab = LabProcess(fleet, workdir, args.seed, args.lab_auth, args.lab_processes)
            print(
                f"lab {fleet}: {fleet.nodes} nodes, {fleet.vms} VMs, WinRM in {lab.winrm_processes} "
                f"process(es), ready in {time.perf_counter() - started:.1f} s"
            )
            try:
                for latency in latencies:
                    lab.set_latency(latency, args.connect_rtts)
                    for command in commands:
                        settings: list[int | None] = [None]
                        if command == "status":
                            settings += args.parallel
                        for parallel in settings:
                            run = combine(
                                [
                                    measure(
                                        lab, command, latency, parallel, args, workdir, with_baseline=i == 0
                                    )
                                    for i in range(args.repeat)
                                ]
                            )
                            runs.append(run)
                            print(
                                f"  {command} @{latency} ms{f' --parallel {parallel}' if parallel else ''}: "
                                f"{run.wall_s:.2f} s, {run.requests_per_node:.1f} req/node, "
                                f"cpu {run.client_cpu_s:.2f} s"
                                f"{' (least of ' + str(len(run.repeats)) + ')' if run.repeats else ''}, "
                                f"lab cpu {run.lab_cpu_s:.2f} s "
                                f"({run.lab_processes} WinRM process(es)"
                                f"{': ' + ' + '.join(f'{c:.2f}' for c in run.lab_cpu_by_process_s) if len(run.lab_cpu_by_process_s) > 1 else ''}), "
                                f"peak {run.peak_rss_mb:.0f} MB, lost {run.nodes_lost}, exit {run.exit_code}",
                                flush=True,
                            )
            finally:
                lab.stop()
    for run in runs:
        small = next(
            (
                r
                for r in runs
                if r.nodes == 4
                and r.command == run.command
                and r.latency_ms == run.latency_ms
                and r.parallel == run.parallel
            ),
            None,
        )
        if small is not None:
            run.ratio_to_4_nodes = round(run.wall_s / small.wall_s, 2)
    summary = summarise(runs, gated=args.lab_auth != "certificate", connect_rtts=args.connect_rtts)
    print()
    print_table(runs)
    print()
    for name, cpu in summary["cpu"].items():
        print(f"client CPU {name}: fit {cpu['fit']}; marginal {cpu['marginal']}")
    print()
    for t in summary["targets"]:
        print(f"{'ok  ' if t['met'] else 'MISS'} {t['target']}: {t['value']} (limit {t['limit']})")
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"sweep_scale-{stamp}{'-' + args.label if args.label else ''}.json"
    path.write_text(
        json.dumps(
            {
                "commit": commit,
                "lab_auth": args.lab_auth,
                "connect_rtts": args.connect_rtts,
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "cpu_note": "client and lab CPU are process CPU time (user+system), not wall time",
                "runs": [asdict(r) for r in runs],
                "summary": summary,
                "targets": TARGETS,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\nwritten: {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
