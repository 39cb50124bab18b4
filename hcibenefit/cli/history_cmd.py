"""`hcibenefit history list|show|diff|prune`: what earlier sweeps found."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hcibenefit.cli.common import app_context
from hcibenefit.cli.context import AppContext
from hcibenefit.cli.sweep_cmd import (
    HistoryOption,
    OutputFileOption,
    OutputFormatOption,
    _is_terminal,
    _open,
    choose_format,
)
from hcibenefit.errors import UsageError
from hcibenefit.exitcodes import ExitCode

if TYPE_CHECKING:
    from hcibenefit.sweep.history import History

app = typer.Typer(
    help="Earlier sweeps: list them, show one, compare two, prune old ones.", no_args_is_help=True
)


def _history(path: Any) -> History:
    from hcibenefit.sweep.history import History, default_path

    chosen = path or default_path()
    if not chosen.exists():
        raise UsageError(
            f"no sweep history at {chosen}", hint="run `hcibenefit sweep` first, or pass --history PATH"
        )
    return History(chosen)


def _fleet(app: AppContext) -> str | None:
    """This inventory's fleet hash, when an inventory is given (runs of other fleets are not compared)."""
    if app.inventory_path is None:
        return None
    from hcibenefit.operations.sweep.run import fleet_hash

    return fleet_hash(app.inventory())


def _emit_json(app: AppContext, data: Any, output_file: Any) -> None:
    with _open(app, output_file) as stream:
        stream.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@app.command("list")
def list_runs(
    ctx: typer.Context,
    history: HistoryOption = None,
    output: OutputFormatOption = None,
    output_file: OutputFileOption = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs, newest first.")] = 30,
) -> int:
    """Runs, newest first: when, which inventory, unwaived FAIL and ERROR counts, exit code.

    With --inventory, only the runs of that fleet.
    """
    app_ = app_context(ctx)
    fmt = choose_format(app_, output)
    if fmt not in ("table", "json"):
        raise UsageError(f"history list prints table or json, not {fmt}")
    with _history(history) as store:
        runs = store.runs(inventory_hash=_fleet(app_), limit=limit)
    if fmt == "json":
        _emit_json(app_, [r.to_dict() for r in runs], output_file)
        return int(ExitCode.OK)
    from hcibenefit.report import Table, columns, render
    from hcibenefit.report.sweep.common import when

    rows = [
        {
            **r.to_dict(),
            "started": when(r.started),
            "selection": ", ".join(f"{k}={'+'.join(v)}" for k, v in r.to_dict()["selection"].items() if v)
            or "all",
        }
        for r in runs
    ]
    table = Table(
        "",
        columns(
            ("id", "RUN"),
            ("started", "STARTED"),
            ("FAIL", "FAIL"),
            ("ERROR", "ERROR"),
            ("waived", "WAIVED"),
            ("results", "RESULTS"),
            ("exit_code", "EXIT"),
            ("selection", "SELECTION"),
            ("inventory", "INVENTORY"),
        ),
        rows,
    )
    from hcibenefit.report.model import Report

    with _open(app_, output_file) as stream:
        render(Report(data=None, tables=[table]), "table", stream)
    return int(ExitCode.OK)


@app.command("show")
def show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="Run id (see history list), latest or previous.")] = "latest",
    history: HistoryOption = None,
    output: OutputFormatOption = None,
    output_file: OutputFileOption = None,
) -> int:
    """One run, rendered as the sweep rendered it (every sweep format)."""
    from hcibenefit.operations.sweep.run import stored_document
    from hcibenefit.report.sweep import render

    app_ = app_context(ctx)
    fmt = choose_format(app_, output)
    with _history(history) as store:
        document = stored_document(store, run, inventory_hash=_fleet(app_))
    with _open(app_, output_file) as stream:
        import shutil

        width = shutil.get_terminal_size().columns if output_file is None and _is_terminal(stream) else None
        render(document, fmt, stream, width)
    return int(ExitCode.OK)


@app.command("diff")
def diff(
    ctx: typer.Context,
    run_a: Annotated[str | None, typer.Argument(help="The earlier run (default: previous).")] = None,
    run_b: Annotated[str | None, typer.Argument(help="The later run (default: latest).")] = None,
    history: HistoryOption = None,
    output: OutputFormatOption = None,
    output_file: OutputFileOption = None,
) -> int:
    """Problems new, resolved and changed between two runs (default: the last two of this inventory).

    Exit 1 when the later run has new problems, so a job can alert on change only.
    """
    from hcibenefit.sweep.model import compare

    app_ = app_context(ctx)
    fmt = choose_format(app_, output)
    if fmt not in ("table", "json", "markdown"):
        raise UsageError(f"history diff prints table, json or markdown, not {fmt}")
    fleet = _fleet(app_)
    with _history(history) as store:
        b = store.run(run_b or "latest", inventory_hash=fleet)
        if run_a is None:
            previous = store.previous(inventory_hash=b.inventory_hash, scope=b.scope, before_id=b.id)
            if previous is None:
                raise UsageError(
                    f"run {b.id} has no earlier run of the same inventory and selection to compare with"
                )
            a = previous
        else:
            a = store.run(run_a, inventory_hash=fleet)
        changes = compare(store.records(a.id), store.records(b.id))
    data = {"from": a.to_dict(), "to": b.to_dict(), **changes.to_dict({"id": a.id, "started": a.started})}
    data.pop("previous_run")
    if fmt == "json":
        _emit_json(app_, data, output_file)
    else:
        from hcibenefit.report.sweep.common import change_lines

        lines = change_lines({**data, "previous_run": {"id": a.id, "started": a.started}}, limit=10_000)
        lines[0] = lines[0].replace("since run", f"run #{b.id} since run", 1)
        with _open(app_, output_file) as stream:
            prefix = "- " if fmt == "markdown" else ""
            stream.write(
                "\n".join(prefix + line.strip() if fmt == "markdown" else line for line in lines) + "\n"
            )
    return int(ExitCode.FINDINGS if changes.new else ExitCode.OK)


@app.command("prune")
def prune(
    ctx: typer.Context,
    keep_days: Annotated[
        int, typer.Option("--keep-days", min=0, help="Keep runs started within this many days.")
    ],
    history: HistoryOption = None,
) -> int:
    """Delete runs older than --keep-days (with their results)."""
    app_ = app_context(ctx)
    with _history(history) as store:
        removed = store.prune(keep_days)
        left = len(store.runs())
    app_.say(f"pruned {removed} run(s) older than {keep_days} day(s); {left} left in {store.path}")
    return int(ExitCode.OK)
