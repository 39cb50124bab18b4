"""`hcibenefit status`: what every node and VM looks like, in one round trip per node."""

from __future__ import annotations

import typer

from hcibenefit.checks.verdicts import NOT_ASSESSED, STATUS_VERDICTS
from hcibenefit.cli.common import (
    DEFAULT_PARALLEL,
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

  hcibenefit status                                   # the whole inventory

  hcibenefit status --cluster sea-hci01 --vm 'avd-*'   # globs are case-insensitive, like Hyper-V

  hcibenefit status --verdict missing --verdict broken --fail-on none

  hcibenefit status --site seattle -o json --output-file status.json
"""


@global_options
@selection_options(nodes=True, verdicts=(*STATUS_VERDICTS, NOT_ASSESSED))
def status(
    ctx: typer.Context,
    selection: Selection,
    fail_on: FailOnOption = "high",
    parallel: ParallelOption = DEFAULT_PARALLEL,
) -> int:
    """Nodes (attestation, expiry, switch, vNIC, legacy OS support) and VMs with a verdict each.

    Every finding is listed under the tables with the exact command that fixes it. The exit code
    counts only what was selected: with --vm or --verdict, those VMs and the nodes they run on.
    """
    from hcibenefit.cli.vmcache import remember_vms
    from hcibenefit.operations.status import gather_status

    app = app_context(ctx)
    fmt = app.choose_format()
    threshold = parse_fail_on(fail_on)
    inventory = app.inventory()
    result = gather_status(inventory, app.credentials(), selection, workers=parallel)
    remember_vms(inventory.source, [v.vm.name for v in result.assessment.vms])
    from hcibenefit.operations.status_report import status_report  # loaded while the hosts worked

    app.emit(status_report(result, app.run_info(inventory)), fmt)
    return int(ExitCode.combine(findings=result.failing(threshold), incomplete=result.incomplete))
