"""The order of a node's last steps in a host-facts pass: a session nothing else will use is deleted
before its answer is parsed, so that one node's parsing does not hold back the next node's Delete."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from hcibenefit.facts import host as host_facts
from hcibenefit.inventory.model import Node, WinRMSettings
from hcibenefit.operations import gather
from hcibenefit.remoting.errors import MalformedOutputError
from hcibenefit.remoting.runner import SessionHolder
from hcibenefit.remoting.session import Endpoint


class _RecordingSession:
    """Stands in for the session only to record the order of calls; the remote side is not simulated."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def open(self) -> None:
        self.events.append("open")

    def run(self, script: Any, parameters: Any, *, timeout_s: float) -> dict[str, Any]:
        self.events.append("run")
        return {"schema": "host-facts/3"}

    def close(self) -> None:
        self.events.append("close")


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    recorded: list[str] = []
    monkeypatch.setattr(gather, "open_session", lambda endpoint, cancel: _RecordingSession(recorded))

    def parse(document: Any, *, node: str, cluster: str) -> str:
        recorded.append("parse")
        if document.get("broken"):
            raise host_facts.FactsError("os: expected an object")
        return f"facts of {node}"

    monkeypatch.setattr(host_facts, "parse_host_facts", parse)
    return recorded


def _connection() -> gather.Connection:
    node = Node("n1", "n1.example", "c1", WinRMSettings(), credentials=None, guest_credentials=None)
    return gather.Connection(node, Endpoint(node.name, node.address, node.winrm, None))


def test_a_session_nothing_else_needs_is_deleted_before_the_answer_is_parsed(events: list[str]) -> None:
    facts = gather.fetch_host_facts(_connection(), threading.Event())
    assert facts == "facts of n1"
    assert events == ["open", "run", "close", "parse"]


@pytest.mark.parametrize("second_pass", [True, False])
def test_a_session_a_second_pass_may_need_waits_for_the_parse(events: list[str], second_pass: bool) -> None:
    with SessionHolder() as holder:
        gather.fetch_host_facts(_connection(), threading.Event(), holder=holder, hold=lambda f: second_pass)
        assert events == ["open", "run", "parse"] + ([] if second_pass else ["close"])
        assert (holder.take("n1") is not None) is second_pass


def test_an_answer_that_does_not_parse_leaves_no_session_open(
    events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_RecordingSession, "run", lambda self, *a, **k: events.append("run") or {"broken": 1})
    with SessionHolder() as holder, pytest.raises(MalformedOutputError, match=r"n1: .*os: expected"):
        gather.fetch_host_facts(_connection(), threading.Event(), holder=holder, hold=lambda f: True)
    assert events == ["open", "run", "parse", "close"]
