"""Pure pieces: fleet spec errors, redaction, rendering, the parallel runner, error mapping, facts shape."""

from __future__ import annotations

import _thread
import contextlib
import io
import logging
import random
import threading
import time
from collections.abc import Callable

import pytest
import requests

from hcibenefit.errors import ConfigError, Interrupted, UsageError
from hcibenefit.facts.host import FactsError, parse_host_facts, parse_time
from hcibenefit.lab.spec import generate_fleet, parse_fleet, parse_scale
from hcibenefit.logsafe import RedactingFilter, redact, register_secret
from hcibenefit.remoting.errors import RemoteTimeout, RemotingError, TLSError, UnreachableError
from hcibenefit.remoting.runner import run_per_host
from hcibenefit.remoting.session import map_exception
from hcibenefit.report import Report, Table, columns, render


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("clusters: []\n", "fleet.yaml:1:11: clusters", "got an empty list"),
        (
            "clusters:\n  - name: c\n    nodes: [n1]\n    vms: [{name: v, node: n9}]\n",
            "fleet.yaml:4:",
            "no node named 'n9'",
        ),
        (
            "clusters:\n  - name: c\n    version: 25H2\n    nodes: [n1]\n",
            "fleet.yaml:3:14: clusters[0].version",
            "22H2, 23H2",
        ),
        (
            "clusters:\n  - name: c\n    nodes: [{name: n1, atestation: Active}]\n",
            "clusters[0].nodes[0].atestation",
            'did you mean "attestation"',
        ),
        (
            "clusters:\n  - name: c\n    nodes: [{name: n1, faults: {latency_ms: fast}}]\n",
            "faults.latency_ms",
            'got "fast"',
        ),
        ("- a\n", "fleet.yaml:1:1", "expected a fleet spec, got a list"),
        ("clusters: [\n", "fleet.yaml:2:1", "YAML syntax error"),
        (
            "clusters:\n  - name: c\n    nodes: [n1, n1]\n",
            "fleet.yaml:3:17: clusters[0].nodes[1]",
            "defined twice",
        ),
    ],
)
def test_fleet_spec_errors_point_at_the_field(text: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(text, "fleet.yaml")
    assert where in str(caught.value) and words in str(caught.value)


def test_generator_is_reproducible_and_sized() -> None:
    first, second = generate_fleet(3, 2, 5, seed=9), generate_fleet(3, 2, 5, seed=9)
    assert first == second and first.node_count() == 6 and first.vm_count() == 30
    assert parse_scale("10,4,25") == (10, 4, 25)
    with pytest.raises(UsageError):
        parse_scale("10x4")


def test_registered_secrets_are_masked_in_logs_and_text() -> None:
    register_secret("s3cr3t-value-xyz")
    assert redact("password=s3cr3t-value-xyz;") == "password=***;"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("hcibenefit.test-redaction")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("bad s3cr3t-value-xyz")
        except ValueError:
            logger.error("failed with %s", "s3cr3t-value-xyz", exc_info=True)
    finally:
        logger.removeHandler(handler)
    assert "s3cr3t-value-xyz" not in stream.getvalue() and "***" in stream.getvalue()


def test_renderers_show_the_same_facts() -> None:
    report = Report(
        data={"x": [1, None]},
        tables=[Table("T", columns(("a", "A"), ("b", "B")), [{"a": True, "b": None}])],
        notes=["n"],
    )
    out = io.StringIO()
    render(report, "table", out)
    assert "yes" in out.getvalue() and "-" in out.getvalue() and "n" in out.getvalue()
    out = io.StringIO()
    render(report, "json", out)
    assert out.getvalue().strip().startswith("{") and '"x"' in out.getvalue()


def test_runner_isolates_failures_and_keeps_order() -> None:
    def work(target: int, cancel: threading.Event) -> int:
        if target == 2:
            raise UnreachableError(f"h{target}", "refused")
        if target == 3:
            raise ValueError("parser bug")
        return target * 10

    for workers in (1, 4):
        outcomes = run_per_host([1, 2, 3, 4], work, name_of=lambda t: f"h{t}", workers=workers)
        assert [o.value for o in outcomes] == [10, None, None, 40]
        assert isinstance(outcomes[1].error, UnreachableError)
        assert isinstance(outcomes[2].error, RemotingError) and "parser bug" in outcomes[2].error.detail


def _interrupt_main_after(seconds: float) -> None:
    threading.Timer(seconds, _thread.interrupt_main).start()


def _ctrl_c_once_working(seconds: float) -> Callable[[], None]:
    """Call at the start of a runner's `work`: Ctrl-C `seconds` after the first worker starts. Only then
    is the runner certain to be waiting with its handler in place; a timer started before the call
    could fire first on a loaded machine and interrupt pytest itself."""
    pending = [seconds]

    def arm() -> None:
        with contextlib.suppress(IndexError):
            _interrupt_main_after(pending.pop())  # list.pop is atomic: one worker arms it

    return arm


def test_runner_on_interrupt_cancels_waits_and_says_what_stopped() -> None:
    finished = []
    cancel = threading.Event()

    ctrl_c = _ctrl_c_once_working(0.2)

    def work(target: int, ev: threading.Event) -> int:
        ctrl_c()
        ev.wait(5)
        finished.append(target)
        return target

    with pytest.raises(Interrupted) as caught:
        run_per_host([1, 2, 3], work, name_of=lambda t: f"h{t}", workers=2, cancel=cancel, activity="facts")
    assert cancel.is_set() and sorted(finished) == [1, 2]
    assert caught.value.exit_code == 130
    assert (
        str(caught.value) == "facts: 0 of 3 done, stopped on h1, h2, 1 not started; every session was closed"
    )


def test_runner_counts_ctrl_c_instead_of_raising_it_inside_a_wait() -> None:
    """A KeyboardInterrupt raised inside Condition.wait, between its release and re-acquire of the lock,
    ends in "RuntimeError: cannot release un-acquired lock". While the runner waits, SIGINT only counts;
    the waiting loop raises at a safe point, and the default handler is back afterwards."""
    import signal

    seen = []

    def work(target: int, ev: threading.Event) -> int:
        seen.append(signal.getsignal(signal.SIGINT))
        ctrl_c()
        ev.wait(5)
        return target

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this process")
    for _ in range(20):  # the same Ctrl-C at many points of the waiting loop, never a RuntimeError
        ctrl_c = _ctrl_c_once_working(0.05 + random.random() * 0.1)
        with pytest.raises(Interrupted):
            run_per_host([1, 2], work, name_of=lambda t: f"h{t}", workers=2)
    assert seen and all(handler is not signal.default_int_handler for handler in seen)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_runner_does_idle_work_while_the_workers_wait_and_workers_report_meanwhile() -> None:
    """The calling thread runs `when_idle` once, while the hosts keep it waiting, without holding the lock
    workers report under; a failing idle task is logged, not raised."""
    ran: list[tuple[int, str]] = []
    idle_started = threading.Event()

    def work(target: int, ev: threading.Event) -> int:
        if target == 1:
            idle_started.wait(2)
        else:
            ev.wait(0.4)  # waiting on the network
        return target

    def idle() -> None:
        idle_started.set()
        # h1's thread ends only after recording its outcome under the runner's lock: were that lock
        # held here, this would wait in vain.
        deadline = time.monotonic() + 2
        while any(t.name == "hcibenefit-h1" for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert time.monotonic() < deadline
        ran.append((len(ran), threading.current_thread().name))

    outcomes = run_per_host([1, 2, 3], work, name_of=lambda t: f"h{t}", workers=3, when_idle=idle)
    assert [o.value for o in outcomes] == [1, 2, 3]
    assert ran == [(0, threading.current_thread().name)]

    def broken() -> None:
        raise RuntimeError("an import failed")

    outcomes = run_per_host([2, 3], work, name_of=lambda t: f"h{t}", workers=2, when_idle=broken)
    assert [o.value for o in outcomes] == [2, 3]


def test_runner_answers_an_interrupt_in_time_while_a_worker_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    import hcibenefit.remoting.runner as runner

    monkeypatch.setattr(runner, "GRACE_S", 0.3)
    release = threading.Event()

    ctrl_c = _ctrl_c_once_working(0.2)

    def work(target: int, ev: threading.Event) -> int:
        ctrl_c()
        if target == 1:
            release.wait(10)  # a request to a host that never answers ignores the cancel
        return target

    started = time.monotonic()
    try:
        with pytest.raises(Interrupted) as caught:
            run_per_host([1], work, name_of=lambda t: f"h{t}", workers=1)
        assert time.monotonic() - started < 1.0
        assert "no answer within 0.3 s from h1" in str(caught.value)
    finally:
        release.set()


def test_runner_widens_while_waiting_on_the_network_up_to_the_cap() -> None:
    lock = threading.Lock()
    running = [0]
    widest = [0]

    def work(target: int, ev: threading.Event) -> int:
        with lock:
            running[0] += 1
            widest[0] = max(widest[0], running[0])
        time.sleep(0.3)  # waiting on a host: no CPU
        with lock:
            running[0] -= 1
        return target

    outcomes = run_per_host(list(range(60)), work, name_of=str, workers=40)
    assert [o.value for o in outcomes] == list(range(60))
    assert 8 < widest[0] <= 40
    widest[0] = 0
    run_per_host(list(range(6)), work, name_of=str, workers=1)
    assert widest[0] == 1


def test_transport_exceptions_map_to_errors_a_person_can_act_on() -> None:
    refused = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool: Max retries ([Errno 111] Connection refused)"
    )
    assert isinstance(map_exception("n1", refused), UnreachableError)
    assert "Connection refused" in map_exception("n1", refused).detail
    assert isinstance(
        map_exception("n1", requests.exceptions.SSLError("certificate verify failed")), TLSError
    )
    assert isinstance(map_exception("n1", requests.exceptions.ReadTimeout("x")), RemoteTimeout)


def test_host_facts_shape_errors_name_the_field() -> None:
    with pytest.raises(FactsError, match="schema"):
        parse_host_facts({"schema": "other/1"}, node="n", cluster="c")
    with pytest.raises(FactsError, match=r"vms\[0\]"):
        parse_host_facts({"schema": "host-facts/2", "vms": ["nope"]}, node="n", cluster="c")
    assert parse_time("2026-11-28T10:00:00.1234567Z") is not None and parse_time("garbage") is None
