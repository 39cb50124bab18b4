"""The README's command table says what is true: every command it names exists, every option it shows is an
option of one of the commands in that row (or a global one), and every command has a row."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hcibenefit.cli.app import cli_command

README = Path(__file__).resolve().parents[2] / "README.md"


def commands(command: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    found = {path: command}
    if hasattr(command, "list_commands"):
        for name in command.list_commands(None):
            found.update(commands(command.get_command(None, name), (*path, name)))
    return found


def options(command: Any) -> set[str]:
    return {opt for param in getattr(command, "params", ()) for opt in getattr(param, "opts", ())}


def table_rows() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Commands", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `hcibenefit ")]
    # The first cell only: the command line (escaped pipes are alternatives inside it).
    return [re.split(r"(?<!\\)\|", row)[1] for row in rows]


def test_every_command_and_option_in_the_readme_table_exists() -> None:
    tree = commands(cli_command())
    global_options = options(tree[()])
    assert len(table_rows()) > 15
    covered: set[tuple[str, ...]] = set()
    for cell in table_rows():
        words = set(re.findall(r"[a-z][a-z-]*", cell))
        named = [p for p in tree if p and all(part in words for part in p) and (len(p) > 1 or p[0] in words)]
        first = tuple(re.findall(r"`hcibenefit ([a-z-]+)(?: ([a-z-]+))?", cell)[0])
        path = first if first in tree else first[:1]
        assert path in tree, cell
        allowed = set(global_options)
        for p in named:
            allowed |= options(tree[p])
            covered.add(p)
        shown = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", cell))
        assert shown <= allowed, (cell, sorted(shown - allowed))
    leaves = {p for p, c in tree.items() if p and not hasattr(c, "list_commands")}
    assert leaves <= covered, sorted(leaves - covered)
