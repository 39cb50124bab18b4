"""Working many hosts at once, bounded, where one failure never stops the others.

`--parallel 1` (workers=1) runs in the calling thread: the path tests and debugging rely on.
On Ctrl-C the shared cancel event tells every worker to stop its pipeline and close its pool; the
runner waits for them so no remote shell is left behind, then re-raises KeyboardInterrupt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

from hcibenefit.remoting.errors import RemotingError
from hcibenefit.remoting.session import map_exception

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 16


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    target: T
    value: R | None
    error: RemotingError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_per_host(
    targets: Sequence[T],
    work: Callable[[T, threading.Event], R],
    *,
    name_of: Callable[[T], str],
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
) -> list[Outcome[T, R]]:
    """Run `work(target, cancel)` for every target; results in the order of `targets`."""
    cancel = cancel or threading.Event()

    def guarded(target: T) -> Outcome[T, R]:
        try:
            return Outcome(target, work(target, cancel), None)
        except RemotingError as exc:
            return Outcome(target, None, exc)
        except Exception as exc:  # a host that breaks our parsing must not break the sweep
            log.debug("%s: unexpected error", name_of(target), exc_info=True)
            return Outcome(target, None, map_exception(name_of(target), exc))

    if workers <= 1 or len(targets) <= 1:
        return [guarded(t) for t in targets]

    pool = ThreadPoolExecutor(max_workers=min(workers, len(targets)), thread_name_prefix="hcibenefit-host")
    futures: list[Future[Outcome[T, R]]] = [pool.submit(guarded, t) for t in targets]
    try:
        wait(futures)
    except KeyboardInterrupt:
        cancel.set()
        log.warning("interrupted: stopping remote pipelines and closing sessions")
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [f.result() for f in futures]
