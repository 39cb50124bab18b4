"""Parsed YAML kept by its text's digest (hcibenefit/yamlcache.py): an unchanged file is not parsed again,
and what is read back is the graph the parser built, so every check on it comes out the same."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from hcibenefit import yamlcache, yamlschema
from hcibenefit.errors import ConfigError
from hcibenefit.inventory.loader import InventoryError, load_inventory, parse_inventory
from tests.unit.test_fuzz_hostile_input import ADVERSARIAL_INVENTORIES

TEXTS = {
    "mapping": "a: 1\nb: [x, 'y', \"z\"]\nc: {d: ~, e: true, f: 1.5}\n",
    "aliases and merge keys": (
        "base: &base {transport: https, port: 5986}\n"
        "one:\n  <<: *base\n  port: 5985\n"
        "two: *base\n"
        "list: [&n 1, *n, *n]\n"
    ),
    "a node that holds itself": "&loop [a, *loop]\n",
    "block scalars and comments": "# top\nkey: |\n  line one\n  line two\nfolded: >-\n  a\n  b\n# end\n",
    "text": 'name: "caf\\u00e9 \\t tab"\nother: ü€\n',
    "tags": "a: !!str 1\nb: !!int '2'\nc: 2001-12-14\nd: .inf\n",
    "empty values": "a:\nb: ''\nc: []\nd: {}\n",
}


def _graph(node: Any, seen: dict[int, int] | None = None) -> Any:
    """A node graph as plain data: kind, tag, value, where it starts, and which nodes are one node."""
    seen = {} if seen is None else seen
    if id(node) in seen:
        return ("same node as", seen[id(node)])
    seen[id(node)] = len(seen)
    where = (node.start_mark.line, node.start_mark.column)
    if node.id == "scalar":
        return (node.id, node.tag, node.value, where)
    if node.id == "sequence":
        return (node.id, node.tag, where, [_graph(m, seen) for m in node.value])
    return (node.id, node.tag, where, [(_graph(k, seen), _graph(v, seen)) for k, v in node.value])


def _compose(text: str) -> Any:
    ctx = yamlschema.Ctx("test.yaml", Path("."))
    root = yamlschema.compose(text, ctx, document="the file", empty="empty")
    assert not ctx.issues, ctx.issues
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return yamlcache.cache_dir()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each text ruamel parses from now on."""
    seen: list[str] = []
    real = yamlschema.compose_pure

    def counting(text: str) -> Any:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(yamlschema, "compose_pure", counting)
    return seen


