"""The node graphs of YAML files already read, by a digest of their text: a file read again unchanged (an
inventory, every run) is neither parsed nor needs ruamel.yaml imported.

ruamel.yaml's scanner and parser are pure Python. Reading the inventory was most of what loading it cost:
4 ms for one cluster (and 10 to 15 ms to import ruamel.yaml), 130 to 190 ms for 400 nodes, 330 ms for
1,000, on every command, before the first host is asked anything.

What is kept is exactly what `yamlschema.compose` built from that text (each node's kind, tag, value,
line and column, and which nodes are the same node, for aliases), so everything checked on the graph is
checked again on the copy, every run. The limits checked while composing (values, depth, encodable text)
held when it was kept, and hold again for the same text. The key also holds `FORMAT`, which ruamel.yaml
read it and the limits the composer checked, so a new composer, a new ruamel or other limits read the
file again. Only files that composed are kept: errors are always found by parsing.

The files are private, like every state file (`hcibenefit.statefiles`), at most `MAX_FILES`, the least
recently written going first; one that cannot be read as a graph is ignored. Removing the directory
loses nothing but time. A file there is trusted as the text it was made from, as the user's own private
files are: whoever can write to it could as well edit the inventory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hcibenefit.statefiles import cache_home, keep_newest, write_private

FORMAT = 1
"""Raise it whenever what `yamlschema.compose` builds from a text changes (the composer, the limits it
checks, the node's shape)."""
MAX_FILES = 20
"""Texts kept; the least recently written go first."""


def cache_dir() -> Path:
    return cache_home() / "yaml-nodes"


class Mark:
    """Where a node starts, as ruamel's marks give it (0-based)."""

    __slots__ = ("column", "line")

    def __init__(self, line: int, column: int) -> None:
        self.line = line
        self.column = column


class Node:
    """A node read back: what the schema reads of ruamel's nodes (`id`, `tag`, `value`, `start_mark`)."""

    __slots__ = ("id", "start_mark", "tag", "value")

    def __init__(self, kind: str, tag: str, start_mark: Mark) -> None:
        self.id = kind
        self.tag = tag
        self.value: Any = None
        self.start_mark = start_mark


_KINDS = ("scalar", "sequence", "mapping")


def load(text: str, *, limits: tuple[int, ...]) -> Node | None:
    """The graph kept for `text` composed under `limits` (those the composer checks), or None."""
    try:
        data = json.loads(_file_for(text, limits).read_bytes())
        return _rebuild(data["nodes"])
    except Exception:  # no file, not ours, cut short: read the text instead
        return None


def store(text: str, root: Any, *, limits: tuple[int, ...]) -> None:
    """Keep the graph composed from `text` under `limits`. Best effort: a read-only home or a full disk
    loses nothing."""
    with contextlib.suppress(OSError, ValueError):
        path = _file_for(text, limits)
        write_private(path, json.dumps({"format": FORMAT, "nodes": _flatten(root)}, separators=(",", ":")))
        keep_newest(cache_dir(), MAX_FILES, keep=path)


def _file_for(text: str, limits: tuple[int, ...]) -> Path:
    digest = hashlib.sha256(f"{FORMAT}\0{_ruamel_identity()}\0{limits}\0".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return cache_dir() / f"{digest.hexdigest()[:40]}.json"


_RUAMEL: str | None = None


def _ruamel_identity() -> str:
    """Which ruamel.yaml is installed, without importing it: its package file's size and time."""
    global _RUAMEL
    if _RUAMEL is None:
        import importlib.util

        identity = "none"
        with contextlib.suppress(Exception):
            spec = importlib.util.find_spec("ruamel.yaml")  # imports the `ruamel` namespace only
            if spec is not None and spec.origin:
                stat = os.stat(spec.origin)
                identity = f"{spec.origin}:{stat.st_size}:{stat.st_mtime_ns}"
        _RUAMEL = identity
    return _RUAMEL


def _flatten(root: Any) -> list[list[Any]]:
    """Every node once, root first: [kind, tag, line, column, value], where a collection's value names its
    members by their place in the list (so an alias stays one node, and a node that holds itself works)."""
    index: dict[int, int] = {}
    nodes: list[list[Any]] = []
    unfilled: list[Any] = []

    def place(node: Any) -> int:
        at = index.get(id(node))
        if at is None:
            at = index[id(node)] = len(nodes)
            mark = node.start_mark
            nodes.append([_KINDS.index(node.id), str(node.tag), mark.line, mark.column, None])
            unfilled.append(node)
        return at

    place(root)
    while unfilled:
        node = unfilled.pop()
        entry = nodes[index[id(node)]]
        if node.id == "scalar":
            if not isinstance(node.value, str):
                raise ValueError("a scalar that is not text")  # not a graph ruamel composes: keep nothing
            entry[4] = node.value
        elif node.id == "sequence":
            entry[4] = [place(member) for member in node.value]
        else:
            entry[4] = [[place(key), place(value)] for key, value in node.value]
    return nodes


def _rebuild(flat: list[list[Any]]) -> Node:
    nodes = []
    for kind, tag, line, column, _ in flat:
        if not (isinstance(tag, str) and type(line) is int and type(column) is int):
            raise ValueError("not a node")
        nodes.append(Node(_KINDS[kind], tag, Mark(line, column)))
    for node, (kind, _, _, _, value) in zip(nodes, flat, strict=True):
        if kind == 0:
            if not isinstance(value, str):
                raise ValueError("not a scalar's text")
            node.value = value
        elif kind == 1:
            node.value = [nodes[at] for at in value]
        else:
            node.value = [(nodes[key], nodes[member]) for key, member in value]
    return nodes[0]
