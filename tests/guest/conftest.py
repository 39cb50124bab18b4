"""Fixtures for the guest checks: a lab with a distinctive guest password, and the lab engine driven in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.signing import LabSigningChain
from hcibenefit.lab.spec import FleetSpec, default_fleet, parse_fleet
from hcibenefit.remoting.catalog import GUEST_KICK, GUEST_KICK_BODY, GUEST_PROBE, GUEST_PROBE_BODY
from tests.conftest import CollectingOutput, EngineDriver
from tests.integration.conftest import LabClient, client_for, fresh_client

HOST_PASSWORD = "Gx-Host-Pa55-word!"
# Distinctive, so a test can search every output for it.
GUEST_PASSWORD = "Zq9-GUEST-s3cret-Wv4!"


def start(spec: FleetSpec) -> Lab:
    lab = Lab(spec, password=HOST_PASSWORD, guest_password=GUEST_PASSWORD, read_timeout=6.0)
    lab.start()
    return lab


@pytest.fixture(scope="session")
def guest_lab() -> Iterator[Lab]:
    lab = start(default_fleet())
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(
    guest_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[LabClient]:
    """The default fleet reset to its spec; no remote shell may be left open after a test."""
    yield from fresh_client(guest_lab, tmp_path, monkeypatch, capsys)


@pytest.fixture
def small_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """small_lab(yaml) -> LabClient for a fleet of its own, stopped (and checked for open shells) after the test."""
    started: list[Lab] = []

    def make(yaml_text: str) -> LabClient:
        lab = start(parse_fleet(yaml_text, "small.yaml"))
        started.append(lab)
        return client_for(lab, tmp_path, monkeypatch, capsys)

    yield make
    for lab in started:
        shells = lab.open_shells()
        lab.stop()
        assert shells == 0, "a test left remote shells open"


def by_vm(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["vm"]: r for r in records}


# --- the engine in-process -----------------------------------------------------------------------


class FakeSecureString:
    def __init__(self, value: str) -> None:
        self._value = value

    def decrypt(self) -> str:
        return self._value


class FakeCredential:
    """Shaped like psrpcore's PSCredential as the lab server hands it to the engine."""

    def __init__(self, username: str, password: str) -> None:
        self.UserName = username
        self.Password = FakeSecureString(password)


_CHAIN: list[LabSigningChain] = []


def signing_chain() -> LabSigningChain:
    if not _CHAIN:
        _CHAIN.append(LabSigningChain.generate())
    return _CHAIN[0]


class GuestDriver(EngineDriver):
    """EngineDriver with what the Lab gives its engine: a signer and the guests' password."""

    def __init__(self, spec: FleetSpec) -> None:
        super().__init__(spec)
        self.engine.signing = signing_chain()
        self.engine.guest_password = GUEST_PASSWORD

    def ids(self, vms: list[str]) -> list[str]:
        """The VMs' ids as the client sends them; an unknown name gets an id no VM has."""
        found = [self.state.vm(name) for name in vms]
        return [
            vm.id if vm is not None else f"00000000-0000-4000-8000-{index:012d}"
            for index, vm in enumerate(found)
        ]

    def probe(
        self, node: str, vms: list[str], *, password: str = GUEST_PASSWORD, nonce: str = "0123456789"
    ) -> dict[str, Any]:
        return self.document(
            node,
            GUEST_PROBE,
            {
                "VMId": self.ids(vms),
                "Credential": FakeCredential("Administrator", password),
                "ProbeScript": GUEST_PROBE_BODY.text(),
                "Nonce": nonce,
            },
        )

    def kick(self, node: str, vms: list[str], *, enable_task: bool = False) -> dict[str, Any]:
        return self.document(
            node,
            GUEST_KICK,
            {
                "VMId": self.ids(vms),
                "Credential": FakeCredential("Administrator", GUEST_PASSWORD),
                "KickScript": GUEST_KICK_BODY.text(),
                "EnableTask": enable_task,
            },
        )

    def raw_call(self, node: str, script: Any, params: dict[str, Any]) -> CollectingOutput:
        return self.call(node, script, params)


@pytest.fixture
def guest_driver() -> Any:
    def make(yaml_text: str | None = None) -> GuestDriver:
        return GuestDriver(default_fleet() if yaml_text is None else parse_fleet(yaml_text, "driver.yaml"))

    return make


def body_of(fan_out: dict[str, Any], vm: str) -> dict[str, Any]:
    [result] = [r for r in fan_out["results"] if r["vm"] == vm]
    document: dict[str, Any] = json.loads(result["output"])
    return document
