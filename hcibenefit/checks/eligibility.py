"""Does a VM need Azure Benefits, and through which transport? Pure policy, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from hcibenefit.facts.host import HostFacts, VMFacts
from hcibenefit.inventory.model import Policy

# Numeric OSEditionId values from KVP; only 175 (PRODUCT_SERVERRDSH) is documented (docs/platform.md).
_EDITION_BY_PRODUCT_TYPE = {"175": "ServerRdsh"}
# Guests that on 23H2+ still need V1 ("legacy OS support"): Windows 10 multi-session and ESU releases.
_LEGACY_MARKERS = ("windows 10", "2012", "2008")


@dataclass(frozen=True)
class Requirement:
    needed: bool | None
    """None: the guest OS is unknown (VM off, data exchange off), so policy cannot decide."""
    transport: str | None
    """V1 (guest NIC) or V2 (Guest Service Interface), or None when not needed or not decidable."""
    reason: str


def edition_of(vm: VMFacts) -> str | None:
    edition_id = (vm.kvp or {}).get("OSEditionId")
    return _EDITION_BY_PRODUCT_TYPE.get(edition_id or "")


def is_legacy_guest(os_name: str) -> bool:
    lowered = os_name.lower()
    return any(marker in lowered for marker in _LEGACY_MARKERS)


def transport_for(host: HostFacts, os_name: str | None) -> str | None:
    if not host.supports_v2:
        return "V1"
    if os_name is None:
        return None
    return "V1" if is_legacy_guest(os_name) else "V2"


def requirement(vm: VMFacts, host: HostFacts, policy: Policy) -> Requirement:
    os_name = vm.os_name
    edition = edition_of(vm)
    if os_name is None and edition is None:
        if policy.requires_benefits(vm.name):
            return Requirement(True, transport_for(host, None), "required by name in the policy")
        why = "data exchange (KVP) is off" if not vm.kvp_enabled else f"the VM is {vm.state.lower()}"
        return Requirement(None, None, f"guest OS unknown: {why}")
    needed = policy.requires_benefits(vm.name, edition_id=edition, os_name=os_name)
    shown = os_name or edition or "unknown OS"
    if not needed:
        return Requirement(False, None, f"{shown} activates without Azure Benefits")
    return Requirement(True, transport_for(host, os_name), f"{shown} activates only through Azure Benefits")
