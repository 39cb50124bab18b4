"""Runspace pools and pipelines through the real pypsrp client, over both transports."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import PowerShell, RunspacePool
from transport_helpers import EXTRA_CONFIGURATION, USER, TransportLab, wait_for

pytestmark = pytest.mark.lab


def run(lab: TransportLab, script: str, params: dict[str, Any] | None = None, **wsman: Any) -> PowerShell:
    with lab.wsman(**wsman) as w, RunspacePool(w) as pool, PowerShell(pool) as ps:
        ps.add_script(script)
        if params:
            ps.add_parameters(params)
        ps.invoke()
        return ps


def test_open_run_close(lab: TransportLab) -> None:
    node = lab.endpoints[0].name
    before = lab.server.stats(node)
    ps = run(lab, "echo", {"Name": "vm1", "Count": 3, "Flag": True, "Tags": ["a", "b"]})
    assert not ps.had_errors and not ps.streams.error
    assert ps.output[0] == {"node": node, "user": USER, "configuration": "Microsoft.PowerShell"}
    assert ps.output[1] == {"Name": "vm1", "Count": 3, "Flag": True, "Tags": ["a", "b"]}
    after = lab.server.stats(node)
    assert after.shells_created == before.shells_created + 1
    assert after.requests > before.requests
    if lab.client_auth == "negotiate":
        # Every WS-Man message of the session travelled as multipart/encrypted.
        assert after.encrypted_requests - before.encrypted_requests == after.requests - before.requests


def test_raw_ntlm_client(ntlm_lab: TransportLab) -> None:
    ps = run(ntlm_lab, "echo", auth="ntlm")
    assert ps.output[0]["user"] == USER


def test_hostile_parameter_text_arrives_verbatim(lab: TransportLab) -> None:
    hostile = "x'; Remove-VM -Name * -Force; '"
    run(lab, "echo", {"VMName": hostile, "Other": '"; $(Stop-Computer) <![CDATA[ ]]> &amp;'})
    params = dict(lab.executor.last.commands[0].parameters)
    assert params == {"VMName": hostile, "Other": '"; $(Stop-Computer) <![CDATA[ ]]> &amp;'}
    assert lab.executor.last.commands[0].text == "echo"


def test_pipeline_input(lab: TransportLab) -> None:
    with lab.wsman() as w, RunspacePool(w) as pool, PowerShell(pool) as ps:
        ps.add_script("echo")
        output = ps.invoke(input=["one", 2])
    assert output[2:] == ["one", 2]


def test_output_over_a_megabyte_packs_envelopes(lab: TransportLab) -> None:
    with lab.wsman() as w, RunspacePool(w) as pool:
        responses: list[int] = []
        send = w.transport.send

        def spy(message: bytes, **kwargs: Any) -> bytes:
            response: bytes = send(message, **kwargs)
            responses.append(len(response))
            return response

        w.transport.send = spy
        before = lab.receives()
        for count, size in ((1, 1_500_000), (600, 2_500)):  # one big object, then many small ones
            with PowerShell(pool) as ps:
                ps.add_script("big").add_parameters({"Size": size, "Count": count})
                output = ps.invoke()
            assert len(output) == count and all(len(o) == size for o in output)
            assert output[-1].startswith(f"{count - 1:08d}")
        receives = lab.receives() - before
        # ~2.6 MB of CLIXML; each Receive may carry about 380 kB of it at the 512000-byte envelope.
        assert receives <= math.ceil(2_700_000 / 360_000) + 2
        assert max(responses) <= w.max_envelope_size


def test_script_over_500_kb(lab: TransportLab) -> None:
    script = "echo\n" + "# padding that makes the CreatePipeline span several Send requests\n" * 9000
    assert len(script) > 500_000
    run(lab, script, {"Name": "after the script"})
    call = lab.executor.last
    assert call.commands[0].text == script
    assert dict(call.commands[0].parameters) == {"Name": "after the script"}


def test_pipeline_slower_than_operation_timeout(lab: TransportLab) -> None:
    before, started = lab.receives(), time.monotonic()
    ps = run(lab, "sleep", {"Seconds": 3}, operation_timeout=1, read_timeout=3)
    assert ps.output == ["slept"]
    assert time.monotonic() - started >= 3
    # Each Receive ended in w:TimedOut after a second and pypsrp polled again.
    assert lab.receives() - before >= 4


def test_ctrl_c_stops_a_running_pipeline(lab: TransportLab) -> None:
    with lab.wsman() as w, RunspacePool(w) as pool:
        with PowerShell(pool) as ps:
            ps.add_script("sleep").add_parameter("Seconds", 30)
            ps.begin_invoke()
            assert wait_for(lambda: lab.executor.calls and lab.executor.last.commands[0].text == "sleep")
            ps.stop()
            assert lab.executor.stopped.wait(2)
        with PowerShell(pool) as ps:  # the pool is still usable
            assert ps.add_script("echo").invoke()[1] == {}


def test_non_terminating_error(lab: TransportLab) -> None:
    ps = run(lab, "errors")
    assert not ps.had_errors
    assert ps.output == ["carried on"]
    [record] = ps.streams.error
    assert record.fq_error == "VmNotFound"
    assert record.message == "ObjectNotFound: (vm1:String) [], WriteErrorException"  # ErrorCategory_Message
    assert record.exception.adapted_properties["Message"] == "VM 'vm1' was not found."
    assert str(record) == "VM 'vm1' was not found."
    assert (record.category, record.reason, record.target_name) == (13, "WriteErrorException", "vm1")
    assert [w.message for w in ps.streams.warning] == ["careful"]
    assert [v.message for v in ps.streams.verbose] == ["chatty"]


def test_terminating_error(lab: TransportLab) -> None:
    ps = run(lab, "fail")
    assert ps.had_errors
    assert ps.output == ["before"]
    [record] = ps.streams.error
    assert record.fq_error == "ClusterNotRegistered"
    assert record.message == "InvalidOperation: (:) [], InvalidOperationException"
    assert str(record) == "The cluster is not registered with Azure."


def test_executor_crash_is_a_terminating_error_and_the_server_lives_on(lab: TransportLab) -> None:
    ps = run(lab, "crash")
    assert ps.had_errors
    assert ps.streams.error[0].fq_error == "ZeroDivisionError"
    assert "division by zero" in str(ps.streams.error[0])
    assert run(lab, "echo").output[1] == {}


def test_pscredential_parameter(lab: TransportLab) -> None:
    with lab.wsman() as w, RunspacePool(w) as pool, PowerShell(pool) as ps:
        pool.exchange_keys()
        ps.add_script("credential").add_parameter(
            "Credential", PSCredential(username="CONTOSO\\svc", password="S3cr3t!é")
        )
        output = ps.invoke()
    assert output == [{"user": "CONTOSO\\svc", "password": "S3cr3t!é"}]


def test_accepted_configuration_name(lab: TransportLab) -> None:
    with (
        lab.wsman() as w,
        RunspacePool(w, configuration_name=EXTRA_CONFIGURATION) as pool,
        PowerShell(pool) as ps,
    ):
        assert ps.add_script("echo").invoke()[0]["configuration"] == EXTRA_CONFIGURATION


def test_server_config_and_is_alive(lab: TransportLab) -> None:
    with lab.wsman() as w, RunspacePool(w) as pool:
        w.update_max_payload_size()
        assert w.max_envelope_size == 500 * 1024
        assert pool.is_alive()
