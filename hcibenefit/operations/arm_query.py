"""`hcibenefit arm query`: what Azure believes about the fleet, as the inventory query returns it."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from hcibenefit.operations.azure_read import records_dict
from hcibenefit.report import Report, Table, columns

if TYPE_CHECKING:
    from hcibenefit.azure.session import AzureRead


def _days(when: dt.datetime | None, now: dt.datetime) -> str | None:
    if when is None:
        return None
    return f"{(now - when).total_seconds() / 86400:.1f}"


def query_report(read: AzureRead, now: dt.datetime) -> Report:
    inventory = read.inventory
    data: dict[str, Any] = {
        "source": read.source,
        "scope": list(read.scope) if read.scope is not None else None,
        "errors": [{"subscription": k, "error": v} for k, v in read.errors.items()],
        "requests": read.stats.to_dict(),
        **records_dict(inventory),
        "other_rows": inventory.other_rows,
        "notes": list(read.notes),
    }
    cluster_rows = [
        {
            "name": c.name,
            "resource_group": c.resource_group,
            "status": c.status,
            "connectivity": c.connectivity_status,
            "sync_days": _days(c.last_sync, now),
            "imds": c.imds_attestation,
            "version": c.cluster_version,
            "nodes": len(c.nodes),
            "wss": c.wss_desired,
        }
        for c in sorted(inventory.clusters, key=lambda c: c.name.casefold())
    ]
    vm_rows = []
    for machine in sorted(inventory.vm_machines(), key=lambda m: m.name.casefold()):
        instance = inventory.instance_of(machine.id)
        vm_rows.append(
            {
                "name": machine.name,
                "resource_group": machine.resource_group,
                "status": machine.status,
                "power": instance.power_state if instance else None,
                "host": instance.host_node_name if instance else None,
                "license": machine.license_status,
                "hyperv_id": "yes" if instance and instance.hyperv_vm_id else "no",
                "location": instance.custom_location_id.rsplit("/", 1)[-1] if instance else None,
            }
        )
    node_rows = [
        {"name": m.name, "resource_group": m.resource_group, "status": m.status, "agent": m.agent_version}
        for m in sorted(inventory.node_machines(), key=lambda m: m.name.casefold())
    ]
    bridge_rows = [
        {"name": b.name, "resource_group": b.resource_group, "status": b.status, "version": b.version}
        for b in inventory.bridges
    ]
    host_rows = [
        {
            "pool": h.host_pool,
            "name": h.name.rsplit("/", 1)[-1],
            "status": h.status,
            "vm": h.vm_resource_id.rsplit("/", 1)[-1] if h.vm_resource_id else None,
        }
        for h in inventory.session_hosts
    ]
    tables = [
        Table(
            "Clusters",
            columns(
                ("name", "CLUSTER"),
                ("resource_group", "RESOURCE GROUP"),
                ("status", "STATUS"),
                ("connectivity", "CONNECTIVITY"),
                ("sync_days", "DAYS SINCE SYNC"),
                ("imds", "IMDS ATTESTATION"),
                ("version", "VERSION"),
                ("nodes", "NODES"),
                ("wss", "WS SUBSCRIPTION"),
            ),
            cluster_rows,
        ),
        Table(
            "Node machines (Arc)",
            columns(
                ("name", "NODE"),
                ("resource_group", "RESOURCE GROUP"),
                ("status", "STATUS"),
                ("agent", "AGENT"),
            ),
            node_rows,
        ),
        Table(
            "Azure Local VMs",
            columns(
                ("name", "VM"),
                ("resource_group", "RESOURCE GROUP"),
                ("status", "ARC STATUS"),
                ("power", "POWER"),
                ("host", "HOST NODE"),
                ("license", "LICENSE"),
                ("hyperv_id", "HYPER-V ID"),
                ("location", "CUSTOM LOCATION"),
            ),
            vm_rows,
        ),
        Table(
            "Resource bridges",
            columns(
                ("name", "BRIDGE"),
                ("resource_group", "RESOURCE GROUP"),
                ("status", "STATUS"),
                ("version", "VERSION"),
            ),
            bridge_rows,
        ),
        Table(
            "AVD session hosts (on Arc machines)",
            columns(("pool", "HOST POOL"), ("name", "SESSION HOST"), ("status", "STATUS"), ("vm", "VM")),
            host_rows,
        ),
    ]
    notes = [f"source: {read.source}", *read.notes]
    notes += [f"! {scope}: {why}" for scope, why in read.errors.items()]
    if read.hint:
        notes.append(f"hint: {read.hint}")
    return Report(data=data, tables=tables, notes=notes)
