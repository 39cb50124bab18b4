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

# The first cumulative update with which each guest release activates through Azure VM verification: the
# April 9, 2024 updates the Azure Local documentation names (Windows 11 22H2/23H2 KB5036893, 21H2 KB5036894,
# Windows 10 21H2/22H2 KB5036892, Windows Server 2022 KB5036909), with the OS build each one brings. Releases
# from 26100 on (Windows 11 24H2, Windows Server 2025) shipped after them. Build → (UBR, KB).
MINIMUM_UPDATE: dict[int, tuple[int, str]] = {
    19044: (4291, "KB5036892"),
    19045: (4291, "KB5036892"),
    20348: (2402, "KB5036909"),
    22000: (2899, "KB5036894"),
    22621: (3447, "KB5036893"),
    22631: (3447, "KB5036893"),
}
LATER_RELEASES = 26100

KERBEROS_SKEW_S = 300
"""Kerberos' default MaxClockSkew: a session host further off its domain controllers cannot sign users in."""
CLOCK_WARN_S = 60


@dataclass(frozen=True)
class UpdateLevel:
    verdict: str
    """ok, fail, or unknown (no minimum is known for the build)."""
    why: str


def update_level(build: str, ubr: int | None) -> UpdateLevel:
    """Whether a guest's cumulative update is at or above the first that supports Azure VM verification."""
    number = int(build) if build.isdigit() else None
    if number is None:
        return UpdateLevel("unknown", f"the guest reported no OS build ({build or 'none'})")
    if number >= LATER_RELEASES:
        return UpdateLevel(
            "ok", f"build {number}.{ubr if ubr is not None else '?'}: a release newer than April 2024"
        )
    minimum = MINIMUM_UPDATE.get(number)
    if minimum is None:
        return UpdateLevel(
            "unknown",
            f"build {number}: no cumulative update of this release is known to support Azure VM verification",
        )
    least, kb = minimum
    if ubr is None:
        return UpdateLevel("unknown", f"build {number}: the guest did not report its update revision (UBR)")
    if ubr < least:
        return UpdateLevel("fail", f"build {number}.{ubr} is older than {number}.{least} ({kb}, April 2024)")
    return UpdateLevel("ok", f"build {number}.{ubr}, at or above {number}.{least} ({kb})")


def clock_skew(guest_at: dt.datetime, node_window: tuple[dt.datetime, dt.datetime]) -> tuple[float, float]:
    """How far the guest's clock is off its node's, as an interval (least, most) in seconds, positive when it
    is ahead: the guest read its clock while the node's went from the window's start to its end."""
    low, high = node_window
    return (guest_at - high).total_seconds(), (guest_at - low).total_seconds()


def nearest_zero(interval: tuple[float, float]) -> float:
    """The smallest skew the measurement allows (0 when the interval holds it): what a verdict may rely on."""
    least, most = interval
    if least <= 0 <= most:
        return 0.0
    return least if least > 0 else most


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
