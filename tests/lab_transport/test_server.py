"""Server lifecycle: many nodes at once, stopping with stuck work, idle shells, per-shell and per-server limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from transport_helpers import PASSWORD, USER, ScriptedExecutor, TransportLab, wait_for

from hcibenefit.lab.wsman import NodeFaults, WSManServer

pytestmark = pytest.mark.lab


def make_lab(auth: str, nodes: int = 1, **server: Any) -> TransportLab:
    executor = ScriptedExecutor()
    wsman = WSManServer(
        executor, auth="basic" if auth == "basic" else "ntlm", username=USER, password=PASSWORD, **server
    )
    endpoints = [wsman.add_node(f"node{i}", NodeFaults()) for i in range(nodes)]
    wsman.start()
    return TransportLab(wsman, executor, endpoints, client_auth=auth)


@pytest.fixture
def own_lab(request: pytest.FixtureRequest) -> Iterator[TransportLab]:
    """A server of a test's own, for settings the shared ones must not change (`indirect` parameters)."""
    auth, server = request.param
    lab = make_lab(auth, **server)
    yield lab
    lab.server.stop()
    lab.executor.release.set()


def test_forty_nodes_start_fast_and_serve_in_parallel() -> None:
    started = time.monotonic()
    lab = make_lab("basic", nodes=40)
    try:
        assert time.monotonic() - started < 2.5
        assert len({(e.address, e.port) for e in lab.endpoints}) == 40
        for endpoint in lab.endpoints:
            lab.server.set_faults(endpoint.name, latency_ms=150)

        def session(node: int) -> Any:
            with lab.wsman(node) as w, RunspacePool(w) as pool, PowerShell(pool) as ps:
                return ps.add_script("echo").invoke()[0]["node"]

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=40) as pool:
            nodes = list(pool.map(session, range(40)))
        elapsed = time.monotonic() - started
        assert nodes == [e.name for e in lab.endpoints]
        # Each session is 7 requests of >= 150 ms; one after another they would take 42 s.
        assert elapsed < 15
        assert all(lab.server.stats(e.name).open_shells == 0 for e in lab.endpoints)
    finally:
        lab.server.stop()


@pytest.mark.parametrize("auth", ["basic", "negotiate"])
def test_stop_does_not_wait_for_stuck_work(auth: str) -> None:
    lab = make_lab(auth, nodes=2)
    lab.server.set_faults(lab.endpoints[1].name, hang=True)
    errors: list[BaseException] = []

    def client(node: int, script: str) -> None:
        try:
            with lab.wsman(node, read_timeout=30) as w, RunspacePool(w) as pool, PowerShell(pool) as ps:
                ps.add_script(script).invoke()
        except Exception as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=client, args=args, daemon=True) for args in ((0, "block"), (1, "echo"))
    ]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: bool(lab.executor.calls))
    time.sleep(0.3)  # for the other client's request to be in and hanging
    started = time.monotonic()
    lab.server.stop()
    assert time.monotonic() - started < 2
    for thread in threads:
        thread.join(5)
    assert len(errors) == 2  # both clients saw their connection go
    assert not [t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
    lab.executor.release.set()


@pytest.mark.parametrize("own_lab", [("basic", {"idle_timeout_s": 0.5})], indirect=True)
def test_idle_shells_are_reaped(own_lab: TransportLab) -> None:
    with own_lab.wsman() as w:
        pool = RunspacePool(w)
        pool.open()  # and never closed: the client leaks it
        assert own_lab.server.stats("node0").open_shells == 1
        time.sleep(0.7)
        assert own_lab.server.stats("node0").open_shells == 0
        with pytest.raises(WSManFaultError) as caught:
            PowerShell(pool).add_script("echo").invoke()
        assert caught.value.code == 2150858843
        assert not pool.is_alive()


@pytest.mark.parametrize("own_lab", [("negotiate", {"max_commands_per_shell": 2})], indirect=True)
def test_max_concurrent_commands_per_shell(own_lab: TransportLab) -> None:
    with own_lab.wsman() as w, RunspacePool(w) as pool:
        unclosed = [PowerShell(pool).add_script("echo") for _ in range(2)]
        for ps in unclosed:
            ps.invoke()  # without close(): no Terminate, so the command still counts
        with pytest.raises(WSManFaultError) as caught:
            PowerShell(pool).add_script("echo").invoke()
        assert caught.value.code == 2150859241
        # A plugin quota: Windows nests the text in a ProviderFault, as pypsrp reads it.
        assert caught.value.provider == "microsoft.powershell"
        assert caught.value.provider_path == "C:\\Windows\\system32\\pwrshplugin.dll"
        assert caught.value.provider_fault and "concurrent commands per shell" in caught.value.provider_fault
        assert caught.value.reason and "concurrent commands per shell" in caught.value.reason
        for ps in unclosed:
            ps.close()
        with PowerShell(pool) as ps:
            assert ps.add_script("echo").invoke()


def test_ntlm_servers_with_different_users_share_a_process() -> None:
    first = make_lab("negotiate")
    other = WSManServer(ScriptedExecutor(), auth="ntlm", username="LAB\\other", password="0ther-pw")
    endpoint = other.add_node("other", NodeFaults())
    other.start()
    try:
        lab = TransportLab(other, ScriptedExecutor(), [endpoint], client_auth="ntlm")
        with lab.wsman(password="0ther-pw", username="LAB\\other") as w, RunspacePool(w) as pool:
            assert PowerShell(pool).add_script("echo").invoke()[0]["user"].lower().endswith("other")
        with first.wsman() as w, RunspacePool(w) as pool:
            assert PowerShell(pool).add_script("echo").invoke()[0]["user"] == USER
    finally:
        first.server.stop()
        other.stop()
