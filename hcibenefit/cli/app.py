"""The typer application: global options, command registration and the one error boundary.

Nothing here imports pypsrp or the Azure SDKs; command modules import them inside the functions that
need them, so `hcibenefit --help` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from hcibenefit import __version__
from hcibenefit.cli.context import AppContext
from hcibenefit.errors import HcibenefitError, OutputClosed
from hcibenefit.exitcodes import ExitCode

app = typer.Typer(
    name="hcibenefit",
    help="Manage Azure Benefits (IMDS attestation / Azure VM verification) across Azure Stack HCI fleets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The error boundary needs the verbosity before typer has parsed it (a failure can happen during parsing).
_boundary_verbosity = 0


def _version(value: bool) -> None:
    if value:
        print(f"hcibenefit {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", envvar="HCIBENEFIT_INVENTORY", help="Inventory file (YAML)."),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", envvar="HCIBENEFIT_FORMAT", help="Output format: table, json (per command)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to FILE instead of stdout.")
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr (-vv: debug).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    ask_pass: Annotated[
        bool,
        typer.Option(
            "--ask-pass", help="Prompt once per user name for passwords instead of the inventory's source."
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    global _boundary_verbosity
    _boundary_verbosity = verbose
    _configure_logging(verbose, quiet)
    ctx.obj = AppContext(
        inventory_path=inventory,
        format=format,
        output=output,
        verbosity=verbose,
        quiet=quiet,
        ask_pass=ask_pass,
    )


def _configure_logging(verbosity: int, quiet: bool) -> None:
    from hcibenefit.logsafe import RedactingFilter

    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    ours = logging.getLogger("hcibenefit")
    ours.handlers[:] = [handler]
    ours.setLevel(level)
    ours.propagate = False
    # Third-party debug logs carry whole SOAP envelopes; only -vvv asks for them.
    third_party = logging.DEBUG if verbosity >= 3 else logging.WARNING
    for name in ("pypsrp", "psrpcore", "spnego", "urllib3", "requests", "azure"):
        logging.getLogger(name).setLevel(third_party)
    root_logger = logging.getLogger()
    if verbosity >= 3 and handler not in root_logger.handlers:
        root_logger.addHandler(handler)


def _register_commands() -> None:
    from hcibenefit.cli import (
        arm_cmd,
        attest_cmd,
        benefits_cmd,
        checks_cmd,
        guest_cmd,
        history_cmd,
        host_cmd,
        inventory_cmd,
        lab_cmd,
        scripts_cmd,
        status_cmd,
        sweep_cmd,
    )

    app.command("status")(status_cmd.status)
    app.command("sweep")(sweep_cmd.sweep)
    app.command("enable")(benefits_cmd.enable)
    app.command("disable")(benefits_cmd.disable)
    app.add_typer(host_cmd.app, name="host")
    app.add_typer(inventory_cmd.app, name="inventory")
    app.add_typer(lab_cmd.app, name="lab")
    app.add_typer(guest_cmd.app, name="guest")
    app.add_typer(attest_cmd.app, name="attest")
    app.add_typer(history_cmd.app, name="history")
    app.add_typer(checks_cmd.app, name="checks")
    app.add_typer(scripts_cmd.app, name="scripts")
    app.add_typer(arm_cmd.app, name="arm")


_register_commands()


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code instead of exiting (tests call this)."""
    global _boundary_verbosity
    _boundary_verbosity = 0
    _forget_sent_changes()
    command = typer.main.get_command(app)
    try:
        result: Any = command.main(
            args=list(argv) if argv is not None else None, prog_name="hcibenefit", standalone_mode=False
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
        return _after_sending(_print_unexpected(exc))
    except BaseException as exc:
        # click's usage errors are Exceptions; SystemExit from deep inside means someone called exit().
        if isinstance(exc, SystemExit):
            return _after_sending(int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE))
        raise
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def _forget_sent_changes() -> None:
    # Only a command that changes something imports the audit module; --help never pays for it.
    audit = sys.modules.get("hcibenefit.operations.audit")
    if audit is not None:
        audit.forget_sent_changes()


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
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


def _print_unexpected(exc: Exception) -> int:
    if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
        exc.show(file=sys.stderr)  # click's usage errors: already one clear message
        return int(ExitCode.USAGE)
    from hcibenefit.logsafe import redact

    print(f"internal error: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
    if _boundary_verbosity >= 2:
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
    else:
        print(
            "hint: this is a bug in hcibenefit; rerun with -vv for the traceback and report it",
            file=sys.stderr,
        )
    return int(ExitCode.USAGE)


def main() -> None:
    code = run()
    if code == ExitCode.BROKEN_PIPE and sys.stdout is not None:
        # What is still buffered for the reader that left would fail again at exit; send it nowhere.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    sys.exit(code)
