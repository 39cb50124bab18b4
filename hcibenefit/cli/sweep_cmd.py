"""`hcibenefit sweep`: the nightly compliance run. Every check on every node, VM and guest, with waivers,
history and reports in every format."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from hcibenefit.cli.common import (
    DEFAULT_PARALLEL,
    FailOnOption,
    ParallelOption,
    app_context,
    global_options,
    parse_fail_on,
    selection_options,
)
from hcibenefit.cli.context import AppContext
from hcibenefit.errors import UsageError
from hcibenefit.operations.selection import Selection

if TYPE_CHECKING:
    from hcibenefit.checks.model import Severity
    from hcibenefit.inventory import CredentialResolver, Inventory
    from hcibenefit.operations.sweep.collect import Progress
    from hcibenefit.operations.sweep.run import SweepRequest

SWEEP_FORMATS = ("table", "json", "csv", "markdown", "html", "junit")

HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history",
        metavar="FILE",
        envvar="HCIBENEFIT_HISTORY",
        help="History database (SQLite). Default: the user's data directory.",
    ),
]
NoHistoryOption = Annotated[bool, typer.Option("--no-history", help="Neither read nor write history.")]

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_duration(text: str) -> float:
    """90, 90s, 30m, 2h, 1h30m -> seconds."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise UsageError(f"--deadline {text!r} is not a duration", hint="for example 45m, 2h, 1h30m or 600s")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UsageError("--deadline must be longer than zero")
    return float(total)


class ProgressLine:
    """`sweep: nodes 4/6 · guests 9/12 · 1 node failed` on stderr, redrawn in place, at most 10 times a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = 0.0
        self._lock = threading.Lock()
        self._shown = False

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < 0.1 and p.nodes_done < p.nodes_total:
                return
            self._last = now
            failed = []
            if p.nodes_failed:
                failed.append(f"{p.nodes_failed} node(s) not reached")
            if p.guests_failed:
                failed.append(f"{p.guests_failed} guest(s) not asked")
            line = f"sweep: nodes {p.nodes_done}/{p.nodes_total} · guests {p.guests_done}/{p.guests_total}"
            if failed:
                line += " · " + ", ".join(failed)
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: width - 1].ljust(min(width - 1, 100)))
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                width = shutil.get_terminal_size((100, 20)).columns
                self.stream.write("\r" + " " * min(width - 1, 100) + "\r")
                self.stream.flush()


def history_path(history: Path | None, no_history: bool) -> Path | None:
    if no_history:
        return None
    if history is not None:
        return history
    from hcibenefit.sweep.history import default_path

    return default_path()


def lab_waivers() -> Path:
    """The built-in fleet's waivers: its two guests planted to be unassessable (see the file)."""
    from importlib.resources import files

    return Path(str(files("hcibenefit.lab").joinpath("fleets", "default-waivers.yaml")))


@contextlib.contextmanager
def lab_fleet(app: AppContext) -> Iterator[tuple[Inventory, CredentialResolver]]:
    """The built-in lab fleet, started in-process on loopback, with its inventory and credentials."""
    from hcibenefit.inventory import CredentialResolver, load_inventory
    from hcibenefit.lab.fleet import Lab
    from hcibenefit.lab.spec import default_fleet

    spec = default_fleet()
    app.say(
        f"lab: starting the built-in fleet ({spec.node_count()} nodes, {spec.vm_count()} VMs) on loopback"
    )
    with Lab(spec) as lab:
        path = lab.write_inventory(lab.workdir / "inventory.yaml")
        # The lab's secrets live in the environment for as long as it runs, as `lab run` does it: the host
        # and guest passwords for the inventory's password_env, the ARM token for its azure: section.
        saved = {name: os.environ.get(name) for name in lab.environment()}
        os.environ.update(lab.environment())
        try:
            resolver = CredentialResolver(ask_pass=app.ask_pass)
            yield load_inventory(path), resolver
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@global_options
@selection_options(nodes=True, all_help="Every VM of the selected clusters (what a sweep does anyway).")
def sweep(
    ctx: typer.Context,
    selection: Selection,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            metavar="DIR",
            help="Also write every format into DIR under dated names (and *-latest).",
        ),
    ] = None,
    parallel: ParallelOption = DEFAULT_PARALLEL,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            metavar="DURATION",
            help="Stop after this long (45m, 2h); what is not done is reported not assessed.",
        ),
    ] = None,
    fail_on: FailOnOption = "medium",
    waivers: Annotated[
        Path | None,
        typer.Option(
            "--waivers", metavar="FILE", help="Waivers file (YAML); default: the inventory's policy.waivers."
        ),
    ] = None,
    history: HistoryOption = None,
    no_history: NoHistoryOption = False,
    from_dir: Annotated[
        Path | None,
        typer.Option(
            "--from-dir",
            metavar="DIR",
            help="Judge files written by `scripts export`'s collect.ps1 instead of connecting.",
        ),
    ] = None,
    lab: Annotated[
        bool,
        typer.Option(
            "--lab", help="Start the built-in lab fleet in-process and sweep it (no cluster needed)."
        ),
    ] = False,
    publish: Annotated[
        list[str] | None,
        typer.Option(
            "--publish",
            metavar="DEST",
            help="Also send the results to DEST: azure-monitor (the inventory's azure_monitor: section). "
            "A run that cannot be sent stays in history and goes with the next run.",
        ),
    ] = None,
) -> int:
    """Is every VM that needs Azure Benefits activated, and will it stay so?

    Host facts from every selected node (one call each), the guest probe for every running VM that needs
    benefits (in the same session), every check with PASS, FAIL, ERROR (not assessed, and why) or N/A,
    waivers applied, stored in history and compared with the previous run. Formats (-o): table, json,
    csv, markdown, html, junit.

    Examples:

      hcibenefit sweep --lab                                  # try it: the built-in simulated fleet

      hcibenefit -i fleet.yaml sweep --deadline 45m --report-dir /srv/reports

      hcibenefit -i fleet.yaml sweep -c sea-hci01 -o junit --output-file sweep.xml

      hcibenefit -i fleet.yaml sweep -o json | jq '.findings[] | select(.status=="FAIL")'

      hcibenefit -i fleet.yaml sweep --publish azure-monitor   # also to Log Analytics (docs/azure-monitor.md)

    Exit codes: 0 compliant, 1 unwaived findings at or above --fail-on, 4 something not assessed,
    5 both, 2 usage or configuration error (nothing done), 130 interrupted.
    """
    from hcibenefit.exitcodes import ExitCode

    app = app_context(ctx)
    fmt = app.choose_format(SWEEP_FORMATS)
    app.check_output()
    threshold = parse_fail_on(fail_on)
    deadline_s = parse_duration(deadline) if deadline else None
    if lab and from_dir is not None:
        raise UsageError("--lab and --from-dir exclude each other")
    with contextlib.ExitStack() as stack:
        if lab:
            inventory, resolver = stack.enter_context(lab_fleet(app))
        elif from_dir is not None and app.inventory_path is None:
            from hcibenefit.inventory import parse_inventory
            from hcibenefit.operations.sweep.offline import inventory_from_dir

            inventory = parse_inventory(inventory_from_dir(from_dir), str(from_dir / "(folders)"))
            resolver = app.credentials()
        else:
            inventory, resolver = app.inventory(), app.credentials()
        if lab and waivers is None:
            waivers = lab_waivers()
        request = _request(
            inventory,
            selection,
            parallel,
            deadline,
            deadline_s,
            threshold,
            waivers,
            history,
            no_history,
            from_dir,
            tuple(dict.fromkeys(publish or ())),
        )
        code = _run(app, inventory, resolver, fmt, request, report_dir)
    if lab and fmt == "table":
        app.say(
            "next: hcibenefit sweep --lab -o html --output-file sweep.html (the report for people); "
            "run it again, then hcibenefit history diff; docs/sweep.md and docs/scheduling.md for a real fleet"
        )
    return int(ExitCode(code))


