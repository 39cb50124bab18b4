"""transport: arc, the pure pieces: what a run command carries, how its answer is read, the ARM guard."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from hcibenefit.azure.runcommand import MachineRef, RunCommandRefused, _guard
from hcibenefit.inventory.credentials import Secret
from hcibenefit.remoting.arc import FRAME, agent_version, read_frame, run_command_parameters
from hcibenefit.remoting.catalog import ARC_RUN, GUEST_PROBE, HOST_FACTS
from hcibenefit.remoting.session import CredentialParameter

HOSTILE = "x'; Remove-Item C:\\ -Recurse; '\n$(whoami)"


def _decoded(items: list[dict[str, str]]) -> dict[str, str]:
    return {i["name"]: base64.b64decode(i["value"]).decode("utf-8") for i in items}


def test_parameters_travel_as_base64_values_never_as_script_text() -> None:
    public, protected = run_command_parameters(
        GUEST_PROBE,
        {
            "VMId": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427", HOSTILE],
            "Nonce": "n",
            "TimeoutSec": 5,
            "Credential": CredentialParameter("Administrator", Secret("pa55 w'rd")),
        },
    )
    values = _decoded(public)
    assert values["Script"] == GUEST_PROBE.text()
    assert json.loads(values["Parameters"]) == {
        "VMId": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427", HOSTILE],
        "Nonce": "n",
        "TimeoutSec": 5,
    }
    # The password travels only among the protected parameters, which Azure never returns.
    assert "pa55" not in json.dumps(public)
    assert json.loads(_decoded(protected)["Credentials"]) == {
        "Credential": {"username": "Administrator", "password": "pa55 w'rd"}
    }
    # Nothing a command line or a code page could change: letters, digits, + / =.
    for item in public + protected:
        assert set(item["value"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def test_no_parameters_means_no_parameters_entry() -> None:
    public, protected = run_command_parameters(HOST_FACTS, {})
    assert [p["name"] for p in public] == ["Script"] and protected == []


def _frame(answer: dict[str, object], width: int = 76) -> str:
    encoded = base64.b64encode(json.dumps(answer).encode()).decode()
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    return "\r\n".join([f"{FRAME} begin {len(encoded)}", *lines, f"{FRAME} end"]) + "\r\n"


ANSWER = {
    "schema": "arc-run/1",
    "output": ['{"schema": "host-facts/1", "vm": "Zoë"}'],
    "errors": [],
    "warnings": [],
}


def test_a_whole_frame_is_read_whatever_the_line_width() -> None:
    assert read_frame(_frame(ANSWER)) == ANSWER
    assert read_frame("WARNING: profile noise\n" + _frame(ANSWER, width=40)) == ANSWER


def test_a_cut_or_altered_frame_is_never_misread() -> None:
    text = _frame(ANSWER)
    assert read_frame(text[200:]) is None, "the tail the instance view keeps lost the beginning"
    assert read_frame(text[:-30]) is None, "no end line"
    lines = text.splitlines()
    assert read_frame("\n".join([lines[0], *lines[2:]])) is None, "a line missing: the length does not match"
    other = dict(ANSWER, schema="something-else/1")
    assert read_frame(_frame(other)) is None


def test_agent_versions() -> None:
    assert agent_version("1.45.02664.1814") == (1, 45)
    assert agent_version("1.33") == (1, 33)
    assert agent_version("1.9.123") == (1, 9) and (1, 9) < (1, 33)
    assert agent_version(None) is None and agent_version("unknown") is None


def test_machine_ids() -> None:
    ref = MachineRef.parse(
        "/subscriptions/s/resourceGroups/rg-1/providers/Microsoft.HybridCompute/machines/n1"
    )
    assert (ref.subscription, ref.resource_group, ref.name) == ("s", "rg-1", "n1")
    with pytest.raises(ValueError):
        MachineRef.parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/n1")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        (
            "PUT",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/n1/runCommands/x",
            True,
        ),
        (
            "DELETE",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/n1/runCommands/x",
            True,
        ),
        (
            "GET",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/n1/runCommands",
            True,
        ),
        ("GET", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/n1", True),
        ("DELETE", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/n1", False),
        (
            "PUT",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/n1/extensions/x",
            False,
        ),
        ("POST", "/subscriptions/s/providers/Microsoft.HybridCompute/register", False),
    ],
)
def test_the_run_command_client_can_change_nothing_else(method: str, path: str, allowed: bool) -> None:
    request = SimpleNamespace(
        http_request=SimpleNamespace(method=method, url=f"https://management.azure.com{path}?api-version=1")
    )
    if allowed:
        _guard(request)
    else:
        with pytest.raises(RunCommandRefused):
            _guard(request)


def test_arc_run_script_keeps_the_contract_the_client_reads() -> None:
    text = ARC_RUN.text()
    for name in ("Script", "Parameters", "Credentials"):
        assert f"[string]${name}" in text
    assert "'hcibenefit-arc-run/1 begin ' + $encoded.Length" in text and "'hcibenefit-arc-run/1 end'" in text
    assert "schema   = 'arc-run/1'" in text
    for key in ("output", "errors", "warnings"):
        assert f"{key} " in text
    # Parameters are bound as parameters, never evaluated as text.
    assert ".AddScript(" in text and ".AddParameter($property.Name" in text
    assert "Invoke-Expression" not in text and "iex " not in text.lower()
