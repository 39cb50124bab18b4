"""ARM reads of many resources: a few queued per worker at a time, results in the order asked."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from hcibenefit.azure import session as azure_session
from hcibenefit.azure.session import READ_WORKERS, READS_QUEUED_PER_WORKER, AzureSession, AzureStats


class _Reads:
    """Stands in for ARM: counts the reads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0

    def get(self, resource_id: str, api_version: str) -> Any:
        with self.lock:
            self.started += 1
        time.sleep(0.001)
        return {"id": resource_id, "api": api_version}


def _session(reads: _Reads) -> AzureSession:
    session = AzureSession.__new__(AzureSession)  # no credential or client: _get is replaced
    session.stats = AzureStats()
    session._lock = threading.Lock()
    session._get = reads.get  # type: ignore[method-assign]
    return session


def test_many_reads_give_every_answer_in_the_order_asked() -> None:
    reads = _Reads()

    def each_body(body: Any) -> Any:
        return body["id"].upper()

    ids = [f"/sub/vm{i}" for i in range(500)] + ["/sub/vm7"]  # a repeat keeps its first place
    session = _session(reads)
    found = session.read_resources(ids, "2025-01-01", each_body=each_body)
    assert list(found) == list(dict.fromkeys(ids))
    assert all(found[i] == i.upper() for i in ids)
    assert reads.started == len(ids)
    assert session.stats.arm_reads == len(ids)


def test_reads_wait_for_room_instead_of_queueing_every_id(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    queued_at_most = 0
    lock = threading.Lock()
    in_pool = 0

    def slow_get(resource_id: str, api_version: str) -> Any:
        release.wait(5)
        return {}

    real_submit = azure_session.ThreadPoolExecutor.submit

    def counting_submit(pool: Any, fn: Any, *args: Any) -> Any:
        nonlocal in_pool, queued_at_most
        with lock:
            in_pool += 1
            queued_at_most = max(queued_at_most, in_pool)
        future = real_submit(pool, fn, *args)

        def done(_: Any) -> None:
            nonlocal in_pool
            with lock:
                in_pool -= 1

        future.add_done_callback(done)
        return future

    monkeypatch.setattr(azure_session.ThreadPoolExecutor, "submit", counting_submit)
    session = _session(_Reads())
    session._get = slow_get  # type: ignore[method-assign]
    worker = threading.Thread(target=session.read_resources, args=([f"/r{i}" for i in range(1000)], "v"))
    worker.start()
    time.sleep(0.3)  # every read blocks: only what fits in the queue is submitted
    assert queued_at_most == READ_WORKERS * READS_QUEUED_PER_WORKER
    release.set()
    worker.join(10)
    assert not worker.is_alive()


def test_a_read_that_raises_stops_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def failing_get(resource_id: str, api_version: str) -> Any:
        calls.append(resource_id)
        if resource_id == "/r3":
            raise RuntimeError("boom")
        return {}

    session = _session(_Reads())
    session._get = failing_get  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="boom"):
        session.read_resources([f"/r{i}" for i in range(2000)], "v")
    assert len(calls) < 2000
