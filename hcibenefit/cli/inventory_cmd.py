"""`hcibenefit inventory validate|show`: check an inventory and see the effective settings per node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hcibenefit.cli.common import app_context, global_options
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(help="Check and inspect the inventory.", no_args_is_help=True)

FileArgument = Annotated[
    Path | None, typer.Argument(help="Inventory file (default: --inventory / HCIBENEFIT_INVENTORY).")
]


@app.command()
@global_options
def validate(ctx: typer.Context, file: FileArgument = None) -> int:
    """Validate an inventory: exit 0 when it is usable, 2 with file:line:col and field when not."""
    appctx = app_context(ctx)
    inventory = appctx.inventory(file)
    nodes = len(inventory.all_nodes())
    appctx.say(f"{inventory.source}: ok ({len(inventory.clusters)} clusters, {nodes} nodes)")
    for warning in inventory.warnings:
        appctx.say(f"warning: {warning}")
    return int(ExitCode.OK)


def _node_row(cluster: Any, node: Any) -> dict[str, Any]:
    winrm = node.winrm
    creds = node.credentials.to_public_dict() if node.credentials else {}
    source = next(
        (f"{k}: {v}" for k, v in creds.items() if k in ("password_env", "password_cmd", "keyring")), None
    )
    validation = winrm.cert_validation
    return {
        "cluster": cluster.name,
        "site": cluster.site,
        "node": node.name,
        "endpoint": f"{winrm.transport}://{node.address}:{winrm.port}/{winrm.path}",
        "auth": winrm.auth,
        "cert_validation": validation if isinstance(validation, bool) else str(validation),
        "timeouts": f"{winrm.connection_timeout:g}/{winrm.read_timeout:g}/{winrm.operation_timeout:g}",
        "configuration": winrm.configuration_name,
        "user": creds.get("username"),
        "password": "***" if source else creds.get("password"),
        "secret_source": source,
    }


@app.command()
@global_options
def show(ctx: typer.Context, file: FileArgument = None) -> int:
    """Clusters, nodes and the effective connection settings of each node; secrets shown as ***."""
    from hcibenefit.report import Report, Table, columns

    appctx = app_context(ctx)
    fmt = appctx.choose_format()
    inventory = appctx.inventory(file)
    rows = [_node_row(c, n) for c in inventory.clusters for n in c.nodes]
    table = Table(
        f"Inventory {inventory.source}",
        columns(
            ("cluster", "CLUSTER"),
            ("site", "SITE"),
            ("node", "NODE"),
            ("endpoint", "ENDPOINT"),
            ("auth", "AUTH"),
            ("cert_validation", "CERT VALIDATION"),
            ("timeouts", "TIMEOUTS c/r/o"),
            ("configuration", "ENDPOINT CONFIG"),
            ("user", "USER"),
            ("secret_source", "PASSWORD FROM"),
        ),
        rows,
    )
    appctx.emit(Report(data=inventory.to_public_dict(), tables=[table], notes=list(inventory.warnings)), fmt)
    return int(ExitCode.OK)
