"""``transport: arc``: our scripts on a node through an Azure Arc run command instead of WinRM.

An ``ArcSession`` has the shape of a ``HostSession`` (open, run, close; a context manager), so the
operations run the same scripts, with the same parameters, and get the same parsed documents and the same
errors, whichever transport a node has (``remoting.transport.open_session`` picks one).

One script is one run command (docs/arc.md):
1. PUT ``.../machines/{node}/runCommands/hcibenefit-{script}-{random}``: the script is arc-run.ps1 (constant),
   the real script's text and its parameters travel base64-encoded as run-command parameters, a
   credential as a protected parameter. ``asyncExecution`` is true: ARM answers once the agent started it.
2. GET it every ``arc.poll_interval`` seconds until its instance view's executionState is terminal.
3. The answer: arc-run's framed, base64-encoded JSON, from the output blob when ``arc.output_container``
   is set, else from the instance view (which keeps only the last 4 KB: a larger answer is reported as
   truncated, with the setting that fixes it).
4. DELETE it, always (also on errors, timeouts and Ctrl-C, which stops a script still running); the
   session's close() lists the machine's run commands once and deletes any of its own still there.

A run command is never repeated: a PUT that ARM refused before it reached the provider (429, 503) is
sent again, nothing else (a mutating script is never sent twice).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hcibenefit import jsonguard
from hcibenefit.errors import HcibenefitError
from hcibenefit.remoting.catalog import ARC_RUN, Script
from hcibenefit.remoting.errors import (
    AuthenticationFailed,
    Cancelled,
    ErrorRecordInfo,
    MalformedOutputError,
    RemoteTimeout,
    RemotingError,
    UnreachableError,
)
from hcibenefit.remoting.session import (
    CredentialParameter,
    Endpoint,
    parse_document,
    script_error,
)

if TYPE_CHECKING:
    from hcibenefit.azure.records import ArcMachine
    from hcibenefit.azure.runcommand import MachineRef, RunCommandClient
    from hcibenefit.inventory.model import ArcSettings, AzureSettings, ClusterAzure
    from hcibenefit.remoting.arcblob import OutputBlobs

log = logging.getLogger(__name__)

MIN_AGENT = (1, 33)
"""Run command is built into the Connected Machine agent from version 1.33 on."""
TAIL_BYTES = 4096
"""What a run command's instance view keeps of a script's output (its last 4 KB)."""
FRAME = "hcibenefit-arc-run/1"
NAME_PREFIX = "hcibenefit-"
TERMINAL = frozenset({"succeeded", "failed", "timedout", "canceled"})
GRACE_S = 60.0
"""How long past the script's own timeout the session waits for the agent to report it."""
MAX_PARAMETER_CHARS = 30_000
"""Run-command parameters reach the script on a command line; Windows allows 32,767 characters."""
_BEGIN = re.compile(rf"^{re.escape(FRAME)} begin (\d+)$")


class ArcError(RemotingError):
    kind = "arc"


class ArcAuthorizationFailed(AuthenticationFailed):
    kind = "arc-authorization"


@dataclass(frozen=True)
class ArcMachineInfo:
    """The node's Arc machine as Azure knows it."""

    ref: MachineRef
    location: str
    status: str | None
    agent_version: str | None
    last_status_change: dt.datetime | None = None


@dataclass(frozen=True)
class ArcTarget:
    """What a session needs to reach one node through Arc."""

    node: str
    cluster: str
    settings: ArcSettings
    cluster_azure: ClusterAzure | None
    context: ArcContext = field(compare=False, repr=False)


