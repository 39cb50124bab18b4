"""The typer application: global options, command registration and the one error boundary.

Nothing here imports pypsrp or the Azure SDKs; command modules import them inside the functions that
need them, so `hcibenefit --help` stays fast.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import inspect
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, TextIO, cast

import typer

from hcibenefit import __version__, gcpolicy
from hcibenefit.cli import context as context_module
from hcibenefit.cli.common import (
    GLOBAL_PANEL,
    AskPassOption,
    QuietOption,
    VerboseOption,
    WideOption,
    complete_format,
)
from hcibenefit.cli.context import AppContext
from hcibenefit.errors import HcibenefitError, OutputClosed
from hcibenefit.exitcodes import ExitCode

EXAMPLES = """
Examples:

  hcibenefit lab run -- status                      # try it on the built-in simulated fleet

  hcibenefit -i fleet.yaml status                   # every cluster, node and VM, with the fix beside each problem

  hcibenefit status --cluster sea-hci01 --verdict missing --verdict broken -o json

  hcibenefit enable --vm 'avd-*' --what-if          # the plan, the exact scripts and parameters; nothing sent

  hcibenefit guest check --all --cluster sea-hci01  # is Windows activated inside each guest?

  hcibenefit inventory test                         # can we reach and log on to every node?
"""


class _LazyCommands(typer.core.TyperGroup):
    """The root group: a subcommand's click command (its options, their types) is built only when it is
    used. `hcibenefit status` builds `status` alone, and `--help` builds none: the list needs names and
    first lines only. Building all of them took about as long as a bare Python start (issue 14)."""

    builders: dict[str, Callable[[], Any]]
    summaries: dict[str, Callable[[], str]]

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.builders if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.builders:
            command = self.builders[cmd_name]()
            command.name = cmd_name
            for each in _walk(command):
                _tidy(each)
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        from typer._click.utils import make_default_short_help

        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            built = self.commands.get(name)
            if built is not None:
                if not built.hidden:
                    rows.append((name, built.get_short_help_str(limit)))
            else:
                summary = self.summaries.get(name)
                rows.append((name, make_default_short_help(summary() if summary else "", limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=_LazyCommands,
    # Plain help: rich costs ~90 ms of imports on every start (issue 14); typer stays the framework.
    rich_markup_mode=None,
    name="hcibenefit",
    help="Manage Azure Benefits (IMDS attestation / Azure VM verification) across Azure Stack HCI fleets."
    + EXAMPLES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Typos and habits from other tools, answered with what to type instead.
OPTION_HINTS = {
    "--dry-run": "hcibenefit calls it --what-if (as PowerShell does)",
    "--whatif": "use --what-if",
    "--check": "use --what-if to see the plan without changing anything",
    "--format-json": "use -o json",
    "--json": "use -o json",
    "--force-yes": "use --yes",
    "--confirm": "changes are confirmed interactively; --yes skips the question",
    "--output-format": "use -o/--output FORMAT (table or json)",
    "--out": "use -o/--output FORMAT for the format, --output-file PATH for a file",
    "--file": "use --output-file PATH",
    "--debug": "use -vv",
    "--verbosity": "use -v (more detail) or -vv (debug)",
}


def _version(value: bool) -> None:
    if value:
        print(f"hcibenefit {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory",
            "-i",
            metavar="FILE",
            envvar="HCIBENEFIT_INVENTORY",
            help="Inventory file (YAML).",
            rich_help_panel=GLOBAL_PANEL,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            "--format",
            "-f",
            metavar="FORMAT",
            envvar=["HCIBENEFIT_OUTPUT", "HCIBENEFIT_FORMAT"],
            help="Output format: table or json, as az -o.",
            autocompletion=complete_format,
            rich_help_panel=GLOBAL_PANEL,
        ),
    ] = None,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output-file",
            metavar="PATH",
            help="Write the report to PATH (whole or not at all) instead of stdout.",
            rich_help_panel=GLOBAL_PANEL,
        ),
    ] = None,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
    ask_pass: AskPassOption = False,
    wide: WideOption = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    app_ctx = ctx.obj if isinstance(ctx.obj, AppContext) else AppContext()
    app_ctx.inventory_path = inventory
    app_ctx.format = output
    app_ctx.output_file = output_file
    app_ctx.verbosity = verbose
    app_ctx.quiet = quiet
    app_ctx.ask_pass = ask_pass
    app_ctx.wide = wide
    ctx.obj = app_ctx
    context_module.configure_logging(verbose, quiet)


@dataclass(frozen=True)
class _Entry:
    """A subcommand, named before its module is imported: `hcibenefit status` imports `status_cmd` alone
    (the other command modules cost about 12 ms of start-up, a bare Python start being ~20 ms)."""

    name: str
    module: str
    attribute: str
    """The command's function, or the sub-application's `typer.Typer`."""
    group: bool = False
    epilog: str | None = None
    """The name of the module's examples text shown under the command's help."""


COMMANDS = (
    _Entry("status", "status_cmd", "status", epilog="EXAMPLES"),
    _Entry("sweep", "sweep_cmd", "sweep"),
    _Entry("enable", "benefits_cmd", "enable", epilog="ENABLE_EXAMPLES"),
    _Entry("disable", "benefits_cmd", "disable", epilog="DISABLE_EXAMPLES"),
    _Entry("reconcile", "reconcile_cmd", "reconcile", epilog="EXAMPLES"),
    _Entry("host", "host_cmd", "app", group=True),
    _Entry("inventory", "inventory_cmd", "app", group=True),
    _Entry("lab", "lab_cmd", "app", group=True),
    _Entry("guest", "guest_cmd", "app", group=True),
    _Entry("attest", "attest_cmd", "app", group=True),
    _Entry("history", "history_cmd", "app", group=True),
    _Entry("checks", "checks_cmd", "app", group=True),
    _Entry("checklist", "checklist_cmd", "app", group=True),
    _Entry("scripts", "scripts_cmd", "app", group=True),
    _Entry("arm", "arm_cmd", "app", group=True),
)


def _registration(entry: _Entry) -> Any:
    """What `app.command(...)` or `app.add_typer(...)` would have registered for `entry`: typer's own
    CommandInfo or TyperInfo, made by registering on a scratch application."""
    import importlib

    module = importlib.import_module(f"hcibenefit.cli.{entry.module}")
    target = getattr(module, entry.attribute)
    scratch = typer.Typer()
    if entry.group:
        scratch.add_typer(target, name=entry.name)
        return scratch.registered_groups[0]
    epilog = getattr(module, entry.epilog) if entry.epilog else None
    scratch.command(entry.name, epilog=epilog)(target)
    return scratch.registered_commands[0]


def _walk(command: Any) -> Any:
    """The command and every subcommand under it (building lazy ones)."""
    yield command
    if isinstance(command, typer.core.TyperGroup):
        no_context: Any = None  # neither group looks at the context to list or build
        for name in command.list_commands(no_context):
            sub = command.get_command(no_context, name)
            if sub is not None and sub is not command:
                yield from _walk(sub)


_HELP_NAMES = SimpleNamespace(help_option_names=["-h", "--help"])


def _tidy(command: Any) -> None:
    """Plain help, examples kept line by line, and flags without a type (no `<bool>`: a flag takes none)."""
    # Plain help on every command: rich's imports cost ~90 ms against a bare start of ~20 ms.
    command.rich_markup_mode = None
    command.help = _examples_verbatim(command.help)
    command.epilog = _examples_verbatim(command.epilog)
    help_option = command.get_help_option(_HELP_NAMES)  # built once and cached by the command
    for param in [*getattr(command, "params", ()), *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        elif param.metavar is None and param.param_type_name == "option":
            param.metavar = _metavar(param)


@functools.lru_cache(maxsize=1)
def cli_command() -> Any:
    """The click command tree: the root now, each subcommand (and its module) when first used (see
    _LazyCommands and COMMANDS)."""
    root = typer.main.get_command(app)
    assert isinstance(root, _LazyCommands)
    root.builders = {entry.name: functools.partial(_build, entry) for entry in COMMANDS}
    root.summaries = {entry.name: functools.partial(_summary, entry) for entry in COMMANDS}
    _tidy(root)
    return root


def _build(entry: _Entry) -> Any:
    from typer.main import get_command_from_info, get_group_from_info

    info = _registration(entry)
    if entry.group:
        return get_group_from_info(
            info, pretty_exceptions_short=True, suggest_commands=True, rich_markup_mode=None
        )
    return get_command_from_info(info, pretty_exceptions_short=True, rich_markup_mode=None)


def _summary(entry: _Entry) -> str:
    """The first line `hcibenefit --help` shows for a command: its help text or its docstring."""
    info = _registration(entry)
    if not entry.group:
        return str(info.help or inspect.getdoc(info.callback) or "")
    instance = info.typer_instance
    callback = instance.registered_callback
    return (
        _text_or_empty(instance.info.help)
        or (_text_or_empty(callback.help) if callback else "")
        or (inspect.getdoc(callback.callback) or "" if callback and callback.callback else "")
    )


def _text_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _metavar(param: Any) -> str:
    """A word for an option's value where none was given: PATH, N, or the option's last word (--nonce NONCE)."""
    try:
        shown = str(param.display_type(None))
    except Exception:  # typer's internals differ between versions: fall back to the name
        shown = ""
    if "path" in shown:
        return "PATH"
    if "int" in shown or "float" in shown:
        return "N"
    longest = max(param.opts, key=len)
    return str(longest.lstrip("-").rsplit("-", 1)[-1].upper())


def _examples_verbatim(text: str | None) -> str | None:
    """Plain (non-rich) help re-wraps every paragraph; an indented one (an example) keeps its lines."""
    if not text:
        return text
    paragraphs = re.sub(r"(?<!\n)\nExamples:", "\n\nExamples:", text).split("\n\n")
    for index, paragraph in enumerate(paragraphs):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if lines and all(line.startswith("  ") for line in lines):
            paragraphs[index] = "\b\n" + paragraph
    return "\n\n".join(paragraphs)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code instead of exiting (tests call this)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    context = AppContext()
    _forget_sent_changes()
    try:
        result: Any = cli_command().main(
            args=args, prog_name="hcibenefit", standalone_mode=False, obj=context
        )
    except OutputClosed as exc:
        return int(exc.exit_code)  # quiet, as any Unix tool whose reader went away
    except HcibenefitError as exc:
        _print_expected(exc)
        return _after_sending(int(exc.exit_code))
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # the boundary: any other exception is a bug
        return _after_sending(_print_unexpected(exc, args, context.verbosity))
    except BaseException as exc:
        # click's usage errors are Exceptions; SystemExit from deep inside means someone called exit().
        if isinstance(exc, SystemExit):
            return _after_sending(int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE))
        raise
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def _forget_sent_changes() -> None:
    """Per-run state of modules a command may have loaded: what was sent, which hosts were warned about.

    Only commands that connect import these modules; --help never pays for them.
    """
    audit = sys.modules.get("hcibenefit.operations.audit")
    if audit is not None:
        audit.forget_sent_changes()
    tlswarn = sys.modules.get("hcibenefit.operations.tlswarn")
    if tlswarn is not None:
        tlswarn.forget_warnings()


def _after_sending(code: int) -> int:
    """Exit 2 says nothing was done: once a change may have reached a host, say so and exit 4."""
    audit = sys.modules.get("hcibenefit.operations.audit")
    logs = audit.changes_sent() if audit is not None else ()
    if code != ExitCode.USAGE or not logs:
        return code
    where = ", ".join(str(p) for p in logs)
    print(f"note: changes were sent before this error; the audit log ({where}) says which", file=sys.stderr)
    return int(ExitCode.INCOMPLETE)


def _print_expected(exc: HcibenefitError) -> None:
    from hcibenefit.report.text import printable

    print(f"{exc.label}: {printable(exc.message)}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {printable(exc.hint)}", file=sys.stderr)


def usage_hint(exc: Exception, argv: Sequence[str]) -> str | None:
    """A hint for usage errors that come from habits of other tools (`-v 2`, `--dry-run`, `-o FILE`)."""
    message = str(getattr(exc, "message", "") or exc)
    option = getattr(exc, "option_name", None)
    if option in OPTION_HINTS:
        return OPTION_HINTS[option]
    for index, word in enumerate(argv[:-1]):
        number = argv[index + 1]
        if word in ("-v", "--verbose") and number.isdigit() and f"{number}" in message:
            return f"-v counts: use {'-' + 'v' * max(1, min(int(number), 3))} (-v info, -vv debug)"
    if "does not take a value" in message and option in ("--verbose", "-v"):
        return "-v counts: use -vv for debug output"
    return None


def _print_unexpected(exc: Exception, argv: Sequence[str], verbosity: int) -> int:
    if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
        exc.show(file=sys.stderr)  # click's usage errors: already one clear message
        hint = usage_hint(exc, argv)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return int(ExitCode.USAGE)
    from hcibenefit.logsafe import redact
    from hcibenefit.report.text import printable

    print(f"internal error: {type(exc).__name__}: {printable(redact(str(exc)))}", file=sys.stderr)
    if verbosity >= 2 or "-vv" in argv or "-vvv" in argv:
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
    else:
        print(
            "hint: this is a bug in hcibenefit; rerun with -vv for the traceback and report it",
            file=sys.stderr,
        )
    return int(ExitCode.USAGE)


class _StderrThatNeverFails:
    """sys.stderr whose writes are dropped when they fail (a full disk, a reader gone): a message for a
    person must never crash a command or change its exit code."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _stderr_that_never_fails() -> None:
    """`hcibenefit status 2>&-`: the command runs and exits with its own code, its stderr lines go nowhere.

    With fd 2 closed Python leaves sys.stderr None, and print(file=None) writes to stdout (into the JSON);
    worse, the next file or socket opened would become fd 2 and receive whatever writes there. So fd 2
    gets /dev/null first (if fd 1 was closed too, it stays closed), then writes that fail are dropped.
    """
    try:
        os.fstat(2)
    except OSError:
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            if fd != 2:
                os.dup2(fd, 2)
                os.close(fd)
            sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        except OSError:
            return
    if sys.stderr is not None and not isinstance(sys.stderr, _StderrThatNeverFails):
        sys.stderr = cast(TextIO, _StderrThatNeverFails(sys.stderr))


