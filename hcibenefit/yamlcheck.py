"""Reading YAML that people write, with errors that point at file, line, column and field.

ruamel.yaml's round-trip loader keeps the position of every key and value; Node carries that position
and the field path (`clusters[1].nodes[0].port`) so a check can fail with
`fleet.yaml:14:9: clusters[1].nodes[0].port: expected an integer 1-65535, got "59x5"`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcibenefit.errors import ConfigError


class YamlError(ConfigError):
    pass


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise YamlError(f"{path}: is a directory, expected a YAML file") from None
    except PermissionError:
        raise YamlError(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise YamlError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise YamlError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_yaml_document(text: str, source: str) -> Node:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(f"{where}: invalid YAML: {problem}") from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. duplicate keys in some versions)
        raise YamlError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        raise YamlError(f"{source}:1:1: the file is empty, expected a mapping")
    root = Node(data, source, "", 1, 1)
    if not isinstance(data, dict):
        root.fail(f"expected a mapping at the top level, got {_kind(data)}")
    return root


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    return f"{value!r}"


@dataclass(frozen=True)
class Node:
    """A value in the document with where it stands."""

    value: Any
    source: str
    path: str
    line: int
    column: int

    def fail(self, message: str) -> None:
        prefix = f"{self.source}:{self.line}:{self.column}: "
        raise YamlError(prefix + (f"{self.path}: " if self.path else "") + message)

    def _child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def is_scalar(self) -> bool:
        return not isinstance(self.value, dict | list)

    def mapping(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            self.fail(f"expected a mapping, got {_kind(self.value)}")
        return dict(self.value)

    def get(self, key: str) -> Node | None:
        data = self.mapping()
        if key not in data:
            return None
        line, column = self.line, self.column
        lc = getattr(self.value, "lc", None)
        if lc is not None:
            try:
                pos = lc.value(key) if data[key] is not None else lc.key(key)
                line, column = pos[0] + 1, pos[1] + 1
            except (KeyError, TypeError):
                pass
        return Node(data[key], self.source, self._child_path(key), line, column)

    def require(self, key: str) -> Node:
        found = self.get(key)
        if found is None:
            self.fail(f"missing required key {key!r}")
            raise AssertionError("unreachable")
        return found

    def only_keys(self, allowed: Iterable[str]) -> None:
        known = set(allowed)
        data = self.mapping()
        lc = getattr(self.value, "lc", None)
        for key in data:
            if key in known:
                continue
            line, column = self.line, self.column
            if lc is not None:
                try:
                    pos = lc.key(key)
                    line, column = pos[0] + 1, pos[1] + 1
                except (KeyError, TypeError):
                    pass
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(sorted(known))}"
            where = Node(None, self.source, self._child_path(str(key)), line, column)
            where.fail(f"unknown key{hint}")

    def items(self, *, min_items: int = 0) -> Iterator[Node]:
        if not isinstance(self.value, list):
            self.fail(f"expected a list, got {_kind(self.value)}")
        if len(self.value) < min_items:
            self.fail(f"expected at least {min_items} item(s), got an empty list")
        lc = getattr(self.value, "lc", None)
        for index, item in enumerate(self.value):
            line, column = self.line, self.column
            if lc is not None:
                try:
                    pos = lc.item(index)
                    line, column = pos[0] + 1, pos[1] + 1
                except (KeyError, TypeError, IndexError):
                    pass
            yield Node(item, self.source, self._child_path(index), line, column)

    def string(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            self.fail(f"expected a non-empty string, got {_kind(self.value)}")
        return str(self.value)

    def integer(self, low: int, high: int) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int) or not low <= self.value <= high:
            self.fail(f"expected an integer {low}-{high}, got {_quote(self.value)}")
        return int(self.value)

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            self.fail(f"expected true or false, got {_quote(self.value)}")
        return bool(self.value)


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return _kind(value)