def _lab_fleet() -> str:
    from importlib.resources import files

    return files("hcibenefit.lab").joinpath("fleets/default.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("text", [*TEXTS.values(), _lab_fleet()], ids=[*TEXTS, "lab fleet"])
def test_what_is_read_back_is_the_graph_the_parser_built(text: str, cache: Path, parses: list[str]) -> None:
    parsed = _compose(text)
    kept = _compose(text)
    assert parses == [text]  # the second time from the cache
    assert kept is not parsed and type(kept) is yamlcache.Node
    assert _graph(kept) == _graph(parsed)


def test_a_changed_text_is_parsed_again(cache: Path, parses: list[str]) -> None:
    _compose("a: 1\n")
    _compose("a: 1\n# a comment changes nothing the schema sees, but it is another text\n")
    assert len(parses) == 2


def test_another_composer_other_limits_or_another_ruamel_parse_again(
    cache: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _compose("a: 1\n")
    monkeypatch.setattr(yamlcache, "FORMAT", yamlcache.FORMAT + 1)
    _compose("a: 1\n")
    monkeypatch.setattr(yamlschema, "MAX_NODES", 50)
    _compose("a: 1\n")
    monkeypatch.setattr(yamlcache, "_RUAMEL", "another ruamel.yaml")
    _compose("a: 1\n")
    assert len(parses) == 4


def test_a_file_that_does_not_compose_is_never_kept(cache: Path, parses: list[str]) -> None:
    for _ in range(2):
        ctx = yamlschema.Ctx("bad.yaml", Path("."))
        assert yamlschema.compose("a: [1, 2\n", ctx, document="the file", empty="empty") is None
        assert ctx.issues and "YAML syntax error" in ctx.issues[0].message
    assert len(parses) == 2
    assert not cache.exists() or not list(cache.iterdir())


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b'{"nodes": 3}',
        b'{"nodes": [[7, "t", 0, 0, "x"]]}',
        b'{"nodes": [[1, "t", 0, 0, [5]]]}',
    ],
    ids=["empty", "not json", "not a list", "no such kind", "no such member"],
)
def test_a_file_that_is_not_a_graph_is_read_again_and_replaced(
    content: bytes, cache: Path, parses: list[str]
) -> None:
    text = "a: 1\n"
    _compose(text)
    (kept,) = cache.iterdir()
    kept.write_bytes(content)
    assert _graph(_compose(text)) == _graph(yamlschema.compose_pure(text))
    assert len(parses) == 2 + 1  # read again (the compare above parsed once more itself)
    assert kept.read_bytes() != content


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_the_files_are_private(cache: Path) -> None:
    _compose("a: 1\n")
    (kept,) = cache.iterdir()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_the_most_recently_written_are_kept(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlcache, "MAX_FILES", 3)
    for n in range(5):
        _compose(f"a: {n}\n")
        for path in cache.iterdir():  # older than the next one written, whatever the clock's grain
            os.utime(path, (path.stat().st_atime, path.stat().st_mtime - 1))
    assert len(list(cache.iterdir())) == 3


def test_a_cache_that_cannot_be_written_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert _graph(_compose("a: 1\n")) == _graph(yamlschema.compose_pure("a: 1\n"))


def test_an_inventory_read_back_gives_the_same_inventory_and_the_same_errors(
    cache: Path, tmp_path: Path, parses: list[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "defaults:\n  winrm: {transport: https, auth: certificate, certificate_pem: c.pem,"
        " certificate_key_pem: k.pem}\n"
        "clusters:\n  - name: c1\n    nodes:\n      - {name: n1, address: 10.0.0.1}\n      - n2\n",
        encoding="utf-8",
    )
    assert load_inventory(good) == load_inventory(good)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "clusters:\n  - name: c1\n    nodes:\n      - {name: n1, adress: 10.0.0.1}\n", encoding="utf-8"
    )
    errors = []
    for _ in range(2):
        with pytest.raises(ConfigError) as raised:
            load_inventory(bad)
        errors.append(str(raised.value))
    assert len(parses) == 2  # each file parsed once: the schema error is found on the graph read back
    assert errors[0] == errors[1] and "bad.yaml:4:" in errors[0] and "adress" in errors[0]


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_INVENTORIES))
def test_a_hostile_file_is_refused_the_same_way_the_second_time(
    name: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Among them files that compose small and are kept, whose limits are met only when the schema
    walks the graph (aliases that expand a billion-fold, a node that holds itself): the copy keeps
    shared nodes shared, so the walk meets them again."""
    monkeypatch.setattr(yamlschema, "MAX_NODES", 2_000)
    monkeypatch.setattr(yamlschema, "MAX_EXPANDED", 20_000)
    refusals = []
    for _ in range(2):
        with pytest.raises(InventoryError) as caught:
            parse_inventory(ADVERSARIAL_INVENTORIES[name], "fuzz.yaml")
        refusals.append(str(caught.value))
    assert refusals[0] == refusals[1]


def test_a_bomb_is_kept_and_still_refused(
    cache: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlschema, "MAX_EXPANDED", 20_000)
    for _ in range(2):
        with pytest.raises(InventoryError, match="limit:"):
            parse_inventory(ADVERSARIAL_INVENTORIES["merge-key-bomb"], "fuzz.yaml")
    assert len(parses) == 1  # composed once, kept, and walked (and refused) twice
