"""Lab scale: start-up time of the default fleet and of --scale 10,4,25, then a status sweep of all 40 nodes.

Also prints what a status costs in WinRM requests for a 4-node cluster with 4 and with 100 VMs.
Run: python bench/lab_scale.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

from hcibenefit.cli.app import run
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import FleetSpec, default_fleet, generate_fleet


def _sweep(lab: Lab, workdir: Path) -> tuple[float, int, int]:
    inventory = lab.write_inventory(workdir / "inventory.yaml")
    os.environ.update(lab.environment())
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = run(
            ["-i", str(inventory), "status", "--format", "json", "--fail-on", "none", "--parallel", "40"]
        )
    elapsed = time.perf_counter() - started
    state = lab.snapshot()
    requests = sum(n["requests"] for n in state["nodes"])
    return elapsed, code, requests


def measure(name: str, spec: FleetSpec) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Lab(spec) as lab:
        startup = time.perf_counter() - started
        elapsed, code, requests = _sweep(lab, Path(tmp))
        print(
            f"{name}: {spec.node_count()} nodes, {spec.vm_count()} VMs: lab ready in {startup:.2f} s; "
            f"status of every node in {elapsed:.2f} s (exit {code}), {requests} WinRM requests, "
            f"open shells after: {lab.open_shells()}"
        )


def main() -> None:
    argparse.ArgumentParser(description=__doc__.strip().splitlines()[0]).parse_args()  # --help; no options
    measure("default fleet", default_fleet())
    measure("--scale 10,4,25", generate_fleet(10, 4, 25, seed=1))
    for vms in (1, 25):
        spec = generate_fleet(1, 4, vms, seed=3)
        with tempfile.TemporaryDirectory() as tmp, Lab(spec) as lab:
            _, _, requests = _sweep(lab, Path(tmp))
            calls = sum(n["invocations"].get("host-facts", 0) for n in lab.snapshot()["nodes"])
        print(
            f"status cost, 4-node cluster with {4 * vms} VMs: {requests} WinRM requests, {calls} host-facts calls"
        )


if __name__ == "__main__":
    main()
