"""`hcibenefit scripts export DIR`: the collection scripts, for nodes WinRM cannot reach from outside."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hcibenefit.cli.common import app_context, global_options
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(help="The PowerShell scripts hcibenefit runs, for offline sites.", no_args_is_help=True)


@app.command("export")
@global_options
def export(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to write the scripts (created if missing).")
    ],
) -> int:
    """Write host-facts.ps1, the guest probe, collect.ps1 and a README; run collect.ps1 on each node, then
    `hcibenefit sweep --from-dir DIR` judges what it wrote.

    Example:

      hcibenefit scripts export ./offline && cat ./offline/README.md
    """
    from hcibenefit.operations.sweep.offline import export_scripts

    app_ = app_context(ctx)
    fmt = app_.choose_format()
    written = export_scripts(directory)
    for path in written:
        app_.say(f"wrote {path}")
    if fmt == "json":
        from hcibenefit.report import Report

        app_.emit(Report(data={"directory": str(directory), "files": [str(p) for p in written]}), fmt)
    return int(ExitCode.OK)
