"""`hcibenefit checklist avd`: the pre-rollout go/no-go for AVD session hosts, fit for a change ticket."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hcibenefit.cli.common import (
    AuditOption,
    ParallelOption,
    WhatIfOption,
    YesOption,
    app_context,
    global_options,
    selection_options,
)
from hcibenefit.errors import UsageError
from hcibenefit.operations.selection import Selection

if TYPE_CHECKING:
    from hcibenefit.checklist.model import Checklist
    from hcibenefit.cli.context import AppContext
    from hcibenefit.inventory import Cluster, CredentialResolver, Inventory

app = typer.Typer(help="Go/no-go checklists a change board can sign.", no_args_is_help=True)

CHECKLIST_FORMATS = ("table", "markdown", "html", "json")
VM_FILE_MAX_BYTES = 2 * 1024 * 1024

AVD_EXAMPLES = """Examples:

  hcibenefit checklist avd --lab --vm 'w11ms-*'                   # try it on the built-in simulated fleet

  hcibenefit -i fleet.yaml checklist avd --vm 'avd-*' --cluster sea-hci01

  hcibenefit -i fleet.yaml checklist avd --vm-file session-hosts.txt -o markdown --output-file CHG0012345.md

  hcibenefit -i fleet.yaml checklist avd --host-pool /subscriptions/SUB/resourceGroups/rg-avd/providers/Microsoft.DesktopVirtualization/hostPools/pool01 -o html --output-file go-nogo.html

  hcibenefit -i fleet.yaml checklist avd --vm avd-sh01 --window 30 --strict -o json | jq .go

  hcibenefit -i fleet.yaml checklist avd --vm 'avd-*' --fix --what-if      # what hcibenefit would fix, in order

  hcibenefit -i fleet.yaml checklist avd --vm 'avd-*' --fix --yes          # fix it, then check again: before and after
"""


def read_vm_file(path: Path) -> tuple[str, ...]:
    """VM names or globs, one a line; blank lines and lines starting with # are ignored."""
    try:
        with path.open("rb") as stream:
            data = stream.read(VM_FILE_MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"--vm-file {path}: no such file; nothing was checked") from None
    except OSError as exc:
        raise UsageError(
            f"--vm-file {path}: cannot read it: {exc.strerror or exc}; nothing was checked"
        ) from None
    if len(data) > VM_FILE_MAX_BYTES:
        raise UsageError(f"--vm-file {path}: larger than 2 MiB; a list of VM names is a few KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text; nothing was checked") from None
    from hcibenefit.yamlschema import control_character

    names: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        name = raw.strip()
        if not name or name.startswith("#"):
            continue
        bad = control_character(name)
        if bad is not None:
            raise UsageError(
                f"{path}:{number}: a VM name with a control character ({bad}); nothing was checked"
            )
        names.append(name)
    if not names:
        raise UsageError(
            f"--vm-file {path}: no VM names in it; nothing was checked",
            hint="one name or glob per line; lines starting with # are comments",
        )
    return tuple(names)


