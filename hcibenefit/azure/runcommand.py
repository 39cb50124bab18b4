"""Azure Arc run commands through Azure Resource Manager (azure-mgmt-hybridcompute), for ``transport: arc``.

The contract (docs/arc.md has it with its sources): ``Microsoft.HybridCompute/machines/runCommands`` is a
child resource of the node's Arc machine. A PUT creates it and the Connected Machine agent (1.33 or later)
runs its script; GET shows ``instanceView`` (executionState, exitCode, the last 4 KB of output and
error); DELETE removes it and stops a script still running. Each is one ARM request, and counts against
ARM's per-subscription write, read and delete budgets (token buckets of 200 writes refilled at 10 per
second, 250 reads at 25 per second, as of 2024).

This module only talks to ARM: the run-command protocol (naming, polling, output, cleanup) is in
``hcibenefit.remoting.arc``. azure-mgmt-hybridcompute is imported inside the class only.

Every request passes a guard that lets through only the run-command requests of Arc machines (and the
GETs around them): this client can change nothing else in Azure.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hcibenefit import __version__
from hcibenefit.azure.credentials import AzureLoginError, login_hint, scope_for
from hcibenefit.inventory.model import AzureSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger(__name__)

API_VERSION = "2025-01-13"
"""A stable HybridCompute API version with runCommands (the SDK's default is newer; the lab serves both)."""
CONNECT_TIMEOUT_S = 20
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 5
MAX_WAIT_S = 120.0
MACHINE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.HybridCompute/"
    r"machines/(?P<machine>[^/]+)$",
    re.IGNORECASE,
)
_MACHINE = r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.hybridcompute/machines/[^/]+"
_READABLE = re.compile(_MACHINE + r"(/runcommands(/[^/]+)?)?$")
_WRITABLE = re.compile(_MACHINE + r"/runcommands/[^/]+$")


class RunCommandRefused(Exception):
    """A request that is not a run-command request reached the transport. Never expected: a bug."""


