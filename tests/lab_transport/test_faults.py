"""Authentication, quotas and per-node faults, as pypsrp reports them."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from transport_helpers import TransportLab

pytestmark = pytest.mark.lab


def open_pool(lab: TransportLab, node: int = 0, **wsman: object) -> None:
    with lab.wsman(node, **wsman) as w, RunspacePool(w) as pool, PowerShell(pool) as ps:
        ps.add_script("echo").invoke()


def test_wrong_password(lab: TransportLab) -> None:
    with pytest.raises(AuthenticationError):
        open_pool(lab, password="not-the-password")


def test_quota_of_shells_per_user(lab: TransportLab) -> None:
    node = lab.endpoints[1].name
    lab.server.set_faults(node, max_shells=2)
    with ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(RunspacePool(stack.enter_context(lab.wsman(1))))
        with pytest.raises(WSManFaultError) as caught, lab.wsman(1) as w:
            RunspacePool(w).open()
        assert lab.server.stats(node).open_shells == 2
    assert caught.value.code == 2150859173
    assert "maximum number of 2 concurrent shells" in caught.value.reason
    open_pool(lab, 1)  # closing one makes room again


def test_unknown_configuration_name(lab: TransportLab) -> None:
    with pytest.raises(WSManFaultError) as caught, lab.wsman() as w:
        RunspacePool(w, configuration_name="Microsoft.PowerShell32x").open()
    assert caught.value.code == 2150858811
    assert "Microsoft.PowerShell32x" in caught.value.reason


def test_down_refuses_connections_until_up_on_the_same_port(lab: TransportLab) -> None:
    node = lab.endpoints[2]
    lab.server.set_faults(node.name, down=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        open_pool(lab, 2)
    lab.server.set_faults(node.name, down=False)
    assert lab.server.endpoint(node.name) == node
    open_pool(lab, 2)


def test_hang_times_out_the_client(lab: TransportLab) -> None:
    lab.server.set_faults(lab.endpoints[0].name, hang=True)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        open_pool(lab, read_timeout=1)
    assert time.monotonic() - started < 5


def test_auth_fail(lab: TransportLab) -> None:
    lab.server.set_faults(lab.endpoints[0].name, auth_fail=True)
    with pytest.raises(AuthenticationError):
        open_pool(lab)


def test_latency_delays_every_response(lab: TransportLab) -> None:
    def timed_get() -> float:
        with lab.wsman() as w:
            started = time.monotonic()
            w.update_max_payload_size()
            return time.monotonic() - started

    baseline = timed_get()
    lab.server.set_faults(lab.endpoints[0].name, latency_ms=400)
    assert timed_get() >= 0.4 > baseline


def test_unencrypted_soap_over_http_is_refused(ntlm_lab: TransportLab) -> None:
    with pytest.raises(WinRMTransportError) as caught, ntlm_lab.wsman(encryption="never") as w:
        RunspacePool(w).open()
    assert caught.value.code == 500
