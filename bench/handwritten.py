"""What an admin writes by hand, for comparison: pypsrp straight, nodes in turn, no parallelism.

Two shapes, as `bench/sweep_scale.py` measures them:
- `per-vm`: one session per VM (open a runspace pool on the VM's node, ask, close), VM after VM;
- `per-node`: one session per node, node after node.
Each session runs the same question hcibenefit's status asks (host-facts), so only the shape differs.

Run: python bench/handwritten.py INVENTORY {per-vm|per-node} NODE[:VM] ...   (passwords from the lab's
environment variables, as the inventory names them). Prints one JSON line: sessions, seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from hcibenefit.remoting.catalog import HOST_FACTS


def _nodes(inventory: Path) -> dict[str, dict[str, Any]]:
    from ruamel.yaml import YAML

    document = YAML(typ="safe").load(inventory.read_text(encoding="utf-8"))
    winrm = document["defaults"]["winrm"]
    # A lab serving certificate authentication writes the client certificate and no host password.
    credentials = document["defaults"].get("credentials")
    logon: dict[str, Any] = (
        {"username": credentials["username"], "password": os.environ[credentials["password_env"]]}
        if credentials
        else {
            "certificate_pem": winrm["certificate_pem"],
            "certificate_key_pem": winrm["certificate_key_pem"],
        }
    )
    nodes = {}
    for cluster in document["clusters"]:
        for node in cluster["nodes"]:
            nodes[node["name"]] = {
                "address": node["address"],
                "port": node["port"],
                "ssl": winrm["transport"] == "https",
                "auth": winrm["auth"],
                "cert_validation": winrm.get("cert_validation", True),
                **logon,
            }
    return nodes


def ask(node: dict[str, Any]) -> None:
    with (
        WSMan(
            node["address"],
            port=node["port"],
            ssl=node["ssl"],
            auth=node["auth"],
            cert_validation=node["cert_validation"],
            **{
                k: node[k]
                for k in ("username", "password", "certificate_pem", "certificate_key_pem")
                if k in node
            },
        ) as wsman,
        RunspacePool(wsman) as pool,
    ):
        ps = PowerShell(pool)
        ps.add_script(HOST_FACTS.text())
        ps.add_parameters({"IncludeGuestOs": True})
        output = ps.invoke()
        if ps.had_errors or len(output) != 1:
            raise SystemExit(f"unexpected answer from {node['address']}")
        json.loads(output[0])


def main(argv: list[str]) -> None:
    inventory, shape, *targets = argv
    nodes = _nodes(Path(inventory))
    started = time.perf_counter()
    for target in targets:
        node_name = target.split(":", 1)[0]
        ask(nodes[node_name])  # per-vm: the target names a VM too; one session each all the same
    elapsed = time.perf_counter() - started
    print(json.dumps({"shape": shape, "sessions": len(targets), "seconds": elapsed}))


if __name__ == "__main__":
    main(sys.argv[1:])