class ArmError(Exception):
    """ARM answered with an error (after the retries that were safe)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class MachineRef:
    subscription: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> MachineRef:
        match = MACHINE_ID.match(resource_id.strip())
        if match is None:
            raise ValueError(f"not an Arc machine id: {resource_id}")
        return cls(match["sub"], match["rg"], match["machine"])

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.HybridCompute/machines/{self.name}"
        )


@dataclass
class ArmCalls:
    """ARM requests made, by verb, and by machine: what a run command costs."""

    by_kind: Counter[str] = field(default_factory=Counter)
    by_machine: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    waited_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, kind: str, machine: str) -> None:
        with self.lock:
            self.by_kind[kind] += 1
            self.by_machine[machine.lower()] += 1

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": sum(self.by_kind.values()),
                "by_kind": dict(self.by_kind),
                "by_machine": dict(self.by_machine),
                "throttled": self.throttled,
                "waited_s": round(self.waited_s, 1),
            }


def _error(exc: Any) -> ArmError:
    error = getattr(exc, "error", None)
    status = int(getattr(exc, "status_code", 0) or 0)
    code = str(getattr(error, "code", None) or getattr(exc, "reason", None) or "Error")
    message = str(getattr(error, "message", None) or getattr(exc, "message", None) or exc)
    return ArmError(status, code, message.strip().splitlines()[0] if message.strip() else code)


def _retry_after(exc: Any) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


class RunCommandClient:
    """One ARM client for the run commands of a run, shared by every node's session (thread-safe)."""

    def __init__(
        self,
        settings: AzureSettings,
        *,
        credential: TokenCredential | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        from azure.mgmt.hybridcompute import HybridComputeManagementClient

        from hcibenefit.azure.credentials import acquire, make_credential

        self.settings = settings
        self.calls = ArmCalls()
        self._credential = credential or make_credential(settings)
        acquire(self._credential, settings)
        self._sleep: Callable[[float], object] = sleep or time.sleep
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._factory = HybridComputeManagementClient

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _client(self, subscription: str) -> Any:
        with self._lock:
            client = self._clients.get(subscription.lower())
            if client is None:
                verify = self.settings.cert_validation
                client = self._factory(
                    self._credential,
                    subscription,
                    base_url=self.settings.endpoint.rstrip("/"),
                    credential_scopes=[scope_for(self.settings)],
                    api_version=API_VERSION,
                    connection_verify=str(verify) if not isinstance(verify, bool) else verify,
                    connection_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    # 429 and 5xx come back here: _call waits as ARM asks and counts it.
                    retry_status=0,
                    user_agent=f"hcibenefit/{__version__}",
                    raw_request_hook=_guard,
                )
                self._clients[subscription.lower()] = client
            return client

    def _call(self, kind: str, machine: MachineRef, action: Callable[[Any], Any]) -> Any:
        """One ARM request with the waits ARM asks for on 429 and 5xx; a write is repeated only when ARM
        said it did not take it (429, 503: the request was refused before it reached the provider)."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        waited = 0.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self.calls.count(kind, machine.name)
            try:
                return action(self._client(machine.subscription))
            except ClientAuthenticationError as exc:
                raise AzureLoginError(
                    f"Azure refused the login: {_error(exc).message}", hint=login_hint(self.settings)
                ) from None
            except HttpResponseError as exc:
                status = int(exc.status_code or 0)
                repeatable = status in (429, 503) or (kind in ("get", "list") and status >= 500)
                delay = _retry_after(exc)
                delay = 2.0 ** (attempt - 1) if delay is None else delay
                if not repeatable or attempt == MAX_ATTEMPTS or waited + delay > MAX_WAIT_S:
                    raise _error(exc) from None
                with self.calls.lock:
                    self.calls.throttled += status == 429
                    self.calls.waited_s += delay
                waited += delay
                log.info("%s: ARM answered %d to a %s; waiting %.1f s", machine.name, status, kind, delay)
                self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    # --- the four operations ----------------------------------------------------------------------

    def create(self, machine: MachineRef, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the run command; returns the resource as ARM answered (201 Creating, or 200)."""

        def put(client: Any) -> Any:
            return client.machine_run_commands.begin_create_or_update(
                machine.resource_group, machine.name, name, body, polling=False
            ).result()

        return _as_dict(self._call("put", machine, put))

    def get(self, machine: MachineRef, name: str) -> dict[str, Any] | None:
        """The run command with its instance view, or None when it does not exist (any more)."""

        def get(client: Any) -> Any:
            return client.machine_run_commands.get(machine.resource_group, machine.name, name)

        try:
            return _as_dict(self._call("get", machine, get))
        except ArmError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, machine: MachineRef, name: str) -> None:
        """DELETE (stops the script if it still runs); the deletion itself completes asynchronously."""

        def delete(client: Any) -> Any:
            return client.machine_run_commands.begin_delete(
                machine.resource_group, machine.name, name, polling=False
            ).result()

        try:
            self._call("delete", machine, delete)
        except ArmError as exc:
            if exc.status != 404:
                raise

    def machine(self, machine: MachineRef) -> dict[str, Any]:
        """The Arc machine itself (location, status, agent version), for a machine_id the inventory gives."""

        def get(client: Any) -> Any:
            return client.machines.get(machine.resource_group, machine.name)

        return _as_dict(self._call("get", machine, get))

    def list(self, machine: MachineRef) -> list[dict[str, Any]]:
        def listing(client: Any) -> Any:
            return [
                _as_dict(r) for r in client.machine_run_commands.list(machine.resource_group, machine.name)
            ]

        result: list[dict[str, Any]] = self._call("list", machine, listing)
        return result


def _as_dict(model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    if isinstance(model, dict):
        return model
    as_dict = getattr(model, "as_dict", None)
    if callable(as_dict):
        result: dict[str, Any] = as_dict()
        return result
    return dict(model)


def _guard(request: Any) -> None:
    http = request.http_request
    path = http.url.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[1]
    method = http.method.upper()
    allowed = _READABLE if method == "GET" else _WRITABLE if method in ("PUT", "DELETE") else None
    if allowed is None or not allowed.match(path.lower()):
        raise RunCommandRefused(f"refused to send {method} {path}: only Arc run commands are sent")
