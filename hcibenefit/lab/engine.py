"""The lab's ScriptExecutor: runs the PowerShell a client sends through the lab's 5.1 evaluator.

Every pipeline is evaluated (hcibenefit.lab.powershell): the script text is parsed, its parameters are
bound, and each command it calls is an emulated cmdlet acting on the fleet model. Invocations are
counted per node and script id (from the script's `# hcibenefit-script:` header; "unknown" for any
other text) for /lab/state.

A runspace pool keeps one runspace: what a script leaves in the global scope is there for the next
pipeline of the same pool (powershell51.md section 10.1).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hcibenefit.lab.machines import GuestMachine, NodeMachine
from hcibenefit.lab.powershell import nodes as n
from hcibenefit.lab.powershell import syntax
from hcibenefit.lab.powershell.binding import Arg
from hcibenefit.lab.powershell.errors import ErrorRecord, NotEmulated, PSError, Unsupported
from hcibenefit.lab.powershell.evaluator import Interpreter
from hcibenefit.lab.powershell.runspace import Runspace, SessionAuth
from hcibenefit.lab.powershell.values import (
    ArrayList,
    PSDateTime,
    PSDict,
    PSEnum,
    PSGuid,
    PSObject,
    credential,
)
from hcibenefit.lab.state import FleetState
from hcibenefit.lab.wsman.executor import PipelineCall, PipelineOutput, TerminatingError
from hcibenefit.remoting.catalog import parse_header

if TYPE_CHECKING:
    from hcibenefit.lab.signing import LabSigningChain

log = logging.getLogger(__name__)
DIRECT_BROKEN = (
    "An error has occurred which Windows PowerShell cannot handle. A remote session might have ended."
)


class _Sink:
    """The runspace's streams written to the WinRM pipeline."""

    def __init__(self, out: PipelineOutput) -> None:
        self.out = out

    def write_error_record(self, record: ErrorRecord) -> None:
        target = record.target if isinstance(record.target, str) else None
        self.out.write_error(
            record.details or record.message,
            error_id=record.fqid,
            category=record.category.name,
            target=target,
            exception_type=record.exception_type,
        )

    def write_warning(self, message: str) -> None:
        self.out.write_warning(message)

    def write_verbose(self, message: str) -> None:
        self.out.write_verbose(message)

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        self.out.write_progress(activity, status, percent)

    def write_information(self, message: str, source: str) -> None:
        self.out.write_information(message, source)


def from_wire(value: Any) -> Any:
    """A parameter value as psrpcore deserialised it, as the evaluator's value."""
    if isinstance(value, list | tuple):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        return PSDict((k, from_wire(v)) for k, v in value.items())
    if hasattr(value, "UserName") and hasattr(value, "Password"):
        decrypt = getattr(value.Password, "decrypt", None)
        try:
            password = str(decrypt()) if callable(decrypt) else None
        except Exception:  # no session key: the password cannot be read, as on a real host
            password = None
        return credential(str(value.UserName), password)
    return value


def to_wire(value: Any) -> Any:
    """An output value as psrpcore can serialise it (the objects a real host would send, flattened)."""
    if isinstance(value, PSObject):
        if value.base is not None:
            return to_wire(value.base)
        return {name: to_wire(v) for name, v in value.properties()}
    if isinstance(value, PSDict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, ArrayList | list):
        return [to_wire(v) for v in value]
    if isinstance(value, PSEnum):
        return value.name
    if isinstance(value, PSDateTime):
        return value.aware()
    if isinstance(value, PSGuid):
        return uuid.UUID(value.text)
    if value is None or isinstance(value, str | int | float | bool | dt.datetime):
        return value
    text = getattr(value, "ps_string", None)
    return text() if callable(text) else str(value)


def _terminating(record: ErrorRecord) -> TerminatingError:
    target = record.target if isinstance(record.target, str) else None
    return TerminatingError(
        record.details or record.message,
        error_id=record.fqid,
        category=record.category.name,
        exception_type=record.exception_type,
        target=target,
    )


