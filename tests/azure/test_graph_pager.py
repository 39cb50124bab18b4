"""Resource Graph paging and throttling rules, against scripted answers (the lab tests run them for real)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from hcibenefit.azure.graph import (
    GraphHttpError,
    GraphStats,
    Pager,
    ThrottledError,
    batches,
    quota_wait,
    seconds,
)


class Script:
    """Answers pages in order; records every request it was sent."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, Sequence[str] | None, str | None]] = []

    def __call__(
        self, query: str, subscriptions: Sequence[str] | None, token: str | None
    ) -> tuple[Any, Mapping[str, str]]:
        self.sent.append((query, subscriptions, token))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def page(
    rows: list[dict[str, Any]], token: str | None, remaining: int = 10, resets: str = "00:00:04"
) -> tuple[Any, Mapping[str, str]]:
    body: dict[str, Any] = {"totalRecords": 5, "count": len(rows), "resultTruncated": "false", "data": rows}
    if token:
        body["$skipToken"] = token
    return body, {"x-ms-user-quota-remaining": str(remaining), "x-ms-user-quota-resets-after": resets}


def throttled(retry_after: str | None = "2") -> GraphHttpError:
    headers = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:03"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return GraphHttpError(429, "RateLimiting", "throttled", headers)


def test_pages_until_no_token_with_identical_query_and_scope() -> None:
    script = Script(
        [page([{"id": "a"}, {"id": "b"}], "t1"), page([{"id": "c"}], "t2"), page([{"id": "d"}], None)]
    )
    stats = GraphStats()
    rows = Pager(script, stats, sleep=lambda s: None).run("Q", ["s1", "s2"])
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert [t for _, _, t in script.sent] == [None, "t1", "t2"]
    assert {(q, tuple(s or ())) for q, s, _ in script.sent} == {("Q", ("s1", "s2"))}
    assert stats.requests == 3 and stats.pages == 3 and stats.waited_s == 0


def test_an_exhausted_quota_waits_for_the_reset_instead_of_earning_a_429() -> None:
    slept: list[float] = []
    script = Script([page([{"id": "a"}], "t1", remaining=0, resets="00:00:03"), page([{"id": "b"}], None)])
    stats = GraphStats()
    Pager(script, stats, sleep=slept.append).run("Q", None)
    assert slept == [3.0] and stats.waited_s == 3.0 and stats.throttled == 0


def test_a_429_waits_retry_after_then_repeats_the_same_page() -> None:
    slept: list[float] = []
    script = Script([page([{"id": "a"}], "t1"), throttled("2"), throttled(None), page([{"id": "b"}], None)])
    stats = GraphStats()
    rows = Pager(script, stats, sleep=slept.append).run("Q", ["s"])
    assert [r["id"] for r in rows] == ["a", "b"]
    # Retry-After first; without one, the quota reset.
    assert slept == [2.0, 3.0]
    assert [t for _, _, t in script.sent] == [None, "t1", "t1", "t1"]
    assert stats.throttled == 2 and stats.requests == 4


def test_throttling_that_does_not_clear_gives_up_bounded() -> None:
    slept: list[float] = []
    script = Script([throttled("1")] * 10)
    with pytest.raises(ThrottledError, match=r"throttled \(429\) after 3 attempt"):
        Pager(script, GraphStats(), sleep=slept.append, max_attempts=3).run("Q", ["s"])
    assert slept == [1.0, 1.0]
    # A Retry-After beyond the wait we allow is not waited for at all.
    script = Script([throttled("600")])
    with pytest.raises(ThrottledError):
        Pager(script, GraphStats(), sleep=slept.append, max_wait_s=60).run("Q", ["s"])
    assert slept == [1.0, 1.0]


def test_server_errors_back_off_and_client_errors_do_not_retry() -> None:
    slept: list[float] = []
    script = Script([GraphHttpError(503, "ServiceUnavailable", "busy"), page([{"id": "a"}], None)])
    assert len(Pager(script, GraphStats(), sleep=slept.append).run("Q", None)) == 1
    assert slept == [1.0]
    script = Script([GraphHttpError(400, "BadRequest", "Query is invalid")])
    with pytest.raises(GraphHttpError, match="400 BadRequest"):
        Pager(script, GraphStats(), sleep=slept.append).run("Q", None)


def test_a_truncated_result_is_an_error() -> None:
    body = {"data": [{"id": "a"}], "resultTruncated": "true"}
    with pytest.raises(GraphHttpError, match="truncated"):
        Pager(Script([(body, {})]), GraphStats()).run("Q", None)


def test_seconds_reads_every_header_form() -> None:
    assert seconds("7") == 7.0 and seconds("0.5") == 0.5
    assert seconds("00:01:05") == 65.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = seconds(future)
    assert value is not None and 25 <= value <= 31
    assert seconds(None) is None and seconds("soon") is None
    assert quota_wait({"X-Ms-User-Quota-Remaining": "0", "x-ms-user-quota-resets-after": "00:00:02"}) == 2.0
    assert quota_wait({"x-ms-user-quota-remaining": "3"}) == 0.0 and quota_wait({}) == 0.0


def test_subscriptions_are_batched() -> None:
    subs = [f"s{i}" for i in range(2500)]
    assert [len(b) for b in batches(subs)] == [1000, 1000, 500]
    assert batches([]) == []
