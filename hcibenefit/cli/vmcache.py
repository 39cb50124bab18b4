"""VM names seen by the last `status` run, per inventory: what shell completion offers for --vm.

Completing a VM name must not connect to the fleet (a TAB would wait for every node), so `status`
remembers the names it saw in the user's cache directory. Losing a file loses nothing but completion.

Each inventory has a file of its own (named by a digest of the inventory's resolved path), so a run reads
and writes only its own fleet's names: with one file for every fleet, each status read and parsed every
other fleet's names too (800 KB with a few benchmark fleets in it: 7 ms at the end of a one-cluster
status, all of it after the last host had answered).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hcibenefit.statefiles import cache_home, keep_newest, write_private

MAX_INVENTORIES = 20
"""Fleets remembered; the least recently written go first."""
LEGACY_FILE = "vm-names.json"
"""Where every fleet's names were kept in one file, before a file per inventory."""


def cache_dir() -> Path:
    return cache_home() / "vm-names"


def _key(inventory: Path) -> str:
    return str(Path(inventory).resolve())


def cache_file(inventory: Path) -> Path:
    return cache_dir() / f"{hashlib.sha256(_key(inventory).encode('utf-8')).hexdigest()[:32]}.json"


def _read(path: Path, key: str) -> list[Any] | None:
    """The names written in `path` for the inventory `key`, or None (no file, not JSON, another
    inventory's)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("inventory") != key:
        return None
    names = data.get("names")
    return names if isinstance(names, list) else None


def remembered_vms(inventory: Path) -> list[str]:
    return [n for n in _read(cache_file(inventory), _key(inventory)) or [] if isinstance(n, str)]


def remember_vms(inventory: Path, names: Iterable[str]) -> None:
    """Best effort: a read-only home or a full disk must never fail the command that ran.

    This runs after the last host answered: a run whose fleet has the same VMs as last time leaves its
    file as it is."""
    path, key, wanted = cache_file(inventory), _key(inventory), sorted(set(names))
    if _read(path, key) == wanted:
        return
    with contextlib.suppress(OSError):
        # The fleet's VM names: 0600 in a 0700 directory, like every state file (hcibenefit.statefiles).
        write_private(path, json.dumps({"inventory": key, "names": wanted}))
        keep_newest(cache_dir(), MAX_INVENTORIES, keep=path)
        (cache_dir().parent / LEGACY_FILE).unlink(missing_ok=True)
