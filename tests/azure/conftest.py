"""Labs for the Azure side: a fleet spec in, the running lab and AzureSettings pointing at its ARM out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hcibenefit.inventory.model import AzureSettings
from hcibenefit.lab.fleet import AZURE_TOKEN_ENV, Lab
from hcibenefit.lab.spec import parse_fleet

SMALL_FLEET = """
azure: {page_size: 4, quota_window_s: 1}
clusters:
  - name: hci-a
    version: 23H2
    nodes: [a-n1, a-n2]
    vms:
      - {name: a-vm1, node: a-n1, benefits: v2}
      - {name: a-vm2, node: a-n2, benefits: v2}
      - {name: a-vm3, node: a-n2, benefits: v2}
  - name: hci-b
    version: 22H2
    nodes: [b-n1]
    vms:
      - {name: b-vm1, node: b-n1, benefits: v1}
"""


def settings_for(lab: Lab, **changes: object) -> AzureSettings:
    assert lab.arm is not None
    from hcibenefit.lab.arm.model import subscriptions

    values: dict[str, object] = {
        "endpoint": lab.arm.url,
        "credential": "access-token",
        "token_env": AZURE_TOKEN_ENV,
        "cert_validation": lab.arm.ca_bundle,
        "subscriptions": tuple(sorted(subscriptions(lab.state))),
    }
    values.update(changes)
    return AzureSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def azure_lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Lab]]:
    """Starts labs from spec text; each is stopped after the test. The lab's token is exported."""
    started: list[Lab] = []

    def start(spec_text: str = SMALL_FLEET) -> Lab:
        lab = Lab(parse_fleet(spec_text, "azure-test-fleet.yaml"), read_timeout=6.0)
        lab.start()
        started.append(lab)
        for name, value in lab.environment().items():
            monkeypatch.setenv(name, value)
        return lab

    try:
        yield start
    finally:
        for lab in started:
            lab.stop()


@pytest.fixture
def lab_inventory(tmp_path: Path) -> Callable[[Lab], Path]:
    def write(lab: Lab) -> Path:
        return lab.write_inventory(tmp_path / "inventory.yaml")

    return write
