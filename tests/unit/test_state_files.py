"""State files are private from birth: the sweep history (with SQLite's -wal and -shm beside it) and the
VM-name cache are 0600 in a 0700 directory, whatever the umask; what already exists keeps its mode."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcibenefit.cli.vmcache import cache_file, remember_vms, remembered_vms
from hcibenefit.sweep.history import History

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX modes; Windows uses the profile's ACLs"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The common default: files 0644 and directories 0755 unless the code asks for less."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_history_is_private_with_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "data" / "hcibenefit" / "history.sqlite"
    with History(path) as history:
        assert history.runs() == []
        journal = [p for p in path.parent.iterdir() if p.name != path.name]
        assert journal, "WAL mode keeps a -wal and -shm beside the database while it is open"
        assert {p.name: mode(p) for p in journal} == {p.name: 0o600 for p in journal}
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_an_existing_history_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    shared = tmp_path / "team"
    shared.mkdir(mode=0o750)
    path = shared / "history.sqlite"
    with History(path):
        pass
    path.chmod(0o640)
    with History(path):
        pass
    assert mode(path) == 0o640 and mode(shared) == 0o750


def test_the_vm_name_cache_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inventory = tmp_path / "fleet.yaml"
    remember_vms(inventory, ["avd-01", "avd-02"])
    assert remembered_vms(inventory) == ["avd-01", "avd-02"]
    assert mode(cache_file()) == 0o600 and mode(cache_file().parent) == 0o700
    remember_vms(inventory, ["avd-03"])  # rewritten whole: still private, no partial file left
    assert mode(cache_file()) == 0o600 and [p.name for p in cache_file().parent.iterdir()] == [
        "vm-names.json"
    ]
