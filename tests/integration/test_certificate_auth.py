"""WinRM certificate authentication (`auth: certificate`) end to end: real pypsrp presenting a client
certificate over TLS to the lab (`Lab(auth="certificate")`), which maps it to a local account as WinRM's
certificate mappings do. No host password exists in these runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.inventory import logon
from hcibenefit.lab import pki
from hcibenefit.lab.fleet import PASSWORD_ENV, Lab
from tests.integration.conftest import LabClient, fresh_client, running_lab


@pytest.fixture(scope="module")
def certificate_lab() -> Iterator[Lab]:
    yield from running_lab(auth="certificate")


@pytest.fixture
def cert_lab(
    certificate_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    for client in fresh_client(certificate_lab, tmp_path, monkeypatch, capsys):
        monkeypatch.delenv(PASSWORD_ENV)  # a certificate logon needs no host password: none exists
        yield client


def _with_certificate(lab: LabClient, tmp_path: Path, issued: pki.Issued) -> LabClient:
    cert, key = tmp_path / "other.pem", tmp_path / "other-key.pem"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    text = lab.inventory.read_text()
    text = re.sub(r"    certificate_pem: .*\n", f'    certificate_pem: "{cert}"\n', text)
    text = re.sub(r"    certificate_key_pem: .*\n", f'    certificate_key_pem: "{key}"\n', text)
    path = tmp_path / "other-inventory.yaml"
    path.write_text(text)
    return LabClient(lab.lab, path, lab._capsys)


def _failed_logons(lab: LabClient) -> int:
    return sum(n["failed_logons"] for n in lab.state()["nodes"])


def test_the_written_inventory_names_the_client_certificate_and_no_host_password(cert_lab: LabClient) -> None:
    text = cert_lab.inventory.read_text()
    assert "    auth: certificate\n" in text and "    transport: https\n" in text
    assert "certificate_pem:" in text and "certificate_key_pem:" in text
    assert PASSWORD_ENV not in text.split("guest_credentials:")[0].split("# Host credential")[1]


def test_status_logs_on_with_the_certificate_without_the_password_gate(
    cert_lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admitted: list[str] = []
    real_admit = logon.LogonGate.admit

    def admit(self: logon.LogonGate, node: str, *args: Any, **kwargs: Any) -> None:
        admitted.append(node)
        real_admit(self, node, *args, **kwargs)

    monkeypatch.setattr(logon.LogonGate, "admit", admit)
    result = cert_lab.cli("status", "-o", "json", "--fail-on", "none")
    assert result.code == 0, result.err
    nodes = json.loads(result.out)["nodes"]
    assert len(nodes) == 8 and all(n["verdict"] != "unreachable" for n in nodes), nodes
    # A certificate cannot be locked out: no node waits for another's logon to be proven.
    assert admitted == []
    assert _failed_logons(cert_lab) == 0


def test_a_change_is_audited_under_the_client_certificate(cert_lab: LabClient, tmp_path: Path) -> None:
    result = cert_lab.cli("enable", "--vm", "avd-missing-nic", "--yes")
    assert result.code == 0, result.err
    assert cert_lab.vm("avd-missing-nic")["benefits"] == "v1", "the change did not reach the lab"
    records = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    certificate = cert_lab.inventory.read_text().split("certificate_pem: ")[1].split("\n")[0].strip('"')
    assert records and all(r["remote_user"] == f"(client certificate {certificate})" for r in records)


def test_guest_check_runs_through_certificate_sessions(cert_lab: LabClient) -> None:
    result = cert_lab.cli("guest", "check", "--vm", "avd-ok-01", "-o", "json")
    assert result.code == 0, result.err
    (guest,) = result.json()["vms"]
    assert (guest["vm"], guest["access"], guest["verdict"]) == ("avd-ok-01", "powershell-direct", "activated")


def test_a_certificate_no_mapping_knows_is_refused_as_a_logon_not_counted_as_a_bad_password(
    cert_lab: LabClient, tmp_path: Path
) -> None:
    ca = cert_lab.lab.server.ca if cert_lab.lab.server else None
    assert ca is not None
    stranger = _with_certificate(
        cert_lab, tmp_path, pki.tls_client(ca, user_principal_name="mallory@localhost")
    )
    before = cert_lab.state()
    result = stranger.cli("status", "-c", "hci-lab-01", "-o", "json", "--fail-on", "none")
    assert result.code == 4, result.err
    nodes = json.loads(result.out)["nodes"]
    assert nodes and all(n["verdict"] == "unreachable" for n in nodes)
    assert all("refused the client certificate" in n["reason"] for n in nodes), nodes
    assert _failed_logons(cert_lab) == 0
    # `inventory test` (each unreachable node's fix) says how to map a certificate on the host.
    tested = stranger.cli("inventory", "test", "--node", "lab01-n1")
    assert tested.code != 0 and "New-Item -Path WSMan:\\localhost\\ClientCertificate" in tested.out, (
        tested.out
    )
    assert cert_lab.state()["vms"] == before["vms"]


def test_a_certificate_from_a_ca_the_host_does_not_trust_fails_the_handshake_with_that_reason(
    cert_lab: LabClient, tmp_path: Path
) -> None:
    other_ca = pki.issue("another CA", ca=True, path_length=0)
    stranger = _with_certificate(
        cert_lab, tmp_path, pki.tls_client(other_ca, user_principal_name="labadmin@localhost")
    )
    result = stranger.cli("status", "-c", "hci-lab-01", "-o", "json", "--fail-on", "none")
    assert result.code == 4, result.err
    nodes = json.loads(result.out)["nodes"]
    assert nodes and all(n["verdict"] == "unreachable" for n in nodes)
    assert all(
        "did not accept the client certificate" in n["reason"] or "closed the TLS connection" in n["reason"]
        for n in nodes
    ), nodes


def test_the_lab_maps_only_a_client_authentication_certificate_with_the_mapped_upn() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from hcibenefit.lab.wsman.auth import MUTUAL_PROFILE, AuthFailed, check_certificate

    ca = pki.issue("lab CA", ca=True, path_length=0)
    issuer = ca.cert.public_bytes(Encoding.DER)
    mappings = {"labadmin@localhost": "labadmin"}
    good = pki.tls_client(ca, user_principal_name="LabAdmin@localhost").cert.public_bytes(Encoding.DER)
    assert check_certificate(MUTUAL_PROFILE, good, mappings, issuer) == "labadmin"
    server_cert = pki.tls_server(ca, dns_names=["labadmin@localhost"], ip_addresses=[])
    refused = {
        "no header": ("", good),
        "basic header": ("Basic bGFiYWRtaW46eA==", good),
        "no certificate": (MUTUAL_PROFILE, None),
        "server usage, no UPN": (MUTUAL_PROFILE, server_cert.cert.public_bytes(Encoding.DER)),
        "another issuer": (
            MUTUAL_PROFILE,
            pki.tls_client(
                pki.issue("x", ca=True), user_principal_name="labadmin@localhost"
            ).cert.public_bytes(Encoding.DER),
        ),
    }
    for why, (header, der) in refused.items():
        with pytest.raises(AuthFailed):
            check_certificate(header, der, mappings, issuer)
            pytest.fail(why)


def test_the_client_certificate_is_loaded_once_for_every_node(
    cert_lab: LabClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    import hcibenefit.remoting.tlscontext as tlscontext

    monkeypatch.setattr(tlscontext, "_contexts", {})  # as in a fresh process
    loads: list[tuple[Any, ...]] = []
    real = ssl.SSLContext.load_cert_chain

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", counting)
    result = cert_lab.cli("status", "-o", "json", "--fail-on", "none")
    assert result.code == 0, result.err
    assert len(json.loads(result.out)["nodes"]) == 8
    client = cert_lab.lab.server.client_certificate if cert_lab.lab.server else None
    assert client is not None
    assert [args for args in loads if str(client[0]) in map(str, args)] == [(str(client[0]), str(client[1]))]


@pytest.mark.parametrize(
    ("setting", "pattern"),
    [
        ("certificate_pem", r"    certificate_pem: .*\n"),
        ("certificate_key_pem", r"    certificate_key_pem: .*\n"),
        ("cert_validation", r"    cert_validation: .*\n"),
    ],
)
def test_a_tls_file_that_does_not_exist_is_named_with_its_setting(
    cert_lab: LabClient, tmp_path: Path, setting: str, pattern: str
) -> None:
    gone = tmp_path / "gone.pem"
    path = tmp_path / "broken-inventory.yaml"
    path.write_text(re.sub(pattern, f'    {setting}: "{gone}"\n', cert_lab.inventory.read_text()))
    asked_before = sum(n["requests"] for n in cert_lab.state()["nodes"])  # counters outlive reset()
    result = LabClient(cert_lab.lab, path, cert_lab._capsys).cli("status", "-c", "hci-lab-01", "-o", "json")
    assert result.code == 5, result.err  # findings (unreachable nodes) and incomplete; nothing was sent
    nodes = json.loads(result.out)["nodes"]
    assert nodes and all(
        n["reason"] == f"tls: the file {setting} names does not exist: {gone}" for n in nodes
    ), nodes
    assert sum(n["requests"] for n in cert_lab.state()["nodes"]) == asked_before
