"""Small pieces every command uses: the app context, rendering to --output, --fail-on."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Annotated, TextIO

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
    buffer = io.StringIO()
    render(report, fmt, buffer)
    with app.open_output() as stream:
        write_text(stream, buffer.getvalue())


def write_text(stream: TextIO, text: str) -> None:
    """Write ``text``; characters the stream cannot encode (a host's lone surrogate, or anything outside
    a Windows code page) are written as backslash escapes instead of ending the run."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))


def parse_fail_on(text: str) -> Severity | None:
    from hcibenefit.checks.model import Severity

    if text.lower() == "none":
        return None
    return Severity.parse(text)
