"""What every command gets from the global options: where the inventory is, how to render, where to write.

Commands receive an AppContext instead of reaching for sys.stdout or the environment, so they can be
called from tests (and from other Python code) without typer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from hcibenefit.errors import OutputClosed, UsageError

if TYPE_CHECKING:
    from hcibenefit.inventory import CredentialResolver, Inventory
    from hcibenefit.report import RenderOptions, Report


@dataclass
class AppContext:
    inventory_path: Path | None = None
    format: str | None = None
    """-o/--output (or -f/--format): table or json; None: the command's default."""
    output_file: Path | None = None
    """--output-file: write the report there instead of stdout."""
    verbosity: int = 0
    quiet: bool = False
    ask_pass: bool = False
    wide: bool = False
    command: str = ""
    """The command path being run ("status", "host sync"), for reports and the audit log."""
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _inventory: Inventory | None = field(default=None, repr=False)
    _resolver: CredentialResolver | None = field(default=None, repr=False)
    _said: set[str] = field(default_factory=set, repr=False)

    def choose_format(self, allowed: tuple[str, ...] = ("table", "json")) -> str:
        """The format asked for with -o/--output (case-insensitive); the first allowed one by default."""
        chosen = (self.format or allowed[0]).lower()
        if chosen not in allowed:
            raise UsageError(
                f"output format {self.format!r} is not available here",
                hint=f"choose one of: {', '.join(allowed)} (-o/--output FORMAT; a file is --output-file PATH)",
            )
        return chosen

    def inventory(self, path: Path | None = None) -> Inventory:
        from hcibenefit.inventory import load_inventory

        chosen = path or self.inventory_path
        if chosen is None:
            raise UsageError(
                "no inventory given",
                hint="pass --inventory FILE or set HCIBENEFIT_INVENTORY "
                "(try `hcibenefit lab serve --write-inventory lab.yaml` for a simulated fleet)",
            )
        if path is not None or self._inventory is None:
            loaded = load_inventory(chosen)
            if path is not None:
                return loaded
            self._inventory = loaded
        return self._inventory

    def credentials(self) -> CredentialResolver:
        if self._resolver is None:
            from hcibenefit.inventory import CredentialResolver

            self._resolver = CredentialResolver(ask_pass=self.ask_pass)
        return self._resolver

    def run_info(self, inventory: Inventory | None = None) -> dict[str, Any]:
        """What every JSON report carries: when, which hcibenefit, which inventory, which command."""
        from hcibenefit import __version__

        source = inventory.source if inventory is not None else self.inventory_path
        return {
            "generated_at": self.started.isoformat(timespec="seconds"),
            "hcibenefit_version": __version__,
            "inventory": str(source) if source is not None else None,
            "command": self.command,
        }

    def with_envelope(self, data: Any) -> Any:
        """A JSON object with the run's envelope (run_info) in front; the command's own fields win, so a
        command that set them, or names a field the same, keeps its value. Lists and None pass as they are."""
        if not isinstance(data, dict):
            return data
        return {**self.run_info(self._inventory), **data}

    def render_options(self, stream: TextIO) -> RenderOptions:
        from hcibenefit.report import RenderOptions
        from hcibenefit.report.text import terminal_width

        # A file gets every row on one line, whatever the terminal: stable for grep and diff.
        width = terminal_width(stream) if stream is self.stdout else None
        return RenderOptions(width=width, wide=self.wide)

    def emit(self, report: Report, fmt: str) -> None:
        """Render the report whole, then write it: a failure while rendering leaves no half report."""
        from hcibenefit.report import render

        if fmt == "json":
            # Every command's JSON carries when, which hcibenefit, which inventory and which command.
            report = dataclasses.replace(report, data=self.with_envelope(report.data))
        with self.open_output() as stream, _render_buffer() as buffer:
            with _spool_errors():
                render(report, fmt, buffer, self.render_options(stream))
            _copy(buffer, stream)

    def emit_document(
        self, document: Any, fmt: str, render: Callable[[Any, str, TextIO, int | None], None]
    ) -> None:
        """A document with its own renderers (sweep, checklist): rendered whole, then written."""
        if fmt == "json":
            document = self.with_envelope(document)

        with self.open_output() as stream, _render_buffer() as buffer:
            options = self.render_options(stream)
            with _spool_errors():
                render(document, fmt, buffer, None if options.wide else options.width)
            _copy(buffer, stream)

    @contextlib.contextmanager
    def open_output(self) -> Iterator[TextIO]:
        """The report stream: --output-file PATH, else stdout. A file is written whole or not at all.

        A reader that goes away (``| head``) raises `OutputClosed` (exit 141, nothing printed); a
        closed stdout (``>&-``) is a usage error naming --output.
        """
        if self.output_file is None or str(self.output_file) == "-":
            stream = self._stdout_or_fail()
            try:
                yield stream
                stream.flush()  # here, not at exit: a broken pipe must surface while we can handle it
            except BrokenPipeError:
                raise OutputClosed() from None
            return
        target = self.output_file
        partial = target.with_name(target.name + ".partial")
        try:
            # backslashreplace: text a host sent that UTF-8 cannot encode (a lone surrogate) is written
            # as \udxxx, which inside a JSON string is the same character, instead of failing the run.
            with partial.open("w", encoding="utf-8", errors="backslashreplace", newline="\n") as stream:
                yield stream
            partial.replace(target)
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    def _stdout_or_fail(self) -> TextIO:
        stream = self.stdout
        if stream is None or getattr(stream, "closed", False):
            # Python sets sys.stdout to None when file descriptor 1 was closed at start (`>&-`).
            raise UsageError(
                "standard output is closed: there is nowhere to write the report",
                hint="pass --output-file PATH, or redirect standard output (e.g. >/dev/null)",
            )
        return stream

    def check_output(self) -> None:
        """Prove the report can be written, before a change sends anything (exit 2 if not)."""
        if self.output_file is None or str(self.output_file) == "-":
            try:
                self._stdout_or_fail()
            except UsageError as exc:
                raise UsageError(f"{exc.message}; nothing was sent", hint=exc.hint) from None
            return
        target = self.output_file
        partial = target.with_name(target.name + ".partial")
        try:
            if target.is_dir():
                raise IsADirectoryError(21, "it is a directory")
            with partial.open("w", encoding="utf-8"):
                pass
            partial.unlink()
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}; nothing was sent") from None

    def say(self, message: str) -> None:
        """A human progress or summary line on stderr, unless --quiet. Control characters are escaped."""
        if not self.quiet:
            from hcibenefit.report.text import printable

            print("\n".join(printable(line) for line in message.split("\n")), file=self.stderr)

    def warn_once(self, message: str) -> None:
        """A warning on stderr, printed once per run however many nodes or VMs raise it."""
        if message in self._said:
            return
        self._said.add(message)
        from hcibenefit.report.text import printable

        print(f"warning: {printable(message)}", file=self.stderr)


