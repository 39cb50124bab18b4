"""Two long-lived servers (Basic over HTTPS, Negotiate over HTTP) shared by the transport tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# As in tests/attestation: plain `pytest` cannot import the uninstalled package without this.
if importlib.util.find_spec("hcibenefit") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transport_helpers import EXTRA_CONFIGURATION, PASSWORD, USER, ScriptedExecutor, TransportLab

from hcibenefit.lab.wsman import NodeFaults, WSManServer

NODES = 3
_servers: dict[str, TransportLab] = {}


def _start(auth: str) -> TransportLab:
    executor = ScriptedExecutor()
    server = WSManServer(
        executor,
        auth="basic" if auth == "basic" else "ntlm",
        username=USER,
        password=PASSWORD,
        accepted_configurations=(EXTRA_CONFIGURATION,),
    )
    endpoints = [server.add_node(f"hci-n{i + 1:02d}", NodeFaults()) for i in range(NODES)]
    server.start()
    return TransportLab(server, executor, endpoints, client_auth=auth)


@pytest.fixture(scope="session", autouse=True)
def _stop_servers() -> Iterator[None]:
    yield
    for lab in _servers.values():
        lab.server.stop()


@pytest.fixture(params=["basic", "negotiate"])
def lab(request: pytest.FixtureRequest) -> TransportLab:
    """Each test runs against Basic/HTTPS and against Negotiate(NTLM)/HTTP with message encryption."""
    auth: str = request.param
    if auth not in _servers:
        _servers[auth] = _start(auth)
    return _servers[auth]


@pytest.fixture
def ntlm_lab() -> TransportLab:
    if "negotiate" not in _servers:
        _servers["negotiate"] = _start("negotiate")
    return _servers["negotiate"]


@pytest.fixture(autouse=True)
def _no_leaked_shells() -> Iterator[None]:
    """Every test must leave zero open shells on every node; faults go back to their defaults."""
    yield
    leaked: dict[str, int] = {}
    for lab in _servers.values():
        for endpoint in lab.endpoints:
            if open_shells := lab.server.stats(endpoint.name).open_shells:
                leaked[f"{lab.client_auth}/{endpoint.name}"] = open_shells
            if open_shells:
                lab.server.set_faults(endpoint.name, down=True)  # a host going down loses its shells
            lab.server.set_faults(endpoint.name, **vars(NodeFaults()))
        lab.executor.release.set()
        lab.executor.release.clear()
        lab.executor.stopped.clear()
    assert not leaked, f"shells left open: {leaked}"
