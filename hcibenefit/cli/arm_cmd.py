"""`hcibenefit arm query`: the Resource Graph query hcibenefit runs, and what it returns."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hcibenefit.cli.common import app_context, global_options
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(help="Azure Resource Manager and Resource Graph (read-only).", no_args_is_help=True)

SnapshotOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--arm-snapshot",
        metavar="FILE",
        help='Saved `az graph query -q "$(hcibenefit arm query --print)" -o json` output instead of a live '
        "query: no network, no credential (repeatable: one file per page).",
    ),
]


@app.command()
@global_options
def query(
    ctx: typer.Context,
    print_query: Annotated[
        bool, typer.Option("--print", help="Print the KQL and exit (nothing is sent).")
    ] = False,
    parts: Annotated[
        bool, typer.Option("--parts", help="With --print: the same rows as three queries, one per table.")
    ] = False,
    arm_snapshot: SnapshotOption = None,
    subscription: Annotated[
        list[str] | None,
        typer.Option(
            "--subscription",
            "-s",
            metavar="ID",
            help="Only this subscription (repeatable); default: the inventory's.",
        ),
    ] = None,
) -> int:
    """What Azure believes: clusters, Arc machines, VM instances, resource bridges, AVD session hosts.

    Examples:

      hcibenefit arm query --print                       # the KQL, for az graph query or the portal
      az graph query -q "$(hcibenefit arm query --print)" --first 1000 -o json > arm.json
      hcibenefit arm query --arm-snapshot arm.json       # no network, no credential
      hcibenefit -i fleet.yaml arm query -o json         # live, with the inventory's azure: settings
    """
    import datetime as dt

    from hcibenefit.azure.query import INVENTORY_QUERY, PARTS
    from hcibenefit.inventory.model import AzureSettings
    from hcibenefit.operations.arm_query import query_report
    from hcibenefit.operations.azure_read import open_azure, scope_of, stats_line

    app_ctx = app_context(ctx)
    if print_query:
        text = "\n\n".join(PARTS) if parts else INVENTORY_QUERY
        with app_ctx.open_output() as stream:
            stream.write(text + "\n")
        return int(ExitCode.OK)
    fmt = app_ctx.choose_format()
    snapshots = list(arm_snapshot or [])
    if snapshots:
        settings, scope = AzureSettings(), []
    else:
        # Live: the inventory's azure: settings when there is an inventory, else the defaults
        # (DefaultAzureCredential, every subscription it can see).
        inventory = app_ctx.inventory() if app_ctx.inventory_path else None
        settings = inventory.azure if inventory else AzureSettings()
        scope = scope_of(settings, inventory.clusters if inventory else ())
    if subscription:
        scope = [s.lower() for s in subscription]
    with open_azure(settings, scope, snapshots=snapshots) as source:
        read = source.read
    app_ctx.emit(query_report(read, dt.datetime.now(dt.timezone.utc)), fmt)
    if not snapshots:
        app_ctx.say(stats_line(read))
    return int(ExitCode.INCOMPLETE if read.errors else ExitCode.OK)
