"""`hcibenefit host enable|sync`: attestation on new or inactive nodes, and renewal for expired ones."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hcibenefit.cli.benefits_cmd import (
    AuditOption,
    WhatIfOption,
    YesOption,
    confirm_changes,
    finish_audit,
    open_audit,
)
from hcibenefit.cli.common import FormatOption, app_context, emit
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(
    help="Node-level attestation: enable on new/inactive nodes, sync expired ones.", no_args_is_help=True
)

ClusterArg = Annotated[str, typer.Option("--cluster", "-c", help="The cluster.")]
NodeOption = Annotated[
    list[str] | None, typer.Option("--node", help="Only this node (repeatable); forces it.")
]


def _run(
    ctx: typer.Context,
    action: Any,
    cluster: str,
    node: list[str] | None,
    what_if: bool,
    yes: bool,
    format: str | None,
    audit_log: Any,
) -> int:
    from hcibenefit.operations.hostops import host_report, run_host_action

    app = app_context(ctx)
    fmt = app.choose_format(format, ("table", "json"))
    inventory = app.inventory()
    audit = None if what_if else open_audit(app, audit_log, f"host {action}")
    try:
        outcomes, declined = run_host_action(
            inventory,
            app.credentials(),
            action=action,
            cluster_name=cluster,
            node_names=node or [],
            what_if=what_if,
            confirm=lambda plans: confirm_changes(
                app, yes, [f"host {action} on {p.node}: {p.reason}" for p in plans]
            ),
            audit=audit,
        )
    finally:
        unaudited = finish_audit(app, audit)
    emit(app, host_report(action, outcomes, what_if=what_if, declined=declined), fmt)
    if declined:
        return int(ExitCode.OK)
    bad = unaudited or any(o.result in ("refused", "failed", "unverified") for o in outcomes)
    return int(ExitCode.combine(findings=False, incomplete=bad))


@app.command("enable")
def host_enable(
    ctx: typer.Context,
    cluster: ClusterArg,
    node: NodeOption = None,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    format: FormatOption = None,
    audit_log: AuditOption = None,
) -> int:
    """Enable-AzStackHCIAttestation on nodes that are Inactive (or the named ones), then verify."""
    return _run(ctx, "enable", cluster, node, what_if, yes, format, audit_log)


@app.command("sync")
def host_sync(
    ctx: typer.Context,
    cluster: ClusterArg,
    node: NodeOption = None,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    format: FormatOption = None,
    audit_log: AuditOption = None,
) -> int:
    """Sync-AzureStackHCI on nodes whose attestation expired (or the named ones), then verify."""
    return _run(ctx, "sync", cluster, node, what_if, yes, format, audit_log)
