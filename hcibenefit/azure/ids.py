"""ARM resource ids as plain strings: normalised once, taken apart without regular expressions.

Resource Graph returns ids and types in whatever case the resource provider used, and ARM
compares them case-insensitively; so every id we keep is lower case without a trailing slash, and
joins become plain string comparisons.
"""

from __future__ import annotations

import sys

VMI_PROVIDER = "/providers/microsoft.azurestackhci/virtualmachineinstances/"


def norm_id(value: object) -> str:
    """Lower case, no surrounding blanks or trailing slash; '' for anything that is not text."""
    if not isinstance(value, str):
        return ""
    # Interned: every machine and VM instance repeats its cluster's and custom location's id.
    return sys.intern(value.strip().rstrip("/").lower())


def segments(resource_id: str) -> list[str]:
    return [part for part in resource_id.split("/") if part]


def _after(resource_id: str, key: str) -> str:
    parts = segments(resource_id)
    lowered = [p.lower() for p in parts]
    try:
        index = lowered.index(key)
    except ValueError:
        return ""
    return parts[index + 1] if index + 1 < len(parts) else ""


def subscription_of(resource_id: str) -> str:
    return _after(resource_id, "subscriptions").lower()


def resource_group_of(resource_id: str) -> str:
    return _after(resource_id, "resourcegroups").lower()


def last_name(resource_id: str) -> str:
    parts = segments(resource_id)
    return parts[-1] if parts else ""


def parent_of_extension(resource_id: str) -> str:
    """The resource an extension resource hangs off: a VM instance's Arc machine.

    ``.../machines/vm1/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default`` →
    ``.../machines/vm1`` (normalised). An id without ``/providers/`` before the extension part gives
    what precedes it anyway, so a malformed id never matches a real machine rather than raising.
    """
    lowered = norm_id(resource_id)
    index = lowered.rfind("/providers/microsoft.azurestackhci/")
    return lowered[:index] if index > 0 else ""


def first_label(host_name: str) -> str:
    """The host part of a DNS name, case-folded: `LAB02-N1`, `lab02-n1.corp.example` → `lab02-n1`."""
    return host_name.strip().split(".", 1)[0].casefold()
