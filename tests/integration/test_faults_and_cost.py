"""Node faults as typed errors, one failing node never stopping the rest, and the cost of a status."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hcibenefit.exitcodes import ExitCode
from hcibenefit.inventory import CredentialResolver, load_inventory
from hcibenefit.lab.spec import generate_fleet, parse_fleet
from hcibenefit.operations.gather import connections
from hcibenefit.remoting.catalog import HOST_FACTS, Script
from hcibenefit.remoting.errors import (
    AuthenticationFailed,
    MalformedOutputError,
    QuotaExceeded,
    RemoteTimeout,
    ScriptError,
    UnreachableError,
)
from hcibenefit.remoting.session import Endpoint, HostSession, run_script
from tests.integration.conftest import LabClient, client_for, start_lab

FAULTY = """
clusters:
  - name: faulty
    nodes:
      - {name: f-ok}
      - {name: f-down, faults: {down: true}}
      - {name: f-hang, faults: {hang: true}}
      - {name: f-auth, faults: {auth_fail: true}}
      - {name: f-slow, faults: {latency_ms: 200}}
    vms:
      - {name: vm-ok, node: f-ok, benefits: v1}
      - {name: vm-slow, node: f-slow, benefits: v1}
"""


@dataclass(frozen=True)
class TextScript(Script):
    """A script given as text, for sending things our catalog never would."""

    body: str = ""

    def text(self) -> str:
        return self.body


@pytest.fixture(scope="module")
def faulty_lab():  # type: ignore[no-untyped-def]
    lab = start_lab(parse_fleet(FAULTY, "faulty.yaml"), read_timeout=3.0)
    yield lab
    lab.stop()


@pytest.fixture
def faulty(faulty_lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    faulty_lab.reset()
    client = client_for(faulty_lab, tmp_path, monkeypatch, capsys)
    yield client
    assert faulty_lab.open_shells() == 0


def _endpoint(client: LabClient, node: str) -> Endpoint:
    inventory = load_inventory(client.inventory)
    return connections([inventory.node(node)], CredentialResolver())[0].endpoint


def test_each_fault_is_its_own_typed_error(faulty: LabClient) -> None:
    expected = {"f-down": UnreachableError, "f-hang": RemoteTimeout, "f-auth": AuthenticationFailed}
    for node, error_type in expected.items():
        with pytest.raises(error_type) as caught:
            run_script(_endpoint(faulty, node), HOST_FACTS, {"IncludeGuestOs": True})
        assert caught.value.host == node and caught.value.hint
    assert run_script(_endpoint(faulty, "f-slow"), HOST_FACTS)["schema"] == HOST_FACTS.key


def test_one_failing_node_does_not_stop_the_sweep(faulty: LabClient) -> None:
    started = time.monotonic()
    result = faulty.cli("status", "--format", "json", "--fail-on", "none")
    elapsed = time.monotonic() - started
    assert result.code == ExitCode.INCOMPLETE
    nodes = {n["name"]: n for n in result.json()["nodes"]}
    assert nodes["f-ok"]["verdict"] == "ok" and nodes["f-slow"]["verdict"] == "ok"
    assert nodes["f-down"]["reason"].startswith("unreachable:")
    assert nodes["f-hang"]["reason"].startswith("timeout:")
    assert nodes["f-auth"]["reason"].startswith("authentication:")
    assert {v["name"] for v in result.json()["vms"]} == {"vm-ok", "vm-slow"}
    # A hung node costs at most its read timeout (3 s here), not one timeout per request or per VM.
    assert elapsed < 3 * 3.0


def test_quota_exceeded_is_reported_as_such(faulty: LabClient) -> None:
    faulty.lab.set_faults("f-ok", max_shells=1)
    holder = HostSession(_endpoint(faulty, "f-ok"))
    holder.open()
    try:
        with pytest.raises(QuotaExceeded) as caught:
            run_script(_endpoint(faulty, "f-ok"), HOST_FACTS)
        assert "MaxShellsPerUser" in (caught.value.hint or "")
    finally:
        holder.close()


def test_script_errors_carry_the_powershell_error_record(faulty: LabClient) -> None:
    unknown = TextScript("adhoc", 1, "adhoc.ps1", mutating=False, body="Get-Foo -Name x")
    with pytest.raises(ScriptError) as caught:
        run_script(_endpoint(faulty, "f-ok"), unknown)
    record = caught.value.records[0]
    assert record.error_id.startswith("CommandNotFoundException") and "Get-Foo" in record.message


def test_wrong_schema_is_malformed_output(faulty: LabClient) -> None:
    mislabelled = TextScript("vm-benefits-enable", 1, "x.ps1", mutating=False, body=HOST_FACTS.text())
    with pytest.raises(MalformedOutputError):
        run_script(_endpoint(faulty, "f-ok"), mislabelled)


def test_cancel_stops_the_pipeline_and_closes_the_shell(faulty: LabClient) -> None:
    cancel = threading.Event()
    cancel.set()
    from hcibenefit.remoting.session import Cancelled

    with pytest.raises(Cancelled), HostSession(_endpoint(faulty, "f-slow"), cancel=cancel) as session:
        session.run(HOST_FACTS)
    assert faulty.lab.open_shells() == 0


@pytest.mark.parametrize("auth", ["ntlm"])
def test_status_over_ntlm_with_message_encryption(
    auth: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = start_lab(generate_fleet(1, 2, 3, seed=7), auth=auth)
    try:
        client = client_for(lab, tmp_path, monkeypatch, capsys)
        result = client.cli("status", "--format", "json", "--fail-on", "none")
        assert result.code == ExitCode.OK, result.err
        assert len(result.json()["vms"]) == 6
        assert lab.open_shells() == 0
    finally:
        lab.stop()


def _status_requests(
    vms_per_node: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, int]:
    tmp_path.mkdir()
    # A long OperationTimeout: a Receive that waits for a slow host-facts (100 VMs on a loaded machine)
    # must not time out and be re-sent, or the count would measure the machine rather than the client.
    lab = start_lab(generate_fleet(1, 4, vms_per_node, seed=3), read_timeout=40.0)
    try:
        client = client_for(lab, tmp_path, monkeypatch, capsys)
        result = client.cli("status", "--format", "json", "--fail-on", "none")
        assert result.code == ExitCode.OK and len(result.json()["vms"]) == 4 * vms_per_node
        state = client.state()
        return sum(n["requests"] for n in state["nodes"]), client.invocations("host-facts")
    finally:
        lab.stop()


def test_status_is_five_requests_per_node_whatever_the_number_of_vms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Create, Receive (pool opened), Command, Receive (host facts), Delete: the PSRP minimum for one script."""
    small = _status_requests(4, tmp_path / "small", monkeypatch, capsys)
    large = _status_requests(100, tmp_path / "large", monkeypatch, capsys)
    assert small == large == (4 * 5, 4)


