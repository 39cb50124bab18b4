"""The warning every run gives when it connects to hosts whose TLS certificate it does not check.

``cert_validation: false`` is allowed (labs, first contact with a new cluster), but then every command
that connects says so on stderr, naming the hosts, once per host and run: a fleet run names them on
one line, not one line per call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from hcibenefit.inventory import WinRMSettings

log = logging.getLogger(__name__)

SHOWN = 8
"""Names listed before "and N more"."""

_lock = threading.Lock()
_warned: set[str] = set()


def warn_unvalidated(targets: Iterable[tuple[str, WinRMSettings]], *, what: str = "host") -> str | None:
    """Warn about the targets (name, settings) reached over HTTPS without certificate validation that
    this run has not warned about yet. Returns the warning (None when there is nothing new to say)."""
    with _lock:
        names = [
            name
            for name, settings in targets
            if settings.ssl and settings.cert_validation is False and name.casefold() not in _warned
        ]
        names = list(dict.fromkeys(names))
        _warned.update(n.casefold() for n in names)
    if not names:
        return None
    listed = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    plural = "s" if len(names) > 1 else ""
    message = (
        f"TLS certificate validation is off (cert_validation: false) for {len(names)} {what}{plural}: "
        f"{listed}; anyone on the network path can impersonate {'them' if plural else 'it'}"
    )
    log.warning("%s", message)
    return message


def forget_warnings() -> None:
    """A new run warns again (the CLI calls this at the start of each command)."""
    with _lock:
        _warned.clear()
