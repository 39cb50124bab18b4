"""What happens inside a lab guest: the licensing task's outcome, its event log entries, its addresses.

Derived from the host model, so a host change shows in the guest (a VM that gets its NIC through
`hcibenefit enable` reaches IMDS and activates after a kick).

Assumptions (none of these is documented; each is marked where used):
- what a guest sees when its path to 169.254.169.253 is broken (refused at once) versus blocked inside
  the guest (times out), and that 169.254.169.254 always times out on HCI;
- LastTaskResult / Security-SPP 8198 hr codes per cause, and the Client-License-Flexible-Platform event
  ids and texts (platform.md: IMDS-specific ids are undocumented);
- the licensing product's channel and grace period for an IMDS-activated guest.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hcibenefit.lab.state import VM, FleetState, Nic

SPP_PROVIDER = "Microsoft-Windows-Security-SPP"
CLIP_LOG = "Microsoft-Client-License-Flexible-Platform/Admin"
APPLICATION_LOG = "Application"
FCLIP = "%SystemRoot%\\system32\\fclip.exe"
AZURE_IMDS_ADDRESS = "169.254.169.254"
# Assumption: HRESULTs fclip/slui report per cause (LastTaskResult and the hr= of Security-SPP 8198).
HR_CANNOT_CONNECT = 0x80072EFD  # ERROR_INTERNET_CANNOT_CONNECT
HR_TIMEOUT = 0x80072EE2  # ERROR_INTERNET_TIMEOUT
HR_BY_DOCUMENT = {
    "expired": 0x800B0101,  # CERT_E_EXPIRED
    "tampered": 0x80096010,  # TRUST_E_BAD_DIGEST
    "missing-intermediate": 0x800B010A,  # CERT_E_CHAINING
    "wrong-nonce": 0x8007000D,  # ERROR_INVALID_DATA
}
# Assumption: ids and texts in the Client-License-Flexible-Platform log (undocumented).
CLIP_FETCHED = (100, "LicenseImdsIntegration: received the attested document from {0}.")
CLIP_FAILED = (101, "LicenseImdsIntegration: could not get a usable attested document, hr=0x{0:08X}.")
# Assumption: an IMDS-activated guest's licensing product (channel text and grace period are not public).
PRODUCT_CHANNEL = "Volume:GVLK"
LICENSED_GRACE_MINUTES = 43200
WINDOWS_APPLICATION_ID = "55c92734-d682-4d71-983e-d6ec3f16059f"


def build_of(os_name: str) -> str:
    if "Windows 11" in os_name:
        return "22631"
    if "Windows 10" in os_name:
        return "19045"
    return "20348"


# Assumption: what a guest patched in 2025 reports as its update build revision (any UBR after the April 2024
# cumulative updates activates through Azure VM verification; these are plausible 2025 levels).
CURRENT_UBR = {"22631": 5039, "19045": 5737, "20348": 3328}


def ubr_of(vm: VM) -> int | None:
    return vm.guest.ubr if vm.guest.ubr is not None else CURRENT_UBR.get(build_of(vm.os))


def display_version_of(os_name: str) -> str:
    return "23H2" if "Windows 11" in os_name else "22H2" if "Windows 10" in os_name else "21H2"


def guest_addresses(vm: VM, nic: Nic) -> list[str]:
    """What the guest holds on one NIC (Hyper-V reports these through data exchange)."""
    from hcibenefit.lab.state import GUEST_NIC

    octets = vm.id.replace("-", "")
    third, fourth = int(octets[:2], 16) % 250 + 1, int(octets[2:4], 16) % 250 + 1
    if nic.name == GUEST_NIC:
        # No DHCP on the IMDS switch: the guest gives itself an APIPA address (platform.md, inference).
        return [f"169.254.{third}.{fourth}"] if nic.connected else []
    return [f"10.20.{third}.{fourth}"]


def failure_hr(state: FleetState, vm: VM) -> int:
    guest = vm.guest
    if guest.imds == "unreachable" and state.v1_path_works(vm):
        return HR_TIMEOUT
    if not (state.v1_path_works(vm) or state.v2_path_works(vm)) or guest.imds != "reachable":
        return HR_CANNOT_CONNECT
    if guest.imds_status != 200:
        return 0x80190000 | guest.imds_status  # Assumption: HTTP_E_STATUS_* for the status IMDS answered
    return HR_BY_DOCUMENT.get(guest.document, HR_CANNOT_CONNECT)


def record_task_outcome(state: FleetState, vm: VM, at: dt.datetime) -> None:
    """A run of LicenseImdsIntegration ends: fclip got the document and slui activated, or neither."""
    from hcibenefit.lab.state import HOST_IMDS_ADDRESS

    guest = vm.guest
    if state.activation_path_works(vm):
        guest.last_result = 0
        source = HOST_IMDS_ADDRESS if state.v1_path_works(vm) else "VMBus"
        add_event(vm, CLIP_FETCHED[0], CLIP_LOG, CLIP_FETCHED[1].format(source), at)
        if guest.runs >= guest.runs_needed:
            guest.license_status = 1
        return
    hr = failure_hr(state, vm)
    guest.last_result = hr
    add_event(vm, CLIP_FAILED[0], CLIP_LOG, CLIP_FAILED[1].format(hr), at)
    # platform.md section 7: Security-SPP 8198, activation failed with hr=...
    add_event(
        vm,
        8198,
        SPP_PROVIDER,
        f"License Activation (slui.exe) failed with the following error code:\nhr=0x{hr:08X}\n"
        "Command-line arguments:\nRuleId=...",
        at,
    )


def add_event(vm: VM, event_id: int, provider: str, text: str, at: dt.datetime) -> None:
    vm.guest.events.append((event_id, at, provider, text))


def log_of(provider: str) -> str:
    return CLIP_LOG if provider == CLIP_LOG else APPLICATION_LOG
