"""One refused password is tried once per run, however many nodes share it (account lockout)."""

from __future__ import annotations

import threading
import time

import pytest

from hcibenefit.inventory.logon import LogonGate, LogonSkipped


def _race(gate: LogonGate, nodes: list[str], outcome: str) -> tuple[list[str], list[str]]:
    """Every node logs on at once; the first one admitted gets `outcome`, the rest succeed."""
    tried: list[str] = []
    skipped: list[str] = []
    lock = threading.Lock()

    def logon(node: str) -> None:
        try:
            gate.admit(node, "svc")
        except LogonSkipped:
            with lock:
                skipped.append(node)
            return
        with lock:
            tried.append(node)
            first = len(tried) == 1
        time.sleep(0.05)
        if first and outcome == "refused":
            gate.refused(node, "HTTP 401")
        elif first and outcome == "unreachable":
            gate.failed_otherwise(node)
        else:
            gate.succeeded(node)

    threads = [threading.Thread(target=logon, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return tried, skipped


NODES = [f"n{i}" for i in range(8)]


def test_a_refused_credential_is_tried_once_and_the_rest_are_skipped() -> None:
    gate = LogonGate()
    tried, skipped = _race(gate, NODES, "refused")
    assert len(tried) == 1 and sorted(skipped) == sorted(set(NODES) - set(tried))
    with pytest.raises(LogonSkipped, match=f"refused by {tried[0]}"):
        gate.admit("late-node", "svc")


def test_an_unreachable_first_node_lets_the_next_one_try() -> None:
    tried, skipped = _race(LogonGate(), NODES, "unreachable")
    assert sorted(tried) == sorted(NODES) and skipped == []


def test_once_proven_everyone_goes_ahead() -> None:
    gate = LogonGate()
    tried, skipped = _race(gate, NODES, "ok")
    assert sorted(tried) == sorted(NODES) and skipped == []
    gate.refused("n9", "a later refusal does not condemn a proven credential")
    gate.admit("n10", "svc")


def test_the_node_that_claimed_first_tries_first_even_if_it_is_ready_last() -> None:
    """Nodes claim the gate when they start and pass it when their first request is built: a node that
    started later but got ready sooner waits for the first one's logon."""
    gate = LogonGate()
    gate.claim("first")
    gate.claim("second")
    passed = threading.Event()

    def second() -> None:
        gate.admit("second", "svc")
        passed.set()

    waiting = threading.Thread(target=second)
    waiting.start()
    assert not passed.wait(0.3)  # "first" has not logged on yet
    gate.admit("first", "svc")  # it is the one trying: no wait
    gate.succeeded("first")
    assert passed.wait(5)
    waiting.join(5)


def test_a_claim_is_released_like_any_try() -> None:
    gate = LogonGate()
    gate.claim("first")
    gate.failed_otherwise("first")  # unreachable before it sent anything
    gate.admit("second", "svc")  # the next one tries at once
    gate.refused("second", "401")
    gate.claim("third")
    with pytest.raises(LogonSkipped, match="refused by second"):
        gate.admit("third", "svc")
