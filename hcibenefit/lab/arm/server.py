"""The lab's ARM endpoint: Resource Graph queries and single ARM reads over HTTPS on loopback.

What the real azure-mgmt clients meet here, and where it comes from:
- ``POST /providers/Microsoft.ResourceGraph/resources``: the QueryRequest body (subscriptions,
  query, options $top/$skip/$skipToken/resultFormat) and the QueryResponse (totalRecords, count,
  resultTruncated as the string "false", $skipToken, facets, data), as in Microsoft's 2024-04-01
  examples. Pages are at most ``page_size`` rows, so paging runs for a small fleet too. A skip
  token only continues the query, scope and options it came from; anything else is a 400.
- Throttling as "Guidance for throttled requests" describes it: every answer carries
  ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after`` (hh:mm:ss) for a window of
  5 seconds; past the quota, 429. Assumption: a 429 also carries Retry-After (the docs name only
  the quota headers). The control endpoint injects 429s on demand (``throttle``).
- ``GET /subscriptions/{id}`` and ``GET {resource id}?api-version=``: ARM's error shapes
  (``{"error": {"code", "message"}}``) and codes: MissingApiVersionParameter, NoRegisteredProviderFound
  for a version the provider does not serve, ResourceNotFound, SubscriptionNotFound,
  AuthorizationFailed, InvalidAuthenticationToken. A VM instance read with an api-version before
  2025-06-01-preview lacks hyperVVmId and hostNodeName, as that API does.

Only hcibenefit's own inventory query is answered (recognised by its ``// hcibenefit`` header line):
the lab evaluates no KQL, it serves the rows that query selects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hcibenefit.azure.query import QUERY_ID
from hcibenefit.lab import pki
from hcibenefit.lab.arm.blobs import BlobStore
from hcibenefit.lab.arm.ingestion import PATH_PREFIX, IngestionEndpoint, IngestionError, lab_rule_id
from hcibenefit.lab.arm.model import (
    LOCATION,
    TABLE_DESKTOP,
    TABLE_EXTENSIBILITY,
    TABLE_RESOURCES,
    AzureWorld,
    arm_body,
    build_world,
    cluster_world_key,
    graph_row,
    selected_by_query,
    subscriptions,
)
from hcibenefit.lab.arm.runcommands import RunCommandError, RunCommands, is_run_command_path, route
from hcibenefit.lab.state import FleetState, changes, now
from hcibenefit.lab.wsman.executor import PipelineCall, PipelineOutput, ScriptExecutor, TerminatingError

log = logging.getLogger(__name__)

GRAPH_PATH = "/providers/microsoft.resourcegraph/resources"
MAX_TOP = 1000
DEFAULT_TOP = 100
# Assumption: the versions each provider serves here are the ones our references name (spec
# folders, SDK defaults, example payloads); Azure serves more.
API_VERSIONS = {
    "microsoft.azurestackhci/clusters": ("2024-04-01", "2025-10-01", "2026-05-01", "2026-10-01"),
    "microsoft.hybridcompute/machines": ("2024-07-10", "2025-01-13", "2026-07-15"),
    "microsoft.azurestackhci/virtualmachineinstances": (
        "2023-09-01-preview",
        "2024-01-01",
        "2025-06-01-preview",
    ),
    "microsoft.extendedlocation/customlocations": ("2021-08-15", "2021-08-31-preview"),
    "microsoft.resourceconnector/appliances": ("2022-10-27", "2025-03-01-preview"),
    "microsoft.desktopvirtualization/hostpools/sessionhosts": ("2024-04-03", "2025-10-10"),
    "microsoft.desktopvirtualization/hostpools": ("2024-04-03", "2025-10-10"),
}
LIST_PAGE_SIZE = 100
"""Session hosts per page of an ARM list (the service's default pageSize); the fleet's page_size if set."""
SUBSCRIPTION_API_VERSIONS = ("2016-06-01", "2020-01-01", "2022-12-01")
PARTS = {
    "resources": {TABLE_RESOURCES},
    "extensibilityresources": {TABLE_EXTENSIBILITY},
    "desktopvirtualizationresources": {TABLE_DESKTOP},
}
ALL_TABLES = {TABLE_RESOURCES, TABLE_EXTENSIBILITY, TABLE_DESKTOP}


class ArmError(Exception):
    """An ARM error answer: status, code and message, as ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass
class Throttle:
    """429s asked for through the control endpoint: the next ``count`` requests of a kind."""

    count: int = 0
    retry_after: float = 1.0


@dataclass
class Counters:
    graph_requests: int = 0
    graph_throttled: int = 0
    arm_reads: int = 0
    arm_throttled: int = 0
    subscription_reads: int = 0
    unauthorized: int = 0
    graph_log: list[dict[str, Any]] = field(default_factory=list)


def _hms(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _digest(query: str, subscriptions: Any, top: int, result_format: str) -> str:
    material = json.dumps([query, subscriptions, top, result_format], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def _token(offset: int, digest: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "d": digest}).encode()).decode()


def _untoken(token: str) -> tuple[int, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(value["o"]), str(value["d"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArmError(400, "BadRequest", f"The skip token is not valid: {exc}") from None


class ArmServer:
    """ARM and Resource Graph for one lab. Thread-safe; every request builds on the live state."""

    def __init__(
        self,
        state: FleetState,
        *,
        token: str,
        workdir: Path,
        ca: pki.Issued | None = None,
        executor: ScriptExecutor | None = None,
    ) -> None:
        self.state = state
        self.token = token
        self.workdir = workdir
        self.ca = ca or pki.issue("hcibenefit lab ARM CA", ca=True, path_length=0)
        self.ca_bundle = workdir / "arm-ca.pem"
        self.lock = threading.Lock()
        self.counters = Counters()
        self.throttles = {"graph": Throttle(), "arm": Throttle()}
        self.revoked = False
        self.reset_at = now()
        self._quota_window = (0.0, 0)
        self._world_key: Any = None
        self._world: AzureWorld | None = None
        self._world_seen: Any = None
        """When the key was last worked out: (reset_at, state.changes())."""
        self._graph_rows: tuple[AzureWorld, Any, list[dict[str, Any]]] | None = None
        """The last Resource Graph query's rows, for its next pages: (world, selection, rows)."""
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ingestion = IngestionEndpoint(lab_rule_id(token))
        self.blobs = BlobStore(token)
        self.run_commands = RunCommands(
            executor or _NoAgent(), self._arc_machine, self.blobs.write_from_agent
        )
        self.refresh: Callable[[], None] | None = None
        """Brings `state` up to date first (a lab served by several processes copies it from them)."""

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.ca_bundle.write_bytes(self.ca.cert_pem)
        issued = pki.tls_server(self.ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
        cert = self.workdir / "arm-tls.pem"
        cert.write_bytes(issued.cert_pem + issued.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert)
        cert.unlink()
        self._httpd = _TLSServer(("127.0.0.1", 0), _handler(self), context)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hcibenefit-lab-arm", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def reset(self) -> None:
        with self.lock:
            self.counters = Counters()
            self.throttles = {"graph": Throttle(), "arm": Throttle()}
            self.revoked = False
            self.reset_at = now()
            self._quota_window = (0.0, 0)
            self._world_key = None
            self._world_seen = None
            self._graph_rows = None
        self.ingestion.reset()
        self.run_commands.reset()
        self.blobs.reset()

    def _arc_machine(self, machine_id: str) -> tuple[str, str, str] | None:
        """(lab node, location, status) of a node's Arc machine; None for any other id."""
        resource = self.world().resources.get(machine_id.lower())
        if resource is None or resource.body["type"].lower() != "microsoft.hybridcompute/machines":
            return None
        properties = resource.body.get("properties") or {}
        if (properties.get("cloudMetadata") or {}).get("provider") != "AzSHCI":
            return None  # an Arc VM: its guest is not a lab node
        return (
            resource.body["name"],
            resource.body.get("location") or LOCATION,
            properties.get("status") or "",
        )

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the lab's ARM endpoint is not running")
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    # --- control and observability ---------------------------------------------------------------

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """``POST /lab/azure``: {"throttle": {"target": graph|arm|all, "count": N, "retry_after": S}},
        {"revoke_token": true} (every later request gets 401 ExpiredAuthenticationToken),
        {"ingestion_fail": {"count": N, "status": 503, "retry_after": S}} (Logs Ingestion calls fail)."""
        changed: dict[str, Any] = {}
        fail = request.pop("ingestion_fail", None)
        if fail is not None:
            changed["ingestion_fail"] = self.ingestion.control(dict(fail))
        with self.lock:
            throttle = request.pop("throttle", None)
            if throttle is not None:
                target = throttle.get("target", "graph")
                kinds = ["graph", "arm"] if target == "all" else [target]
                if any(k not in self.throttles for k in kinds):
                    raise ValueError(f"throttle target must be graph, arm or all, got {target!r}")
                for kind in kinds:
                    self.throttles[kind] = Throttle(
                        int(throttle.get("count", 1)), float(throttle.get("retry_after", 1))
                    )
                changed["throttle"] = {k: self.throttles[k].__dict__ for k in kinds}
            if "revoke_token" in request:
                self.revoked = bool(request.pop("revoke_token"))
                changed["revoke_token"] = self.revoked
            if request:
                raise ValueError(
                    f"unknown keys {sorted(request)}; expected throttle, revoke_token, ingestion_fail"
                )
        return changed

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            c = self.counters
            return {
                "endpoint": self.url if self._httpd else None,
                "subscriptions": sorted(subscriptions(self.state)),
                "graph_requests": c.graph_requests,
                "graph_throttled": c.graph_throttled,
                "arm_reads": c.arm_reads,
                "arm_throttled": c.arm_throttled,
                "subscription_reads": c.subscription_reads,
                "unauthorized": c.unauthorized,
                "graph_log": list(c.graph_log[-200:]),
                "ingestion": self.ingestion.snapshot(),
                "run_commands": self.run_commands.snapshot(),
                "blobs": self.blobs.snapshot(),
            }

    # --- the world ------------------------------------------------------------------------------

    def world(self) -> AzureWorld:
        """The Azure view of the live state, rebuilt only when the state it derives from changed."""
        if self.refresh is not None:
            self.refresh()
        with self.state.lock:
            # Read before the key: a change made while the key is worked out is seen on the next request.
            seen = (self.reset_at, changes())
            if seen == self._world_seen and self._world is not None:
                return self._world
            key = (self.reset_at, tuple(cluster_world_key(self.state, name) for name in self.state.clusters))
            if key != self._world_key or self._world is None:
                self._world = build_world(self.state, self.reset_at, now())
                self._world_key = key
            self._world_seen = seen
            return self._world

    # --- request handling -------------------------------------------------------------------------

    def authorize(self, header: str | None) -> None:
        if self.revoked:
            raise ArmError(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            )
        if header != f"Bearer {self.token}":
            with self.lock:
                self.counters.unauthorized += 1
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")

    def _throttled(self, kind: str) -> None:
        with self.lock:
            throttle = self.throttles[kind]
            if throttle.count <= 0:
                return
            throttle.count -= 1
            if kind == "graph":
                self.counters.graph_throttled += 1
            else:
                self.counters.arm_throttled += 1
        headers = {"Retry-After": f"{throttle.retry_after:g}"}
        if kind == "graph":
            headers |= {
                "x-ms-user-quota-remaining": "0",
                "x-ms-user-quota-resets-after": _hms(throttle.retry_after),
            }
        raise ArmError(
            429,
            "RateLimiting" if kind == "graph" else "TooManyRequests",
            "Client application has been throttled and should not attempt to repeat the request until an "
            "amount of time has elapsed.",
            headers,
        )

    def _quota(self) -> dict[str, str]:
        """Count one request against the 5-second window; 429 past the quota."""
        limit = self.state.spec.azure.quota
        with self.lock:
            started, used = self._quota_window
            clock = time.monotonic()
            window = self.state.spec.azure.quota_window_s
            if clock - started >= window:
                started, used = clock, 0
            resets = window - (clock - started)
            if used >= limit:
                self._quota_window = (started, used)
                self.counters.graph_throttled += 1
                raise ArmError(
                    429,
                    "RateLimiting",
                    "Please provide below info when asking for support: the user quota is exhausted.",
                    {
                        "Retry-After": str(math.ceil(resets)),
                        "x-ms-user-quota-remaining": "0",
                        "x-ms-user-quota-resets-after": _hms(resets),
                    },
                )
            self._quota_window = (started, used + 1)
            return {
                "x-ms-user-quota-remaining": str(limit - used - 1),
                "x-ms-user-quota-resets-after": _hms(resets),
            }

    def graph(self, api_version: str | None, body: Any) -> tuple[dict[str, Any], dict[str, str]]:
        with self.lock:
            self.counters.graph_requests += 1
        self._throttled("graph")
        headers = self._quota()
        if not api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise ArmError(400, "BadRequest", "The request body must be a QueryRequest with a query.")
        query: str = body["query"]
        subscriptions = body.get("subscriptions")
        options = body.get("options") or {}
        top = int(options.get("$top") or DEFAULT_TOP)
        skip = int(options.get("$skip") or 0)
        result_format = str(options.get("resultFormat") or "objectArray")
        if not 1 <= top <= MAX_TOP:
            raise ArmError(400, "BadRequest", f"$top must be between 1 and {MAX_TOP}.")
        first_line = query.lstrip().split("\n", 1)[0].strip()
        if not first_line.startswith(f"// {QUERY_ID}"):
            raise ArmError(
                400,
                "BadRequest",
                "Query is invalid. (The hcibenefit lab answers only hcibenefit's inventory query: "
                "hcibenefit arm query --print.)",
            )
        part = first_line.removeprefix(f"// {QUERY_ID}").strip().removeprefix("part").strip()
        if not part and self.state.spec.azure.refuse_union:
            # Assumption: the wording Azure would use is unknown; the code is ARG's for a bad query.
            raise ArmError(
                400,
                "BadRequest",
                "Query is invalid: union is supported only between Resources and ResourceContainers.",
            )
        tables = PARTS.get(part, ALL_TABLES) if part else ALL_TABLES
        digest = _digest(query, subscriptions, top, result_format)
        offset = skip
        if options.get("$skipToken"):
            offset, expected = _untoken(str(options["$skipToken"]))
            if expected != digest:
                raise ArmError(
                    400,
                    "BadRequest",
                    "The skip token does not belong to this query: the query, subscriptions and options must be "
                    "the same on every page.",
                )
        world = self.world()
        scope = None if subscriptions is None else frozenset(str(s).lower() for s in subscriptions)
        denied = frozenset(s.lower() for s in self.state.spec.azure.denied_subscriptions)
        host_fields = self.state.spec.azure.graph_host_fields
        selection = (tables, scope, denied, host_fields)
        with self.lock:
            cached = self._graph_rows
        if cached is not None and cached[0] is world and cached[1] == selection:
            # The next page of the same query over the same view: the rows are those of the first page's
            # request (a fleet of 10,000 VMs has some 140 pages; working every row out for each was
            # quadratic). A changed view is a new world object, and its rows are worked out afresh.
            rows = cached[2]
        else:
            rows = sorted(
                (
                    graph_row(r, host_fields)
                    for r in world.resources.values()
                    if r.table in tables
                    and selected_by_query(r)
                    and r.subscription not in denied
                    and (scope is None or r.subscription in scope)
                ),
                key=lambda row: str(row["id"]).lower(),
            )
            with self.lock:
                self._graph_rows = (world, selection, rows)
        page_size = self.state.spec.azure.page_size or (10 if len(world.resources) <= 200 else 100)
        page = rows[offset : offset + min(top, page_size)]
        following = offset + len(page)
        response: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "resultTruncated": "false",
            "facets": [],
            "data": _table(page) if result_format == "table" else page,
        }
        if following < len(rows):
            response["$skipToken"] = _token(following, digest)
        with self.lock:
            self.counters.graph_log.append(
                {
                    "query_sha256": hashlib.sha256(query.encode()).hexdigest(),
                    "part": part or None,
                    "subscriptions": subscriptions,
                    "top": top,
                    "skip_token": bool(options.get("$skipToken")),
                    "rows": len(page),
                }
            )
        return response, headers

    def _list_session_hosts(
        self, pool_id: str, api_version: str, world: AzureWorld, skip: int
    ) -> dict[str, Any]:
        """``GET {host pool}/sessionHosts``: ``{"value": [...], "nextLink"}``, as ARM pages a list."""
        pool = world.resources.get(pool_id)
        if pool is None or pool.body["type"].lower() != "microsoft.desktopvirtualization/hostpools":
            group = pool_id.split("/")[4] if pool_id.count("/") > 4 else "?"
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.DesktopVirtualization/hostPools/{pool_id.rsplit('/', 1)[-1]}' under "
                f"resource group '{group}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        served = API_VERSIONS["microsoft.desktopvirtualization/hostpools/sessionhosts"]
        if api_version not in served:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{LOCATION}' and API version "
                f"'{api_version}' for type 'hostPools/sessionHosts'. The supported api-versions are "
                f"'{', '.join(served)}'.",
            )
        members = sorted(
            (r for r in world.resources.values() if r.id.startswith(pool_id + "/sessionhosts/")),
            key=lambda r: r.id,
        )
        size = self.state.spec.azure.page_size or LIST_PAGE_SIZE
        page = members[skip : skip + size]
        answer: dict[str, Any] = {"value": [arm_body(r, api_version) for r in page]}
        if skip + size < len(members):
            original = next(r for r in world.resources.values() if r.id == pool_id).body["id"]
            answer["nextLink"] = (
                f"{self.url}{original}/sessionHosts?api-version={api_version}&initialSkip={skip + size}"
            )
        return answer

    def read(self, path: str, api_version: str | None, skip: int = 0) -> dict[str, Any]:
        parts = [p for p in path.split("/") if p]
        is_subscription = len(parts) == 2 and parts[0].lower() == "subscriptions"
        if not is_subscription:
            with self.lock:
                self.counters.arm_reads += 1
            self._throttled("arm")
        if not api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if is_subscription:
            return self._subscription(parts[1].lower(), api_version)
        world = self.world()
        if parts[-1].lower() == "sessionhosts" and len(parts) > 2:
            return self._list_session_hosts("/" + "/".join(parts[:-1]).lower(), api_version, world, skip)
        resource = world.resources.get("/" + "/".join(parts).lower())
        if resource is None:
            kind = "/".join(parts[-2:]) if len(parts) >= 2 else path
            group = parts[3] if len(parts) > 3 else "?"
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{kind}' under resource group '{group}' was not found. For more details please go "
                "to https://aka.ms/ARMResourceNotFoundFix",
            )
        resource_type = resource.body["type"].lower()
        served = API_VERSIONS.get(resource_type, ())
        if served and api_version not in served:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{resource.body.get('location') or LOCATION}' and API "
                f"version '{api_version}' for type '{resource_type.split('/', 1)[1]}'. The supported api-versions are "
                f"'{', '.join(served)}'.",
            )
        return arm_body(resource, api_version)

    def _subscription(self, subscription: str, api_version: str) -> dict[str, Any]:
        with self.lock:
            self.counters.subscription_reads += 1
        if api_version not in SUBSCRIPTION_API_VERSIONS:
            raise ArmError(400, "InvalidApiVersionParameter", f"The api-version '{api_version}' is invalid.")
        if subscription in {s.lower() for s in self.state.spec.azure.denied_subscriptions}:
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client 'labadmin@lab.test' with object id '{uuid.uuid5(uuid.NAMESPACE_DNS, 'labadmin')}' does "
                f"not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over scope "
                f"'/subscriptions/{subscription}' or the scope is invalid. If access was recently granted, please "
                "refresh your credentials.",
            )
        if subscription not in subscriptions(self.state):
            raise ArmError(
                404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found."
            )
        return {
            "id": f"/subscriptions/{subscription}",
            "authorizationSource": "RoleBased",
            "subscriptionId": subscription,
            "tenantId": str(uuid.uuid5(uuid.NAMESPACE_DNS, "hcibenefit-lab-tenant")),
            "displayName": "hcibenefit lab",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "Lab",
                "spendingLimit": "Off",
            },
        }


