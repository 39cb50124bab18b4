"""`hcibenefit guest check|kick`: activation as the guests themselves see it, and running their activation task."""

from __future__ import annotations

from typing import Annotated

import typer

from hcibenefit.cli.benefits_cmd import (
    AuditOption,
    WhatIfOption,
    YesOption,
    confirm_changes,
    finish_audit,
    open_audit,
)
from hcibenefit.cli.common import ClusterOption, FormatOption, ParallelOption, app_context, emit
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(
    help="Check Windows activation inside guest VMs (PowerShell Direct or WinRM) and kick the activation task.",
    no_args_is_help=True,
)

GuestVMOption = Annotated[list[str] | None, typer.Option("--vm", help="VM name (repeatable).")]


@app.command("check")
def check(
    ctx: typer.Context,
    vm: GuestVMOption = None,
    cluster: ClusterOption = None,
    format: FormatOption = None,
    parallel: ParallelOption = 16,
) -> int:
    """Per VM: activated, at-risk, not-activated, not-assessable or auth-failed, with the evidence.

    One call per owner node carries the probes for all its VMs; VMs that are not running are not sent.
    """
    from hcibenefit.operations.guests.check import check_guests, check_report

    app_ = app_context(ctx)
    fmt = app_.choose_format(format, ("table", "json"))
    inventory = app_.inventory()
    result = check_guests(
        inventory, app_.credentials(), vm_names=vm or [], cluster_names=cluster or [], workers=parallel
    )
    emit(app_, check_report(result), fmt)
    return int(ExitCode.combine(findings=result.findings, incomplete=result.incomplete))


@app.command("kick")
def kick(
    ctx: typer.Context,
    vm: GuestVMOption = None,
    cluster: ClusterOption = None,
    what_if: WhatIfOption = False,
    enable_task: Annotated[
        bool,
        typer.Option(
            "--enable-task", help="Enable a disabled LicenseImdsIntegration task before running it."
        ),
    ] = False,
    yes: YesOption = False,
    format: FormatOption = None,
    parallel: ParallelOption = 16,
    audit_log: AuditOption = None,
) -> int:
    """Run the guests' LicenseImdsIntegration task (twice if needed) and report activation before and after."""
    from hcibenefit.operations.guests.kick import kick_report, run_kick

    app_ = app_context(ctx)
    fmt = app_.choose_format(format, ("table", "json"))
    inventory = app_.inventory()
    audit = None if what_if else open_audit(app_, audit_log, "guest kick")
    try:
        result = run_kick(
            inventory,
            app_.credentials(),
            vm_names=vm or [],
            cluster_names=cluster or [],
            what_if=what_if,
            enable_task=enable_task,
            confirm=lambda plans: confirm_changes(
                app_, yes, [f"kick {p.record.target.name}: {p.why}" for p in plans]
            ),
            audit=audit,
            workers=parallel,
        )
    finally:
        unaudited = finish_audit(app_, audit)
    emit(app_, kick_report(result), fmt)
    if result.declined:
        return int(ExitCode.OK)
    return int(ExitCode.combine(findings=result.findings, incomplete=result.incomplete or unaudited))
