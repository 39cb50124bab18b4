"""`hcibenefit enable|disable --vm`: turn Azure Benefits on or off for named VMs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from hcibenefit.cli.common import ClusterOption, FormatOption, ParallelOption, app_context, emit
from hcibenefit.cli.context import AppContext
from hcibenefit.errors import UsageError
from hcibenefit.exitcodes import ExitCode

VMOption = Annotated[list[str] | None, typer.Option("--vm", help="VM name (repeatable).")]
WhatIfOption = Annotated[
    bool, typer.Option("--what-if", help="Print the exact plan; send nothing that changes a host.")
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask before changing more than one target.")
]
AuditOption = Annotated[
    Path | None,
    typer.Option("--audit-log", envvar="HCIBENEFIT_AUDIT_LOG", help="Append changes to this file."),
]


def confirm_changes(app: AppContext, yes: bool, what: Sequence[str]) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            f"refusing to change {len(what)} targets without confirmation; nothing was changed",
            hint="pass --yes (or check the plan first with --what-if)",
        )
    app.say("About to change:\n  " + "\n  ".join(what))
    return typer.confirm(f"Change {len(what)} targets?", default=False, err=True)


def open_audit(app: AppContext, path: Path | None, command: str) -> Any:
    """Everything a change writes, proven writable before anything is sent to a host.

    The --output file and the audit log (--audit-log, HCIBENEFIT_AUDIT_LOG, the inventory's
    audit_log, the per-user default) are checked and opened here; failing that, the command exits 2
    and nothing is sent. Returns the open `AuditLog`, which the caller closes.
    """
    from hcibenefit.operations.audit import AuditLog, audit_path

    app.check_output()
    return AuditLog.open(audit_path(path, app.inventory().audit_log), command=command)


def finish_audit(app: AppContext, audit: Any) -> bool:
    """Close the audit log; True (and a message) if a record could not be written after sending."""
    if audit is None:
        return False
    audit.close()
    for failure in audit.write_failures:
        print(f"error: {failure}", file=app.stderr)
    return bool(audit.write_failures)


def _run(
    ctx: typer.Context,
    action: Any,
    vm: list[str] | None,
    cluster: list[str] | None,
    all_eligible: bool,
    what_if: bool,
    yes: bool,
    format: str | None,
    parallel: int,
    audit_log: Path | None,
    transport: str = "auto",
    force: bool = False,
) -> int:
    from hcibenefit.operations.benefits import benefits_report, run_benefits

    app = app_context(ctx)
    fmt = app.choose_format(format, ("table", "json"))
    if transport not in ("auto", "V1", "V2"):
        raise UsageError(f"--transport must be auto, V1 or V2, got {transport!r}")
    inventory = app.inventory()
    audit = None if what_if else open_audit(app, audit_log, action)
    try:
        result = run_benefits(
            inventory,
            app.credentials(),
            action=action,
            vm_names=vm or [],
            cluster_names=cluster or [],
            all_eligible=all_eligible,
            what_if=what_if,
            transport=transport,  # type: ignore[arg-type]
            force=force,
            confirm=lambda plans: confirm_changes(
                app, yes, [f"{action} {p.vm} on {p.node}: {p.reason}" for p in plans]
            ),
            audit=audit,
            workers=parallel,
        )
    finally:
        unaudited = finish_audit(app, audit)
    emit(app, benefits_report(result), fmt)
    if result.declined:
        return int(ExitCode.OK)
    return int(ExitCode.combine(findings=False, incomplete=result.incomplete or unaudited))


def enable(
    ctx: typer.Context,
    vm: VMOption = None,
    cluster: ClusterOption = None,
    all_eligible: Annotated[
        bool, typer.Option("--all-eligible", help="Also every VM that needs benefits and lacks them.")
    ] = False,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    transport: Annotated[
        str, typer.Option("--transport", help="auto (by platform and guest OS), V1 (guest NIC) or V2 (GSI).")
    ] = "auto",
    force: Annotated[
        bool, typer.Option("--force", help="Enable even where the policy says it is not needed.")
    ] = False,
    format: FormatOption = None,
    parallel: ParallelOption = 16,
    audit_log: AuditOption = None,
) -> int:
    """Turn on Azure Benefits for VMs: V1 guest NIC on 22H2 and legacy guests, V2 GSI on 23H2."""
    return _run(
        ctx, "enable", vm, cluster, all_eligible, what_if, yes, format, parallel, audit_log, transport, force
    )


def disable(
    ctx: typer.Context,
    vm: VMOption = None,
    cluster: ClusterOption = None,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    format: FormatOption = None,
    parallel: ParallelOption = 16,
    audit_log: AuditOption = None,
) -> int:
    """Turn off Azure Benefits for VMs: removes the guest NIC and, on 23H2, the Guest Service Interface."""
    return _run(ctx, "disable", vm, cluster, False, what_if, yes, format, parallel, audit_log)
