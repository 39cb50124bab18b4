"""Options every command shares, defined once: the global options, the selection, and the small ones.

Two decorators put them on a command, so a new command gets them by writing one line each:

    @app.command("check")
    @global_options                      # -i, -o/--output (-f/--format), --output-file, -v, -q, --ask-pass, --wide
    @selection_options(verdicts=GUEST_VERDICTS)   # --vm, --cluster, --site, --tag, --all, --verdict
    def check(ctx: typer.Context, selection: Selection, parallel: ParallelOption = 16) -> int: ...

Global options are accepted before or after the subcommand (`hcibenefit -o json status` and
`hcibenefit status -o json`); given after it, they win. Repeatable options accumulate. Enum-valued
options are case-insensitive.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from hcibenefit.cli.context import AppContext

if TYPE_CHECKING:
    from hcibenefit.checks.model import Severity
    from hcibenefit.report import Report

F = TypeVar("F", bound=Callable[..., Any])
GLOBAL_PANEL = "Global options (before or after the command)"
SELECT_PANEL = "Selection"

# --- completion: names from the inventory (and the VMs seen by the last status run) ----------------


def _inventory_for_completion(ctx: typer.Context) -> Any:
    import os

    path = None
    probe: Any = ctx
    while probe is not None and path is None:
        params = getattr(probe, "params", {}) or {}
        path = params.get("global_inventory") or params.get("inventory")
        probe = probe.parent
    path = path or os.environ.get("HCIBENEFIT_INVENTORY")
    if not path:
        return None
    try:
        from hcibenefit.inventory import load_inventory

        return load_inventory(Path(path))
    except Exception:  # completion must never print a traceback into the user's shell
        return None


def _completions(names: Sequence[str], incomplete: str) -> list[str]:
    folded = incomplete.casefold()
    return sorted({n for n in names if n.casefold().startswith(folded)})


def complete_cluster(ctx: typer.Context, incomplete: str) -> list[str]:
    inventory = _inventory_for_completion(ctx)
    return _completions([c.name for c in inventory.clusters] if inventory else [], incomplete)


def complete_node(ctx: typer.Context, incomplete: str) -> list[str]:
    inventory = _inventory_for_completion(ctx)
    return _completions([n.name for n in inventory.all_nodes()] if inventory else [], incomplete)


def complete_site(ctx: typer.Context, incomplete: str) -> list[str]:
    inventory = _inventory_for_completion(ctx)
    return _completions([c.site for c in inventory.clusters if c.site] if inventory else [], incomplete)


def complete_tag(ctx: typer.Context, incomplete: str) -> list[str]:
    inventory = _inventory_for_completion(ctx)
    return _completions([t for c in inventory.clusters for t in c.tags] if inventory else [], incomplete)


def complete_vm(ctx: typer.Context, incomplete: str) -> list[str]:
    """VMs named in the inventory (clusters[].guests.vms) and those the last `status` run saw."""
    inventory = _inventory_for_completion(ctx)
    if inventory is None:
        return []
    from hcibenefit.cli.vmcache import remembered_vms

    named = [vm.name for c in inventory.clusters for vm in c.guests.vms]
    return _completions(named + remembered_vms(inventory.source), incomplete)


def complete_format(incomplete: str) -> list[str]:
    return _completions(["table", "json"], incomplete)


# --- global options ------------------------------------------------------------------------------

InventoryOption = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        "-i",
        metavar="FILE",
        help="Inventory file (YAML) [env: HCIBENEFIT_INVENTORY].",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
OutputOption = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        "--format",
        "-f",
        metavar="FORMAT",
        help="Output format: table or json, as az -o [env: HCIBENEFIT_OUTPUT].",
        autocompletion=complete_format,
        rich_help_panel=GLOBAL_PANEL,
    ),
]
OutputFileOption = Annotated[
    Path | None,
    typer.Option(
        "--output-file",
        metavar="PATH",
        help="Write the report to PATH (whole or not at all) instead of stdout.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose", "-v", count=True, help="More detail (-vv: debug).", rich_help_panel=GLOBAL_PANEL
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only errors on stderr.", rich_help_panel=GLOBAL_PANEL)
]
AskPassOption = Annotated[
    bool,
    typer.Option(
        "--ask-pass",
        help="Prompt once per user name for passwords instead of the inventory's source.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
WideOption = Annotated[
    bool,
    typer.Option(
        "--wide", help="Tables with every column and nothing wrapped.", rich_help_panel=GLOBAL_PANEL
    ),
]


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# Names with a prefix so that they never collide with a command's own parameters.
_GLOBAL_PARAMETERS = (
    _keyword("global_inventory", InventoryOption, None),
    _keyword("global_output", OutputOption, None),
    _keyword("global_output_file", OutputFileOption, None),
    _keyword("global_verbose", VerboseOption, 0),
    _keyword("global_quiet", QuietOption, False),
    _keyword("global_ask_pass", AskPassOption, False),
    _keyword("global_wide", WideOption, False),
)


def apply_global_options(app: AppContext, values: dict[str, Any]) -> None:
    """Fold the global options given to a command (after the subcommand) into the context."""
    if values.get("global_inventory") is not None:
        app.inventory_path = values["global_inventory"]
    if values.get("global_output") is not None:
        app.format = values["global_output"]
    if values.get("global_output_file") is not None:
        app.output_file = values["global_output_file"]
    app.verbosity += values.get("global_verbose") or 0
    app.quiet = app.quiet or bool(values.get("global_quiet"))
    app.ask_pass = app.ask_pass or bool(values.get("global_ask_pass"))
    app.wide = app.wide or bool(values.get("global_wide"))


def _extend(
    func: Callable[..., Any],
    *,
    drop: Sequence[str],
    add: Sequence[inspect.Parameter],
    before: Callable[[typer.Context, dict[str, Any], dict[str, Any]], None],
) -> Callable[..., Any]:
    """A wrapper whose signature (what typer reads) has `add` instead of `drop`; `before` turns the added
    values into what the command expects, in place in its keyword arguments."""
    hints = typing.get_type_hints(func, include_extras=True)
    signature = inspect.signature(func)
    kept = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    kept = [p for p in kept if p.name not in drop]
    added_names = [p.name for p in add]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs["ctx"] if "ctx" in kwargs else args[0]
        extra = {name: kwargs.pop(name) for name in added_names if name in kwargs}
        before(ctx, extra, kwargs)
        return func(*args, **kwargs)

    positional = [p for p in kept if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keyword = [p for p in kept if p.kind is inspect.Parameter.KEYWORD_ONLY]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*positional, *keyword, *add]
    )
    wrapper.__annotations__ = {
        **{k: v for k, v in hints.items() if k not in drop},
        **{p.name: p.annotation for p in add},
    }
    return wrapper


def global_options(func: F) -> F:
    """Put the global options on a command too, so they work after the subcommand as well."""

    def before(ctx: typer.Context, extra: dict[str, Any], kwargs: dict[str, Any]) -> None:
        app = app_context(ctx)
        apply_global_options(app, extra)
        app.command = " ".join(ctx.command_path.split()[1:])
        from hcibenefit.cli.context import configure_logging

        configure_logging(app.verbosity, app.quiet)

    return typing.cast(F, _extend(func, drop=(), add=_GLOBAL_PARAMETERS, before=before))


# --- selection -----------------------------------------------------------------------------------

VMOption = Annotated[
    list[str] | None,
    typer.Option(
        "--vm",
        metavar="NAME|GLOB",
        help="VM name or glob ('avd-*'), case-insensitive (repeatable).",
        autocompletion=complete_vm,
        rich_help_panel=SELECT_PANEL,
    ),
]
ClusterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--cluster",
        "-c",
        metavar="NAME|GLOB",
        help="Only this cluster (repeatable).",
        autocompletion=complete_cluster,
        rich_help_panel=SELECT_PANEL,
    ),
]
SiteOption = Annotated[
    list[str] | None,
    typer.Option(
        "--site",
        metavar="SITE",
        help="Only clusters of this inventory site (repeatable).",
        autocompletion=complete_site,
        rich_help_panel=SELECT_PANEL,
    ),
]
TagOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        metavar="TAG",
        help="Only clusters with this inventory tag (repeatable).",
        autocompletion=complete_tag,
        rich_help_panel=SELECT_PANEL,
    ),
]
NodeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--node",
        metavar="NAME|GLOB",
        help="Only this node (repeatable).",
        autocompletion=complete_node,
        rich_help_panel=SELECT_PANEL,
    ),
]
AllOption = Annotated[
    bool,
    typer.Option("--all", help="Every VM of the selected clusters.", rich_help_panel=SELECT_PANEL),
]


def _verdict_option(allowed: Sequence[str]) -> Any:
    def complete(incomplete: str) -> list[str]:
        return _completions(list(allowed), incomplete)

    return Annotated[
        list[str] | None,
        typer.Option(
            "--verdict",
            metavar="VERDICT",
            help=f"Only VMs with this verdict (repeatable): {', '.join(allowed)}.",
            autocompletion=complete,
            rich_help_panel=SELECT_PANEL,
        ),
    ]


def selection_options(
    *, vms: bool = True, nodes: bool = False, all_help: str | None = None, verdicts: Sequence[str] = ()
) -> Callable[[F], F]:
    """Put the selection options on a command; it receives them as one `selection: Selection` argument.

    `vms`: --vm and --all (VM commands); `nodes`: --node (host commands); `verdicts`: the words --verdict
    accepts (case-insensitive), none for commands without a verdict filter.
    """
    add = [
        _keyword("select_cluster", ClusterOption, None),
        _keyword("select_site", SiteOption, None),
        _keyword("select_tag", TagOption, None),
    ]
    if vms:
        add.insert(0, _keyword("select_vm", VMOption, None))
    if nodes:
        add.append(_keyword("select_node", NodeOption, None))
    all_option: Any = AllOption
    if all_help is not None:
        all_option = Annotated[bool, typer.Option("--all", help=all_help, rich_help_panel=SELECT_PANEL)]
    add.append(_keyword("select_all", all_option, False))
    if verdicts:
        add.append(_keyword("select_verdict", _verdict_option(verdicts), None))

    def decorate(func: F) -> F:
        def before(ctx: typer.Context, extra: dict[str, Any], kwargs: dict[str, Any]) -> None:
            from hcibenefit.operations.selection import Selection

            selection = Selection(
                vms=tuple(extra.get("select_vm") or ()),
                clusters=tuple(extra.get("select_cluster") or ()),
                sites=tuple(extra.get("select_site") or ()),
                tags=tuple(extra.get("select_tag") or ()),
                nodes=tuple(extra.get("select_node") or ()),
                all=bool(extra.get("select_all")),
                verdicts=tuple(extra.get("select_verdict") or ()),
            )
            if verdicts:
                selection.check_verdicts(verdicts, command=" ".join(ctx.command_path.split()[1:]))
            kwargs["selection"] = selection

        return typing.cast(F, _extend(func, drop=("selection",), add=add, before=before))

    return decorate


# --- small shared options ------------------------------------------------------------------------

DEFAULT_PARALLEL = 128
"""The default cap on hosts worked at once; the run widens up to it only while waiting on the network."""
ParallelOption = Annotated[
    int,
    typer.Option(
        "--parallel",
        metavar="N",
        min=1,
        max=256,
        help="At most N hosts at once (1 = strictly serial); within it the run widens while it is "
        "waiting on the network.",
    ),
]
FailOnOption = Annotated[
    str,
    typer.Option(
        "--fail-on",
        metavar="SEVERITY",
        help="Exit 1 when a finding is at or above this severity: info, low, medium, high, critical, or none.",
        autocompletion=lambda incomplete: _completions(
            ["info", "low", "medium", "high", "critical", "none"], incomplete
        ),
    ),
]
WhatIfOption = Annotated[
    bool,
    typer.Option(
        "--what-if", help="Print the exact plan (scripts and parameters); send nothing that changes a host."
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask before changing (needed without a terminal).")
]
AuditOption = Annotated[
    Path | None,
    typer.Option(
        "--audit-log",
        metavar="FILE",
        envvar="HCIBENEFIT_AUDIT_LOG",
        help="Append every change to this file [env: HCIBENEFIT_AUDIT_LOG].",
        show_envvar=False,
    ),
]


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj


def emit(app: AppContext, report: Report, fmt: str) -> None:
    app.emit(report, fmt)


def parse_fail_on(text: str) -> Severity | None:
    from hcibenefit.checks.model import Severity

    if text.lower() == "none":
        return None
    return Severity.parse(text)


def choice(value: str, allowed: Sequence[str], *, option: str) -> str:
    """An enum-valued option, case-insensitive: the allowed spelling of `value`, or a usage error."""
    from hcibenefit.errors import UsageError

    for candidate in allowed:
        if candidate.casefold() == value.casefold():
            return candidate
    raise UsageError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
