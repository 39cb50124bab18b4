"""The lab's Azure Arc run commands: ``Microsoft.HybridCompute/machines/{node}/runCommands``.

A run command PUT to the lab's ARM runs its script on the lab node its machine stands for, through the
same executor the lab's WinRM server uses, the way the Connected Machine agent runs it: the script as a
file, each run-command parameter (public, then protected) as ``-Name value`` with the value a string.
So the Arc path runs the very scripts the WinRM path runs.

What the service does, after Microsoft's REST reference and examples for MachineRunCommands (2025-01-13;
the lab serves the SDK's 2026-07-15 the same) and the Arc run command overview (docs/arc.md):
- PUT is a long-running create: 201 with ``provisioningState: Creating``, an ``Azure-AsyncOperation``
  and a ``Location`` header (200 ``Updating`` for an existing name: the old script is stopped). With
  ``asyncExecution: true`` provisioning succeeds as soon as the script starts, else when it ends.
- GET returns the resource with ``instanceView``: executionState (Pending, Running, Succeeded, Failed,
  TimedOut, Canceled), exitCode, startTime, endTime, and the last 4 KB of output and of error.
  Protected parameters and runAsPassword are never returned.
- A script that ends with a terminating error exits 1: executionState Failed, the error in ``error``.
  Non-terminating errors leave the exit code 0 (powershell.exe -File).
- ``timeoutInSeconds``: past it the script is stopped, executionState TimedOut.
- ``outputBlobUri``: the whole output is written to that append blob (a SAS URL; see blobs.py).
- DELETE is a long-running delete: 202 (``Deleting``; gone shortly after) or 204 when there is none; a
  running script is stopped (Canceled).
- LIST returns ``{"value": [...]}``.
Guesses, said as such: how long the agent takes to pick a command up (``agent_delay_s``, 0.05 s here;
real agents poll for work and take seconds), the error text format, and that an unknown machine is a 404
``ParentResourceNotFound``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall, ScriptExecutor, TerminatingError

TAIL_BYTES = 4096
TERMINAL = ("Succeeded", "Failed", "TimedOut", "Canceled")
RUN_AS = "NT AUTHORITY\\SYSTEM"
DELETE_DELAY_S = 0.05
"""How long a deleted run command shows as Deleting before it is gone (a guess)."""
RESOURCE_TYPE = "Microsoft.HybridCompute/machines/runcommands"


class RunCommandError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers: dict[str, str] = {}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat()


def _tail(text: str) -> str:
    data = text.encode("utf-8")
    return data[-TAIL_BYTES:].decode("utf-8", errors="ignore") if len(data) > TAIL_BYTES else text


class _Console:
    """What powershell.exe writes for a script run with -File, its output redirected: each output object
    as text on stdout, each error record in PowerShell's error view on stderr."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.lock = threading.Lock()

    def write_output(self, value: Any) -> None:
        with self.lock:
            self.stdout.append("" if value is None else str(value))

    def write_error(
        self,
        message: str,
        *,
        error_id: str,
        category: str = "NotSpecified",
        target: str | None = None,
        exception_type: str | None = None,
    ) -> None:
        with self.lock:
            self.stderr.append(
                f"{message}\n    + CategoryInfo          : {category}: ({target or ''}) [], "
                f"{(exception_type or 'RuntimeException').rsplit('.', 1)[-1]}\n"
                f"    + FullyQualifiedErrorId : {error_id}"
            )

    def write_warning(self, message: str) -> None:
        with self.lock:
            self.stdout.append(f"WARNING: {message}")

    def write_verbose(self, message: str) -> None:
        return None

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        return None

    def write_information(self, message: str, source: str) -> None:
        with self.lock:
            self.stdout.append(message)

    def text(self) -> tuple[str, str]:
        with self.lock:
            return "\n".join(self.stdout) + ("\n" if self.stdout else ""), "\n".join(self.stderr)


