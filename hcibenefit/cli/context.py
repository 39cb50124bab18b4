"""What every command gets from the global options: where the inventory is, how to render, where to write.

Commands receive an AppContext instead of reaching for sys.stdout or the environment, so they can be
called from tests (and from other Python code) without typer.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hcibenefit.errors import OutputClosed, UsageError

if TYPE_CHECKING:
    from hcibenefit.inventory import CredentialResolver, Inventory


@dataclass
class AppContext:
    inventory_path: Path | None = None
    format: str | None = None
    output: Path | None = None
    verbosity: int = 0
    quiet: bool = False
    ask_pass: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _inventory: Inventory | None = field(default=None, repr=False)
    _resolver: CredentialResolver | None = field(default=None, repr=False)

    def choose_format(self, command_format: str | None, allowed: tuple[str, ...]) -> str:
        """The command's --format wins over the global one; the first allowed format is the default."""
        chosen = command_format or self.format or allowed[0]
        if chosen not in allowed:
            raise UsageError(
                f"format {chosen!r} is not available here",
                hint=f"choose one of: {', '.join(allowed)}",
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

    @contextlib.contextmanager
    def open_output(self) -> Iterator[TextIO]:
        """The report stream: --output FILE, else stdout. A file is written whole or not at all.

        A reader that goes away (``| head``) raises `OutputClosed` (exit 141, nothing printed); a
        closed stdout (``>&-``) is a usage error naming --output.
        """
        if self.output is None or str(self.output) == "-":
            stream = self._stdout_or_fail()
            try:
                yield stream
                stream.flush()  # here, not at exit: a broken pipe must surface while we can handle it
            except BrokenPipeError:
                raise OutputClosed() from None
            return
        target = self.output
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
                hint="pass --output FILE, or redirect standard output (e.g. >/dev/null)",
            )
        return stream

    def check_output(self) -> None:
        """Prove the report can be written, before a change sends anything (exit 2 if not)."""
        if self.output is None or str(self.output) == "-":
            try:
                self._stdout_or_fail()
            except UsageError as exc:
                raise UsageError(f"{exc.message}; nothing was sent", hint=exc.hint) from None
            return
        target = self.output
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
        """A human progress or summary line on stderr, unless --quiet."""
        if not self.quiet:
            print(message, file=self.stderr)
