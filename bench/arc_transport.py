"""What transport: arc costs against WinRM: ARM requests per node and wall time of a sweep, on the lab.

Run: python bench/arc_transport.py [--scale 10,3,6] [--poll 0.2] [--agent-delay 0.05]

The same generated fleet is swept twice, once over WinRM and once with every cluster on `transport: arc`
(output blobs in the lab's storage). Printed per transport: wall time, and for Arc the ARM requests by
kind (PUT, GET, DELETE, LIST of run commands), per node, the Resource Graph requests that mapped nodes to
machines, and the blob requests. Both sweeps must reach the same results.

The lab's agent picks a run command up after 50 ms; real Connected Machine agents poll for work and take
seconds, so real Arc sweeps are slower per node than this says: the request counts carry over, the wall
time does not.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from hcibenefit.cli.app import run
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import generate_fleet, parse_scale


def _sweep(lab: Lab, inventory: Path, workdir: Path) -> tuple[float, dict[str, Any]]:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        run(["-i", str(inventory), "sweep", "-o", "json", "--no-history", "--fail-on", "none"])
    return time.perf_counter() - started, json.loads(out.getvalue())


def _results(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        r["id"]: (r["status"], r["message"])
        for r in document["findings"]
        if not r["check"].startswith("azure.")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="10,3,6", help="CLUSTERS,NODES,VMS_PER_NODE (default 10,3,6)")
    parser.add_argument("--poll", type=float, default=0.2, help="arc.poll_interval in seconds (default 0.2)")
    parser.add_argument(
        "--agent-delay",
        type=float,
        default=0.05,
        help="seconds the lab's agent takes to pick a run command up (default 0.05; real agents: seconds)",
    )
    args = parser.parse_args()
    clusters, nodes, vms = parse_scale(args.scale)
    spec = generate_fleet(clusters, nodes, vms, seed=15)
    with tempfile.TemporaryDirectory() as tmp, Lab(spec) as lab:
        work = Path(tmp)
        os.environ.update(lab.environment())
        winrm_inventory = lab.write_inventory(work / "winrm.yaml")
        arc_inventory = lab.write_inventory(work / "arc.yaml", arc_clusters=[c.name for c in spec.clusters])
        text = arc_inventory.read_text().replace("poll_interval: 0.05", f"poll_interval: {args.poll:g}")
        arc_inventory.write_text(text)
        node_count = spec.node_count()
        assert lab.arm is not None
        lab.arm.run_commands.agent_delay_s = args.agent_delay
        winrm_s, winrm_doc = _sweep(lab, winrm_inventory, work)
        lab.arm.reset()
        arc_s, arc_doc = _sweep(lab, arc_inventory, work)
        for _ in range(50):  # the lab removes a deleted run command shortly after the DELETE
            azure = lab.snapshot()["azure"]
            if not azure["run_commands"]["existing"]:
                break
            time.sleep(0.1)
        commands, blobs = azure["run_commands"], azure["blobs"]
        requests = commands["requests"]
        arm_total = sum(v for k, v in requests.items() if k != "operation")
        same = _results(winrm_doc) == _results(arc_doc)
        print(f"fleet: {clusters} clusters x {nodes} nodes, {spec.vm_count()} VMs ({node_count} nodes)")
        print(f"winrm: sweep {winrm_s:.2f} s")
        print(
            f"arc:   sweep {arc_s:.2f} s (poll_interval {args.poll:g} s, lab agent delay {args.agent_delay:g} s)"
        )
        print(
            f"arc:   ARM run-command requests {arm_total} = {json.dumps(requests, sort_keys=True)}; "
            f"{arm_total / node_count:.1f} per node; scripts run {commands['scripts_run']}"
        )
        print(
            f"arc:   Resource Graph requests {azure['graph_requests']} (the sweep's Azure reading and the node -> "
            "Arc machine map); "
            f"blob requests: {blobs['keys']} delegation key(s), {blobs['read']} reads, {blobs['deleted']} deletes"
        )
        print(
            f"arc:   run commands left behind: {len(commands['existing'])}; blobs left: {len(blobs['blobs'])}"
        )
        print(f"same results over both transports: {same}")


if __name__ == "__main__":
    main()
