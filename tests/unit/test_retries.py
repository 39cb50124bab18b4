"""Retries happen only where repeating is safe: connecting, and read-only scripts after a transient error."""

from __future__ import annotations

from typing import Any

import pytest

from hcibenefit.inventory import WinRMSettings
from hcibenefit.remoting.catalog import HOST_FACTS, VM_BENEFITS_ENABLE
from hcibenefit.remoting.errors import AuthenticationFailed, RemoteTimeout, RemotingError, UnreachableError
from hcibenefit.remoting.session import Endpoint, HostSession, run_script


def _endpoint(retries: int) -> Endpoint:
    settings = WinRMSettings(reconnection_retries=retries, reconnection_backoff=0.01)
    return Endpoint("n1", "127.0.0.1", settings, None)


def _refusing(monkeypatch: pytest.MonkeyPatch, error: RemotingError) -> list[int]:
    attempts: list[int] = []

    def refuse(self: HostSession, *args: object) -> None:
        attempts.append(1)
        raise error

    monkeypatch.setattr(HostSession, "_open_once", refuse)
    return attempts


def test_connecting_is_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _refusing(monkeypatch, UnreachableError("n1", "connection timed out"))
    with pytest.raises(UnreachableError):
        HostSession(_endpoint(retries=2)).open()
    assert len(attempts) == 3


@pytest.mark.parametrize(
    ("error", "expected_attempts"),
    [
        (UnreachableError("n1", "connection reset", transient=True), 2),
        (UnreachableError("n1", "connection timed out"), 1),
        (AuthenticationFailed("n1", "the host refused the credentials (HTTP 401)"), 1),
    ],
)
def test_a_transient_connect_failure_gets_one_more_try_without_configured_retries(
    monkeypatch: pytest.MonkeyPatch, error: RemotingError, expected_attempts: int
) -> None:
    attempts = _refusing(monkeypatch, error)
    with pytest.raises(type(error)):
        HostSession(_endpoint(retries=0)).open()
    assert len(attempts) == expected_attempts


def _open_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_open(self: HostSession) -> None:
        self._pool = object()

    monkeypatch.setattr(HostSession, "open", fake_open)
    monkeypatch.setattr(HostSession, "close", lambda self: setattr(self, "_pool", None))


@pytest.mark.parametrize(("script", "expected_runs"), [(HOST_FACTS, 2), (VM_BENEFITS_ENABLE, 1)])
def test_a_dropped_run_is_repeated_only_for_read_only_scripts(
    monkeypatch: pytest.MonkeyPatch, script: Any, expected_runs: int
) -> None:
    runs = []
    _open_without_network(monkeypatch)

    def drop(self: HostSession, *args: object) -> None:
        runs.append(1)
        raise UnreachableError("n1", "connection reset", transient=True)

    monkeypatch.setattr(HostSession, "_run_once", drop)
    with pytest.raises(UnreachableError):
        run_script(_endpoint(retries=0), script)
    assert len(runs) == expected_runs


def test_a_read_only_script_that_times_out_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = []
    _open_without_network(monkeypatch)

    def hang(self: HostSession, *args: object) -> None:
        runs.append(1)
        raise RemoteTimeout("n1", "no answer within read_timeout (30 s)")

    monkeypatch.setattr(HostSession, "_run_once", hang)
    with pytest.raises(RemoteTimeout):
        run_script(_endpoint(retries=0), HOST_FACTS)
    assert len(runs) == 1


def test_a_retried_read_only_script_returns_the_second_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Any] = [UnreachableError("n1", "connection reset", transient=True), {"schema": "ok"}]
    _open_without_network(monkeypatch)

    def flaky(self: HostSession, *args: object) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(HostSession, "_run_once", flaky)
    assert run_script(_endpoint(retries=0), HOST_FACTS) == {"schema": "ok"}
