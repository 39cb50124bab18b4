"""`hcibenefit host enable|sync`: attestation on new or inactive nodes, and renewal for expired ones."""

from __future__ import annotations

from typing import Any

import typer

from hcibenefit.cli.benefits_cmd import confirm_changes, finish_audit, open_audit
from hcibenefit.cli.common import (
    AuditOption,
    WhatIfOption,
    YesOption,
    app_context,
    global_options,
    selection_options,
)
from hcibenefit.exitcodes import ExitCode
from hcibenefit.operations.selection import Selection

app = typer.Typer(
    rich_markup_mode=None,
    help="Node-level attestation: enable on new/inactive nodes, sync expired ones.",
    no_args_is_help=True,
)

ENABLE_EXAMPLES = """Examples:

  hcibenefit host enable --cluster sea-hci01 --what-if      # the Inactive nodes, and what would run

  hcibenefit host enable --cluster sea-hci01 --node sea-hci01-n4
"""
SYNC_EXAMPLES = """Examples:

  hcibenefit host sync --cluster sea-hci01                  # every Expired node of the cluster

  hcibenefit host sync --node sea-hci01-n2 --node fra-hci01-n1   # named nodes, whatever their state
"""


def _run(
    ctx: typer.Context, action: Any, selection: Selection, what_if: bool, yes: bool, audit_log: Any
) -> int:
    from hcibenefit.operations.hostops import host_report, run_host_action

    app = app_context(ctx)
    fmt = app.choose_format()
    inventory = app.inventory()
    audit = None if what_if else open_audit(app, audit_log, f"host {action}")
    try:
        outcomes, declined = run_host_action(
            inventory,
            app.credentials(),
            action=action,
            selection=selection,
            what_if=what_if,
            confirm=lambda plans: confirm_changes(
                app,
                yes,
                [f"host {action} on {p.node}: {p.reason}" for p in plans],
                ask=len(plans) > 1 or not all(selection.explicit_node(p.node) for p in plans),
            ),
            audit=audit,
        )
    finally:
        unaudited = finish_audit(app, audit)
    report = host_report(
        action,
        outcomes,
        what_if=what_if,
        declined=declined,
        run_info=app.run_info(inventory),
        show_scripts=app.verbosity >= 1,
    )
    app.emit(report, fmt)
    if declined:
        return int(ExitCode.OK)
    bad = unaudited or any(o.result in ("refused", "failed", "unverified") for o in outcomes)
    return int(ExitCode.combine(findings=False, incomplete=bad))


@app.command("enable", epilog=ENABLE_EXAMPLES)
@global_options
@selection_options(vms=False, nodes=True, all_help="Every cluster in the inventory.")
def host_enable(
    ctx: typer.Context,
    selection: Selection,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    audit_log: AuditOption = None,
) -> int:
    """Enable-AzStackHCIAttestation on nodes that are Inactive (or the named ones), then verify."""
    return _run(ctx, "enable", selection, what_if, yes, audit_log)


@app.command("sync", epilog=SYNC_EXAMPLES)
@global_options
@selection_options(vms=False, nodes=True, all_help="Every cluster in the inventory.")
def host_sync(
    ctx: typer.Context,
    selection: Selection,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    audit_log: AuditOption = None,
) -> int:
    """Sync-AzureStackHCI on nodes whose attestation expired (or the named ones), then verify."""
    return _run(ctx, "sync", selection, what_if, yes, audit_log)