def _request(
    inventory: Inventory,
    selection: Selection,
    parallel: int,
    deadline: str | None,
    deadline_s: float | None,
    threshold: Severity | None,
    waivers: Path | None,
    history: Path | None,
    no_history: bool,
    from_dir: Path | None,
    publish: tuple[str, ...] = (),
) -> SweepRequest:
    from hcibenefit.operations.sweep.collect import Scope
    from hcibenefit.operations.sweep.run import SweepRequest

    nothing = "nothing was sent"
    clusters = selection.select_clusters(inventory, nothing_done=nothing)
    nodes = tuple(selection.select_nodes(clusters, nothing_done=nothing)) if selection.nodes else ()
    return SweepRequest(
        scope=Scope(tuple(clusters), nodes, selection, inventory.policy.exclusion),
        workers=parallel,
        deadline_s=deadline_s,
        deadline_text=deadline,
        fail_on=threshold,
        waivers_path=waivers,
        history_path=history_path(history, no_history),
        from_dir=from_dir,
        publish=publish,
    )


def _run(
    app: AppContext,
    inventory: Inventory,
    resolver: CredentialResolver,
    fmt: str,
    request: SweepRequest,
    report_dir: Path | None,
) -> int:
    from hcibenefit.operations.sweep.collect import Progress
    from hcibenefit.operations.sweep.run import run_sweep

    line = ProgressLine(app.stderr) if (not app.quiet and _is_terminal(app.stderr)) else None
    progress = Progress(line)
    try:
        outcome = run_sweep(inventory, resolver, request, progress=progress)
    finally:
        if line is not None:
            line.clear()
    for note in outcome.notes:
        app.say(f"! {note}")
    if report_dir is not None:
        for path in write_report_dir(outcome.document, report_dir):
            app.say(f"wrote {path}")
    emit_document(app, outcome.document, fmt)
    return int(outcome.exit_code)


def emit_document(app: AppContext, document: dict[str, Any], fmt: str) -> None:
    """Render a sweep document whole, then write it (a failure while rendering leaves no half report)."""
    from hcibenefit.report.sweep import render

    app.emit_document(document, fmt, render)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def write_report_dir(document: dict[str, Any], directory: Path) -> list[Path]:
    """Every format under `hcibenefit-sweep-<UTC start>.<ext>`, plus `hcibenefit-sweep-latest.<ext>`;
    each file is written to a temporary name first, so a share never serves half a report."""
    import datetime as dt
    import io

    from hcibenefit.report.sweep import EXTENSIONS, render

    started = dt.datetime.fromisoformat(document["run"]["started"]).astimezone(dt.timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for fmt, ext in EXTENSIONS.items():
            buffer = io.StringIO()
            render(document, fmt, buffer, None)
            text = buffer.getvalue()
            for name in (f"hcibenefit-sweep-{stamp}.{ext}", f"hcibenefit-sweep-latest.{ext}"):
                path = directory / name
                partial = directory / f".{name}.partial"
                partial.write_text(text, encoding="utf-8", newline="\n")
                partial.replace(path)
                if "latest" not in name:
                    written.append(path)
    except OSError as exc:
        raise UsageError(f"cannot write reports to {directory}: {exc.strerror or exc}") from None
    return written
