"""The verdict words each command reports, as plain constants: the CLI offers them for --verdict
without importing the checks themselves (start-up stays fast)."""

from __future__ import annotations

STATUS_VERDICTS = ("ok", "missing", "broken", "unknown", "not-needed", "excluded")
"""A VM's verdict in `status` (and what enable/disable select by): see README "VM verdicts"."""

NOT_ASSESSED = "not-assessed"
"""`status` only: a VM role a reachable node names on a node that was not reached (nothing to act on)."""

NODE_VERDICTS = (
    "ok",
    "warning",
    "expired",
    "inactive",
    "error",
    "broken",
    "unregistered",
    "unreachable",
    "skipped",
)

GUEST_VERDICTS = ("activated", "at-risk", "not-activated", "not-assessable", "auth-failed")
"""A VM's verdict in `guest check` / `guest kick`: see docs/guests.md."""
