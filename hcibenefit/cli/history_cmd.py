"""`hcibenefit history list|show|diff|prune`: what earlier sweeps found."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hcibenefit.cli.common import app_context, global_options
from hcibenefit.cli.context import AppContext
from hcibenefit.cli.sweep_cmd import SWEEP_FORMATS, HistoryOption, emit_document
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


def _emit_text(app: AppContext, text: str) -> None:
    from hcibenefit.cli.context import write_text

    with app.open_output() as stream:
        write_text(stream, text)


@app.command("list")
@global_options
def list_runs(
    ctx: typer.Context,
    history: HistoryOption = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="At most this many runs, newest first.")
    ] = 30,
) -> int:
    """Runs, newest first: when, which inventory, unwaived FAIL and ERROR counts, exit code.

    With --inventory, only the runs of that fleet.
    """
    app_ = app_context(ctx)
    fmt = app_.choose_format(("table", "json"))
    with _history(history) as store:
        runs = store.runs(inventory_hash=_fleet(app_), limit=limit)
    if fmt == "json":
        document = app_.with_envelope({"runs": [r.to_dict() for r in runs]})
        _emit_text(app_, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return int(ExitCode.OK)
    from hcibenefit.report import Table, columns
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

    app_.emit(Report(data=None, tables=[table]), "table")
    return int(ExitCode.OK)


@app.command("show")
@global_options
def show(
    ctx: typer.Context,
    run: Annotated[
        str, typer.Argument(metavar="[RUN]", help="Run id (see history list), latest or previous.")
    ] = "latest",
    history: HistoryOption = None,
) -> int:
    """One run, rendered as the sweep rendered it (every sweep format)."""
    from hcibenefit.operations.sweep.run import stored_document

    app_ = app_context(ctx)
    fmt = app_.choose_format(SWEEP_FORMATS)
    with _history(history) as store:
        document = stored_document(store, run, inventory_hash=_fleet(app_))
    emit_document(app_, document, fmt)
    return int(ExitCode.OK)


@app.command("diff")
@global_options
def diff(
    ctx: typer.Context,
    run_a: Annotated[
        str | None, typer.Argument(metavar="[RUN_A]", help="The earlier run (default: previous).")
    ] = None,
    run_b: Annotated[
        str | None, typer.Argument(metavar="[RUN_B]", help="The later run (default: latest).")
    ] = None,
    history: HistoryOption = None,
) -> int:
    """Problems new, resolved and changed between two runs (default: the last two of this inventory).

    Exit 1 when the later run has new problems, so a job can alert on change only.
    """
    from hcibenefit.sweep.model import compare

    app_ = app_context(ctx)
    fmt = app_.choose_format(("table", "json", "markdown"))
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
        _emit_text(app_, json.dumps(app_.with_envelope(data), ensure_ascii=False, indent=2) + "\n")
    else:
        from hcibenefit.report.sweep.common import change_lines

        lines = change_lines({**data, "previous_run": {"id": a.id, "started": a.started}}, limit=10_000)
        lines[0] = lines[0].replace("since run", f"run #{b.id} since run", 1)
        if fmt == "markdown":
            lines = [f"- {line.strip()}" for line in lines]
        _emit_text(app_, "\n".join(lines) + "\n")
    return int(ExitCode.FINDINGS if changes.new else ExitCode.OK)


@app.command("prune")
@global_options
def prune(
    ctx: typer.Context,
    keep_days: Annotated[
        int, typer.Option("--keep-days", min=0, help="Keep runs started within this many days.")
    ],
    history: HistoryOption = None,
) -> int:
    """Delete runs older than --keep-days (with their results)."""
    app_ = app_context(ctx)
    fmt = app_.choose_format(("table", "json"))
    with _history(history) as store:
        removed = store.prune(keep_days)
        left = len(store.runs())
    app_.say(f"pruned {removed} run(s) older than {keep_days} day(s); {left} left in {store.path}")
    if fmt == "json":
        document = {"history": str(store.path), "keep_days": keep_days, "removed": removed, "left": left}
        _emit_text(app_, json.dumps(app_.with_envelope(document), ensure_ascii=False, indent=2) + "\n")
    return int(ExitCode.OK)
