"""Every node's connection checks the host's certificate against the CA the inventory names, through one
TLS context per CA location (loaded once per run), and a host the CA did not sign is still refused."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest

from hcibenefit.lab import pki
from tests.integration.conftest import LabClient


def _with_ca(lab: LabClient, tmp_path: Path, ca: str) -> LabClient:
    text = re.sub(r"    cert_validation: .*\n", f"    cert_validation: {ca}\n", lab.inventory.read_text())
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return LabClient(lab.lab, path, lab._capsys)


@pytest.fixture
def ca_loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    import hcibenefit.remoting.tlscontext as tlscontext

    monkeypatch.setattr(tlscontext, "_contexts", {})  # as in a fresh process
    loads: list[Any] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append((args, kwargs))
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    return loads


def test_the_lab_ca_is_loaded_once_for_every_node(
    lab: LabClient, tmp_path: Path, ca_loads: list[Any]
) -> None:
    bundle = lab.lab.ca_bundle
    assert bundle is not None
    client = _with_ca(lab, tmp_path, f'"{bundle}"')
    result = client.cli("status", "-o", "json", "--fail-on", "none")
    assert result.code == 0, result.err
    nodes = json.loads(result.out)["nodes"]
    assert len(nodes) >= 5 and all(n["verdict"] != "unreachable" for n in nodes), nodes
    winrm_loads = [load for load in ca_loads if str(bundle) in repr(load)]
    assert len(winrm_loads) == 1, winrm_loads


@pytest.mark.parametrize("ca", ["certifi", "other-ca", "true"])
def test_a_host_the_named_ca_did_not_sign_is_refused(
    lab: LabClient, tmp_path: Path, ca_loads: list[Any], ca: str
) -> None:
    if ca == "certifi":
        setting = f'"{certifi.where()}"'
    elif ca == "other-ca":
        other = tmp_path / "other-ca.pem"
        other.write_bytes(pki.issue("not the lab", ca=True).cert_pem)
        setting = f'"{other}"'
    else:
        setting = "true"  # requests' default bundle, which does not hold the lab's CA
    client = _with_ca(lab, tmp_path, setting)
    result = client.cli("status", "-o", "json", "--fail-on", "none")
    assert result.code == 4, result.err  # incomplete: no node was assessed
    nodes = json.loads(result.out)["nodes"]
    assert len(nodes) >= 5, nodes
    for node in nodes:
        assert node["verdict"] == "unreachable" and node["os_build"] is None, node
        assert "certificate" in node["reason"].lower(), node
    assert len(ca_loads) >= 1
