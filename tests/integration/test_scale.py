"""Fleet-scale behaviour over real WinRM: many sessions at once lose no node, and what a node costs."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.inventory import CredentialResolver, load_inventory
from hcibenefit.lab.spec import generate_fleet
from hcibenefit.operations.gather import connections
from hcibenefit.remoting import pypsrp_fixes
from hcibenefit.remoting.session import HostSession, _wsman_kwargs
from tests.integration.conftest import client_for, start_lab


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads far more often than usual so that races between sessions show up in a short test."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_sessions_opened_from_many_threads_at_once_lose_no_node(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    frequent_thread_switches: None,
) -> None:
    spec = generate_fleet(2, 8, 1, seed=11)
    lab = start_lab(spec, read_timeout=30.0)
    try:
        client = client_for(lab, tmp_path, monkeypatch, capsys)
        inventory = load_inventory(client.inventory)
        endpoints = [c.endpoint for c in connections(inventory.all_nodes(), CredentialResolver())]
        start = threading.Barrier(len(endpoints))
        failures: list[str] = []

        def open_and_close_repeatedly(index: int) -> None:
            endpoint = endpoints[index]
            start.wait()
            for _ in range(10):
                try:
                    with HostSession(endpoint):
                        pass
                except Exception as exc:
                    failures.append(f"{endpoint.name}: {exc}")

        done = threading.Event()

        def start_sessions_elsewhere() -> None:
            # What hundreds of other nodes starting at the same moment do first: build their WSMan.
            from pypsrp.wsman import WSMan

            pypsrp_fixes.load()
            while not done.is_set():
                WSMan(endpoints[0].address, **_wsman_kwargs(endpoints[0]))

        others = [threading.Thread(target=start_sessions_elsewhere) for _ in range(4)]
        threads = [
            threading.Thread(target=open_and_close_repeatedly, args=(i,)) for i in range(len(endpoints))
        ]
        for thread in [*others, *threads]:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        for thread in others:
            thread.join()
        assert failures == []
        result = client.cli("status", "--format", "json", "--fail-on", "none", "--parallel", "16")
        assert result.code == ExitCode.OK, result.err
        assert [n["name"] for n in result.json()["nodes"] if n["verdict"] == "unreachable"] == []
        assert lab.open_shells() == 0
    finally:
        lab.stop()
