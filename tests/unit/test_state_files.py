"""State files are private from birth: the sweep history (with SQLite's -wal and -shm beside it) and the
VM-name cache are 0600 in a 0700 directory, whatever the umask; what already exists keeps its mode."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcibenefit.cli import vmcache
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


def test_the_vm_name_cache_is_written_only_when_the_names_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It holds up to 20 fleets' names and is written after the last host answered: a run that saw the
    same VMs as the last one leaves it alone; one that saw others, or another fleet's run between, writes."""
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
    remember_vms(fleet, ["vm-01", "vm-03"])  # the same VMs, but another fleet was written since
    assert len(writes) == 4
    assert remembered_vms(fleet) == ["vm-01", "vm-03"] and remembered_vms(other) == ["db-01"]
    assert list(json.loads(cache_file().read_text())) == [str(other.resolve()), str(fleet.resolve())]
    cache_file().write_text(json.dumps({str(fleet.resolve()): ["vm-01", 7], "junk": "x"}))
    assert remembered_vms(fleet) == ["vm-01"]  # what is not a name is not offered
    remember_vms(other, ["db-01"])
    assert json.loads(cache_file().read_text()) == {
        str(fleet.resolve()): ["vm-01", 7],
        str(other.resolve()): ["db-01"],
    }
