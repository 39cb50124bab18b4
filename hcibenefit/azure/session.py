"""A live Azure session: the credential, a Resource Graph client and an ARM client, read-only.

Production and the lab use the same SDK clients; only the inventory's ``endpoint``,
``cert_validation`` and credential differ. Every HTTP request passes a guard that refuses anything
but a GET or the Resource Graph query POST: reconciliation reads Azure and never changes it (the
mgmt clients would otherwise register a resource provider by themselves on a 409).

Errors stay per subscription: one that cannot be read (no access, no such subscription, throttling
that does not clear) is reported and the others go on; only a failed login stops the Azure side.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hcibenefit import __version__
from hcibenefit.azure.credentials import AzureLoginError, acquire, login_hint, make_credential, scope_for
from hcibenefit.azure.graph import (
    BATCH_SIZE,
    MAX_WAIT_S,
    PAGE_ROWS,
    GraphHttpError,
    GraphStats,
    Pager,
    ThrottledError,
    batches,
    seconds,
)
from hcibenefit.azure.parse import inventory_from_rows, parse_early, parse_host_pool, parse_session_hosts
from hcibenefit.azure.query import INVENTORY_QUERY, PARTS
from hcibenefit.azure.records import AzureInventory, HostPool, SessionHost
from hcibenefit.errors import HcibenefitError
from hcibenefit.exitcodes import ExitCode
from hcibenefit.inventory.model import AzureSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.exceptions import HttpResponseError

log = logging.getLogger(__name__)

SUBSCRIPTION_API = "2022-12-01"
GRAPH_PATH = "/providers/microsoft.resourcegraph/resources"
READ_WORKERS = 8
READS_QUEUED_PER_WORKER = 4
CONNECT_TIMEOUT_S = 20
READ_TIMEOUT_S = 120
MAX_READ_ATTEMPTS = 4
ALL_SUBSCRIPTIONS = "all subscriptions"
HOST_POOL_API = "2024-04-03"
"""What azure-mgmt-desktopvirtualization 2.0.0 sends: host pools and their session hosts."""
MAX_LIST_PAGES = 200
"""A host pool's session hosts come 100 to a page by default; more pages than this is a loop."""


class AzureReadError(HcibenefitError):
    """Something a run cannot go on without could not be read from Azure (not a missing login)."""

    exit_code = ExitCode.INCOMPLETE


class WriteRefused(Exception):
    """A request that would change Azure reached the transport. Never expected: it is a bug."""


@dataclass
class AzureStats:
    graph: GraphStats = field(default_factory=GraphStats)
    subscription_reads: int = 0
    arm_reads: int = 0
    http_requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_graph_requests": self.graph.requests,
            "resource_graph_pages": self.graph.pages,
            "throttled": self.graph.throttled,
            "waited_s": round(self.graph.waited_s, 1),
            "subscription_reads": self.subscription_reads,
            "arm_reads": self.arm_reads,
            "http_requests": self.http_requests,
        }


