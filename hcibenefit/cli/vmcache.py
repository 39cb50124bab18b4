"""VM names seen by the last `status` run, per inventory: what shell completion offers for --vm.

Completing a VM name must not connect to the fleet (a TAB would wait for every node), so `status`
remembers the names it saw in the user's cache directory. Losing the file loses nothing but completion.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hcibenefit.statefiles import write_private

MAX_INVENTORIES = 20


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hcibenefit" / "vm-names.json"


def _read() -> dict[str, Any]:
    """The file as written: inventory path -> its VM names. Each entry is checked where it is used."""
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remembered_vms(inventory: Path) -> list[str]:
    names = _read().get(str(Path(inventory).resolve()))
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def remember_vms(inventory: Path, names: Iterable[str]) -> None:
    """Best effort: a read-only home or a full disk must never fail the command that ran.

    The file holds up to MAX_INVENTORIES fleets' names (tens of thousands of names, hundreds of KB), and
    this runs after the last host answered: a run whose fleet has the same VMs as last time, and was
    the last one written, leaves the file as it is rather than writing it all again."""
    data = _read()
    key = str(Path(inventory).resolve())
    wanted = sorted(set(names))
    if list(data)[-1:] == [key] and data[key] == wanted:
        return
    data = {k: v for k, v in data.items() if isinstance(v, list) and k != key}
    data[key] = wanted
    while len(data) > MAX_INVENTORIES:
        data.pop(next(iter(data)))
    with contextlib.suppress(OSError):
        # The fleet's VM names: 0600 in a 0700 directory, like every state file (hcibenefit.statefiles).
        write_private(cache_file(), json.dumps(data))
