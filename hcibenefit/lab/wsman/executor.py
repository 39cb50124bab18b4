"""The contract between the WS-Man/PSRP server and whatever answers the PowerShell it receives.

The server decodes each pipeline into a `PipelineCall` and runs `ScriptExecutor.execute` on a worker
thread of its own; the executor answers through `PipelineOutput`. Nothing here knows about WS-Man.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class CommandSpec:
    text: str  # script text or cmdlet name
    is_script: bool
    parameters: tuple[
        tuple[str | None, Any], ...
    ]  # (name or None for positional, value as psrpcore deserialised it)


@dataclass(frozen=True)
class PipelineCall:
    node: str  # endpoint name
    username: str  # authenticated user
    configuration_name: str
    commands: tuple[CommandSpec, ...]
    input: tuple[Any, ...]  # pipeline input objects, if any
    auth: str = "basic"
    """How the session authenticated: basic, ntlm (also NTLM inside Negotiate), credssp."""
    can_delegate: bool = False
    """Whether the session's credentials can be used for a further hop (CredSSP; Kerberos with delegation)."""
    host_ui: bool = False
    """Whether the client's runspace pool has a host with a UI (pypsrp opens pools without one)."""
    runspace: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """State the executor keeps for the runspace pool this pipeline runs in; lives as long as the shell."""


class TerminatingError(Exception):
    """Raised by an executor to fail the pipeline the way a terminating PowerShell error does."""

    def __init__(
        self,
        message: str,
        *,
        error_id: str,
        category: str = "NotSpecified",
        exception_type: str = "System.Management.Automation.RuntimeException",
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.category = category
        self.exception_type = exception_type
        self.target = target


class PipelineOutput(Protocol):
    stopping: threading.Event  # set when the client sends ctrl_c/Terminate; executors poll it while sleeping

    def write_output(
        self, value: Any
    ) -> None: ...  # str, int, bool, dict, list ... as psrpcore serialises them

    def write_error(
        self,
        message: str,
        *,
        error_id: str,
        category: str = "NotSpecified",
        target: str | None = None,
        exception_type: str | None = None,
    ) -> None: ...  # non-terminating

    def write_warning(self, message: str) -> None: ...

    def write_verbose(self, message: str) -> None: ...

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None: ...

    def write_information(self, message: str, source: str) -> None: ...


class ScriptExecutor(Protocol):
    def execute(self, call: PipelineCall, out: PipelineOutput) -> Sequence[Any] | None:
        """Run the pipeline, writing to `out` as it goes. What it returns is written as the pipeline's last
        output together with its completion (one Receive sees both, however threads are scheduled)."""
        ...
