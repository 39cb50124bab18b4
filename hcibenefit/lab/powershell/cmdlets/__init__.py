"""The emulated cmdlets, one module per PowerShell module they belong to.

Each emulation names its source in its `source` and in comments, and says `Assumption:` where the
sources are silent. `parameters.json` is the table of every cmdlet's documented parameter names (with a
source per cmdlet); the binder uses it to tell a parameter the lab does not emulate (NotEmulated, loud)
from one that does not exist (PowerShell's NamedParameterNotFound), and the static checks in
tests/scripts read the same table.
"""

from __future__ import annotations

from typing import Any

from hcibenefit.lab.powershell.cmdlets import (  # noqa: F401  (each module registers its cmdlets)
    azstackhci,
    azurestackhci,
    cim,
    cluster,
    diagnostics,
    hosting,
    hyperv,
    net,
    remoting,
    scheduledtasks,
    utility,
    web,
)
from hcibenefit.lab.powershell.cmdlets.base import REGISTRY, Cmdlet, documented_parameters


def resolve(name: str, machine: Any) -> Cmdlet | None:
    return REGISTRY.resolve(name, machine)


def emulated() -> list[Cmdlet]:
    return sorted(REGISTRY.cmdlets.values(), key=lambda c: (c.module, c.name))


__all__ = ["Cmdlet", "documented_parameters", "emulated", "resolve"]
