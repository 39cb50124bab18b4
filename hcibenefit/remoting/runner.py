"""Working many hosts at once: bounded, as wide as the network needs, one failure never stops the others.

- **Threads, always.** Every target is worked on a thread of its own, also with `--parallel 1` (then one
  at a time): the calling thread only waits. So Ctrl-C always reaches a thread that can answer it, and a
  worker is never interrupted in the middle of a request (a Create interrupted after it was sent leaves
  a shell on the host that the client never heard of).
- **How many at once.** `workers` (`--parallel`) is a cap. Within it the runner starts `INITIAL_WIDTH`
  hosts and widens while this process's CPU is not busy, i.e. while the work is waiting on the network:
  a fleet behind 200 ms of latency gets wide parallelism, a CPU-bound run stays narrow instead of
  drowning in threads, and nobody has to guess the right number.
- **Idle time.** `when_idle` (importing what the command needs once the hosts have answered, say) runs
  on the calling thread in the first interval this process spent waiting on the network, so it costs
  no wall time; if the run never waits, the command does that work later, as it would have anyway.
- **Ctrl-C.** The shared `Cancellation` is set (workers stop at their next step and delete their shell),
  sessions still open are deleted from outside (a worker may be blocked in a long Receive), and after
  at most `GRACE_S` the run raises `Interrupted`, which says what was done, what was stopped and which
  hosts did not answer in time.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Generic, TypeVar

from hcibenefit.errors import Interrupted
from hcibenefit.remoting import heap
from hcibenefit.remoting.errors import Cancelled, RemotingError
from hcibenefit.remoting.session import Cancellation, map_exception
from hcibenefit.remoting.transport import Session

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_WORKERS = 128
"""The default cap on hosts worked at once (`--parallel`)."""
INITIAL_WIDTH = 8
WIDEN_EVERY_S = 0.05
BUSY = 0.75
"""Widen only while this process used less than this share of one core over the last interval."""
GRACE_S = 1.0
"""After Ctrl-C, how long sessions get to close before the run says what it left behind."""
NAMES_SHOWN = 8


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    target: T
    value: R | None
    error: RemotingError | None

    @property
    def ok(self) -> bool:
        return self.error is None


class _CtrlC:
    """Ctrl-C counted for the waiting loop to act on, instead of a KeyboardInterrupt raised wherever the
    main thread happens to be.

    Python raises KeyboardInterrupt at the main thread's next bytecode. Inside `Condition.wait` that can be
    after the condition's lock was released and before it is taken back; the `with` block around the wait
    then releases a lock it does not hold, and Ctrl-C ends in "RuntimeError: cannot release un-acquired
    lock" with shells left open instead of being answered. Only the main thread can set a handler, and only
    Python's default one is replaced (a SIGINT the shell made us ignore stays ignored); otherwise this
    stays inert and nothing changes.
    """

    def __init__(self) -> None:
        self.count = 0
        self._previous: signal.Handlers | Callable[[int, FrameType | None], object] | int | None = None
        self._installed = False

    def __enter__(self) -> _CtrlC:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._count)
            self._installed = True
        return self

    def _count(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1  # no lock here: the main thread may be holding any of them

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


class _Run(Generic[T, R]):
    """The shared state of one run_per_host call; every field is guarded by `changed`."""

    def __init__(self, targets: Sequence[T], cap: int) -> None:
        self.targets = targets
        self.cap = max(1, cap)
        self.width = min(self.cap, INITIAL_WIDTH)
        self.next = 0
        self.running: set[int] = set()
        self.outcomes: list[Outcome[T, R] | None] = [None] * len(targets)
        self.finished = 0
        self.changed = threading.Condition()

    @property
    def pending(self) -> int:
        return len(self.targets) - self.next


def run_per_host(
    targets: Sequence[T],
    work: Callable[[T, threading.Event], R],
    *,
    name_of: Callable[[T], str],
    workers: int = DEFAULT_WORKERS,
    cancel: threading.Event | None = None,
    activity: str = "",
    when_idle: Callable[[], None] | None = None,
) -> list[Outcome[T, R]]:
    """Run `work(target, cancel)` for every target; outcomes in the order of `targets`.

    `activity` names the work for a person ("host facts"); an interrupted run says it. `when_idle` runs
    at most once, while the workers wait on the network; what it raises is logged and ignored.
    """
    # Workers always get a Cancellation, so that the sessions they open can be closed from outside on
    # Ctrl-C; a plain Event the caller passed (a deadline, say) is followed within WIDEN_EVERY_S.
    token = cancel if isinstance(cancel, Cancellation) else Cancellation()
    outer = cancel if cancel is not token else None
    run: _Run[T, R] = _Run(targets, workers)

    def guarded(index: int) -> None:
        target = targets[index]
        outcome: Outcome[T, R] = Outcome(target, None, RemotingError(name_of(target), "stopped"))
        try:
            outcome = Outcome(target, work(target, token), None)
        except RemotingError as exc:
            outcome = Outcome(target, None, exc)
        except Exception as exc:  # a host that breaks our parsing must not break the sweep
            log.debug("%s: unexpected error", name_of(target), exc_info=True)
            outcome = Outcome(target, None, map_exception(name_of(target), exc))
        finally:
            with run.changed:
                run.outcomes[index] = outcome
                run.running.discard(index)
                run.finished += 1
                run.changed.notify_all()

    def start_more() -> None:
        if token.is_set():
            # Cancelled from elsewhere (a deadline, say): nothing new starts, and what did not start
            # says so.
            while run.pending:
                index = run.next
                run.next += 1
                name = name_of(targets[index])
                run.outcomes[index] = Outcome(
                    targets[index], None, Cancelled(name, "cancelled before it started")
                )
                run.finished += 1
            return
        while len(run.running) < run.width and run.pending:
            index = run.next
            run.next += 1
            run.running.add(index)
            name = f"hcibenefit-{name_of(targets[index])}"
            threading.Thread(target=guarded, args=(index,), name=name, daemon=True).start()

    # Threads that each read a host's answers would otherwise get a C heap arena each (remoting.heap).
    heap.limit_arenas()
    with _CtrlC() as ctrl_c:
        try:
            outcomes = _wait_for(run, token, outer, start_more, ctrl_c, when_idle)
        except KeyboardInterrupt:
            if outer is not None:
                outer.set()
            raise _interrupted(run, token, name_of, activity, ctrl_c) from None
    if len(targets) > 1:
        heap.give_back_free_heap()  # what the hosts' answers left free, before the run judges them
    return outcomes


def _wait_for(
    run: _Run[T, R],
    token: Cancellation,
    outer: threading.Event | None,
    start_more: Callable[[], None],
    ctrl_c: _CtrlC,
    when_idle: Callable[[], None] | None = None,
) -> list[Outcome[T, R]]:
    """The calling thread's part: start workers, widen while the CPU idles, until every target is done."""
    cpu, wall = time.process_time(), time.monotonic()
    with run.changed:
        start_more()
        while run.finished < len(run.targets):
            run.changed.wait(WIDEN_EVERY_S)
            if ctrl_c.count:
                raise KeyboardInterrupt
            if outer is not None and outer.is_set() and not token.is_set():
                token.set()
            now_cpu, now_wall = time.process_time(), time.monotonic()
            if now_wall - wall >= WIDEN_EVERY_S:
                busy = (now_cpu - cpu) / (now_wall - wall)
                cpu, wall = now_cpu, now_wall
                if busy < BUSY and run.pending and len(run.running) >= run.width:
                    run.width = min(run.cap, run.width + max(1, run.width // 2))
                if busy < BUSY and when_idle is not None and run.finished < len(run.targets):
                    idle_task, when_idle = when_idle, None
                    _run_unlocked(run.changed, idle_task)
                    cpu, wall = time.process_time(), time.monotonic()  # its own CPU is not the workers'
            start_more()
    return [o for o in run.outcomes if o is not None]


def _run_unlocked(lock: threading.Condition, task: Callable[[], None]) -> None:
    """Run `task` without holding `lock` (workers report their outcome under it meanwhile)."""
    lock.release()
    try:
        task()
    except Exception:
        log.debug("work done while waiting failed; the command does it later", exc_info=True)
    finally:
        lock.acquire()


def _interrupted(
    run: _Run[T, R], token: Cancellation, name_of: Callable[[T], str], activity: str, ctrl_c: _CtrlC
) -> Interrupted:
    with run.changed:
        in_flight = sorted(run.running)
    token.set()
    deadline = time.monotonic() + GRACE_S
    log.warning("Ctrl-C: stopping; closing the open sessions (at most %g s)", GRACE_S)
    # Workers close their own sessions at their next step; one blocked in a long Receive is not at a
    # step, so every open session is also deleted from outside, in parallel.
    threading.Thread(
        target=token.abort_open_sessions, args=(GRACE_S,), name="hcibenefit-abort", daemon=True
    ).start()
    first = ctrl_c.count
    with run.changed:
        try:
            while run.running and time.monotonic() < deadline:
                run.changed.wait(min(WIDEN_EVERY_S, max(0.0, deadline - time.monotonic())))
                if ctrl_c.count > first:
                    break  # a second Ctrl-C: stop waiting, say what is known
        except KeyboardInterrupt:
            pass  # the same, where no handler could be set (not the main thread)
        stuck = sorted(run.running)
    names = [name_of(run.targets[i]) for i in in_flight]
    stuck_names = [name_of(run.targets[i]) for i in stuck]
    stopped = [n for n in names if n not in stuck_names]
    done = len(run.targets) - run.pending - len(in_flight)
    sessions = {s.endpoint.name: s for s in token.open_sessions() if not s.closed}
    stuck_names += [name for name in sessions if name not in stuck_names]
    stuck_names = [f"{n} ({sessions[n].step})" if n in sessions else n for n in stuck_names]
    parts = [f"{activity + ': ' if activity else ''}{done} of {len(run.targets)} done"]
    if stopped:
        parts.append(f"stopped on {_names(stopped)}")
    if run.pending:
        parts.append(f"{run.pending} not started")
    message = ", ".join(parts)
    if stuck_names:
        message += (
            f"; no answer within {GRACE_S:g} s from {_names(stuck_names)}: a session there, if the host "
            "opened one, ends with the host's idle timeout"
        )
    else:
        message += "; every session was closed"
    return Interrupted(message)


def _names(names: Sequence[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:NAMES_SHOWN])
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"{shown}{more}"


class SessionHolder:
    """Sessions kept open between two passes over the same nodes, so that each node gets one session.

    The first pass (host facts, say) hands over the sessions a second pass will need (`hold`); the
    second takes each one back (`take`) and closes it when done. Whatever is still held when the block
    ends, normally or by an error or Ctrl-C, is closed then, all at once.
    """

    def __init__(self, *, workers: int = DEFAULT_WORKERS) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._workers = workers

    def __enter__(self) -> SessionHolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_all()

    def hold(self, key: str, session: Session) -> None:
        with self._lock:
            previous = self._sessions.pop(key.casefold(), None)
            self._sessions[key.casefold()] = session
        if previous is not None:
            previous.close()

    def take(self, key: str) -> Session | None:
        with self._lock:
            return self._sessions.pop(key.casefold(), None)

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        if not sessions:
            return

        def close(session: Session, _: threading.Event) -> None:
            session.close()

        run_per_host(
            sessions,
            close,
            name_of=lambda s: s.endpoint.name,
            workers=self._workers,
            activity="closing sessions",
        )
