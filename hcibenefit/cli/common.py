"""Small pieces every command uses: the app context, rendering to --output, --fail-on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hcibenefit.cli.context import AppContext
from hcibenefit.report import Report, render

if TYPE_CHECKING:
    from hcibenefit.checks.model import Severity

FormatOption = Annotated[
    str | None, typer.Option("--format", "-f", help="Output format (overrides the global --format).")
]
ClusterOption = Annotated[
    list[str] | None, typer.Option("--cluster", "-c", help="Only this cluster (repeatable).")
]
ParallelOption = Annotated[
    int, typer.Option("--parallel", min=1, max=256, help="Hosts worked at once (1 = strictly serial).")
]
FailOnOption = Annotated[
    str,
    typer.Option(
        "--fail-on",
        help="Exit 1 when a finding is at or above this severity: info, low, medium, high, critical, or none.",
    ),
]


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj


def emit(app: AppContext, report: Report, fmt: str) -> None:
    with app.open_output() as stream:
        render(report, fmt, stream)


def parse_fail_on(text: str) -> Severity | None:
    from hcibenefit.checks.model import Severity

    if text.lower() == "none":
        return None
    return Severity.parse(text)
