"""Resource Graph paging and throttling, independent of how a page is fetched.

Paging as "Working with large data sets" asks: the same query, scope and options on every page,
only the skip token changes; a truncated result is an error (our query never truncates, so one
means the query was altered). Throttling as "Guidance for throttled requests" asks: every answer
says how many requests the 5-second window has left (``x-ms-user-quota-remaining``) and when it
resets (``x-ms-user-quota-resets-after``); when none are left we wait for the reset before the next
page instead of earning a 429, and a 429 waits for Retry-After (else the reset) and tries again, a
bounded number of times within a bounded wait.

``send`` is the one I/O dependency (``session.py`` gives the azure-mgmt-resourcegraph one), so the
rules here are tested against scripted answers as well as against the lab.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hcibenefit.azure.parse import parse_page

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
MAX_WAIT_S = 90.0
BATCH_SIZE = 1000
"""Subscriptions per request: what the az CLI sends at most (azure-cli-extensions resource-graph)."""
PAGE_ROWS = 1000
"""$top: Resource Graph's largest page."""


class GraphHttpError(Exception):
    """An error answer from Resource Graph: status, ARM error code and message, response headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}


class ThrottledError(Exception):
    """Throttling that did not clear within the attempts and the wait we allow."""


Sender = Callable[[str, Sequence[str] | None, str | None], tuple[Any, Mapping[str, str]]]
"""(query, subscriptions or None for every one the credential sees, skip token) → (body, headers)."""


@dataclass
class GraphStats:
    requests: int = 0
    pages: int = 0
    throttled: int = 0
    waited_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def seconds(value: str | None) -> float | None:
    """Retry-After (seconds or an HTTP date) or a quota reset (``hh:mm:ss``) as seconds."""
    if not value:
        return None
    text = value.strip()
    if ":" in text and "," not in text:
        try:
            hours, minutes, secs = (float(p) for p in text.split(":"))
        except ValueError:
            return None
        return hours * 3600 + minutes * 60 + secs
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def quota_wait(headers: Mapping[str, str]) -> float:
    """How long to wait before the next request: until the reset when no quota is left, else 0."""
    found = _lower(headers)
    remaining = found.get("x-ms-user-quota-remaining")
    if remaining is None or not remaining.strip().isdigit() or int(remaining) > 0:
        return 0.0
    return seconds(found.get("x-ms-user-quota-resets-after")) or 1.0


class Pager:
    """Runs one query to its last page through ``send``, honouring the quota and 429s."""

    def __init__(
        self,
        send: Sender,
        stats: GraphStats,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
        max_wait_s: float = MAX_WAIT_S,
        each_row: Callable[[Any], Any] | None = None,
    ) -> None:
        self.send = send
        self.stats = stats
        self.each_row = each_row
        """Applied to every row as its page arrives (parse.parse_early), so a page need not be kept."""
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self._pending_wait = 0.0

    def _wait(self, delay: float, why: str) -> None:
        if delay <= 0:
            return
        log.info("Resource Graph: waiting %.1f s (%s)", delay, why)
        self.sleep(delay)
        self.stats.waited_s += delay

    def _page(
        self, query: str, subscriptions: Sequence[str] | None, token: str | None
    ) -> tuple[Any, Mapping[str, str]]:
        waited = 0.0
        for attempt in range(1, self.max_attempts + 1):
            self._wait(self._pending_wait, "the request quota of this 5-second window is used up")
            self._pending_wait = 0.0
            self.stats.requests += 1
            try:
                return self.send(query, subscriptions, token)
            except GraphHttpError as exc:
                if exc.status != 429 and exc.status < 500:
                    raise
                if exc.status == 429:
                    self.stats.throttled += 1
                delay = seconds(exc.headers.get("retry-after"))
                if delay is None:
                    delay = seconds(exc.headers.get("x-ms-user-quota-resets-after"))
                if delay is None:
                    delay = min(30.0, 2.0 ** (attempt - 1))
                if attempt == self.max_attempts or waited + delay > self.max_wait_s:
                    what = "throttled (429)" if exc.status == 429 else f"failing ({exc.status} {exc.code})"
                    raise ThrottledError(
                        f"Resource Graph kept answering {what} after {attempt} attempt(s) and {waited:.0f} s of waiting"
                    ) from None
                waited += delay
                self._wait(delay, f"{exc.status} {exc.code}, attempt {attempt}")
        raise AssertionError("unreachable: the loop returns or raises")

    def run(self, query: str, subscriptions: Sequence[str] | None) -> list[Any]:
        rows: list[Any] = []
        token: str | None = None
        while True:
            body, headers = self._page(query, subscriptions, token)
            page = parse_page(body, "Resource Graph response")
            self.stats.pages += 1
            if page.truncated:
                raise GraphHttpError(
                    200, "ResultTruncated", "Resource Graph truncated the result, which cannot be paged"
                )
            rows.extend(page.rows if self.each_row is None else map(self.each_row, page.rows))
            self._pending_wait = quota_wait(headers)
            if not page.skip_token:
                return rows
            token = page.skip_token


def batches(subscriptions: Sequence[str], size: int = BATCH_SIZE) -> list[list[str]]:
    return [list(subscriptions[i : i + size]) for i in range(0, len(subscriptions), size)]
