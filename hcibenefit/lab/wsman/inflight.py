"""Answers before scripts: a pipeline starts evaluating once this process is not answering a request.

Real hosts each have their own processors: one host's PowerShell never holds up another host's WinRM
service. A lab process serves a whole cluster on one interpreter lock, so a node's script (15 to 25 ms of
CPU for host facts at 25 VMs) made every other node's answer wait its turn, 5 ms at a time: in a
one-cluster status at 200 ms the four Command answers left 3 to 45 ms after their injected latency ended,
the last ones behind the first ones' scripts, which no cluster of four machines would do.

So an answer is written before a script starts: a pipeline's evaluation waits (on a condition, which holds
no lock the answers need) while any request of this process is being handled, at most `START_WAIT_S`,
and then runs as before. Once it runs it is never paused. A Receive waiting for output does not count as
being handled: it waits for the very scripts that would otherwise wait for it. What a client sees is
unchanged (a script's output only ever reaches it through a Receive); only when evaluation starts moves,
by the few milliseconds the answers in flight take.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

START_WAIT_S = 0.02
"""The longest a pipeline waits for answers in flight before it evaluates anyway: a lab answering
requests without pause (hundreds of nodes at no latency) still runs every script."""


class RequestsInFlight:
    """How many requests this process is handling right now (after their injected latency)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._handling = 0
        self._mine = threading.local()

    @property
    def handling(self) -> int:
        return self._handling

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around handling one request and writing its answer."""
        self._change(+1)
        self._mine.depth = getattr(self._mine, "depth", 0) + 1
        try:
            yield
        finally:
            self._mine.depth -= 1
            self._change(-1)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a handler's wait for output (a Receive): the scripts it waits for must not wait for it."""
        mine = getattr(self._mine, "depth", 0) > 0
        if mine:
            self._change(-1)
        try:
            yield
        finally:
            if mine:
                self._change(+1)

    def wait_until_quiet(self, timeout_s: float | None = None) -> bool:
        """Until no request is being handled, at most `timeout_s` (START_WAIT_S); whether it got quiet."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._handling == 0, START_WAIT_S if timeout_s is None else timeout_s
            )

    def _change(self, delta: int) -> None:
        with self._cond:
            self._handling += delta
            if self._handling == 0:
                self._cond.notify_all()


REQUESTS = RequestsInFlight()
"""This process's requests (each lab process, forked workers included, counts its own)."""