class _NoAgent:
    """Run commands on an ARM endpoint started without the lab's executor: the script cannot run."""

    def execute(self, call: PipelineCall, out: PipelineOutput) -> list[Any]:
        raise TerminatingError("no executor: this ARM endpoint runs no scripts", error_id="LabNoExecutor")


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(rows[0]) if rows else []
    return {
        "columns": [
            {"name": c, "type": "object" if c in ("tags", "properties", "extendedLocation") else "string"}
            for c in columns
        ],
        "rows": [[row.get(c) for c in columns] for row in rows],
    }


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext
    ) -> None:
        self.context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        # The handshake runs in the request's thread (see the handler's setup), so a client that
        # connects and says nothing holds up no one.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


def _handler(server: ArmServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
        timeout = 30

        def setup(self) -> None:
            super().setup()
            try:
                self.connection.do_handshake()
            except (OSError, ssl.SSLError) as exc:
                log.debug("arm: TLS handshake failed: %s", exc)
                self.close_connection = True
                raise

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("arm: " + format, *args)

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, action: Callable[[], tuple[Any, dict[str, str]]]) -> None:
            try:
                server.authorize(self.headers.get("Authorization"))
                body, headers = action()
            except ArmError as exc:
                self._send(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)
                return
            except Exception as exc:  # a bug in the lab must answer, not drop the connection
                log.exception("arm: request failed")
                self._send(
                    500, {"error": {"code": "InternalServerError", "message": f"{type(exc).__name__}: {exc}"}}
                )
                return
            self._send(200, body, headers)

        def _skip(self) -> int:
            values = parse_qs(urlsplit(self.path).query).get("initialSkip") or ["0"]
            return int(values[0]) if values[0].isdigit() else 0

        def _split(self) -> tuple[str, str | None]:
            url = urlsplit(self.path)
            versions = parse_qs(url.query).get("api-version")
            return url.path, versions[0] if versions else None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path, version = self._split()
            if path.lower().startswith(PATH_PREFIX):
                self._ingest(path, version, raw)
                return
            if server.blobs.handles(path):
                self._blob("POST", raw)
                return

            def act() -> tuple[Any, dict[str, str]]:
                if path.rstrip("/").lower() != GRAPH_PATH:
                    raise ArmError(
                        404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'."
                    )
                try:
                    body = json.loads(raw or b"null")
                except ValueError as exc:
                    raise ArmError(
                        400, "InvalidRequestContent", f"The request content was invalid: {exc}"
                    ) from None
                return server.graph(version, body)

            self._answer(act)

        def _ingest(self, path: str, version: str | None, raw: bytes) -> None:
            try:
                server.authorize(self.headers.get("Authorization"))
                server.ingestion.handle(path, version, self.headers, raw)
            except (ArmError, IngestionError) as exc:
                self._fail(exc)
                return
            self._empty(204, {})

        def _arc(self, method: str, raw: bytes = b"") -> None:
            path, version = self._split()
            try:
                server.authorize(self.headers.get("Authorization"))
                server._throttled("arm")
                status, body, headers = route(server.run_commands, method, path, version, raw, server.url)
            except (ArmError, RunCommandError) as exc:
                self._fail(exc)
                return
            except Exception as exc:  # a bug in the lab must answer, not drop the connection
                log.exception("arm: run command request failed")
                self._fail(ArmError(500, "InternalServerError", f"{type(exc).__name__}: {exc}"))
                return
            if body is None:
                self._empty(status, headers)
                return
            self._send(status, body, headers)

        def _fail(self, exc: ArmError | IngestionError | RunCommandError) -> None:
            """ARM's error shape: {"error": {"code", "message"}}, with the error's headers (Retry-After)."""
            self._send(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)

        def _empty(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if server.blobs.handles(self._split()[0]):
                self._blob("PUT", raw)
                return
            self._arc("PUT", raw)

        def do_DELETE(self) -> None:
            if server.blobs.handles(self._split()[0]):
                self._blob("DELETE")
                return
            self._arc("DELETE")

        def _blob(self, method: str, raw: bytes = b"") -> None:
            url = urlsplit(self.path)
            status, body, headers = server.blobs.handle(method, url.path, url.query, dict(self.headers), raw)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._blob("HEAD")

        def do_GET(self) -> None:
            path, version = self._split()
            if server.blobs.handles(path):
                self._blob("GET")
                return
            if is_run_command_path(path):
                self._arc("GET")
                return
            self._answer(
                lambda: (
                    server.read(path, version, self._skip()),
                    {"x-ms-ratelimit-remaining-subscription-reads": "11999"},
                )
            )

    return Handler