@dataclass
class RunCommand:
    machine_id: str
    node: str
    name: str
    location: str
    properties: dict[str, Any]
    provisioning: str = "Creating"
    state: str = "Pending"
    exit_code: int | None = None
    output: str = ""
    error: str = ""
    message: str = ""
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    console: _Console = field(default_factory=_Console)
    operation: str = field(default_factory=lambda: str(uuid.uuid4()))
    deleting: bool = False

    def body(self) -> dict[str, Any]:
        shown = {
            k: v for k, v in self.properties.items() if k not in ("protectedParameters", "runAsPassword")
        }
        shown["protectedParameters"] = []
        shown["provisioningState"] = "Deleting" if self.deleting else self.provisioning
        shown["instanceView"] = {
            "executionState": self.state,
            "executionMessage": self.message,
            "exitCode": self.exit_code,
            "output": _tail(self.output),
            "error": _tail(self.error),
            "startTime": _iso(self.started),
            "endTime": _iso(self.ended),
        }
        return {
            "name": self.name,
            "type": RESOURCE_TYPE,
            "id": f"{self.machine_id}/runcommands/{self.name}",
            "location": self.location,
            "properties": shown,
        }


@dataclass
class RunCommandStats:
    requests: Counter[str] = field(default_factory=Counter)
    by_machine: Counter[str] = field(default_factory=Counter)
    created: int = 0
    scripts_run: int = 0


