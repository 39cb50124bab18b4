"""`hcibenefit status`: what every node and VM looks like, in one round trip per node."""

from __future__ import annotations

from typing import Annotated

import typer

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


def status(
    ctx: typer.Context,
    cluster: ClusterOption = None,
    vm: Annotated[str | None, typer.Option("--vm", help="Only VMs whose name matches this glob.")] = None,
    format: FormatOption = None,
    fail_on: FailOnOption = "high",
    parallel: ParallelOption = 16,
) -> int:
    """Nodes (attestation, expiry, switch, vNIC, legacy OS support) and VMs with a verdict each."""
    from hcibenefit.operations.status import exit_findings, gather_status, status_report

    app = app_context(ctx)
    fmt = app.choose_format(format, ("table", "json"))
    threshold = parse_fail_on(fail_on)
    inventory = app.inventory()
    result = gather_status(
        inventory, app.credentials(), cluster_names=cluster or (), vm_glob=vm, workers=parallel
    )
    emit(app, status_report(result), fmt)
    return int(
        ExitCode.combine(
            findings=exit_findings(result.findings(), threshold), incomplete=result.assessment.incomplete
        )
    )
