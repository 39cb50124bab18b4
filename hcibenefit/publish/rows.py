"""A sweep run as rows of the ``HcibenefitSweep_CL`` table (docs/azure-monitor.md has the schema).

One row per result (``RecordType == "result"``), one per VM that needs Azure Benefits with the date its
benefits lapse if nothing changes (``"vm"``), and one for the run itself (``"run"``). Every row carries
the run's id, so a query can take each cluster's latest run, and a row id, so a run sent twice (a retry
after a chunk failed half-way) can be told apart from two runs.

The column names and types here are the contract with the data collection rule's stream declaration
(``hcibenefit/publish/azure-monitor/dcr.json``): a test checks every row against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS: dict[str, str] = {
    "TimeGenerated": "datetime",
    "RunId": "string",
    "RowId": "string",
    "RecordType": "string",
    "RunStarted": "datetime",
    "RunFinished": "datetime",
    "Collector": "string",
    "HcibenefitVersion": "string",
    "InventoryHash": "string",
    "Source": "string",
    "Site": "string",
    "Cluster": "string",
    "Node": "string",
    "VM": "string",
    "ResultId": "string",
    "Check": "string",
    "Title": "string",
    "CheckScope": "string",
    "Status": "string",
    "Severity": "string",
    "Message": "string",
    "Remediation": "string",
    "Waived": "boolean",
    "WaiverReason": "string",
    "WaiverExpires": "datetime",
    "BenefitsExpire": "datetime",
    "GuestVerdict": "string",
    "ExitCode": "int",
    "Fail": "int",
    "Error": "int",
    "Waivers": "int",
    "Results": "int",
    "DeadlineReached": "boolean",
}
"""Column name -> Log Analytics type, in the order the table declares them."""


def _common(run: Mapping[str, Any], record_type: str, row_id: str) -> dict[str, Any]:
    return {
        "TimeGenerated": run["finished"],
        "RunId": run.get("uid") or f"{run.get('inventory_hash', '')}:{run['started']}",
        "RowId": row_id,
        "RecordType": record_type,
        "RunStarted": run["started"],
        "RunFinished": run["finished"],
        "Collector": run.get("collector"),
        "HcibenefitVersion": run.get("hcibenefit_version"),
        "InventoryHash": run.get("inventory_hash"),
        "Source": run.get("source"),
    }


def run_rows(run: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row of one run, from what history stores (so a run published late is the run as it was)."""
    sites: Mapping[str, str | None] = run.get("sites") or {}
    rows: list[dict[str, Any]] = []
    fail = error = waived = 0
    for record in records:
        fail += record["status"] == "FAIL" and not record.get("waived")
        error += record["status"] == "ERROR" and not record.get("waived")
        waived += bool(record.get("waived"))
        rows.append(
            {
                **_common(run, "result", f"result:{record['id']}"),
                "Site": sites.get(record.get("cluster") or ""),
                "Cluster": record.get("cluster"),
                "Node": record.get("node"),
                "VM": record.get("vm"),
                "ResultId": record["id"],
                "Check": record.get("check"),
                "Title": record.get("title"),
                "CheckScope": record.get("scope"),
                "Status": record["status"],
                "Severity": record.get("severity"),
                "Message": record.get("message"),
                "Remediation": record.get("remediation"),
                "Waived": bool(record.get("waived")),
                "WaiverReason": record.get("waiver_reason"),
                "WaiverExpires": record.get("waiver_expires"),
            }
        )
    for vm in run.get("horizon") or ():
        rows.append(
            {
                **_common(run, "vm", f"vm:{vm['cluster']}/{vm['vm']}".lower()),
                "Site": sites.get(vm["cluster"]),
                "Cluster": vm["cluster"],
                "Node": vm.get("node"),
                "VM": vm["vm"],
                "BenefitsExpire": vm.get("benefits_expire"),
                "GuestVerdict": vm.get("verdict"),
            }
        )
    rows.append(
        {
            **_common(run, "run", "run"),
            "ExitCode": run.get("exit_code"),
            "Fail": fail,
            "Error": error,
            "Waivers": waived,
            "Results": len(records),
            "DeadlineReached": bool(run.get("deadline_reached")),
        }
    )
    # Every row has every column (null where it does not apply), as the stream declares them.
    return [{name: row.get(name) for name in COLUMNS} for row in rows]
