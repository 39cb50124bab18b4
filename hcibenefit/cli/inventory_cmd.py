"""`hcibenefit inventory validate|show`: check an inventory and see the effective settings per node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hcibenefit.cli.common import (
    DEFAULT_PARALLEL,
    ParallelOption,
    app_context,
    global_options,
    selection_options,
)
from hcibenefit.exitcodes import ExitCode
from hcibenefit.operations.selection import Selection

app = typer.Typer(rich_markup_mode=None, help="Check, show and test the inventory.", no_args_is_help=True)

VALIDATE_EXAMPLES = """Examples:

  hcibenefit inventory validate fleet.yaml        # shape, referenced files, credential sources; no network
"""
TEST_EXAMPLES = """Examples:

  hcibenefit -i fleet.yaml inventory test          # every node: reachable, TLS, logon, endpoint

  hcibenefit inventory test --cluster sea-hci01 -o json
"""
SHOW_EXAMPLES = """Examples:

  hcibenefit inventory show fleet.yaml -o json    # the effective settings per node; secrets as ***
"""

FileArgument = Annotated[
    Path | None,
    typer.Argument(metavar="[FILE]", help="Inventory file (default: --inventory / HCIBENEFIT_INVENTORY)."),
]


@app.command(epilog=VALIDATE_EXAMPLES)
@global_options
def validate(ctx: typer.Context, file: FileArgument = None) -> int:
    """Check an inventory without connecting: shape, referenced files, credential sources.

    The shape is checked with file:line:col and field; the files it names must exist (CA bundles must
    parse); every credential source must answer (variable set, password command found, keyring entry
    present; a password command is not run). Exit 0 when usable, 2 with every problem when not.
    """
    from hcibenefit.operations.inventory_check import offline_problems

    appctx = app_context(ctx)
    fmt = appctx.choose_format()
    inventory = appctx.inventory(file)
    nodes = len(inventory.all_nodes())
    for warning in inventory.warnings:
        appctx.say(f"warning: {warning}")
    problems = offline_problems(inventory, ask_pass=appctx.ask_pass)
    if fmt == "json":
        from hcibenefit.report import Report

        data = {
            **appctx.run_info(inventory),
            "valid": not problems,
            "clusters": len(inventory.clusters),
            "nodes": nodes,
            "warnings": list(inventory.warnings),
            "problems": [{"where": p.where, "message": p.message} for p in problems],
        }
        appctx.emit(Report(data=data), fmt)
    if problems:
        for problem in problems:
            appctx.say(f"error: {problem}")
        appctx.say(f"{inventory.source}: {len(problems)} problem(s); `hcibenefit inventory test` connects")
        return int(ExitCode.USAGE)
    appctx.say(f"{inventory.source}: ok ({len(inventory.clusters)} clusters, {nodes} nodes)")
    return int(ExitCode.OK)


@app.command("test", epilog=TEST_EXAMPLES)
@global_options
@selection_options(vms=False, nodes=True)
def test_(ctx: typer.Context, selection: Selection, parallel: ParallelOption = DEFAULT_PARALLEL) -> int:
    """Connect to every selected node once: reachable, TLS, logon, PowerShell endpoint, per node.

    Opens and closes one runspace pool per node; no script runs. A refused password is tried on one
    node only; the others are reported as skipped. Exit 0 when every node passed, 4 when not.
    """
    from hcibenefit.operations.connectivity import connectivity_report, test_nodes

    appctx = app_context(ctx)
    fmt = appctx.choose_format()
    inventory = appctx.inventory()
    nodes = selection.select_nodes(selection.select_clusters(inventory))
    tests = test_nodes(inventory, appctx.credentials(), nodes, workers=parallel)
    appctx.emit(connectivity_report(tests, appctx.run_info(inventory)), fmt)
    return int(ExitCode.OK if all(t.ok for t in tests) else ExitCode.INCOMPLETE)


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


@app.command(epilog=SHOW_EXAMPLES)
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
    data = {**appctx.run_info(inventory), **inventory.to_public_dict()}
    appctx.emit(Report(data=data, tables=[table], notes=list(inventory.warnings)), fmt)
    return int(ExitCode.OK)
