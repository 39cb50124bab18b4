"""A lab process answers its requests before it starts a script (hcibenefit/lab/wsman/inflight.py).

A cluster's nodes share one lab process: a script starting while another node's request was being answered
held that answer back (the interpreter lock), which four real hosts never do to each other.
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from transport_helpers import TransportLab, wait_for

from hcibenefit.lab.wsman import inflight
from hcibenefit.lab.wsman.http import Connection, HttpRequest, HttpResponse, Listener
from hcibenefit.lab.wsman.inflight import REQUESTS, RequestsInFlight

pytestmark = pytest.mark.lab


def test_a_script_waits_for_answers_in_flight_but_not_for_its_own_receive(
    lab: TransportLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that a script which waited out the limit, rather than for the answers, fails the test.
    monkeypatch.setattr(inflight, "START_WAIT_S", 5.0)
    node = lab.endpoints[0].name
    before = lab.server.stats(node).actions
    calls = len(lab.executor.calls)
    result: dict[str, Any] = {}

    def client() -> None:
        with lab.wsman() as w, RunspacePool(w) as pool, PowerShell(pool) as ps:
            ps.add_script("echo")
            result["output"] = ps.invoke()

    def waiting_for_output() -> bool:
        # The Command answered, and a Receive after the pool's own is waiting for the pipeline's output.
        now = lab.server.stats(node).actions
        return (
            now.get("Command", 0) > before.get("Command", 0)
            and now.get("Receive", 0) >= before.get("Receive", 0) + 2
            and REQUESTS.handling == 1
        )

    with REQUESTS.answering():  # another node's request, being answered in this process
        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        assert wait_for(waiting_for_output, timeout=5)
        time.sleep(0.2)
        assert len(lab.executor.calls) == calls  # the script has not started
    released = time.monotonic()
    thread.join(10)
    assert len(lab.executor.calls) == calls + 1 and result["output"]
    # Once nothing else is answered it runs at once: the Receive waiting for it does not hold it back.
    assert time.monotonic() - released < 2.0


def test_waiting_for_output_is_not_answering() -> None:
    requests = RequestsInFlight()
    with requests.answering():
        assert requests.handling == 1
        with requests.waiting():
            assert requests.handling == 0 and requests.wait_until_quiet(0)
        assert requests.handling == 1 and not requests.wait_until_quiet(0.01)
    # A thread that is not answering a request (a script's own) changes nothing by waiting.
    with requests.waiting():
        assert requests.handling == 0
    assert requests.wait_until_quiet(0)


def test_a_request_counts_from_the_end_of_its_latency_to_its_answer() -> None:
    """The injected latency is the network's, not the host's work: a request is being answered only from
    when it arrives after it until its answer is written."""
    seen: list[int] = []

    def handler(conn: Connection, request: HttpRequest) -> HttpResponse:
        seen.append(REQUESTS.handling)
        return HttpResponse(200, body=b"ok")

    listener = Listener("n1", "127.0.0.1", None, handler, answer_delay_s=lambda: 0.4)
    listener.open()
    try:
        client = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
        answered: list[bytes] = []
        thread = threading.Thread(
            target=lambda: (
                client.request("POST", "/wsman", b"x"),
                answered.append(client.getresponse().read()),
            ),
            daemon=True,
        )
        started = time.monotonic()
        thread.start()
        time.sleep(0.2)
        assert REQUESTS.handling == 0 and not seen  # still on its way
        thread.join(5)
        assert answered == [b"ok"] and seen == [1] and time.monotonic() - started >= 0.4
        # The count drops just after the answer is written, which the client may read first.
        assert REQUESTS.wait_until_quiet(2.0)
        client.close()
    finally:
        listener.close()