class LabEngine:
    """A ScriptExecutor over a FleetState; counts invocations per node and script id."""

    def __init__(self, state: FleetState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self.invocations: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.generations: Counter[str] = Counter()
        """Pipelines finished per cluster: a lab served by several processes copies a cluster's state to
        the control process only when its generation moved (any pipeline may have changed it)."""
        self.on_change: Callable[[str], None] | None = None
        """Called after a cluster's generation moved (a lab worker tells whether Azure's view changed)."""
        # Set by the Lab: what guests sign documents with and the password they accept.
        self.signing: LabSigningChain | None = None
        self.guest_password: str | None = None

    def reset_counters(self) -> None:
        with self._lock:
            self.invocations.clear()

    def counts(self, node: str) -> dict[str, int]:
        with self._lock:
            return dict(self.invocations.get(node.lower(), Counter()))

    def _count(self, node: str, script_id: str) -> None:
        with self._lock:
            self.invocations[node.lower()][script_id] += 1

    def changed(self, cluster: str) -> None:
        with self._lock:
            self.generations[cluster] += 1
        if self.on_change is not None:
            self.on_change(cluster)

    def execute(self, call: PipelineCall, out: PipelineOutput) -> list[Any]:
        header = parse_header(call.commands[0].text) if call.commands and call.commands[0].is_script else None
        self._count(call.node, header[0] if header else "unknown")
        node = self.state.node(call.node)
        try:
            return run_pipeline(NodeMachine(self.state, node, self), call, out)
        finally:
            # Before the server completes the pipeline: whoever hears it finished sees the new generation.
            self.changed(node.cluster)


def run_pipeline(machine: NodeMachine | GuestMachine, call: PipelineCall, out: PipelineOutput) -> list[Any]:
    """Evaluate one PSRP pipeline on `machine`, in the pool's runspace; a terminating error fails it.

    Returns the pipeline's output (wire values), for the server to send with the pipeline's completion."""
    runspace: Runspace | None = call.runspace.get("runspace")
    if runspace is None:
        runspace = Runspace(machine, host_ui=call.host_ui, computer_name=machine.name)
        call.runspace["runspace"] = runspace
    runspace.machine = machine
    runspace.auth = SessionAuth(call.auth, call.can_delegate, call.username)
    interpreter = Interpreter(runspace, _Sink(out))
    outputs: list[Any] = []
    with runspace.lock:
        try:
            if len(call.commands) == 1 and call.commands[0].is_script:
                command = call.commands[0]
                block = syntax.parse(command.text)
                args = [Arg(name, from_wire(value)) for name, value in command.parameters]
                outputs = interpreter.run_script(block, args)
            else:
                outputs = _run_commands(interpreter, call)
        except PSError as exc:
            for value in getattr(exc, "output", []):
                out.write_output(to_wire(value))
            raise _terminating(exc.record) from None
        except (Unsupported, NotEmulated) as exc:
            log.warning("%s: %s", call.node, exc)
            kind = "LabUnsupportedConstruct" if isinstance(exc, Unsupported) else "LabNotEmulated"
            raise TerminatingError(str(exc), error_id=kind, category="NotImplemented") from None
    return [to_wire(value) for value in outputs]


def _run_commands(interpreter: Interpreter, call: PipelineCall) -> list[Any]:
    """A pipeline of cmdlets sent with add_cmdlet: bound as if written `Name -Param:value ...`."""
    elements: list[n.Expr | n.Command] = []
    for command in call.commands:
        if command.is_script:
            raise Unsupported("a script inside a pipeline of commands")
        parts: list[n.CommandParameter | n.Expr] = []
        for name, value in command.parameters:
            constant = n.Constant(0, from_wire(value))
            parts.append(constant if name is None else n.CommandParameter(0, name, constant, True))
        elements.append(n.Command(0, command.text, tuple(parts)))
    scope = interpreter.runspace.global_scope
    return interpreter.run_pipeline(n.Pipeline(0, tuple(elements)), scope)


class GuestEndpointExecutor:
    """A ScriptExecutor for guests reached straight over WinRM: the endpoint name is the VM name.

    The lab's own server speaks for nodes; serve this one from a second WSManServer whose user and
    password are the guests' (authentication is the server's job there, as on a real guest).
    """

    def __init__(self, state: FleetState, secrets: Any) -> None:
        self.state = state
        self.secrets = secrets
        self.invocations: Counter[str] = Counter()

    def execute(self, call: PipelineCall, out: PipelineOutput) -> list[Any]:
        vm = self.state.vm(call.node)
        if vm is None:
            raise TerminatingError(
                f"no guest named {call.node}", error_id="PSSessionStateBroken", category="OpenError"
            )
        command = call.commands[0] if call.commands else None
        header = parse_header(command.text) if command is not None and command.is_script else None
        self.invocations[f"{vm.name}:{header[0]}/{header[1]}" if header else f"{vm.name}:unknown"] += 1
        if vm.state != "Running":
            # A stopped guest has no WinRM; the test server stays up, so say it the way a dead session would.
            raise TerminatingError(DIRECT_BROKEN, error_id="PSSessionStateBroken", category="OpenError")
        return run_pipeline(GuestMachine(self.state, vm, self.secrets), call, out)