def _count(client: LabClient, node: str, counter: str = "requests") -> int:
    """One of a node's WinRM counters in /lab/state."""
    return next(n[counter] for n in client.state()["nodes"] if n["name"] == node)


def test_with_basic_a_node_waiting_on_the_first_logon_sends_nothing_until_it_is_proven(
    faulty: LabClient,
) -> None:
    """Basic sends the password with the first request: a node waiting on another node's first logon
    builds its session and opens its connection (TCP and TLS) meanwhile, so that costs no time once the
    gate opens, but sends nothing; the first request then uses that connection."""
    from hcibenefit.remoting.session import Cancellation

    endpoint = _endpoint(faulty, "f-ok")
    assert endpoint.settings.auth == "basic" and endpoint.credential is not None
    gate = endpoint.credential.gate
    gate.admit("another-node", endpoint.credential.username)  # another node is logging on with it
    cancel = Cancellation()
    session = HostSession(endpoint, cancel=cancel)
    opened = threading.Thread(target=session.open)
    before = _count(faulty, "f-ok")
    connections = _count(faulty, "f-ok", "connections")
    opened.start()
    time.sleep(0.5)
    assert opened.is_alive() and _count(faulty, "f-ok") == before
    assert _count(faulty, "f-ok", "connections") == connections + 1  # connected ahead, TLS done
    gate.succeeded("another-node")
    opened.join(10)
    try:
        assert not opened.is_alive() and session.shell_created
        assert _count(faulty, "f-ok") > before
        assert _count(faulty, "f-ok", "connections") == connections + 1  # the same connection
    finally:
        session.close()


