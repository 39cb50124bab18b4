"""State files are private from birth: the sweep history (with SQLite's -wal and -shm beside it) and the
VM-name cache are 0600 in a 0700 directory, whatever the umask; what already exists keeps its mode."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.cli import vmcache
from hcibenefit.cli.vmcache import cache_dir, cache_file, remember_vms, remembered_vms
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
    assert mode(cache_file(inventory)) == 0o600 and mode(cache_dir()) == 0o700
    remember_vms(inventory, ["avd-03"])  # rewritten whole: still private, no partial file left
    assert mode(cache_file(inventory)) == 0o600
    assert [p.name for p in cache_dir().iterdir()] == [cache_file(inventory).name]


def test_the_vm_name_cache_is_written_only_when_the_names_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is written after the last host answered: a run that saw the same VMs as the last one leaves
    it alone, whatever other fleets' runs wrote meanwhile; one that saw others writes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fleet, other = tmp_path / "fleet.yaml", tmp_path / "other.yaml"
    writes: list[str] = []
    real_write = vmcache.write_private

    def counting_write(path: Path, text: str) -> None:
        writes.append(text)
        real_write(path, text)

    monkeypatch.setattr(vmcache, "write_private", counting_write)
    remember_vms(fleet, ["vm-02", "vm-01"])
    remember_vms(fleet, ["vm-01", "vm-02", "vm-01"])  # the same VMs
    assert len(writes) == 1
    remember_vms(fleet, ["vm-01", "vm-03"])
    remember_vms(other, ["db-01"])
    remember_vms(fleet, ["vm-01", "vm-03"])  # the same VMs; another fleet's file is not this one's
    assert len(writes) == 3
    assert remembered_vms(fleet) == ["vm-01", "vm-03"] and remembered_vms(other) == ["db-01"]
    cache_file(fleet).write_text(json.dumps({"inventory": str(fleet.resolve()), "names": ["vm-01", 7]}))
    assert remembered_vms(fleet) == ["vm-01"]  # what is not a name is not offered
    # A file that names another inventory (a digest collision, a copied cache) is not this fleet's.
    cache_file(fleet).write_text(json.dumps({"inventory": str(other.resolve()), "names": ["db-01"]}))
    assert remembered_vms(fleet) == []
    cache_file(fleet).write_text("not json")
    assert remembered_vms(fleet) == []


def test_a_run_reads_only_its_own_fleets_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other fleet's names stay unread: a status must not pay for the size of other fleets."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fleets = [tmp_path / f"fleet-{i}.yaml" for i in range(5)]
    for i, fleet in enumerate(fleets):
        remember_vms(fleet, [f"vm-{i}-{n}" for n in range(3)])
    read: list[str] = []
    real_read_text = Path.read_text

    def recording_read_text(path: Path, *args: Any, **kwargs: Any) -> str:
        read.append(path.name)
        return real_read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", recording_read_text)
    remember_vms(fleets[2], ["vm-2-0", "vm-2-1", "vm-2-2"])
    assert remembered_vms(fleets[3]) == ["vm-3-0", "vm-3-1", "vm-3-2"]
    assert read == [cache_file(fleets[2]).name, cache_file(fleets[3]).name]


def test_the_vm_name_cache_keeps_the_latest_fleets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(vmcache, "MAX_INVENTORIES", 3)
    (tmp_path / "cache" / "hcibenefit").mkdir(parents=True)
    legacy = tmp_path / "cache" / "hcibenefit" / "vm-names.json"  # every fleet in one file, as before
    legacy.write_text("{}")
    fleets = [tmp_path / f"fleet-{i}.yaml" for i in range(5)]
    for i, fleet in enumerate(fleets):
        remember_vms(fleet, [f"vm-{i}"])
        os.utime(cache_file(fleet), (1_000_000 + i, 1_000_000 + i))  # written in this order
    assert [remembered_vms(f) for f in fleets] == [[], [], ["vm-2"], ["vm-3"], ["vm-4"]]
    assert not legacy.exists()
    remember_vms(fleets[0], ["vm-0"])  # written now: the oldest of the others goes
    assert [bool(remembered_vms(f)) for f in fleets] == [True, False, False, True, True]