@dataclass
class AzureRead:
    """What one run learned from Azure: the records, and which scopes could not be read and why."""

    inventory: AzureInventory
    errors: dict[str, str]
    """Subscription id (or "all subscriptions") → what went wrong."""
    scope: tuple[str, ...] | None
    """The subscriptions asked for; None: every subscription the credential can see."""
    stats: AzureStats
    source: str
    notes: list[str] = field(default_factory=list)
    hint: str | None = None
    """What fixes a failed login (it is every subscription's error then)."""
    fixes: dict[str, str] = field(default_factory=dict)
    """Subscription id → what would make it readable, for the errors that have a known fix."""

    @property
    def complete(self) -> bool:
        return not self.errors

    def unread(self, subscription: str | None) -> tuple[str, str] | None:
        """Why a resource in this subscription (None: one whose subscription is not known) would not have
        been seen, and what would make it visible; None when it would have been (see ``covers``)."""
        if self.covers(subscription):
            return None
        if ALL_SUBSCRIPTIONS in self.errors:
            return f"Azure could not be read: {self.errors[ALL_SUBSCRIPTIONS]}", self._fix(ALL_SUBSCRIPTIONS)
        if self.hint is not None and self.errors:
            # A failed login is every subscription's error: say it as the login's.
            return f"Azure could not be read: {next(iter(self.errors.values()))}", self.hint
        if subscription is None:
            failed = sorted(self.errors)
            listed = "; ".join(f"{s}: {self.errors[s]}" for s in failed[:3])
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            return (
                f"the cluster's subscription is not known (neither the inventory nor its nodes name it) and "
                f"{len(failed)} subscription(s) could not be read: {listed}{more}",
                "name the cluster's Azure resource in the inventory (clusters: - name: ..., azure: "
                "{subscription_id: ..., resource_group: ...}); "
                + "; ".join(dict.fromkeys(self._fix(s) for s in failed[:3])),
            )
        subscription = subscription.lower()
        if subscription in self.errors:
            return f"subscription {subscription} could not be read: {self.errors[subscription]}", self._fix(
                subscription
            )
        return (
            f"subscription {subscription} is not in azure.subscriptions, so it was not read",
            f"add {subscription} to azure.subscriptions in the inventory",
        )

    def _fix(self, key: str) -> str:
        return self.fixes.get(key) or self.hint or "run the command again; -v shows Azure's answers"

    def covers(self, subscription: str | None) -> bool:
        """Whether a resource in this subscription would have been seen (so its absence means something)."""
        if ALL_SUBSCRIPTIONS in self.errors:
            return False
        if subscription is None:
            return not self.errors
        subscription = subscription.lower()
        if subscription in self.errors:
            return False
        return self.scope is None or subscription in self.scope


def _error_text(exc: HttpResponseError) -> tuple[str, str]:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or (exc.reason or "Error")
    message = getattr(error, "message", None) or exc.message or str(exc)
    return str(code), str(message).splitlines()[0]