@app.command("avd", epilog=AVD_EXAMPLES)
@global_options
@selection_options(all_help="Every VM of the selected clusters (rather than named session hosts).")
def avd(
    ctx: typer.Context,
    selection: Selection,
    vm_file: Annotated[
        Path | None,
        typer.Option("--vm-file", metavar="FILE", help="VM names or globs, one a line (# comments)."),
    ] = None,
    host_pool: Annotated[
        str | None,
        typer.Option(
            "--host-pool",
            metavar="ARM_ID",
            help="Every session host of this AVD host pool, mapped through its Arc machine (needs azure:).",
        ),
    ] = None,
    window: Annotated[
        int,
        typer.Option(
            "--window",
            metavar="DAYS",
            min=1,
            max=365,
            help="Nothing may expire or fall out of policy within this many days.",
        ),
    ] = 14,
    strict: Annotated[bool, typer.Option("--strict", help="A WARN is a no-go too.")] = False,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Fix what hcibenefit can (host sync/enable, enable, guest kick), then check again.",
        ),
    ] = False,
    what_if: WhatIfOption = False,
    yes: YesOption = False,
    audit_log: AuditOption = None,
    parallel: ParallelOption = 16,
    lab: Annotated[
        bool, typer.Option("--lab", help="Start the built-in lab fleet in-process and check it.")
    ] = False,
) -> int:
    """Will every session host activate and stay activated? A go/no-go per VM, item by item.

    Per VM, in order: cluster release, registration and sync, Azure VM verification on the cluster and on
    every node, the IMDS switch, the VM's benefits for its guest OS, Generation and power state, data
    exchange, the guest's cumulative update, activation, the LicenseImdsIntegration task, IMDS and its
    attested document, the guest's clock, then (with azure: in the inventory) the Arc resource and its
    guest management, the resource bridge, the AVD agent's registration, the session host and its health
    checks, and the host pool. Each item is PASS, WARN, FAIL or N/A with its
    evidence and its fix. Formats (-o): table, markdown, html, json.

    --fix --what-if prints the plan for every failing item hcibenefit can fix, in order (host sync or enable,
    then enable, then guest kick, each with what it would send), and the items it cannot fix with who must
    act. --fix carries it out through those commands (same confirmation, audit log and verification; --yes
    skips the question), then runs the checklist again and shows each item before and after.

    Exit codes: 0 go (every item PASS or N/A; WARN too unless --strict), 1 no-go, 4 something could not be
    assessed (or a fix could not be made or verified), 5 both, 2 usage or configuration error (nothing
    checked or changed).
    """
    from hcibenefit.cli.sweep_cmd import ProgressLine, lab_fleet
    from hcibenefit.operations.checklist.run import ChecklistRequest, run_checklist
    from hcibenefit.operations.sweep.collect import Progress

    app_ = app_context(ctx)
    fmt = app_.choose_format(CHECKLIST_FORMATS)
    if (what_if or yes) and not fix:
        raise UsageError(
            "--what-if and --yes go with --fix; nothing was checked",
            hint="checklist avd ... --fix --what-if shows what would be fixed",
        )
    app_.check_output()
    names = list(selection.vms)
    if vm_file is not None:
        names += read_vm_file(vm_file)
    if not names and selection.all and not host_pool:
        names = ["*"]
    with contextlib.ExitStack() as stack:
        if lab:
            inventory, resolver = stack.enter_context(lab_fleet(app_))
        else:
            inventory, resolver = app_.inventory(), app_.credentials()
        clusters = tuple(c.name for c in _clusters(selection, inventory))
        request = ChecklistRequest(
            vms=tuple(names),
            host_pool=host_pool,
            clusters=clusters,
            window_days=window,
            strict=strict,
            workers=parallel,
            vm_file=str(vm_file) if vm_file else None,
        )
        line = ProgressLine(app_.stderr) if (not app_.quiet and _is_terminal(app_.stderr)) else None

        def check() -> Checklist:
            try:
                return run_checklist(inventory, resolver, request, progress=Progress(line))
            finally:
                if line is not None:
                    line.clear()

        checklist = check()
        if not fix:
            emit_checklist(app_, checklist.to_dict(), fmt)
            return exit_code(checklist)
        return _fix(app_, inventory, resolver, checklist, check, fmt, what_if, yes, audit_log, parallel)


def _fix(
    app: AppContext,
    inventory: Inventory,
    resolver: CredentialResolver,
    before: Checklist,
    check: Callable[[], Checklist],
    fmt: str,
    what_if: bool,
    yes: bool,
    audit_log: Path | None,
    parallel: int,
) -> int:
    """Plan the fixes; --what-if shows the plan, otherwise run it step by step, then check again."""
    from hcibenefit.cli.benefits_cmd import confirm_changes, finish_audit, open_audit
    from hcibenefit.exitcodes import ExitCode
    from hcibenefit.operations.checklist.fix import fix_document, plan_fixes, run_fixes

    plan = plan_fixes(before)
    if what_if or plan.empty:
        records = run_fixes(inventory, resolver, plan, what_if=True, confirm=lambda *_: False, audit=None)
        document = before.to_dict()
        document["fix"] = fix_document(plan, records, what_if=True, after=None)
        emit_checklist(app, document, fmt)
        return exit_code(before)
    audit = open_audit(app, audit_log, "checklist avd --fix")
    try:
        records = run_fixes(
            inventory,
            resolver,
            plan,
            what_if=False,
            # Targets the checklist picked, not ones the user named: asked like --verdict's, unless --yes.
            confirm=lambda _step, what: confirm_changes(app, yes, list(what), ask=True),
            audit=audit,
            workers=parallel,
        )
    finally:
        unaudited = finish_audit(app, audit)
    after = check()
    document = after.to_dict()
    document["before"] = before.to_dict()
    document["fix"] = fix_document(plan, records, what_if=False, after=after)
    emit_checklist(app, document, fmt)
    code = exit_code(after)
    if unaudited or any(r.incomplete for r in records):
        code |= int(ExitCode.INCOMPLETE)
    return code


def _clusters(selection: Selection, inventory: Inventory) -> list[Cluster]:
    """--cluster, --site and --tag narrow the clusters; without them every cluster of the inventory."""
    if not (selection.clusters or selection.sites or selection.tags):
        return []
    narrowed = Selection(clusters=selection.clusters, sites=selection.sites, tags=selection.tags)
    return narrowed.select_clusters(inventory, nothing_done="nothing was checked")


def exit_code(checklist: Checklist) -> int:
    from hcibenefit.exitcodes import ExitCode

    if checklist.go:
        return int(ExitCode.OK)
    code = ExitCode.combine(findings=checklist.findings, incomplete=checklist.not_assessed)
    return int(code) if code else int(ExitCode.FINDINGS)


def emit_checklist(app: AppContext, document: dict[str, object], fmt: str) -> None:
    """Render whole, then write (a failure while rendering leaves no half report)."""
    from hcibenefit.report.checklist import render

    app.emit_document(document, fmt, render)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
