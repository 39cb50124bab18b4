"""`hcibenefit guest check|kick`: activation as the guests themselves see it, and running their activation task."""

from __future__ import annotations

from typing import Annotated

import typer

from hcibenefit.checks.verdicts import GUEST_VERDICTS
from hcibenefit.cli.benefits_cmd import confirm_changes, finish_audit, open_audit
from hcibenefit.cli.common import (
    DEFAULT_PARALLEL,
    AuditOption,
    ParallelOption,
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
    help="Check Windows activation inside guest VMs (PowerShell Direct or WinRM) and kick the activation task.",
    no_args_is_help=True,
)

CHECK_EXAMPLES = """Examples:

  hcibenefit guest check --vm avd-sh01

  hcibenefit guest check --all --cluster sea-hci01 --verdict not-activated --verdict at-risk

  hcibenefit guest check --vm 'avd-*' -o json --output-file guests.json
"""
KICK_EXAMPLES = """Examples:

  hcibenefit guest kick --vm avd-sh01 --what-if

  hcibenefit guest kick --vm avd-sh01 --enable-task      # also enable a disabled activation task

  hcibenefit guest kick --all --verdict not-activated --yes
"""


@app.command("check", epilog=CHECK_EXAMPLES)
@global_options
@selection_options(verdicts=GUEST_VERDICTS)
def check(ctx: typer.Context, selection: Selection, parallel: ParallelOption = DEFAULT_PARALLEL) -> int:
    """Per VM: activated, at-risk, not-activated, not-assessable or auth-failed, with the evidence.

    Without a selection every VM of the inventory is checked. One call per owner node carries the
    probes for all its VMs; VMs that are not running are not sent.
    """
    from hcibenefit.operations.guests.check import check_guests, check_report

    app_ = app_context(ctx)
    fmt = app_.choose_format()
    inventory = app_.inventory()
    result = check_guests(inventory, app_.credentials(), selection, workers=parallel)
    app_.emit(check_report(result, app_.run_info(inventory)), fmt)
    return int(ExitCode.combine(findings=result.findings, incomplete=result.incomplete))


@app.command("kick", epilog=KICK_EXAMPLES)
@global_options
@selection_options(verdicts=GUEST_VERDICTS)
def kick(
    ctx: typer.Context,
    selection: Selection,
    what_if: WhatIfOption = False,
    enable_task: Annotated[
        bool,
        typer.Option(
            "--enable-task", help="Enable a disabled LicenseImdsIntegration task before running it."
        ),
    ] = False,
    yes: YesOption = False,
    parallel: ParallelOption = DEFAULT_PARALLEL,
    audit_log: AuditOption = None,
) -> int:
    """Run the guests' LicenseImdsIntegration task (twice if needed) and report activation before and after."""
    from hcibenefit.operations.guests.kick import kick_report, run_kick

    app_ = app_context(ctx)
    fmt = app_.choose_format()
    inventory = app_.inventory()
    audit = None if what_if else open_audit(app_, audit_log, "guest kick")
    try:
        result = run_kick(
            inventory,
            app_.credentials(),
            selection,
            what_if=what_if,
            enable_task=enable_task,
            confirm=lambda plans: confirm_changes(
                app_,
                yes,
                [f"kick {p.record.target.name}: {p.why}" for p in plans],
                ask=len(plans) > 1 or not all(selection.explicit(p.record.target.name) for p in plans),
            ),
            audit=audit,
            workers=parallel,
        )
    finally:
        unaudited = finish_audit(app_, audit)
    app_.emit(kick_report(result, app_.run_info(inventory), show_scripts=app_.verbosity >= 1), fmt)
    if result.declined:
        return int(ExitCode.OK)
    return int(ExitCode.combine(findings=result.findings, incomplete=result.incomplete or unaudited))