def _headers(exc: HttpResponseError) -> dict[str, str]:
    """An error response's headers, lower-case names."""
    headers = getattr(exc.response, "headers", None) or {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


class AzureSession:
    """One credential and one pair of clients for a run. Close it (or use ``with``)."""

    def __init__(self, settings: AzureSettings, *, credential: TokenCredential | None = None) -> None:
        self.settings = settings
        self.stats = AzureStats()
        self._lock = threading.Lock()
        self.credential = credential or make_credential(settings)
        acquire(self.credential, settings)
        from azure.mgmt.resource.resources import ResourceManagementClient
        from azure.mgmt.resourcegraph import ResourceGraphClient

        common: dict[str, Any] = {
            "base_url": settings.endpoint.rstrip("/"),
            "credential_scopes": [scope_for(settings)],
            "connection_verify": str(settings.cert_validation)
            if not isinstance(settings.cert_validation, bool)
            else settings.cert_validation,
            # A 429 or 5xx comes back to us (graph.Pager waits as Azure asks and counts it); azure-core
            # keeps retrying broken connections.
            "retry_status": 0,
            "user_agent": f"hcibenefit/{__version__}",
            # azure-core waits 300 s by default; a dead proxy should not hold a fleet run that long.
            "connection_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
            "raw_request_hook": self._guard,
        }
        self.graph = ResourceGraphClient(self.credential, **common)
        # get_by_id ignores the client's subscription; the client insists on one.
        self.arm = ResourceManagementClient(self.credential, "00000000-0000-0000-0000-000000000000", **common)

    def __enter__(self) -> AzureSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in (self.graph, self.arm):
            client.close()
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()

    # --- the guard ------------------------------------------------------------------------------

    def _guard(self, request: Any) -> None:
        http = request.http_request
        method = http.method.upper()
        path = http.url.split("?", 1)[0].lower()
        with self._lock:
            self.stats.http_requests += 1
        if method == "GET" or (method == "POST" and path.endswith(GRAPH_PATH)):
            return
        raise WriteRefused(f"refused to send {method} {path}: hcibenefit only reads Azure")

    # --- subscriptions ----------------------------------------------------------------------------

    def _get(self, resource_id: str, api_version: str) -> Any:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        try:
            return self.arm.resources.get_by_id(
                resource_id,
                api_version=api_version,
                cls=lambda response, _model, _headers: response.http_response.json(),
            )
        except ClientAuthenticationError as exc:
            raise AzureLoginError(
                f"Azure refused the login: {_error_text(exc)[1]}", hint=login_hint(self.settings)
            ) from None
        except HttpResponseError:
            raise

    def check_subscription(self, subscription: str) -> str | None:
        """None when the credential may read the subscription, else why not."""
        problem = self._subscription_problem(subscription)
        return problem[0] if problem else None

    def _subscription_problem(self, subscription: str) -> tuple[str, str | None] | None:
        """None when the credential may read the subscription, else why not and what would fix it."""
        from azure.core.exceptions import HttpResponseError

        with self._lock:
            self.stats.subscription_reads += 1
        try:
            self._get(f"/subscriptions/{subscription}", SUBSCRIPTION_API)
        except HttpResponseError as exc:
            code, message = _error_text(exc)
            if exc.status_code == 403:
                # AuthorizationFailed names the principal: "The client '...' with object id '<guid>' ..."
                principal = re.search(r"object id '([0-9A-Fa-f-]{36})'", message)
                assignee = principal.group(1) if principal else "<the credential's object id>"
                return (
                    f"no access ({code}): the credential may not read this subscription",
                    f"give the credential the Reader role on it: az role assignment create --assignee "
                    f"{assignee} --role Reader --scope /subscriptions/{subscription} (or take the subscription "
                    "out of azure.subscriptions)",
                )
            if exc.status_code == 404:
                return (
                    f"no such subscription for this credential's tenant ({code})",
                    "check the id in the inventory: az account list -o table lists the subscriptions the "
                    "credential sees (azure.tenant_id selects the tenant)",
                )
            return f"{exc.status_code} {code}: {message}", None
        return None

    # --- Resource Graph ---------------------------------------------------------------------------

    def _send(
        self, query: str, subscriptions: Sequence[str] | None, token: str | None
    ) -> tuple[Any, Mapping[str, str]]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        request = QueryRequest(
            query=query,
            subscriptions=list(subscriptions) if subscriptions is not None else None,
            options=QueryRequestOptions(top=PAGE_ROWS, skip_token=token, result_format="objectArray"),
        )
        try:
            answer: Any = self.graph.resources(
                request,
                cls=lambda response, _model, _headers: (
                    response.http_response.json(),
                    dict(response.http_response.headers),
                ),
            )
        except ClientAuthenticationError as exc:
            raise AzureLoginError(
                f"Azure refused the login: {_error_text(exc)[1]}", hint=login_hint(self.settings)
            ) from None
        except HttpResponseError as exc:
            code, message = _error_text(exc)
            raise GraphHttpError(exc.status_code or 0, code, message, _headers(exc)) from None
        body, headers = answer
        return body, headers

    def read_inventory(self, subscriptions: Sequence[str] = (), *, batch_size: int = BATCH_SIZE) -> AzureRead:
        """Every resource the query selects in these subscriptions (none given: all the credential sees)."""
        wanted = list(dict.fromkeys(s.lower() for s in subscriptions))
        errors: dict[str, str] = {}
        fixes: dict[str, str] = {}
        notes: list[str] = []
        readable = wanted
        if wanted:
            # Resource Graph leaves out subscriptions it may not read without saying so: ask ARM.
            with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(wanted))) as pool:
                verdicts = list(pool.map(self._subscription_problem, wanted))
            for subscription, problem in zip(wanted, verdicts, strict=True):
                if problem is not None:
                    errors[subscription] = problem[0]
                    if problem[1]:
                        fixes[subscription] = problem[1]
            readable = [s for s in wanted if s not in errors]
        pager = Pager(self._send, self.stats.graph, each_row=parse_early)
        rows: list[tuple[str, Any]] = []
        scopes: list[list[str] | None] = list(batches(readable, batch_size)) if wanted else [None]
        split_union = False
        for scope in scopes:
            if scope == []:
                continue
            try:
                found, split_union = self._scope_rows(pager, scope, split_union, errors, notes)
            except ThrottledError as exc:
                for key in scope or [ALL_SUBSCRIPTIONS]:
                    errors[key] = str(exc)
                    fixes[key] = (
                        "run it again later: Resource Graph's quota is per user and shared with every other "
                        "tool that queries it (portal, scripts, other hcibenefit runs)"
                    )
                continue
            rows.extend((f"Resource Graph row {len(rows) + i}", row) for i, row in enumerate(found))
        return AzureRead(
            inventory=inventory_from_rows(rows),
            errors=errors,
            scope=tuple(wanted) if wanted else None,
            stats=self.stats,
            source=f"Resource Graph at {self.settings.endpoint}",
            notes=notes,
            fixes=fixes,
        )

    def _scope_rows(
        self,
        pager: Pager,
        scope: list[str] | None,
        split_union: bool,
        errors: dict[str, str],
        notes: list[str],
    ) -> tuple[list[Any], bool]:
        if not split_union:
            try:
                return pager.run(INVENTORY_QUERY, scope), False
            except GraphHttpError as exc:
                if exc.status != 400:
                    return self._per_subscription(pager, scope, exc, errors, INVENTORY_QUERY), False
                notes.append(
                    f"Resource Graph refused the one query ({exc.code}: {exc.message}); its three parts ran separately"
                )
        rows: list[Any] = []
        for part in PARTS:
            try:
                rows.extend(pager.run(part, scope))
            except GraphHttpError as exc:
                rows.extend(self._per_subscription(pager, scope, exc, errors, part))
        return rows, True

    def _per_subscription(
        self,
        pager: Pager,
        scope: list[str] | None,
        failure: GraphHttpError,
        errors: dict[str, str],
        query: str,
    ) -> list[Any]:
        """A batch failed: ask each subscription alone, so one bad subscription fails only itself."""
        if scope is None or len(scope) == 1:
            for key in scope or [ALL_SUBSCRIPTIONS]:
                errors[key] = f"Resource Graph: {failure.status} {failure.code}: {failure.message}"
            return []
        rows: list[Any] = []
        for subscription in scope:
            try:
                rows.extend(pager.run(query, [subscription]))
            except GraphHttpError as exc:
                errors[subscription] = f"Resource Graph: {exc.status} {exc.code}: {exc.message}"
        return rows

    # --- AVD host pools ---------------------------------------------------------------------------

    def read_host_pool(self, pool_id: str) -> tuple[HostPool, list[SessionHost]] | None:
        """The host pool and every session host in it, whatever it runs on (Azure VMs too), from ARM:
        ``GET {pool}`` then ``GET {pool}/sessionHosts`` and its ``nextLink`` pages. None: no such pool.
        Raises AzureReadError when ARM refuses or fails (the pool's members cannot be told)."""
        from azure.core.exceptions import HttpResponseError

        with self._lock:
            self.stats.arm_reads += 1
        try:
            body = self._get(pool_id, HOST_POOL_API)
        except HttpResponseError as exc:
            if exc.status_code == 404:
                return None
            code, message = _error_text(exc)
            raise AzureReadError(f"host pool {pool_id}: {exc.status_code} {code}: {message}") from None
        pool = parse_host_pool(body, f"ARM read of {pool_id}")
        rows: list[tuple[str, Any]] = []
        url: str | None = None
        for page_number in range(MAX_LIST_PAGES):
            with self._lock:
                self.stats.arm_reads += 1
            where = f"ARM list of {pool_id}/sessionHosts, page {page_number + 1}"
            try:
                page = (
                    self._get(f"{pool_id}/sessionHosts", HOST_POOL_API) if url is None else self._follow(url)
                )
            except HttpResponseError as exc:
                code, message = _error_text(exc)
                raise AzureReadError(
                    f"session hosts of {pool_id}: {exc.status_code} {code}: {message}"
                ) from None
            values = page.get("value") if isinstance(page, dict) else None
            if not isinstance(values, list):
                raise AzureReadError(f"{where}: expected an object with value: [...]")
            rows += [(f"{where}, value[{i}]", row) for i, row in enumerate(values)]
            url = page.get("nextLink") or None
            if url is None:
                return pool, parse_session_hosts(rows)
        raise AzureReadError(
            f"session hosts of {pool_id}: more than {MAX_LIST_PAGES} pages (nextLink loops?)"
        )

    def _follow(self, next_link: str) -> Any:
        """One ``nextLink`` page, through the same pipeline (credential, guard, timeouts)."""
        from azure.core.rest import HttpRequest

        if not next_link.lower().startswith(self.settings.endpoint.rstrip("/").lower() + "/"):
            raise AzureReadError(
                f"ARM sent a nextLink to another host ({next_link.split('?', 1)[0]}); not followed"
            )
        response = self.arm.send_request(HttpRequest("GET", next_link))
        if response.status_code == 401:
            raise AzureLoginError("Azure refused the login (401)", hint=login_hint(self.settings))
        response.raise_for_status()
        return response.json()

    # --- single ARM reads -------------------------------------------------------------------------

    def read_resources(
        self,
        resource_ids: Sequence[str],
        api_version: str,
        *,
        each_body: Callable[[Any], Any] | None = None,
    ) -> dict[str, Any]:
        """``GET {id}?api-version=`` for each id, in parallel: id → the body (through `each_body` as it
        arrives, if given), None (no longer exists) or the error text. A 429 or 5xx waits as ARM asks
        (Retry-After) and tries again, bounded."""
        from azure.core.exceptions import HttpResponseError

        def one(resource_id: str) -> Any:
            with self._lock:
                self.stats.arm_reads += 1
            waited = 0.0
            for attempt in range(1, MAX_READ_ATTEMPTS + 1):
                try:
                    body = self._get(resource_id, api_version)
                    return body if each_body is None else each_body(body)
                except HttpResponseError as exc:
                    status = exc.status_code or 0
                    if status == 404:
                        return None
                    code, message = _error_text(exc)
                    delay = seconds(_headers(exc).get("retry-after"))
                    delay = 2.0 ** (attempt - 1) if delay is None else delay
                    if (
                        (status == 429 or status >= 500)
                        and attempt < MAX_READ_ATTEMPTS
                        and waited + delay <= MAX_WAIT_S
                    ):
                        waited += delay
                        with self._lock:
                            self.stats.graph.waited_s += delay
                        time.sleep(delay)
                        continue
                    return f"{status} {code}: {message}"
            raise AssertionError("unreachable: the loop returns")

        if not resource_ids:
            return {}
        workers = min(READ_WORKERS, len(resource_ids))
        found: dict[str, Any] = {}
        # A few reads queued per worker, not one future per id from the start (pool.map): at 10,000 VMs
        # that was 6,600 futures, each with its lock and its parsed body, held until the last read.
        queued: deque[tuple[str, Future[Any]]] = deque()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                for resource_id in resource_ids:
                    if len(queued) >= workers * READS_QUEUED_PER_WORKER:
                        done_id, done = queued.popleft()
                        found[done_id] = done.result()
                    queued.append((resource_id, pool.submit(one, resource_id)))
                while queued:
                    done_id, done = queued.popleft()
                    found[done_id] = done.result()
            except BaseException:
                for _, waiting in queued:
                    waiting.cancel()
                raise
        return found