def agent_version(text: str | None) -> tuple[int, int] | None:
    match = re.match(r"^\s*(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _label(name: str) -> str:
    return name.split(".", 1)[0].casefold()


class ArcContext:
    """Per run and Azure login: the run-command client, the node -> Arc machine map (one Resource Graph
    read for every node, done by the first session that needs it), and the output blobs. Thread-safe."""

    def __init__(self, azure: AzureSettings) -> None:
        self.azure = azure
        self._lock = threading.Lock()
        self._client: RunCommandClient | None = None
        self._machines: tuple[ArcMachine, ...] | None = None
        self._blobs: dict[str, OutputBlobs] = {}
        self.graph_requests = 0

    def client(self) -> RunCommandClient:
        with self._lock:
            if self._client is None:
                from hcibenefit.azure.runcommand import RunCommandClient

                self._client = RunCommandClient(self.azure)
            return self._client

    def blobs(self, container: str) -> OutputBlobs:
        with self._lock:
            blobs = self._blobs.get(container)
            if blobs is None:
                from hcibenefit.remoting.arcblob import OutputBlobs

                blobs = OutputBlobs(container, self.azure)
                self._blobs[container] = blobs
            return blobs

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            for blobs in self._blobs.values():
                blobs.close()
            self._blobs.clear()

    def _node_machines(self) -> tuple[ArcMachine, ...]:
        with self._lock:
            if self._machines is None:
                from hcibenefit.azure.session import AzureSession

                with AzureSession(self.azure) as session:
                    read = session.read_inventory(self.azure.subscriptions)
                    self.graph_requests += session.stats.graph.requests
                if not read.complete:
                    errors = "; ".join(f"{k}: {v}" for k, v in read.errors.items())
                    log.warning("Resource Graph could not read everything: %s", errors)
                self._machines = read.inventory.node_machines()
            return self._machines

    def machine(self, target: ArcTarget) -> ArcMachineInfo:
        """The node's Arc machine: the inventory's machine_id, else the one Resource Graph names like it."""
        from hcibenefit.azure.runcommand import MachineRef

        if target.settings.machine_id:
            ref = MachineRef.parse(target.settings.machine_id)
            body = self.client().machine(ref)
            properties = body.get("properties") or {}
            return ArcMachineInfo(
                ref, str(body.get("location") or ""), properties.get("status"), properties.get("agentVersion")
            )
        candidates = [m for m in self._node_machines() if _label(m.name) == _label(target.node)]
        hint = target.cluster_azure
        if len(candidates) > 1 and hint is not None:
            narrowed = [
                m
                for m in candidates
                if (hint.resource_group or "").casefold() in ("", m.resource_group.casefold())
                and (hint.subscription_id or "").casefold() in ("", m.subscription_id.casefold())
            ]
            candidates = narrowed or candidates
        if not candidates:
            raise UnreachableError(
                target.node,
                "Resource Graph knows no Arc machine of an Azure Local node by this name",
                hint="check that the node is Arc-enabled and that azure.subscriptions includes its "
                "subscription, or give its id as arc.machine_id in the inventory",
            )
        if len(candidates) > 1:
            ids = ", ".join(m.id for m in candidates)
            raise ArcError(
                target.node,
                f"{len(candidates)} Arc machines have this name: {ids}",
                hint="give the node's arc.machine_id in the inventory",
            )
        machine = candidates[0]
        return ArcMachineInfo(
            MachineRef.parse(machine.id),
            machine.location,
            machine.status,
            machine.agent_version,
            machine.last_status_change,
        )


_CONTEXTS: dict[AzureSettings, ArcContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def context_for(azure: AzureSettings) -> ArcContext:
    """The one ArcContext of this process for an Azure login (a CLI run is one command)."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(azure)
        if context is None:
            context = _CONTEXTS[azure] = ArcContext(azure)
        return context


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def run_command_parameters(
    script: Script, parameters: Mapping[str, Any]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The run command's public and protected parameters for one of our scripts: its text and its
    parameters as base64 (never spliced into script text), a credential only among the protected ones."""
    public: dict[str, Any] = {}
    secret: dict[str, dict[str, str]] = {}
    for name, value in parameters.items():
        if isinstance(value, CredentialParameter):
            secret[name] = {"username": value.username, "password": value.password.reveal()}
        else:
            public[name] = value
    listed = [{"name": "Script", "value": _b64(script.text())}]
    if public:
        listed.append({"name": "Parameters", "value": _b64(json.dumps(public, ensure_ascii=False))})
    protected = (
        [{"name": "Credentials", "value": _b64(json.dumps(secret, ensure_ascii=False))}] if secret else []
    )
    return listed, protected


def read_frame(text: str) -> dict[str, Any] | None:
    """arc-run's answer from a script's output text; None when the frame is not whole (truncated)."""
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    begin = next((i for i, line in enumerate(lines) if _BEGIN.match(line)), None)
    if begin is None:
        return None
    match = _BEGIN.match(lines[begin])
    assert match is not None
    try:
        end = lines.index(f"{FRAME} end", begin + 1)
    except ValueError:
        return None
    encoded = "".join(lines[begin + 1 : end])
    if len(encoded) != int(match.group(1)):
        return None
    try:
        answer = jsonguard.loads(base64.b64decode(encoded, validate=True).decode("utf-8"), max_depth=None)
    except (ValueError, jsonguard.UntrustedJSONError):
        return None
    return answer if isinstance(answer, dict) and answer.get("schema") == "arc-run/1" else None


class ArcSession:
    """One node through Azure Arc for the length of an operation; see the module docstring."""

    def __init__(self, endpoint: Endpoint, *, cancel: threading.Event | None = None) -> None:
        if endpoint.arc is None:
            raise ValueError(f"{endpoint.name} is not reached through Arc")
        self.endpoint = endpoint
        self.target: ArcTarget = endpoint.arc
        self.cancel = cancel or threading.Event()
        self.machine: ArcMachineInfo | None = None
        self._created: list[str] = []
        self._deleted: set[str] = set()
        self.step = "not started"
        self.closed = True

    def __enter__(self) -> ArcSession:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def host(self) -> str:
        return self.endpoint.name

    def open(self) -> None:
        """Find the node's Arc machine and check that it can run a command: connected, agent 1.33+."""
        self.step = "finding the Arc machine"
        if self.cancel.is_set():
            raise Cancelled(self.host, "cancelled before connecting")
        try:
            machine = self.target.context.machine(self.target)
        except RemotingError:
            raise
        except HcibenefitError as exc:
            raise ArcError(self.host, exc.message, hint=exc.hint) from None
        except Exception as exc:
            raise self._arm_error(exc, "finding the Arc machine") from None
        if (machine.status or "").casefold() != "connected":
            since = (
                f" since {machine.last_status_change:%Y-%m-%d %H:%M} UTC"
                if machine.last_status_change
                else ""
            )
            raise UnreachableError(
                self.host,
                f"its Arc machine is {machine.status or 'in an unknown state'}{since}; run commands need "
                "a connected Connected Machine agent",
                hint="on the node: azcmagent show (and azcmagent check) tells why the agent is not connected",
            )
        version = agent_version(machine.agent_version)
        if version is None or version < MIN_AGENT:
            raise ArcError(
                self.host,
                f"Connected Machine agent {machine.agent_version or 'of unknown version'}: run commands need "
                f"{MIN_AGENT[0]}.{MIN_AGENT[1]} or later",
                hint="on the node: azcmagent upgrade (agent 1.62 or later), or update the agent package",
            )
        self.machine = machine
        self.closed = False
        self.step = "open"

    def close(self) -> None:
        """Make sure no run command of this session is left on the machine (one list, and a delete for
        any of ours still there that is not already being deleted)."""
        machine, self.step = self.machine, "closing"
        if machine is not None and self._created:
            client = self.target.context.client()
            ours = set(self._created)
            try:
                for resource in client.list(machine.ref):
                    name = str(resource.get("name") or "")
                    state = str((resource.get("properties") or {}).get("provisioningState") or "")
                    if name in ours and state.casefold() != "deleting":
                        log.info("%s: run command %s still there; deleting it again", self.host, name)
                        client.delete(machine.ref, name)
            except Exception as exc:
                left = ", ".join(sorted(ours - self._deleted)) or ", ".join(sorted(ours))
                log.warning(
                    "%s: could not check that run commands %s were removed (%s); to remove one: az "
                    "connectedmachine run-command delete --resource-group %s --machine-name %s --name NAME",
                    self.host,
                    left,
                    exc,
                    machine.ref.resource_group,
                    machine.ref.name,
                )
        self._created.clear()
        self.closed = True
        self.step = "closed"

    # --- running a script ------------------------------------------------------------------------

    def run(
        self, script: Script, parameters: Mapping[str, Any] | None = None, *, timeout_s: float = 300.0
    ) -> Any:
        """Run one of our scripts as a run command and return its JSON document (parsed)."""
        if self.machine is None:
            raise RemotingError(self.host, "session is not open")
        if self.cancel.is_set():
            raise Cancelled(self.host, f"{script.key} not sent: cancelled")
        machine = self.machine
        client = self.target.context.client()
        settings = self.target.settings
        name = f"{NAME_PREFIX}{script.id}-{uuid.uuid4().hex[:12]}"
        listed, protected = run_command_parameters(script, dict(parameters or {}))
        size = sum(len(p["value"]) for p in listed + protected)
        if size > MAX_PARAMETER_CHARS:
            raise ArcError(
                self.host,
                f"{script.key}: its parameters take {size} characters, more than a command line carries",
            )
        timeout = max(30, int(min(timeout_s, settings.timeout)))
        blobs = self.target.context.blobs(settings.output_container) if settings.output_container else None
        blob = blobs.new_blob(machine.ref.name, name, timeout) if blobs is not None else None
        properties: dict[str, Any] = {
            "source": {"script": ARC_RUN.text()},
            "parameters": listed,
            "asyncExecution": True,
            "timeoutInSeconds": timeout,
        }
        if protected:
            properties["protectedParameters"] = protected
        if blob is not None:
            properties["outputBlobUri"] = blob.sas_url
        self.step = f"running {script.key}"
        log.debug("%s: run command %s for %s", self.host, name, script.key)
        started = time.monotonic()
        self._created.append(name)
        try:
            try:
                client.create(machine.ref, name, {"location": machine.location, "properties": properties})
            except Exception as exc:
                raise self._arm_error(exc, f"creating run command {name}") from None
            view = self._wait(client, name, timeout, started)
            state = str(view.get("executionState") or "")
            output = str(view.get("output") or "")
            if blob is not None and blobs is not None:
                try:
                    output = blobs.read(blob)
                except Exception as exc:
                    log.info(
                        "%s: output blob %s unreadable (%s); using the instance view",
                        self.host,
                        blob.name,
                        exc,
                    )
            answer = read_frame(output)
            if answer is None:
                raise self._no_answer(script, view, state, output, blob is not None)
        finally:
            self._delete(client, name)
            if blob is not None and blobs is not None:
                blobs.discard(blob)
        log.debug("%s: %s finished in %.2f s over Arc", self.host, script.key, time.monotonic() - started)
        return self._document(script, answer)

    def _wait(self, client: RunCommandClient, name: str, timeout: int, started: float) -> dict[str, Any]:
        assert self.machine is not None
        interval = max(0.05, self.target.settings.poll_interval)
        deadline = started + timeout + GRACE_S
        while True:
            if self.cancel.wait(interval):
                raise Cancelled(self.host, f"{name} stopped: cancelled")
            try:
                resource = client.get(self.machine.ref, name)
            except Exception as exc:
                raise self._arm_error(exc, f"reading run command {name}") from None
            if resource is None:
                raise ArcError(self.host, f"run command {name} disappeared before it finished")
            properties = resource.get("properties") or {}
            view = properties.get("instanceView") or {}
            provisioning = str(properties.get("provisioningState") or "")
            if provisioning.casefold() == "failed" and not view.get("executionState"):
                raise ArcError(
                    self.host,
                    f"the agent could not start run command {name} ({view.get('executionMessage') or 'no message'})",
                    hint="azcmagent config list on the node: extensions and run commands must be allowed "
                    "(extensions.enabled, no blocklist entry for microsoft.cplat.core/runcommandhandlerwindows)",
                )
            if str(view.get("executionState") or "").casefold() in TERMINAL:
                return dict(view)
            if time.monotonic() > deadline:
                raise RemoteTimeout(
                    self.host,
                    f"run command {name} did not finish within {timeout + GRACE_S:.0f} s and was deleted",
                )

    def _delete(self, client: RunCommandClient, name: str) -> None:
        assert self.machine is not None
        try:
            client.delete(self.machine.ref, name)
            self._deleted.add(name)
        except Exception as exc:
            log.warning("%s: deleting run command %s failed: %s", self.host, name, exc)

    def _no_answer(
        self, script: Script, view: Mapping[str, Any], state: str, output: str, from_blob: bool
    ) -> RemotingError:
        error = str(view.get("error") or "").strip()
        exit_code = view.get("exitCode")
        if state.casefold() == "timedout":
            return RemoteTimeout(
                self.host,
                f"{script.key} did not finish within the run command's timeout and was stopped",
                hint="raise arc.timeout in the inventory",
            )
        if state.casefold() == "canceled":
            return Cancelled(self.host, f"{script.key}: the run command was cancelled")
        if f"{FRAME} begin" not in output and f"{FRAME} end" in output and not from_blob:
            return MalformedOutputError(
                self.host,
                f"{script.key}: its answer was longer than the {TAIL_BYTES} bytes a run command's instance "
                "view keeps; name a blob container for answers as arc.output_container in the inventory",
                hint="docs/arc.md: output blobs, and the role the Azure login needs on the container",
            )
        tail = error.splitlines()[-1] if error else (output.strip().splitlines() or ["no output"])[-1]
        return ArcError(
            self.host,
            f"{script.key}: the run command ended {state or 'without a state'} (exit code {exit_code}) "
            f"without an answer: {tail[:300]}",
        )

    def _document(self, script: Script, answer: Mapping[str, Any]) -> Any:
        for warning in answer.get("warnings") or ():
            log.info("%s: %s warning: %s", self.host, script.key, warning)
        records = [
            ErrorRecordInfo(
                message=str(e.get("message") or ""),
                error_id=str(e.get("error_id") or ""),
                category=str(e.get("category") or ""),
                target=str(e.get("target") or ""),
            )
            for e in answer.get("errors") or ()
            if isinstance(e, dict)
        ]
        if records:
            raise script_error(self.host, script, records)
        output = answer.get("output")
        return parse_document(self.host, script, list(output) if isinstance(output, list) else [output])

    def _arm_error(self, exc: BaseException, doing: str) -> RemotingError:
        from hcibenefit.azure.credentials import AzureLoginError
        from hcibenefit.azure.runcommand import ArmError

        if isinstance(exc, RemotingError):
            return exc
        if isinstance(exc, AzureLoginError):
            return ArcAuthorizationFailed(self.host, exc.message, hint=exc.hint)
        if isinstance(exc, ArmError):
            if exc.status == 403:
                return ArcAuthorizationFailed(
                    self.host,
                    f"{doing}: Azure refused ({exc.code}): {exc.message}",
                    hint="the identity needs Microsoft.HybridCompute/machines/runCommands/write on the node's "
                    "Arc machine (Azure Connected Machine Resource Administrator)",
                )
            if exc.status == 404:
                return UnreachableError(self.host, f"{doing}: {exc.code}: {exc.message}")
            return ArcError(self.host, f"{doing}: ARM answered {exc.status} {exc.code}: {exc.message}")
        from hcibenefit.remoting.session import map_exception

        return map_exception(self.host, exc)