def configure_logging(verbosity: int, quiet: bool) -> None:
    """Our log lines on stderr at the level -v/-q ask for, secrets masked, control characters escaped."""
    from hcibenefit.logsafe import RedactingFilter

    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    ours = logging.getLogger("hcibenefit")
    for old in ours.handlers:
        logging.getLogger().removeHandler(old)
    ours.handlers[:] = [handler]
    ours.setLevel(level)
    ours.propagate = False
    # Third-party debug logs carry whole SOAP envelopes; only -vvv asks for them.
    third_party = logging.DEBUG if verbosity >= 3 else logging.WARNING
    for name in ("pypsrp", "psrpcore", "spnego", "urllib3", "requests", "azure"):
        logging.getLogger(name).setLevel(third_party)
    if verbosity >= 3:
        logging.getLogger().addHandler(handler)


class _PrintableFormatter(logging.Formatter):
    """A logging formatter whose output cannot carry terminal escapes from host-supplied text."""

    def format(self, record: logging.LogRecord) -> str:
        from hcibenefit.report.text import printable

        return "\n".join(printable(line) for line in super().format(record).split("\n"))


_SPOOL_CHARS = 1024 * 1024
_COPY_CHARS = 256 * 1024


def _render_buffer() -> TextIO:
    """Where a report is rendered whole before any of it is written (a failure while rendering leaves no
    half report): in memory up to 1 MiB of UTF-8 (one cluster's sweep fits), then in an unlinked private
    temporary file. A 10,000-VM sweep's JSON is some 70 MB and need not sit in memory, twice, to be
    written whole; at 8 MiB the buffer and its copy at the switch to the file were the top of a 10,000-VM
    sweep's peak memory.

    surrogatepass: a host's lone surrogate survives the round trip; `write_text` escapes it for the
    real stream as before.
    """
    import tempfile  # not at the top: --help need not load it

    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (the caller closes it with `with`)
        max_size=_SPOOL_CHARS, mode="w+", encoding="utf-8", errors="surrogatepass", newline=""
    )
    return cast(TextIO, spool)  # a text file in all but typeshed's name


@contextlib.contextmanager
def _spool_errors() -> Iterator[None]:
    """A report too large for memory that cannot go to the temporary directory either (full, read-only)
    is one clear line; nothing of it was written."""
    try:
        yield
    except OSError as exc:
        import tempfile

        raise UsageError(
            f"cannot hold the report in {tempfile.gettempdir()} before writing it: {exc.strerror or exc}; "
            "nothing of it was written (set TMPDIR to a directory with room)"
        ) from None


def _copy(buffer: TextIO, stream: TextIO) -> None:
    buffer.seek(0)
    while chunk := buffer.read(_COPY_CHARS):
        write_text(stream, chunk)


def write_text(stream: TextIO, text: str) -> None:
    """Write ``text``; characters the stream cannot encode (a host's lone surrogate, or anything outside
    a Windows code page) are written as backslash escapes instead of ending the run."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