class RunCommands:
    """Every machine's run commands. ``machine_of(resource id)`` is (node, location, status) or None."""

    def __init__(
        self,
        executor: ScriptExecutor,
        machine_of: Callable[[str], tuple[str, str, str] | None],
        write_blob: Callable[[str, str], None] | None = None,
        *,
        agent_delay_s: float = 0.05,
    ) -> None:
        self.executor = executor
        self.machine_of = machine_of
        self.write_blob = write_blob
        self.agent_delay_s = agent_delay_s
        self.lock = threading.Lock()
        self.commands: dict[tuple[str, str], RunCommand] = {}
        self.operations: dict[str, RunCommand] = {}
        self.stats = RunCommandStats()

    def reset(self) -> None:
        with self.lock:
            for command in self.commands.values():
                command.console.stopping.set()
            self.commands.clear()
            self.operations.clear()
            self.stats = RunCommandStats()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.stats.requests),
                "by_machine": dict(self.stats.by_machine),
                "created": self.stats.created,
                "scripts_run": self.stats.scripts_run,
                "existing": sorted(f"{c.node}/{c.name}" for c in self.commands.values()),
            }

    def _count(self, kind: str, machine_id: str) -> None:
        with self.lock:
            self.stats.requests[kind] += 1
            self.stats.by_machine[machine_id.rsplit("/", 1)[-1].lower()] += 1

    def _machine(self, machine_id: str) -> tuple[str, str, str]:
        found = self.machine_of(machine_id)
        if found is None:
            name = machine_id.rsplit("/", 1)[-1]
            raise RunCommandError(
                404,
                "ParentResourceNotFound",
                f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.",
            )
        return found

    # --- requests --------------------------------------------------------------------------------

    def put(
        self, machine_id: str, name: str, body: Any, base_url: str, api_version: str
    ) -> tuple[int, Any, dict[str, str]]:
        self._count("put", machine_id)
        node, location, _status = self._machine(machine_id)
        if not isinstance(body, dict):
            raise RunCommandError(400, "InvalidRequestContent", "The request content was invalid.")
        if not body.get("location"):
            raise RunCommandError(
                400, "LocationRequired", "The location property is required for this definition."
            )
        if str(body["location"]).replace(" ", "").lower() != location.lower():
            raise RunCommandError(
                400,
                "InvalidLocation",
                f"The run command's location must be the machine's location '{location}'.",
            )
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise RunCommandError(400, "InvalidParameter", "properties is required.")
        source = properties.get("source") or {}
        if not isinstance(source, dict) or not any(
            source.get(k) for k in ("script", "scriptUri", "commandId")
        ):
            raise RunCommandError(
                400, "InvalidParameter", "One of source.script, scriptUri or commandId is required."
            )
        if not isinstance(source.get("script"), str):
            raise RunCommandError(
                400, "InvalidParameter", "The lab runs inline scripts only (source.script)."
            )
        for kind in ("parameters", "protectedParameters"):
            for item in properties.get(kind) or ():
                if not (
                    isinstance(item, dict)
                    and isinstance(item.get("name"), str)
                    and isinstance(item.get("value"), str)
                ):
                    raise RunCommandError(
                        400, "InvalidParameter", f"Each of {kind} needs a string name and value."
                    )
        timeout = properties.get("timeoutInSeconds")
        if timeout is not None and (not isinstance(timeout, int) or timeout < 0):
            raise RunCommandError(400, "InvalidParameter", "timeoutInSeconds must be a positive integer.")
        key = (machine_id.lower(), name.lower())
        with self.lock:
            previous = self.commands.get(key)
            if previous is not None:
                previous.console.stopping.set()
            command = RunCommand(machine_id, node, name, location, dict(properties))
            command.provisioning = "Updating" if previous else "Creating"
            self.commands[key] = command
            self.operations[command.operation] = command
            self.stats.created += 1
        threading.Thread(target=self._agent, args=(command,), name=f"lab-arc-{node}", daemon=True).start()
        headers = self._operation_headers(command, base_url, api_version)
        return (200 if previous else 201), command.body(), headers

    def get(self, machine_id: str, name: str) -> dict[str, Any]:
        self._count("get", machine_id)
        self._machine(machine_id)
        with self.lock:
            command = self.commands.get((machine_id.lower(), name.lower()))
            if command is None:
                raise RunCommandError(
                    404, "ResourceNotFound", f"The Resource '{RESOURCE_TYPE}/{name}' was not found."
                )
            return command.body()

    def list(self, machine_id: str) -> dict[str, Any]:
        self._count("list", machine_id)
        self._machine(machine_id)
        with self.lock:
            mine = [c.body() for (m, _), c in self.commands.items() if m == machine_id.lower()]
        return {"value": mine}

    def delete(
        self, machine_id: str, name: str, base_url: str, api_version: str
    ) -> tuple[int, dict[str, str]]:
        self._count("delete", machine_id)
        self._machine(machine_id)
        key = (machine_id.lower(), name.lower())
        with self.lock:
            command = self.commands.get(key)
            if command is None:
                return 204, {}
            command.deleting = True
            command.console.stopping.set()
        threading.Timer(DELETE_DELAY_S, self._forget, args=(key, command)).start()
        return 202, self._operation_headers(command, base_url, api_version)

    def operation(self, operation_id: str) -> dict[str, Any]:
        with self.lock:
            command = self.operations.get(operation_id)
        if command is None:
            raise RunCommandError(404, "NotFound", f"Operation {operation_id} was not found.")
        self._count("operation", command.machine_id)
        if command.deleting:
            status = (
                "Succeeded"
                if (command.machine_id.lower(), command.name.lower()) not in self.commands
                else "InProgress"
            )
        elif command.provisioning in ("Creating", "Updating"):
            status = "InProgress"
        else:
            status = command.provisioning
        return {"id": operation_id, "name": operation_id, "status": status}

    # --- the agent -------------------------------------------------------------------------------

    def _operation_headers(self, command: RunCommand, base_url: str, api_version: str) -> dict[str, str]:
        url = (
            f"{base_url}/providers/Microsoft.HybridCompute/locations/{command.location}/operationStatuses/"
            f"{command.operation}?api-version={api_version}"
        )
        return {"Azure-AsyncOperation": url, "Location": url, "Retry-After": "1"}

    def _forget(self, key: tuple[str, str], command: RunCommand) -> None:
        with self.lock:
            if self.commands.get(key) is command:
                del self.commands[key]

    def _agent(self, command: RunCommand) -> None:
        """The Connected Machine agent: picks the command up, runs the script, reports."""
        if command.console.stopping.wait(self.agent_delay_s):
            self._finish(command, "Canceled", None)
            return
        properties = command.properties
        timeout = properties.get("timeoutInSeconds") or 5400  # Azure's default: 90 minutes
        arguments = tuple(
            (str(p["name"]), str(p["value"]))
            for kind in ("parameters", "protectedParameters")
            for p in properties.get(kind) or ()
        )
        call = PipelineCall(
            node=command.node,
            username=str(properties.get("runAsUser") or RUN_AS),
            configuration_name="RunCommand",
            commands=(CommandSpec(properties["source"]["script"], True, arguments),),
            input=(),
        )
        with self.lock:
            command.state = "Running"
            command.started = dt.datetime.now(dt.timezone.utc)
            self.stats.scripts_run += 1
            if properties.get("asyncExecution"):
                command.provisioning = "Succeeded"
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                for value in self.executor.execute(call, command.console) or ():
                    command.console.write_output(value)
                outcome["exit"] = 0
            except TerminatingError as exc:
                command.console.write_error(
                    exc.message,
                    error_id=exc.error_id,
                    category=exc.category,
                    target=exc.target,
                    exception_type=exc.exception_type,
                )
                outcome["exit"] = 1
            except Exception as exc:  # a lab bug: report it as the agent would report a crash
                command.console.write_error(f"{type(exc).__name__}: {exc}", error_id="LabError")
                outcome["exit"] = 1

        worker = threading.Thread(target=run, name=f"lab-arc-{command.node}-script", daemon=True)
        started = time.monotonic()
        worker.start()
        while worker.is_alive():
            worker.join(0.05)
            if command.console.stopping.is_set():
                worker.join(1.0)
                self._finish(command, "Canceled", None)
                return
            if time.monotonic() - started > timeout:
                command.console.stopping.set()
                worker.join(1.0)
                self._finish(command, "TimedOut", None, "The script did not finish within timeoutInSeconds.")
                return
        code = int(outcome.get("exit", 1))
        self._finish(command, "Succeeded" if code == 0 else "Failed", code)

    def _finish(self, command: RunCommand, state: str, code: int | None, message: str = "") -> None:
        stdout, stderr = command.console.text()
        blob = command.properties.get("outputBlobUri")
        # The agent streams a running script's output to the blob: a command that never started writes none.
        if blob and self.write_blob is not None and command.started is not None:
            try:
                self.write_blob(str(blob), stdout)
            except Exception as exc:  # the agent reports a blob it could not write, and goes on
                message = f"{message} Output blob: {exc}".strip()
        with self.lock:
            command.state = state
            command.exit_code = code
            command.output, command.error, command.message = stdout, stderr, message
            command.ended = dt.datetime.now(dt.timezone.utc)
            if command.provisioning in ("Creating", "Updating"):
                command.provisioning = "Succeeded"


