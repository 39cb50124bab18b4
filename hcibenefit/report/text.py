"""Text for a terminal: names escaped so a host cannot drive the terminal, tables that fit its width.

Names of VMs and clusters come from hosts, and a hostile or broken one may hold escape sequences or a
newline. Every human format goes through `printable()`, which shows control characters escaped
(``\\x1b``, ``\\n``) and so can neither recolour the terminal nor forge a table row; JSON keeps the exact
string (escaped the JSON way).

Width: tables are laid out for a width (the terminal's, or ``COLUMNS``) by wrapping the columns marked
`wrap`; identifying columns never wrap. Without a width (output piped to a file or a program, or
``--wide``) nothing wraps: every row is one line, stable for grep and diff.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

from hcibenefit.report.model import Column, Details, Table

# C0 and C1 control characters, DEL, and the Unicode format characters that reorder or hide text
# (bidirectional overrides and isolates, zero-width joiners, the BOM): "Trojan Source" in a name.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# What json.dumps(ensure_ascii=False) leaves raw: it escapes C0 controls inside strings, and the
# structure's own newlines must stay.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}
GAP = "  "
MIN_WRAP_WIDTH = 12


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control or invisible formatting character shown escaped."""
    return _UNPRINTABLE.sub(_escape, text)


def json_safe(text: str) -> str:
    """JSON text with DEL, C1 controls and invisible format characters as \\u escapes (the same string
    once decoded): json.dumps(ensure_ascii=False) escapes only C0, and a raw C1 CSI can drive a terminal."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def terminal_width(stream: TextIO, environ: dict[str, str] | None = None) -> int | None:
    """The width to lay tables out for: $COLUMNS when set, the terminal's when `stream` is one, else None."""
    env = os.environ if environ is None else environ
    columns = env.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 40:
        return int(columns)
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return None
    return None


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value) or "-"
    if isinstance(value, Enum):
        return str(value.value)
    return printable(str(value))


def wrap(text: str, width: int | None, *, indent: str = "", first: str = "") -> list[str]:
    """Lines of at most `width` characters (no limit without a width); long words are broken."""
    if width is None:
        return [first + text]
    lines = textwrap.wrap(
        text,
        width=max(MIN_WRAP_WIDTH, width),
        initial_indent=first,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=True,
    )
    return lines or [first.rstrip()]


def _layout(columns: Sequence[Column], natural: list[int], width: int | None) -> list[int]:
    """Column widths: natural ones, with the wrap columns narrowed to fit `width` if needed."""
    total = sum(natural) + len(GAP) * (len(natural) - 1)
    if width is None or total <= width:
        return natural
    flexible = [i for i, c in enumerate(columns) if c.wrap]
    fixed = sum(w for i, w in enumerate(natural) if i not in flexible) + len(GAP) * (len(natural) - 1)
    room = max(width - fixed, MIN_WRAP_WIDTH * len(flexible))
    want = sum(natural[i] for i in flexible) or 1
    widths = list(natural)
    for i in flexible:
        widths[i] = max(MIN_WRAP_WIDTH, min(natural[i], room * natural[i] // want))
    # Hand out what integer division left over, widest first.
    spare = room - sum(widths[i] for i in flexible)
    for i in sorted(flexible, key=lambda i: natural[i] - widths[i], reverse=True):
        if spare <= 0:
            break
        extra = min(spare, natural[i] - widths[i])
        widths[i] += extra
        spare -= extra
    return widths


def render_table(table: Table, stream: TextIO, *, width: int | None, wide: bool) -> None:
    shown = [c for c in table.columns if wide or not c.wide]
    if table.title:
        for line in wrap(printable(table.title), width):
            stream.write(line + "\n")
    rows = table.row_list()
    if not rows:
        stream.write(f"{table.empty}\n")
        return
    cells = [[cell_text(row.get(c.key)) for c in shown] for row in rows]
    natural = [max([len(c.header), *(len(r[i]) for r in cells)]) for i, c in enumerate(shown)]
    widths = _layout(shown, natural, None if wide else width)
    last = len(shown) - 1

    def emit(parts: list[list[str]]) -> None:
        height = max(len(p) for p in parts)
        for n in range(height):
            pieces = [(p[n] if n < len(p) else "").ljust(widths[i]) for i, p in enumerate(parts)]
            # No padding after the last column: piped output has no trailing blanks.
            stream.write(GAP.join([*pieces[:last], pieces[last].rstrip()]).rstrip() + "\n")

    emit([[c.header] for c in shown])
    stream.write(GAP.join("-" * w for w in widths) + "\n")
    for row in cells:
        emit(
            [
                wrap(text, widths[i]) if shown[i].wrap and len(text) > widths[i] else [text]
                for i, text in enumerate(row)
            ]
        )


def render_details(details: Details, stream: TextIO, *, width: int | None) -> None:
    for line in wrap(printable(details.title), width):
        stream.write(line + "\n")
    for item in details.items:
        for line in wrap(printable(item.head), width, first="- ", indent="    "):
            stream.write(line + "\n")
        for text in item.lines:
            if item.verbatim:
                stream.write("    " + printable(text) + "\n")
                continue
            for line in wrap(printable(text), width, first="    ", indent="      "):
                stream.write(line + "\n")


def render_notes(notes: Sequence[str], stream: TextIO, *, width: int | None) -> None:
    for note in notes:
        for line in wrap(printable(note), width, indent="  "):
            stream.write(line + "\n")


class Described(str):
    """A parameter value shown as a description in angle brackets, not as a literal: a script's text
    or a credential, which are sent but not worth (or not safe) printing."""


def powershell_literal(value: Any) -> str:
    """A parameter value as PowerShell would read it, so a person sees exactly what a script receives:
    strings single-quoted ('' for '), arrays as @('a', 'b'), booleans as $true/$false."""
    if isinstance(value, Described):
        return f"<{value}>"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "@(" + ", ".join(powershell_literal(v) for v in value) + ")"
    if value is None:
        return "$null"
    return "'" + str(value).replace("'", "''") + "'"
