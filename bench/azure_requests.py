"""What reconciliation costs on the Azure side: Resource Graph requests, subscription reads and ARM reads,
for the built-in lab fleet and a generated one, plus the wall time of the whole `reconcile` run.

Run: python bench/azure_requests.py [--scale 10,4,25] [--graph-host-fields]

The lab pages 10 rows at a time (100 for fleets over 200 resources) where Azure pages 1000, and its
Resource Graph rows lack hyperVVmId/hostNodeName, so every VM instance costs one ARM read.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hcibenefit.cli.app import run
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import FleetSpec, default_fleet, generate_fleet, parse_scale


def measure(spec: FleetSpec) -> dict[str, Any]:
    with Lab(spec) as lab, tempfile.TemporaryDirectory() as tmp:
        inventory = lab.write_inventory(Path(tmp) / "inventory.yaml")
        os.environ.update(lab.environment())
        os.environ["HCIBENEFIT_AUDIT_LOG"] = str(Path(tmp) / "audit.log")
        out = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = run(["-i", str(inventory), "reconcile", "-o", "json", "--fail-on", "none"])
        elapsed = time.perf_counter() - started
        report = json.loads(out.getvalue())
        served = lab.snapshot()["azure"]
    requests = report["azure"]["requests"]
    return {
        "fleet": spec.source,
        "nodes": spec.node_count(),
        "vms": spec.vm_count(),
        "exit": code,
        "resource_graph_requests": requests["resource_graph_requests"],
        "subscription_reads": requests["subscription_reads"],
        "arm_reads": requests["arm_reads"],
        "lab_saw": {k: served[k] for k in ("graph_requests", "subscription_reads", "arm_reads")},
        "findings": len(report["findings"]),
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", default="10,4,25", help="CLUSTERS,NODES,VMS_PER_NODE for the generated fleet"
    )
    parser.add_argument(
        "--graph-host-fields",
        action="store_true",
        help="Resource Graph's VM instance rows carry hyperVVmId/hostNodeName (unverified in Azure), "
        "so no VM instance needs an ARM read",
    )
    args = parser.parse_args()
    for spec in (default_fleet(), generate_fleet(*parse_scale(args.scale))):
        if args.graph_host_fields:
            spec.azure.graph_host_fields = True
        result = measure(spec)
        result["graph_host_fields"] = bool(args.graph_host_fields)
        print(json.dumps(result), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
