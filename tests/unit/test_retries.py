"""Retries happen only where repeating is safe: connecting, and read-only scripts; never a mutating one."""

from __future__ import annotations

from typing import Any

import pytest

from hcibenefit.inventory import WinRMSettings
from hcibenefit.remoting import session as session_module
from hcibenefit.remoting.catalog import HOST_FACTS, VM_BENEFITS_ENABLE
from hcibenefit.remoting.errors import UnreachableError
from hcibenefit.remoting.session import Endpoint, HostSession, run_script


def _endpoint(retries: int) -> Endpoint:
    settings = WinRMSettings(reconnection_retries=retries, reconnection_backoff=0.01)
    return Endpoint("n1", "127.0.0.1", settings, None)


def test_connecting_is_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = []

    def refuse(self: HostSession) -> None:
        attempts.append(1)
        raise UnreachableError("n1", "refused")

    monkeypatch.setattr(HostSession, "_open_once", refuse)
    with pytest.raises(UnreachableError):
        HostSession(_endpoint(retries=2)).open()
    assert len(attempts) == 3


@pytest.mark.parametrize(("script", "expected_runs"), [(HOST_FACTS, 2), (VM_BENEFITS_ENABLE, 1)])
def test_a_dropped_run_is_repeated_only_for_read_only_scripts(
    monkeypatch: pytest.MonkeyPatch, script: Any, expected_runs: int
) -> None:
    runs = []
    monkeypatch.setattr(HostSession, "open", lambda self: None)
    monkeypatch.setattr(HostSession, "close", lambda self: None)

    def drop(self: HostSession, *args: object, **kwargs: object) -> None:
        runs.append(1)
        raise UnreachableError("n1", "connection reset")

    monkeypatch.setattr(session_module.HostSession, "run", drop)
    with pytest.raises(UnreachableError):
        run_script(_endpoint(retries=0), script)
    assert len(runs) == expected_runs
