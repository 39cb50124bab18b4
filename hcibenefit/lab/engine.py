"""The lab's PowerShell: recognises our scripts by their header and answers from the fleet model.

Anything that is not one of our scripts gets the error record PowerShell gives for a command it does
not know; the lab never evaluates text as code.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from hcibenefit.lab.binding import bind
from hcibenefit.lab.emulation import EMULATIONS, NOT_RECOGNIZED, Emulation, Invocation
from hcibenefit.lab.guest_emulation import guest_emulations
from hcibenefit.lab.state import FleetState
from hcibenefit.lab.wsman.executor import PipelineCall, PipelineOutput, TerminatingError
from hcibenefit.remoting.catalog import parse_header

if TYPE_CHECKING:
    from hcibenefit.lab.signing import LabSigningChain

_COMMAND_NOT_FOUND = "System.Management.Automation.CommandNotFoundException"
_FIRST_COMMAND = re.compile(r"[A-Za-z][\w]*-[\w]+|[A-Za-z_][\w.]*")


def _first_command(script: str) -> str:
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _FIRST_COMMAND.search(stripped)
        if match:
            return match.group(0)
    return script.strip()[:40] or "<empty>"


class LabEngine:
    """A ScriptExecutor over a FleetState; counts invocations per node and script id."""

    def __init__(self, state: FleetState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self.invocations: defaultdict[str, Counter[str]] = defaultdict(Counter)
        # Set by the Lab: what guests sign documents with and the password they accept.
        self.signing: LabSigningChain | None = None
        self.guest_password: str | None = None
        # Guest emulations read signing and guest_password when they run, so they are bound once here.
        self.emulations: dict[str, Emulation] = {**EMULATIONS, **guest_emulations(self)}

    def reset_counters(self) -> None:
        with self._lock:
            self.invocations.clear()

    def counts(self, node: str) -> dict[str, int]:
        with self._lock:
            return dict(self.invocations.get(node.lower(), Counter()))

    def _count(self, node: str, script_id: str) -> None:
        with self._lock:
            self.invocations[node.lower()][script_id] += 1

    def execute(self, call: PipelineCall, out: PipelineOutput) -> None:
        if len(call.commands) != 1:
            # Our client sends exactly one script per pipeline; anything else is not ours.
            names = " | ".join(c.text if not c.is_script else _first_command(c.text) for c in call.commands)
            raise TerminatingError(
                NOT_RECOGNIZED.format(names.split(" | ")[0]),
                error_id="CommandNotFoundException",
                category="ObjectNotFound",
                exception_type=_COMMAND_NOT_FOUND,
            )
        command = call.commands[0]
        header = parse_header(command.text) if command.is_script else None
        key = f"{header[0]}/{header[1]}" if header else None
        emulation = self.emulations.get(key) if key else None
        if emulation is None or header is None:
            name = command.text if not command.is_script else _first_command(command.text)
            self._count(call.node, header[0] if header else "unknown")
            message = NOT_RECOGNIZED.format(name)
            if command.is_script:
                # Inside a script an unknown command is a non-terminating error; the script goes on.
                out.write_error(message, error_id="CommandNotFoundException", category="ObjectNotFound")
                return
            raise TerminatingError(
                message,
                error_id="CommandNotFoundException",
                category="ObjectNotFound",
                exception_type=_COMMAND_NOT_FOUND,
            )
        self._count(call.node, header[0])
        params = bind(emulation.signature, command.parameters)
        node = self.state.node(call.node)
        emulation.handler(Invocation(state=self.state, node=node, params=params, out=out))