def test_connecting_ahead_fails_as_the_first_request_would(faulty: LabClient) -> None:
    """A node that cannot be reached while another logs on fails at once, with the error a request
    would have had (unreachable, transient), and does not hold up the gate."""
    endpoint = _endpoint(faulty, "f-down")
    assert endpoint.credential is not None
    gate = endpoint.credential.gate
    gate.admit("another-node", endpoint.credential.username)
    started = time.monotonic()
    with pytest.raises(UnreachableError) as caught:
        HostSession(endpoint).open()
    assert time.monotonic() - started < 5
    assert caught.value.transient and "cannot connect" in caught.value.detail


def test_ctrl_c_while_waiting_on_the_first_logon_sends_nothing(faulty: LabClient) -> None:
    """Nothing was sent, so nothing is deleted either: a Delete would carry the password once more (one
    more failed logon if it is wrong)."""
    from hcibenefit.remoting.session import Cancellation, Cancelled

    endpoint = _endpoint(faulty, "f-ok")
    assert endpoint.credential is not None
    endpoint.credential.gate.admit("another-node", endpoint.credential.username)
    cancel = Cancellation()
    session = HostSession(endpoint, cancel=cancel)
    raised: list[BaseException] = []

    def open_it() -> None:
        try:
            session.open()
        except BaseException as exc:
            raised.append(exc)

    opened = threading.Thread(target=open_it)
    before = _count(faulty, "f-ok")
    opened.start()
    time.sleep(0.3)
    cancel.set()
    assert cancel.abort_open_sessions(2.0) == []
    opened.join(5)
    assert not opened.is_alive() and len(raised) == 1 and isinstance(raised[0], Cancelled), raised
    assert _count(faulty, "f-ok") == before
    assert session.closed and cancel.open_sessions() == []


def test_a_certificate_the_client_does_not_trust_fails_ahead_as_a_tls_error(faulty: LabClient) -> None:
    from dataclasses import replace

    from hcibenefit.remoting.errors import TLSError

    endpoint = _endpoint(faulty, "f-ok")
    assert endpoint.credential is not None
    # The system's CAs, which never signed the lab's certificates.
    endpoint = replace(endpoint, settings=replace(endpoint.settings, cert_validation=True))
    endpoint.credential.gate.admit("another-node", endpoint.credential.username)
    before = _count(faulty, "f-ok")
    with pytest.raises(TLSError) as caught:
        HostSession(endpoint).open()
    assert (
        "TLS handshake failed" in caught.value.detail and "certificate verify failed" in caught.value.detail
    )
    assert _count(faulty, "f-ok") == before


def test_connect_latency_delays_each_new_connection_not_each_request(faulty: LabClient) -> None:
    """The lab's stand-in for TCP's and TLS's round trips: paid once per connection, before its first
    answer; `latency_ms` is paid per request."""
    import requests

    faulty.lab.set_faults("f-ok", connect_latency_ms=300)
    endpoint = _endpoint(faulty, "f-ok")
    url = f"https://{endpoint.address}:{endpoint.settings.port}/wsman"
    with requests.Session() as http:
        verify = endpoint.settings.cert_validation
        http.verify = verify if isinstance(verify, bool) else str(verify)
        http.trust_env = (
            False  # REQUESTS_CA_BUNDLE would override verify, as hcibenefit's sessions do not let it
        )
        started = time.monotonic()
        first = http.post(url, data=b"")  # no credential: 401, but only after the connection's delay
        opened = time.monotonic() - started
        started = time.monotonic()
        second = http.post(url, data=b"")  # the same connection
        again = time.monotonic() - started
    assert first.status_code == second.status_code == 401
    assert opened >= 0.3 and again < 0.3, (opened, again)
    assert faulty.state()["nodes"][0]["faults"]["connect_latency_ms"] == 300
