"""`hcibenefit arm query`: the printed KQL, snapshots with no network and no credential, live against the lab."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from hcibenefit.azure.query import INVENTORY_QUERY, PARTS
from hcibenefit.cli.app import run
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.spec import parse_fleet
from tests.azure.conftest import SMALL_FLEET


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_print_gives_the_one_query_and_its_parts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "arm", "query", "--print")
    assert code == 0 and out == INVENTORY_QUERY + "\n"
    assert "order by id asc" in out and " take " not in out and "limit" not in out
    for table in ("resources", "extensibilityresources", "desktopvirtualizationresources"):
        assert table in out
    code, out, _ = cli(capsys, "arm", "query", "--print", "--parts")
    assert code == 0 and out == "\n\n".join(PARTS) + "\n"


def lab_rows(spec: str = SMALL_FLEET) -> list[dict[str, Any]]:
    """What `az graph query -q "<our query>"` returns for a lab fleet, taken from the lab's own Resource Graph."""
    lab = Lab(parse_fleet(spec, "snapshot-fleet.yaml"))
    lab.start()
    try:
        assert lab.arm is not None
        rows: list[dict[str, Any]] = []
        token = None
        while True:
            options: dict[str, Any] = {"$top": 1000}
            if token:
                options["$skipToken"] = token
            body = requests.post(
                f"{lab.arm.url}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
                json={"query": INVENTORY_QUERY, "options": options},
                headers={"Authorization": f"Bearer {lab.azure_token}"},
                verify=str(lab.arm.ca_bundle),
                timeout=10,
            ).json()
            rows += body["data"]
            token = body.get("$skipToken")
            if not token:
                return rows
    finally:
        lab.stop()


def go_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network and no credential: any connection attempt fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("HCIBENEFIT_INVENTORY", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


def test_a_snapshot_runs_with_no_network_and_no_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = lab_rows()
    cli_form = tmp_path / "arm.json"
    cli_form.write_text(
        json.dumps({"count": len(rows), "data": rows, "skip_token": None, "total_records": len(rows)})
    )
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(rows))
    go_offline(monkeypatch)
    for path in (cli_form, bare):
        code, out, err = cli(capsys, "arm", "query", "--arm-snapshot", str(path), "--format", "json")
        assert code == ExitCode.OK, err
        document = json.loads(out)
        assert {c["name"] for c in document["clusters"]} == {"hci-a", "hci-b"}
        assert len(document["vm_instances"]) == 3 and document["errors"] == []
        assert document["requests"]["resource_graph_requests"] == 0
    code, out, _ = cli(capsys, "arm", "query", "--arm-snapshot", str(cli_form))
    assert code == 0 and "hci-a" in out and "a-vm1" in out and "no request was sent to Azure" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"value": []}', 'not az graph query output: expected an object with "data"'),
        ('[{"clusterId": "x"}]', "data[0]: no 'id'"),
        ("not json", "not JSON"),
    ],
)
def test_a_bad_snapshot_exits_2_naming_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, out, err = cli(capsys, "arm", "query", "--arm-snapshot", str(path))
    assert code == ExitCode.USAGE and out == ""
    assert message in err and str(path) in err and "hint: save it with: az graph query" in err
    assert "Traceback" not in err


def test_live_against_the_lab(
    azure_lab: Callable[[str], Lab], lab_inventory: Callable[[Lab], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = azure_lab(SMALL_FLEET)
    inventory = lab_inventory(lab)
    code, out, err = cli(capsys, "-i", str(inventory), "arm", "query", "-f", "json")
    assert code == ExitCode.OK, err
    document = json.loads(out)
    assert len(document["clusters"]) == 2 and document["requests"]["resource_graph_requests"] == 4
    assert "azure: 4 Resource Graph request(s) for 4 page(s), 1 subscription read(s), 0 ARM read(s)" in err


def test_live_errors_are_per_subscription_and_exit_4(
    azure_lab: Callable[[str], Lab], lab_inventory: Callable[[Lab], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    denied = "11111111-1111-4111-8111-111111111111"
    lab = azure_lab(SMALL_FLEET.replace("azure: {", f"azure: {{denied_subscriptions: [{denied}], "))
    inventory = lab_inventory(lab)
    code, out, _ = cli(capsys, "-i", str(inventory), "arm", "query")
    assert code == ExitCode.INCOMPLETE
    assert f"! {denied}: no access (AuthorizationFailed)" in out
    assert "hci-a" in out  # the readable subscription was still read


def test_a_missing_login_says_what_fixes_it(
    azure_lab: Callable[[str], Lab],
    lab_inventory: Callable[[Lab], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = azure_lab(SMALL_FLEET)
    inventory = lab_inventory(lab)
    monkeypatch.delenv("HCIBENEFIT_LAB_AZURE_TOKEN")
    code, out, _ = cli(capsys, "-i", str(inventory), "arm", "query")
    assert code == ExitCode.INCOMPLETE
    assert "no Azure access token: environment variable HCIBENEFIT_LAB_AZURE_TOKEN is not set" in out
    assert (
        "hint: export HCIBENEFIT_LAB_AZURE_TOKEN=$(az account get-access-token --query accessToken -o tsv)"
        in out
    )
    assert lab.arm is not None and lab.snapshot()["azure"]["graph_requests"] == 0


def test_turning_tls_validation_off_is_said_on_every_run(
    azure_lab: Callable[[str], Lab], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = azure_lab(SMALL_FLEET)
    inventory = lab.write_inventory(tmp_path / "inventory.yaml")
    text = inventory.read_text()
    start = text.index("  cert_validation: ", text.index("\nazure:"))
    end = text.index("\n", start)
    inventory.write_text(text[:start] + "  cert_validation: false" + text[end:])
    code, out, err = cli(capsys, "-i", str(inventory), "arm", "query", "-o", "json")
    assert code == ExitCode.OK and len(json.loads(out)["clusters"]) == 2
    assert "azure.cert_validation is false: the TLS certificate of https://127.0.0.1:" in err
    assert "Unverified HTTPS request" not in err
