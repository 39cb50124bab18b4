"""Our PowerShell scripts: constant files shipped with the package, each naming its id and version.

A script's first line is `# hcibenefit-script: <id>/<version>`. The id/version pair is how the lab
recognises a script, how `/lab/state` counts invocations, and how a report names what ran. User input
never becomes script text: scripts take everything through their param() block.

Each script is sent alone and must read on its own (an admin may run it by hand), so the few helper
functions they share (date formatting, error records) are repeated in each file on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

HEADER = re.compile(r"^#\s*hcibenefit-script:\s*(?P<id>[a-z0-9-]+)/(?P<version>\d+)\s*$")


@dataclass(frozen=True)
class Script:
    id: str
    version: int
    filename: str
    mutating: bool
    """A mutating script is never retried once sent (the first attempt may have changed the host)."""

    @property
    def key(self) -> str:
        return f"{self.id}/{self.version}"

    def text(self) -> str:
        return _read(self.filename)


HOST_FACTS = Script("host-facts", 3, "host-facts.ps1", mutating=False)
VM_BENEFITS_ENABLE = Script("vm-benefits-enable", 2, "vm-benefits-enable.ps1", mutating=True)
VM_BENEFITS_DISABLE = Script("vm-benefits-disable", 2, "vm-benefits-disable.ps1", mutating=True)
HOST_ATTESTATION_ENABLE = Script("host-attestation-enable", 2, "host-attestation-enable.ps1", mutating=True)
HOST_SYNC = Script("host-sync", 1, "host-sync.ps1", mutating=True)
# Guest scripts: a *-body script runs inside the guest (sent as text by its host-side script through
# PowerShell Direct, or run directly over WinRM to the guest); the host-side ones fan out per node.
GUEST_PROBE_BODY = Script("guest-probe-body", 2, "guest-probe-body.ps1", mutating=False)
GUEST_PROBE = Script("guest-probe", 3, "guest-probe.ps1", mutating=False)
GUEST_KICK_BODY = Script("guest-kick-body", 1, "guest-kick-body.ps1", mutating=True)
GUEST_KICK = Script("guest-kick", 2, "guest-kick.ps1", mutating=True)

# Runs one of the scripts above for an Azure Arc run command (transport: arc); it is the run command's
# script, the real script's text and parameters are its (base64) parameters. Mutating: it may run any.
ARC_RUN = Script("arc-run", 1, "arc-run.ps1", mutating=True)

ALL_SCRIPTS: tuple[Script, ...] = (
    HOST_FACTS,
    VM_BENEFITS_ENABLE,
    VM_BENEFITS_DISABLE,
    HOST_ATTESTATION_ENABLE,
    HOST_SYNC,
    GUEST_PROBE_BODY,
    GUEST_PROBE,
    GUEST_KICK_BODY,
    GUEST_KICK,
    ARC_RUN,
)


@cache
def _read(filename: str) -> str:
    return files("hcibenefit.remoting").joinpath("scripts", filename).read_text(encoding="utf-8")


def parse_header(script_text: str) -> tuple[str, int] | None:
    """(id, version) from a script's first line, or None for any other text."""
    first_line = script_text.lstrip("\ufeff").split("\n", 1)[0].strip()
    match = HEADER.match(first_line)
    if match is None:
        return None
    return match.group("id"), int(match.group("version"))
