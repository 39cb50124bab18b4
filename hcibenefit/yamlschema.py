"""A small declarative validator over ruamel.yaml's node graph, for every YAML file people write
(the inventory, the lab's fleet spec).

Why nodes and not loaded Python objects: every node keeps its own line and column, so each error
can point at the exact value, and duplicate keys can be reported with their field path (the
ruamel constructor would stop at the first duplicate with a generic message).

The schema (``schema.py``) is a tree of `ValueType`s. Checking a node yields a plain value, a
tuple (lists) or a `Section` (mappings, with the location of every key), or `INVALID` after an
error was recorded. Errors are collected rather than raised, so one run reports all of them.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from hcibenefit.errors import ConfigError

# A ruamel.yaml node (ScalarNode, SequenceNode, MappingNode). ruamel is untyped, and it is imported
# only when a file is parsed, so nodes are handled through their `id`, `tag`, `value` and
# `start_mark` attributes.
YNode = Any

_T = "tag:yaml.org,2002:"
TAG_STR, TAG_INT, TAG_FLOAT, TAG_BOOL, TAG_NULL = (_T + t for t in ("str", "int", "float", "bool", "null"))
TAG_TIMESTAMP, TAG_MAP, TAG_SEQ, TAG_MERGE = (_T + t for t in ("timestamp", "map", "seq", "merge"))


# --- limits ----------------------------------------------------------------------------------
# Far beyond any real inventory or fleet spec (a 5,000-node inventory is well under 1 MiB, some
# 50,000 YAML values and 8 levels deep), and low enough that a hostile or broken file fails within a
# few seconds: a 613-byte merge-key bomb, 480 levels of nesting or a 50 MB list.

MAX_BYTES = 2 * 1024 * 1024
"""Size of a YAML file we read."""
MAX_NODES = 100_000
"""YAML values (scalars, lists, mappings, alias uses) in one document."""
MAX_DEPTH = 64
"""Nesting of lists, mappings and merge keys (``<<``) within each other."""
MAX_EXPANDED = 200_000
"""Values checked after aliases and merge keys are expanded (each use of an alias counts again)."""


class LimitExceeded(Exception):
    """A document is past one of the limits above (or holds what no value may); carries where, to
    become one located error."""

    def __init__(self, line: int, col: int, path: str, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.path, self.message = line, col, path, message


# --- locations and errors --------------------------------------------------------------------


@dataclass(frozen=True)
class Loc:
    """A 1-based position in the inventory file and the field path of what is there."""

    line: int
    col: int
    path: str


def node_loc(node: YNode, path: str) -> Loc:
    return Loc(node.start_mark.line + 1, node.start_mark.column + 1, path)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    # VM names and other free-form keys may hold dots or spaces; quote those so the path stays
    # unambiguous.
    part = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)
    if not path:
        return part
    return f"{path}[{part}]" if part.startswith('"') else f"{path}.{part}"


@dataclass(frozen=True)
class Issue:
    """One problem in a document, rendered as ``file:line:col: field.path: message``."""

    source: str
    line: int | None
    col: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SchemaError(ConfigError):
    """The document is invalid. ``str()`` gives one line per problem; ``errors`` lists the lines."""

    default_hint: str | None = None

    def __init__(self, issues: Sequence[Issue], *, hint: str | None = None) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        self.errors: list[str] = [str(i) for i in self.issues]
        super().__init__("\n".join(self.errors), hint=hint or self.default_hint)


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()
"""Returned by a check after it recorded an error; callers skip the value."""


class Ctx:
    """Collects issues while a document is checked; knows how to resolve relative paths."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.issues: list[Issue] = []
        self.warnings: list[str] = []
        self._seen: set[tuple[int, int, str]] = set()
        self._redact = False
        self._active: set[int] = set()
        self._expanded = 0

    def error(self, loc: Loc, message: str) -> None:
        # An anchored node reused through aliases would report the same problem at the same place
        # once per use; one line is enough.
        key = (loc.line, loc.col, message)
        if key not in self._seen:
            self._seen.add(key)
            self.issues.append(Issue(self.source, loc.line, loc.col, loc.path, message))

    def warn(self, loc: Loc, message: str) -> None:
        text = str(Issue(self.source, loc.line, loc.col, loc.path, message))
        if text not in self.warnings:
            self.warnings.append(text)

    def got(self, node: YNode) -> str:
        """``, got <value>`` for messages, or nothing inside a credentials field (see `redacting`)."""
        return "" if self._redact else f", got {describe(node)}"

    @contextmanager
    def redacting(self, on: bool) -> Iterator[None]:
        # Values under credential keys are never echoed: a user who pasted a password into
        # password_env must not see it again in a CI log.
        before, self._redact = self._redact, self._redact or on
        try:
            yield
        finally:
            self._redact = before

    @contextmanager
    def entering(self, node: YNode, loc: Loc) -> Iterator[bool]:
        """Yields False (after recording an error) if ``node`` is already being checked.

        Aliases can make the node graph cyclic (``a: &x [*x]``); stop instead of recursing forever.
        """
        if id(node) in self._active:
            self.error(loc, "recursive YAML alias: a node contains itself")
            yield False
            return
        if len(self._active) >= MAX_DEPTH:
            raise LimitExceeded(
                loc.line,
                loc.col,
                loc.path,
                f"limit: nested more than {MAX_DEPTH} levels deep (counting merge keys)",
            )
        self.spend(1, loc)
        self._active.add(id(node))
        try:
            yield True
        finally:
            self._active.discard(id(node))

    def spend(self, count: int, loc: Loc) -> None:
        """Count values checked; aliases and merge keys can multiply them (a "billion laughs" file)."""
        self._expanded += count
        if self._expanded > MAX_EXPANDED:
            raise LimitExceeded(
                loc.line,
                loc.col,
                loc.path,
                f"limit: YAML aliases and merge keys expand to more than {MAX_EXPANDED:,} values",
            )

    def walk(self, vtype: ValueType, node: YNode, loc: Loc) -> Any:
        if self._active:
            with self.entering(node, loc) as ok:
                return vtype.check(node, loc, self) if ok else INVALID
        # The outermost call: a limit hit anywhere below ends the check with one located error.
        try:
            with self.entering(node, loc) as ok:
                return vtype.check(node, loc, self) if ok else INVALID
        except LimitExceeded as hit:
            self.issues.append(Issue(self.source, hit.line, hit.col, hit.path, hit.message))
            return INVALID


