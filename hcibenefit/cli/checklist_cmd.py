"""`hcibenefit checklist avd`: the pre-rollout go/no-go for AVD session hosts, fit for a change ticket."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hcibenefit.cli.common import ParallelOption, app_context, global_options, selection_options
from hcibenefit.errors import UsageError
from hcibenefit.operations.selection import Selection

if TYPE_CHECKING:
    from hcibenefit.checklist.model import Checklist
    from hcibenefit.cli.context import AppContext
    from hcibenefit.inventory import Cluster, Inventory

app = typer.Typer(help="Go/no-go checklists a change board can sign.", no_args_is_help=True)

CHECKLIST_FORMATS = ("table", "markdown", "html", "json")
VM_FILE_MAX_BYTES = 2 * 1024 * 1024

AVD_EXAMPLES = """Examples:

  hcibenefit checklist avd --lab --vm 'w11ms-*'                   # try it on the built-in simulated fleet

  hcibenefit -i fleet.yaml checklist avd --vm 'avd-*' --cluster sea-hci01

  hcibenefit -i fleet.yaml checklist avd --vm-file session-hosts.txt -o markdown --output-file CHG0012345.md

  hcibenefit -i fleet.yaml checklist avd --host-pool /subscriptions/SUB/resourceGroups/rg-avd/providers/Microsoft.DesktopVirtualization/hostPools/pool01 -o html --output-file go-nogo.html

  hcibenefit -i fleet.yaml checklist avd --vm avd-sh01 --window 30 --strict -o json | jq .go
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
    parallel: ParallelOption = 16,
    lab: Annotated[
        bool, typer.Option("--lab", help="Start the built-in lab fleet in-process and check it.")
    ] = False,
) -> int:
    """Will every session host activate and stay activated? A go/no-go per VM, item by item.

    Per VM, in order: cluster release, registration and sync, Azure VM verification on the cluster and on
    every node, the IMDS switch, the VM's benefits for its guest OS, Generation and power state, data
    exchange, activation, the LicenseImdsIntegration task, IMDS and its attested document, then (with
    azure: in the inventory) the Arc resource and its guest management, the resource bridge, the AVD
    session host and its health checks, and the host pool. Each item is PASS, WARN, FAIL or N/A with its
    evidence and its fix. Formats (-o): table, markdown, html, json.

    Exit codes: 0 go (every item PASS or N/A; WARN too unless --strict), 1 no-go, 4 something could not be
    assessed, 5 both, 2 usage or configuration error (nothing checked).
    """
    from hcibenefit.cli.sweep_cmd import ProgressLine, lab_fleet
    from hcibenefit.operations.checklist.run import ChecklistRequest, run_checklist
    from hcibenefit.operations.sweep.collect import Progress

    app_ = app_context(ctx)
    fmt = app_.choose_format(CHECKLIST_FORMATS)
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
        try:
            checklist = run_checklist(inventory, resolver, request, progress=Progress(line))
        finally:
            if line is not None:
                line.clear()
    emit_checklist(app_, checklist.to_dict(), fmt)
    return exit_code(checklist)


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
