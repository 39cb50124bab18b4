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

from hcibenefit.statefiles import write_private

MAX_INVENTORIES = 20


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hcibenefit" / "vm-names.json"


def _read() -> dict[str, list[str]]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [n for n in v if isinstance(n, str)] for k, v in data.items() if isinstance(v, list)}


def remembered_vms(inventory: Path) -> list[str]:
    return _read().get(str(Path(inventory).resolve()), [])


def remember_vms(inventory: Path, names: Iterable[str]) -> None:
    """Best effort: a read-only home or a full disk must never fail the command that ran."""
    data = _read()
    key = str(Path(inventory).resolve())
    data.pop(key, None)
    data[key] = sorted(set(names))
    while len(data) > MAX_INVENTORIES:
        data.pop(next(iter(data)))
    with contextlib.suppress(OSError):
        # The fleet's VM names: 0600 in a 0700 directory, like every state file (hcibenefit.statefiles).
        write_private(cache_file(), json.dumps(data))