def main() -> None:
    gcpolicy.for_one_command()
    _stderr_that_never_fails()
    code = run()
    if code == ExitCode.INTERRUPTED:
        # Ctrl-C was answered and said what it left behind; threads still waiting on hosts that do not
        # answer must not hold the exit (interpreter shutdown can take half a second with them).
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    if code == ExitCode.BROKEN_PIPE and sys.stdout is not None:
        # What is still buffered for the reader that left would fail again at exit; send it nowhere.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    # Every file, session and database was closed by the command itself; what is left is the
    # interpreter's last collection over every object the run built, 45 ms of a 1.7 s status. Freezing
    # them skips that scan; module teardown, atexit handlers and buffered output still run as usual.
    gc.disable()
    gc.freeze()
    sys.exit(code)


def entry_point() -> None:
    """The process's entry (the `hcibenefit` script, `python -m hcibenefit`): `main()`, and then the
    process ends without the interpreter's module teardown where nothing is left for it to do.

    `main()` itself ends in SystemExit, as a program that calls it in its own process expects."""
    try:
        main()
    except SystemExit as done:
        if isinstance(done.code, int):
            _exit_without_teardown(done.code)
        raise


def _exit_without_teardown(code: int) -> None:
    """Exit now, without the interpreter's module teardown, once nothing is left that teardown would do.

    The command closed every session, file and database itself. What a normal exit adds after that is
    joining threads, the atexit handlers (logging's flush, temporary directories' cleanup) and then
    freeing every module and object one by one: 10 to 20 ms of a one-cluster status, for nothing the
    process keeps. So: only when this is the last thread (otherwise it returns and the exit is Python's
    usual one, which waits for the others), the atexit handlers run, the standard streams are flushed (a
    failing flush also returns, so that the usual exit reports it as before), then the process ends.
    """
    if threading.active_count() != 1:
        return
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)