_RUN_COMMANDS = re.compile(
    r"^(?P<machine>/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.hybridcompute/machines/[^/]+)"
    r"/runcommands(?:/(?P<name>[^/]+))?/?$",
    re.IGNORECASE,
)
_OPERATION = re.compile(
    r"^/providers/microsoft\.hybridcompute/locations/[^/]+/operationstatuses/(?P<id>[^/]+)/?$", re.IGNORECASE
)
NAME = re.compile(r"^[a-zA-Z0-9-_.]+$")


def is_run_command_path(path: str) -> bool:
    return bool(_RUN_COMMANDS.match(path) or _OPERATION.match(path))


def route(
    commands: RunCommands, method: str, path: str, api_version: str | None, raw: bytes, base_url: str
) -> tuple[int, Any, dict[str, str]]:
    """One run-command request: (status, JSON body or None, headers); RunCommandError for an error answer."""
    if not api_version:
        raise RunCommandError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    operation = _OPERATION.match(path)
    if operation is not None and method == "GET":
        return 200, commands.operation(operation["id"]), {}
    match = _RUN_COMMANDS.match(path)
    if match is None:
        raise RunCommandError(
            404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'."
        )
    machine, name = match["machine"], match["name"]
    if name is not None and not NAME.match(name):
        raise RunCommandError(400, "InvalidResourceName", f"The resource name '{name}' is invalid.")
    if method == "GET":
        return 200, commands.get(machine, name) if name else commands.list(machine), {}
    if method == "PUT" and name:
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise RunCommandError(
                400, "InvalidRequestContent", f"The request content was invalid: {exc}"
            ) from None
        return commands.put(machine, name, body, base_url, api_version)
    if method == "DELETE" and name:
        status, headers = commands.delete(machine, name, base_url, api_version)
        return status, None, headers
    raise RunCommandError(405, "MethodNotAllowed", f"{method} is not allowed on {path}.")