# --- reading documents -----------------------------------------------------------------------


def compose(text: str, ctx: Ctx, *, document: str, empty: str) -> YNode | None:
    """The YAML node graph, or None after recording why there is none."""
    from hcibenefit import yamlcache

    # A text read before, unchanged (an inventory, every run): its graph without parsing (yamlcache.py).
    limits = (MAX_NODES, MAX_DEPTH)
    kept = yamlcache.load(text, limits=limits)
    if kept is not None:
        return kept
    # Imported here, not at module level: ruamel.yaml costs ~25 ms and CLI start-up (--help,
    # --version) should not pay for it.
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        with warnings.catch_warnings():
            # A redefined anchor is valid YAML (the later one wins); ruamel would print a warning.
            warnings.simplefilter("ignore")
            root = compose_pure(text)
    except LimitExceeded as hit:
        ctx.error(Loc(hit.line, hit.col, ""), hit.message)
        return None
    except RecursionError:  # belt and braces: the composer limits depth far below Python's stack
        ctx.error(Loc(1, 1, ""), f"limit: nested more than {MAX_DEPTH} levels deep")
        return None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context
        if problem == "but found another document":
            problem = f"a second YAML document starts here; {document} is a single document"
        message = f"YAML syntax error: {problem}"
        if e.context and e.problem and e.context_mark is not None:
            message += f" ({e.context} at line {e.context_mark.line + 1})"
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        ctx.error(Loc(line, col, ""), message)
        return None
    except ReaderError as e:  # a control character YAML does not allow
        pos = e.position if isinstance(e.position, int) else 0
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = e.character if isinstance(e.character, int) else 0
        ctx.error(Loc(line, col, ""), f"YAML syntax error: control character U+{char:04X} is not allowed")
        return None
    except YAMLError as e:  # anything else ruamel reports without a position
        ctx.error(Loc(1, 1, ""), f"YAML error: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return None
    if root is None or is_null(root):
        ctx.error(Loc(1, 1, ""), empty)
        return None
    yamlcache.store(text, root, limits=limits)
    return root


def compose_pure(text: str) -> YNode:
    """ruamel.yaml's node graph of `text` (its pure Python parser, with `_limited_composer`); raises what
    ruamel raises."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _limited_composer()
    return yaml.compose(text)


_COMPOSER: Any = None


def _limited_composer() -> Any:
    """ruamel's Composer, counting values and nesting as it builds the node graph (it recurses per
    level, so the depth check must come before Python's recursion limit does).

    Graphs it built are kept between runs (yamlcache.py): a change to what it builds or refuses for a
    text must raise `yamlcache.FORMAT`, or runs would go on reading what the old one built."""
    global _COMPOSER
    if _COMPOSER is not None:
        return _COMPOSER
    from ruamel.yaml.composer import Composer

    class LimitedComposer(Composer):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.parser.peek_event()
            mark = event.start_mark
            self._hcibenefit_nodes = getattr(self, "_hcibenefit_nodes", 0) + 1
            if self._hcibenefit_nodes > MAX_NODES:
                raise LimitExceeded(
                    mark.line + 1,
                    mark.column + 1,
                    "",
                    f"limit: more than {MAX_NODES:,} YAML values in one file",
                )
            depth = getattr(self, "_hcibenefit_depth", 0)
            if depth >= MAX_DEPTH:
                raise LimitExceeded(
                    mark.line + 1, mark.column + 1, "", f"limit: nested more than {MAX_DEPTH} levels deep"
                )
            self._hcibenefit_depth = depth + 1
            try:
                node = super().compose_node(parent, index)
            finally:
                self._hcibenefit_depth = depth
            if node.id == "scalar" and isinstance(node.value, str):
                _check_encodable(node.value, node)
            return node

    _COMPOSER = LimitedComposer
    return _COMPOSER


def _check_encodable(text: str, node: YNode) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = ord(text[e.start])
        mark = node.start_mark
        raise LimitExceeded(
            mark.line + 1,
            mark.column + 1,
            "",
            f"the value holds U+{bad:04X}, a lone surrogate (from a \\u escape) that cannot be encoded; "
            "no name or path can hold it",
        ) from None


def read_document(source: str, error: type[SchemaError], *, what: str, hint: str | None = None) -> str:
    """A document's text; an unreadable, oversized or non-UTF-8 file raises ``error`` naming the file.

    At most `MAX_BYTES` are read, so ``/dev/zero`` or a 50 MB file is refused at once.
    """
    try:
        with open(source, "rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise error([Issue(source, None, None, "", f"cannot read {what}: {reason}")], hint=hint) from None
    if len(data) > MAX_BYTES:
        line = data.count(b"\n", 0, MAX_BYTES) + 1
        message = f"limit: larger than {MAX_BYTES // (1024 * 1024)} MiB, far more than {what} needs"
        raise error([Issue(source, line, 1, "", message)], hint=hint) from None
    try:
        # utf-8-sig: editors on Windows like to start files with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise error([Issue(source, line, col, "", f"not UTF-8 text (byte 0x{data[e.start]:02x})")]) from None


# --- scalars ---------------------------------------------------------------------------------


class UnsupportedTag(Exception):
    pass


def _to_int(text: str) -> int:
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if t.lower().startswith(prefix):
            return sign * int(t[2:], base)
    return sign * int(t, 10)


def _to_float(text: str) -> float:
    t = text.replace("_", "").lower()
    if t.lstrip("+-") == ".inf":
        return -math.inf if t.startswith("-") else math.inf
    if t == ".nan":
        return math.nan
    return float(t)


def scalar_value(node: YNode) -> object:
    """The Python value of a scalar node under YAML 1.2 (``yes`` is a string, ``true`` a bool)."""
    tag, text = node.tag, node.value
    if tag in (TAG_STR, TAG_TIMESTAMP):
        # Dates stay text: no inventory field is a date, and a name like 2024-01-01 is a name.
        return text
    if tag == TAG_NULL:
        return None
    if tag == TAG_BOOL:
        return text.lower() == "true"
    try:
        if tag == TAG_INT:
            return _to_int(text)
        if tag == TAG_FLOAT:
            return _to_float(text)
    except ValueError:
        return text
    raise UnsupportedTag(tag)


def is_null(node: YNode) -> bool:
    return bool(node.id == "scalar" and node.tag == TAG_NULL)


def describe(node: YNode) -> str:
    """How a value is shown after ``got``: strings quoted, numbers as written, collections by kind."""
    if node.id == "mapping":
        return "a mapping"
    if node.id == "sequence":
        return "a list"
    text = str(node.value)
    if node.tag == TAG_NULL:
        return "nothing" if text == "" else "null"
    if len(text) > 60:
        text = text[:57] + "..."
    if node.tag in (TAG_INT, TAG_FLOAT, TAG_BOOL):
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted if node.tag in (TAG_STR, TAG_TIMESTAMP) else f"{short_tag(node.tag)} {quoted}"


def short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:binary`` as the user wrote it: ``!!binary``."""
    return "!!" + tag.removeprefix(_T) if tag.startswith(_T) else tag


# --- value types -----------------------------------------------------------------------------


class ValueType(ABC):
    """Checks one node and returns its value, or records an error and returns `INVALID`."""

    expected: str = "a value"

    @abstractmethod
    def check(self, node: YNode, loc: Loc, ctx: Ctx) -> Any: ...

    def fail(self, node: YNode, loc: Loc, ctx: Ctx, expected: str | None = None) -> _Invalid:
        ctx.error(loc, f"expected {expected or self.expected}{ctx.got(node)}")
        return INVALID


class Scalar(ValueType, ABC):
    def check(self, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if node.id != "scalar":
            return self.fail(node, loc, ctx)
        try:
            value = scalar_value(node)
        except UnsupportedTag:
            ctx.error(loc, f"unsupported YAML tag {short_tag(node.tag)}; expected {self.expected}")
            return INVALID
        return self.convert(value, node, loc, ctx)

    @abstractmethod
    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any: ...


class Str(Scalar):
    def __init__(self, expected: str = "a non-empty string", pattern: str | None = None) -> None:
        self.expected = expected
        self.pattern = re.compile(pattern) if pattern else None

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if not isinstance(value, str) or not value.strip():
            return self.fail(node, loc, ctx)
        if self.pattern and not self.pattern.fullmatch(value):
            return self.fail(node, loc, ctx)
        return value


class Name(Str):
    """A name a Windows host could have (cluster, site, VM, user): no control characters.

    No cluster, node or VM name on Windows holds one, and in a name shown on a terminal an escape
    sequence can rewrite what is displayed (or forge a table row with a newline).
    """

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        out = super().convert(value, node, loc, ctx)
        if isinstance(out, str):
            bad = control_character(out)
            if bad is not None:
                ctx.error(loc, f"expected {self.expected} without control characters, got one ({bad})")
                return INVALID
        return out


def control_character(text: str) -> str | None:
    """The first control character in ``text`` as ``U+001B``, or None."""
    import unicodedata

    for char in text:
        if unicodedata.category(char) == "Cc":
            return f"U+{ord(char):04X}"
    return None


class Int(Scalar):
    def __init__(self, lo: int, hi: int | None = None) -> None:
        self.lo, self.hi = lo, hi
        self.expected = f"an integer {lo}-{hi}" if hi is not None else f"an integer >= {lo}"
        if hi == lo:
            self.expected = f"the integer {lo}"

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(node, loc, ctx)
        if value < self.lo or (self.hi is not None and value > self.hi):
            return self.fail(node, loc, ctx)
        return value


class Number(Scalar):
    """A finite number greater than (or, with ``allow_zero``, equal to) zero."""

    def __init__(self, unit: str = "seconds", *, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero
        self.expected = f"a number of {unit} {'>= 0' if allow_zero else '> 0'}"

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return self.fail(node, loc, ctx)
        if value < 0 or (value == 0 and not self.allow_zero):
            return self.fail(node, loc, ctx)
        return value


class Bool(Scalar):
    expected = "true or false"

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        return value if isinstance(value, bool) else self.fail(node, loc, ctx)


class Choice(Scalar):
    def __init__(self, values: Sequence[str]) -> None:
        self.values = tuple(values)
        self.expected = "one of " + ", ".join(self.values)

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        # "Kerberos" or "HTTPS" is unambiguous; accept it and store the canonical spelling.
        if isinstance(value, str):
            for v in self.values:
                if v.casefold() == value.casefold():
                    return v
        return self.fail(node, loc, ctx)


class Guid(Str):
    def __init__(self) -> None:
        super().__init__(
            "a GUID like 00000000-0000-0000-0000-000000000000",
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        )

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        out = super().convert(value, node, loc, ctx)
        # Lower case, as Azure Resource Graph returns ids, so later joins are plain comparisons.
        return out.lower() if isinstance(out, str) else out


class Host(Str):
    def __init__(self, expected: str = "a host name or IP address") -> None:
        # No scheme, port, path or blanks: `https://node1:5986/wsman` belongs in winrm settings.
        super().__init__(expected, r"[A-Za-z0-9_.\-]+|\[?[0-9A-Fa-f:.]+(%[A-Za-z0-9_.\-]+)?\]?")


class FilePath(Str):
    """A path; relative ones are taken relative to the inventory file's directory."""

    def __init__(self, expected: str = "a file path") -> None:
        super().__init__(expected)

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        out = super().convert(value, node, loc, ctx)
        if not isinstance(out, str):
            return out
        bad = control_character(out)
        if bad is not None:  # NUL ends a path in the OS, and no file name needs the others
            ctx.error(loc, f"expected {self.expected} without control characters, got one ({bad})")
            return INVALID
        p = Path(os.path.expanduser(out))
        # abspath, not resolve(): keep symlinks as the user wrote them, only anchor the path.
        return Path(os.path.abspath(p if p.is_absolute() else ctx.base_dir / p))


class CertValidation(Scalar):
    expected = "true, false or the path of a CA bundle"

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if isinstance(value, bool):
            return value
        return FilePath(self.expected).convert(value, node, loc, ctx)


class Regex(Str):
    def __init__(self) -> None:
        super().__init__("a regular expression")

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        out = super().convert(value, node, loc, ctx)
        if isinstance(out, str):
            try:
                re.compile(out)
            except re.error as e:
                ctx.error(loc, f"expected a valid regular expression: {e}")
                return INVALID
        return out


class HttpsUrl(Str):
    def __init__(self) -> None:
        super().__init__("an https:// URL")

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        out = super().convert(value, node, loc, ctx)
        if isinstance(out, str):
            try:
                parts = urlsplit(out)
            except ValueError:  # "https://[::1": an unclosed IPv6 address
                return self.fail(node, loc, ctx)
            if parts.scheme != "https" or not parts.netloc:
                return self.fail(node, loc, ctx)
        return out


# --- collections -----------------------------------------------------------------------------


class ListOf(ValueType):
    def __init__(self, item: ValueType, *, min_items: int = 0, expected: str | None = None) -> None:
        self.item = item
        self.min_items = min_items
        self.expected = expected or f"a list of {_plural(item.expected)}"

    def check(self, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if node.id != "sequence" or node.tag != TAG_SEQ:
            return self.fail(node, loc, ctx)
        if len(node.value) < self.min_items:
            ctx.error(loc, f"expected {self.expected}, got an empty list")
            return INVALID
        out = []
        for i, item in enumerate(node.value):
            v = ctx.walk(self.item, item, node_loc(item, join(loc.path, i)))
            if v is not INVALID:
                out.append(v)
        return tuple(out)


def _plural(expected: str) -> str:
    if expected == "a non-empty string":
        return "strings"
    return f"items each {expected}"


@dataclass
class Section:
    """A checked mapping: values by key, and where each key and value was written."""

    loc: Loc
    values: dict[str, Any] = field(default_factory=dict)
    locs: dict[str, Loc] = field(default_factory=dict)
    key_locs: dict[str, Loc] = field(default_factory=dict)
    # Keys that were given but failed their check: later rules must not guess around them.
    invalid: set[str] = field(default_factory=set)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def section(self, key: str) -> Section | None:
        v = self.values.get(key)
        return v if isinstance(v, Section) else None

    def loc_of(self, key: str) -> Loc:
        return self.locs.get(key) or self.key_locs.get(key) or self.loc


@dataclass(frozen=True)
class Field:
    type: ValueType | None = None
    required: bool = False
    # A credentials field: its value is never repeated in messages.
    sensitive: bool = False
    # The key is known only to explain why it is not allowed (e.g. a literal password).
    refused: str | None = None


def _unknown_key(key: str, known: Sequence[str], hints: Mapping[str, str]) -> str:
    import difflib  # only on this error path: keeps start-up imports small

    close = [hints[key]] if key in hints else difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'unknown key "{key}"; did you mean "{close[0]}"?'
    return f'unknown key "{key}"; expected one of: {", ".join(known)}'


class MapSpec(ValueType):
    """A mapping with a fixed set of keys.

    ``exclusive`` lists groups of keys of which at most one may be given; ``rule`` runs after the
    keys were checked, for constraints between keys; ``hints`` maps common wrong names (e.g.
    Ansible's) to ours for the "did you mean" suggestion; keys starting with ``extension_prefix``
    are ignored, so users can park YAML anchors there.
    """

    def __init__(
        self,
        expected: str,
        fields: Mapping[str, Field | ValueType],
        *,
        exclusive: Sequence[Sequence[str]] = (),
        rule: Callable[[Section, Ctx], None] | None = None,
        hints: Mapping[str, str] | None = None,
        extension_prefix: str | None = None,
    ) -> None:
        self.expected = expected
        self.fields = {k: f if isinstance(f, Field) else Field(f) for k, f in fields.items()}
        self.exclusive = exclusive
        self.rule = rule
        self.hints = dict(hints or {})
        self.extension_prefix = extension_prefix
        self.known = [k for k, f in self.fields.items() if f.refused is None]

    def check(self, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if node.id != "mapping" or node.tag != TAG_MAP:
            return self.fail(node, loc, ctx)
        sec = Section(loc)
        for key, knode, vnode in pairs(node, loc, ctx):
            kloc = node_loc(knode, join(loc.path, key))
            f = self.fields.get(key)
            if f is None:
                if not (self.extension_prefix and key.startswith(self.extension_prefix)):
                    ctx.error(kloc, _unknown_key(key, self.known, self.hints))
                continue
            if f.refused is not None:
                ctx.error(kloc, f.refused)
                continue
            sec.key_locs[key] = kloc
            if is_null(vnode):
                # `key:` with nothing (or `~`) means "not set", so a commented-out block does not
                # turn into an error; a required key still has to have a value.
                if f.required:
                    ctx.error(kloc, f"expected {f.type.expected if f.type else 'a value'}, got nothing")
                    sec.invalid.add(key)
                continue
            vloc = node_loc(vnode, kloc.path)
            assert f.type is not None
            with ctx.redacting(f.sensitive):
                value = ctx.walk(f.type, vnode, vloc)
            if value is INVALID:
                sec.invalid.add(key)
                continue
            sec.values[key] = value
            sec.locs[key] = vloc
        for key, f in self.fields.items():
            if f.required and key not in sec.key_locs:
                exp = f.type.expected if f.type else "a value"
                ctx.error(
                    Loc(loc.line, loc.col, join(loc.path, key)), f"missing required key; expected {exp}"
                )
                sec.invalid.add(key)
        for group in self.exclusive:
            given = [k for k in group if k in sec.key_locs]
            for extra in given[1:]:
                first = given[0]
                ctx.error(
                    sec.key_locs[extra],
                    f"only one of {', '.join(group)} may be given; "
                    f"{first} is already set at line {sec.key_locs[first].line}",
                )
                sec.invalid.add(extra)
                sec.values.pop(extra, None)
        if self.rule:
            self.rule(sec, ctx)
        return sec


def pairs(node: YNode, loc: Loc, ctx: Ctx) -> list[tuple[str, YNode, YNode]]:
    """The (key, key node, value node) pairs of a mapping, with YAML merge keys (``<<``) applied.

    Explicit keys win over merged ones, and earlier merge sources over later ones, as the YAML
    merge-key spec says. A key written twice explicitly is an error.
    """
    explicit: list[tuple[str, YNode, YNode]] = []
    merged: list[tuple[str, YNode, YNode]] = []
    for knode, vnode in node.value:
        if knode.tag == TAG_MERGE:
            sources = vnode.value if vnode.id == "sequence" else [vnode]
            for src in sources:
                if src.id != "mapping":
                    ctx.error(
                        node_loc(src, loc.path), "a merge key (<<) takes a mapping or a list of mappings"
                    )
                    continue
                with ctx.entering(src, node_loc(src, loc.path)) as ok:
                    if ok:
                        merged.extend(pairs(src, loc, ctx))
            continue
        if knode.id != "scalar":
            ctx.error(node_loc(knode, loc.path), "mapping keys must be plain strings")
            continue
        explicit.append((str(knode.value), knode, vnode))
    first_line: dict[str, int] = {}
    out: list[tuple[str, YNode, YNode]] = []
    for key, knode, vnode in explicit:
        if key in first_line:
            ctx.error(
                node_loc(knode, join(loc.path, key)),
                f'duplicate key "{key}" (first given at line {first_line[key]})',
            )
            continue
        first_line[key] = knode.start_mark.line + 1
        out.append((key, knode, vnode))
    for key, knode, vnode in merged:
        if key not in first_line:
            first_line[key] = knode.start_mark.line + 1
            out.append((key, knode, vnode))
    return out


class DictOf(ValueType):
    """A mapping with free-form keys (e.g. VM names) and one value type. Returns a dict."""

    def __init__(self, value: ValueType, *, expected: str, key: Str | None = None) -> None:
        self.value = value
        self.expected = expected
        self.key = key

    def check(self, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if node.id != "mapping" or node.tag != TAG_MAP:
            return self.fail(node, loc, ctx)
        out: dict[str, Any] = {}
        for key, knode, vnode in pairs(node, loc, ctx):
            if (
                self.key is not None
                and self.key.check(knode, node_loc(knode, join(loc.path, key)), ctx) is INVALID
            ):
                continue
            v = ctx.walk(self.value, vnode, node_loc(vnode, join(loc.path, key)))
            if v is not INVALID:
                out[key] = v
        return out


class StrOrMap(ValueType):
    """Either a plain string (shorthand for ``{key: string}``) or a full mapping."""

    def __init__(self, scalar: ValueType, mapping: MapSpec, *, key: str, expected: str) -> None:
        self.scalar, self.mapping, self.key = scalar, mapping, key
        self.expected = expected

    def check(self, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        if node.id == "mapping":
            return self.mapping.check(node, loc, ctx)
        if node.id != "scalar":
            return self.fail(node, loc, ctx)
        value = self.scalar.check(node, loc, ctx)
        if value is INVALID:
            return INVALID
        return Section(loc, values={self.key: value}, locs={self.key: loc}, key_locs={self.key: loc})
