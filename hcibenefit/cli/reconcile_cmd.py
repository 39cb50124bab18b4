"""`hcibenefit reconcile`: where Azure and the hosts disagree, read-only on both sides."""

from __future__ import annotations

from typing import Annotated

import typer

from hcibenefit.cli.arm_cmd import SnapshotOption
from hcibenefit.cli.common import (
    ClusterOption,
    FailOnOption,
    FormatOption,
    ParallelOption,
    app_context,
    emit,
    parse_fail_on,
)
from hcibenefit.exitcodes import ExitCode


def reconcile(
    ctx: typer.Context,
    cluster: ClusterOption = None,
    vm: Annotated[
        list[str] | None,
        typer.Option("--vm", help="Only findings about VMs whose name matches this glob (repeatable)."),
    ] = None,
    arm_snapshot: SnapshotOption = None,
    guests: Annotated[
        bool,
        typer.Option(
            "--guests",
            help="Also ask each guest that Azure has an activation state or a session host for (one guest "
            "probe per owner node) and compare.",
        ),
    ] = False,
    format: FormatOption = None,
    fail_on: FailOnOption = "high",
    parallel: ParallelOption = 16,
) -> int:
    """Compare what Azure believes with what the hosts report: clusters, nodes, VMs, sync, AVD hosts.

    Reads Azure (Resource Graph, then single ARM reads where it lags) and every node (one host-facts call
    each) at the same time; changes nothing on either side. The findings and their fixes are in
    docs/azure.md.

    \b
    Examples:
      hcibenefit reconcile                                  # every cluster of the inventory
      hcibenefit reconcile --cluster sea-hci01 -f json
      hcibenefit reconcile --arm-snapshot arm.json          # Azure from saved az graph query output
      hcibenefit lab run -- reconcile --fail-on none        # the lab's planted discrepancies
    """
    from hcibenefit.operations.azure_read import stats_line
    from hcibenefit.operations.reconcile import reconcile_report, run_reconcile
    from hcibenefit.operations.status import exit_findings, select_clusters

    app = app_context(ctx)
    fmt = app.choose_format(format, ("table", "json"))
    threshold = parse_fail_on(fail_on)
    inventory = app.inventory()
    clusters = select_clusters(inventory, cluster or ())
    result = run_reconcile(
        inventory,
        app.credentials(),
        clusters=clusters,
        all_clusters=not cluster,
        vm_globs=vm or (),
        snapshots=list(arm_snapshot or []),
        guests=guests,
        workers=parallel,
    )
    emit(app, reconcile_report(result), fmt)
    if not arm_snapshot:
        app.say(stats_line(result.read))
    return int(
        ExitCode.combine(
            findings=exit_findings(list(result.findings), threshold), incomplete=result.incomplete
        )
    )
