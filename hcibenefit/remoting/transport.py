"""One interface to a node, whichever way it is reached: a WinRM session (``HostSession``) or Azure Arc
run commands (``ArcSession``, for ``transport: arc``). Operations open sessions here and never ask which.

Both open, run our scripts (``run(script, parameters, timeout_s=...)`` returns the parsed JSON document
or raises a ``RemotingError``), and close (always: a WinRM shell deleted, no run command left behind).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from hcibenefit.remoting.catalog import Script
from hcibenefit.remoting.session import Endpoint, HostSession


class Session(Protocol):
    endpoint: Endpoint

    def open(self) -> None: ...

    def close(self) -> None: ...

    def run(
        self, script: Script, parameters: Mapping[str, Any] | None = None, *, timeout_s: float = 300.0
    ) -> Any: ...


def open_session(endpoint: Endpoint, *, cancel: threading.Event | None = None) -> Session:
    """A session for the endpoint's transport, not yet opened."""
    if endpoint.arc is not None:
        from hcibenefit.remoting.arc import ArcSession

        return ArcSession(endpoint, cancel=cancel)
    return HostSession(endpoint, cancel=cancel)
