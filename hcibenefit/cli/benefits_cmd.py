"""`hcibenefit enable|disable`: turn Azure Benefits on or off for the selected VMs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hcibenefit.checks.verdicts import STATUS_VERDICTS
from hcibenefit.cli.common import (
    DEFAULT_PARALLEL,
    AuditOption,
    ParallelOption,
    WhatIfOption,
    YesOption,
    app_context,
    choice,
    global_options,
    selection_options,
)
from hcibenefit.cli.context import AppContext
from hcibenefit.errors import UsageError
from hcibenefit.exitcodes import ExitCode
from hcibenefit.operations.selection import Selection

if TYPE_CHECKING:
    from hcibenefit.operations.benefits import BenefitsPlan

ENABLE_EXAMPLES = """Examples:

  hcibenefit enable --vm avd-sh01                       # one VM: V1 NIC on 22H2, V2 GSI on 23H2+

  hcibenefit enable --vm 'avd-*' --what-if              # the plan and the exact calls; nothing is sent

  hcibenefit enable --cluster sea-hci01 --all-eligible --what-if -v   # also the scripts' text

  hcibenefit enable --verdict missing --yes             # every VM that needs benefits and has none
"""
DISABLE_EXAMPLES = """Examples:

  hcibenefit disable --vm old-avd-01 --what-if

  hcibenefit disable --vm old-avd-01 --yes               # its guest loses activation: say yes knowingly
"""


def confirm_changes(
    app: AppContext,
    yes: bool,
    what: Sequence[str],
    *,
    ask: bool,
    expansions: Sequence[tuple[str, Sequence[str]]] = (),
    warnings: Sequence[str] = (),
) -> bool:
    """Ask before changing when `ask` (several targets, a glob, a costly change), unless --yes.

    Without a terminal and without --yes nothing is changed: a script must say --yes knowingly.
    """
    for warning in warnings:
        app.warn_once(warning)
    if yes or not (ask or warnings):
        return True
    lines = [f"--vm {glob!r} matched: {', '.join(names) or 'nothing'}" for glob, names in expansions]
    if not sys.stdin.isatty():
        app.say("\n".join([*lines, "Would change:", *(f"  {w}" for w in what)]))
        raise UsageError(
            f"refusing to change {len(what)} target(s) without confirmation; nothing was changed",
            hint="pass --yes (or check the plan first with --what-if)",
        )
    app.say("\n".join([*lines, "About to change:", *(f"  {w}" for w in what)]))
    return typer.confirm(f"Change {len(what)} target(s)?", default=False, err=True)


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
    selection: Selection,
    what_if: bool,
    yes: bool,
    parallel: int,
    audit_log: Path | None,
    transport: str = "auto",
    force: bool = False,
) -> int:
    from hcibenefit.operations.benefits import benefits_report, run_benefits

    app = app_context(ctx)
    fmt = app.choose_format()
    transport = choice(transport, ("auto", "V1", "V2"), option="--transport")
    inventory = app.inventory()
    audit = None if what_if else open_audit(app, audit_log, action)

    def confirm(proposal: BenefitsPlan) -> bool:
        changes = [p for p in proposal.plans if p.decision == "change"]
        return confirm_changes(
            app,
            yes,
            [f"{action} {p.vm} on {p.node}: {p.reason}" for p in changes],
            ask=len(changes) > 1 or not all(selection.explicit(p.vm) for p in changes),
            expansions=proposal.expansions,
            warnings=[p.warning for p in changes if p.warning],
        )

    try:
        result = run_benefits(
            inventory,
            app.credentials(),
            action=action,
            selection=selection,
            what_if=what_if,
            transport=transport,  # type: ignore[arg-type]
            force=force,
            confirm=confirm,
            audit=audit,
            workers=parallel,
        )
    finally:
        unaudited = finish_audit(app, audit)
    app.emit(benefits_report(result, app.run_info(inventory), show_scripts=app.verbosity >= 1), fmt)
    if result.declined:
        return int(ExitCode.OK)
    return int(ExitCode.combine(findings=False, incomplete=result.incomplete or unaudited))


@global_options
@selection_options(
    verdicts=STATUS_VERDICTS,
    all_help="Every VM of the selected clusters; those that need no benefits are listed, not touched.",
)
def enable(
    ctx: typer.Context,
    selection: Selection,
    all_eligible: Annotated[
        bool,
        typer.Option(
            "--all-eligible", help="Every VM of the selected clusters that needs benefits (same as --all)."
        ),
    ] = False,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    transport: Annotated[
        str,
        typer.Option(
            "--transport",
            metavar="auto|V1|V2",
            help="auto (by platform and guest OS), V1 (guest NIC) or V2 (Guest Service Interface).",
        ),
    ] = "auto",
    force: Annotated[
        bool, typer.Option("--force", help="Enable even where the policy says it is not needed.")
    ] = False,
    parallel: ParallelOption = DEFAULT_PARALLEL,
    audit_log: AuditOption = None,
) -> int:
    """Turn on Azure Benefits for VMs: V1 guest NIC on 22H2 and legacy guests, V2 GSI on 23H2+.

    Planned first: --what-if lists every selected VM with what would be done, or why it would not be
    touched, and the exact calls (-v: with the scripts' text). Changing several VMs, or VMs picked by a
    glob, --all or --verdict, asks first (--yes skips the question; without a terminal it is required).
    """
    if all_eligible:
        selection = replace(selection, all=True)
    return _run(ctx, "enable", selection, what_if, yes, parallel, audit_log, transport, force)


@global_options
@selection_options(verdicts=STATUS_VERDICTS)
def disable(
    ctx: typer.Context,
    selection: Selection,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    parallel: ParallelOption = DEFAULT_PARALLEL,
    audit_log: AuditOption = None,
) -> int:
    """Turn off Azure Benefits for VMs: removes the guest NIC and, on 23H2+, the Guest Service Interface.

    A VM that needs benefits loses Windows activation: that is said, and asked, even for one VM.
    """
    return _run(ctx, "disable", selection, what_if, yes, parallel, audit_log)
