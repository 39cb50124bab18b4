"""`hcibenefit reconcile`: where Azure and the hosts disagree, read-only on both sides."""

from __future__ import annotations

from typing import Annotated

import typer

from hcibenefit.cli.arm_cmd import SnapshotOption
from hcibenefit.cli.common import (
    FailOnOption,
    ParallelOption,
    app_context,
    global_options,
    parse_fail_on,
    selection_options,
)
from hcibenefit.exitcodes import ExitCode
from hcibenefit.operations.selection import Selection

EXAMPLES = """Examples:

  hcibenefit reconcile                                   # every cluster of the inventory

  hcibenefit reconcile --cluster sea-hci01 -o json

  hcibenefit reconcile --vm 'avd-*' --guests             # VM findings for these VMs; ask their guests too

  hcibenefit reconcile --arm-snapshot arm.json           # Azure from saved az graph query output

  hcibenefit lab run -- reconcile --fail-on none         # the lab's planted discrepancies
"""


@global_options
@selection_options(all_help="Every VM (the default: reconcile reads them all anyway).")
def reconcile(
    ctx: typer.Context,
    selection: Selection,
    arm_snapshot: SnapshotOption = None,
    guests: Annotated[
        bool,
        typer.Option(
            "--guests",
            help="Also ask the guests Azure has an activation state or a session host for (one guest probe "
            "per owner node) and compare.",
        ),
    ] = False,
    fail_on: FailOnOption = "high",
    parallel: ParallelOption = 16,
) -> int:
    """Compare what Azure believes with what the hosts report: clusters, nodes, VMs, sync, AVD hosts.

    Reads Azure (Resource Graph, then single ARM reads where it lags) and every node (one host-facts call
    each) at the same time; changes nothing on either side. --vm narrows the VM findings; cluster and node
    findings of the selected clusters stay. The findings and their fixes are in docs/azure.md.
    """
    from hcibenefit.operations.azure_read import stats_line
    from hcibenefit.operations.reconcile import reconcile_report, run_reconcile
    from hcibenefit.operations.status import exit_findings

    app = app_context(ctx)
    fmt = app.choose_format()
    threshold = parse_fail_on(fail_on)
    inventory = app.inventory()
    clusters = selection.select_clusters(inventory)
    result = run_reconcile(
        inventory,
        app.credentials(),
        clusters=clusters,
        all_clusters=not (selection.clusters or selection.sites or selection.tags),
        vm_globs=selection.vms,
        snapshots=list(arm_snapshot or []),
        guests=guests,
        workers=parallel,
    )
    app.emit(reconcile_report(result, app.run_info(inventory)), fmt)
    if not arm_snapshot:
        app.say(stats_line(result.read))
    return int(
        ExitCode.combine(
            findings=exit_findings(list(result.findings), threshold), incomplete=result.incomplete
        )
    )
