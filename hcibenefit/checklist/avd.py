"""What AVD on Azure Local asks of a session host beyond the sweep's checks, as pure facts-in, verdict-out
helpers: which releases are supported, which health checks the AVD service runs.

Sources: Azure Local release information (23H2 = OS build 25398, solution 11.x, whose last release 11.2510
is supported to April 2026; 24H2 = 26100, 12.x), the Azure Virtual Desktop for Azure Local overview
(23H2 or later), the session host health check list of azure-mgmt-desktopvirtualization 2.0.0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

END_OF_23H2 = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
"""Azure Local 11.2510, the last 23H2 (11.x) release, is supported to April 2026."""
END_OF_22H2 = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
"""Azure Stack HCI 22H2 reached end of service on May 31, 2025."""

REQUIRED_HEALTH_CHECKS = ("DomainJoinedCheck", "MetaDataServiceCheck")
"""Session host health checks a go needs: joined to the domain, and the metadata service (IMDS) in reach."""


@dataclass(frozen=True)
class Release:
    name: str
    """22H2, 23H2, 24H2 or later, ... as people say it."""
    verdict: str
    """ok, warn (activation works, support has ended or ends soon) or fail (AVD on Azure Local cannot run)."""
    why: str


def release_of(release: str, build: str, now: dt.datetime) -> Release:
    """A node's release from what host facts report (HostFacts.release and the OS build)."""
    number = int(build) if build.isdigit() else None
    if release in ("21H2", "22H2") or (number is not None and number < 20350):
        ended = "ended May 31, 2025" if now >= END_OF_22H2 else "ends May 31, 2025"
        return Release(
            release if release != "unknown" else f"build {build}",
            "fail",
            f"Azure Virtual Desktop on Azure Local needs 23H2 or later; 22H2 service {ended}",
        )
    if number is not None and number >= 26100:
        return Release("24H2 or later", "ok", "a supported release (solution 12.x)")
    if release in ("23H2", "23H2+") and number is not None:
        if now >= END_OF_23H2:
            return Release(
                "23H2",
                "warn",
                "23H2 (solution 11.x) left support in April 2026: Azure Benefits still work; "
                "upgrade to 12.x (24H2) to stay supported",
            )
        return Release("23H2", "ok", "supported until April 2026 (solution 11.2510 is the last 11.x)")
    return Release(f"build {build or 'unknown'}", "fail", "the OS build could not be read")
