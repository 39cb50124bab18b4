"""The audit log: one JSON line per change hcibenefit made or tried to make (who, when, what, before/after).

Appended, never rewritten; secrets never reach it (records hold names and states only).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

AUDIT_ENV = "HCIBENEFIT_AUDIT_LOG"


def default_audit_path() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "hcibenefit" / "audit.log"


def audit_path(configured: Path | None) -> Path:
    """--audit-log / HCIBENEFIT_AUDIT_LOG, else the inventory's audit_log, else the per-user default."""
    from_env = os.environ.get(AUDIT_ENV)
    if from_env:
        return Path(from_env)
    return configured or default_audit_path()


class AuditLog:
    def __init__(self, path: Path, *, command: str) -> None:
        self.path = path
        self.command = command
        self.who = _who()
        self.client = socket.gethostname()

    def record(self, entry: Mapping[str, Any]) -> None:
        line = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(),
            "who": self.who,
            "client": self.client,
            "command": self.command,
            **entry,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(line, sort_keys=True) + "\n")


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers; the uid still says who
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
