"""Sending sweep runs to Azure Monitor Logs through the Logs Ingestion API (azure-monitor-ingestion).

What the service asks of a client (docs/azure-monitor.md has the sources):
- ``POST {endpoint}/dataCollectionRules/{immutable id}/streams/{stream}?api-version=2023-01-01`` with a
  JSON array, at most 1 MB per call; the SDK splits a run's rows into such chunks and gzips each.
- A bearer token for ``https://monitor.azure.com`` (``.us``/``.cn`` for those clouds), from the
  ``azure:`` section's credential; the identity needs *Monitoring Metrics Publisher* on the rule.
- 204 on success; 429 and 503 carry Retry-After. azure-core retries those (and dropped connections)
  with backoff, a bounded number of times; what still fails leaves the run pending in history.

Delivery is at least once: a run whose second chunk failed is sent whole again by the next run, so
every row carries ``RunId`` and ``RowId`` and the shipped queries count each pair once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hcibenefit import __version__
from hcibenefit.errors import HcibenefitError
from hcibenefit.exitcodes import ExitCode
from hcibenefit.inventory.model import AzureMonitorSettings, AzureSettings
from hcibenefit.publish.rows import run_rows

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from hcibenefit.sweep.history import History

log = logging.getLogger(__name__)

TARGET = "azure-monitor"
RETRIES = 4
"""azure-core's retries per chunk (429, 5xx, dropped connections), with backoff and Retry-After."""
CONNECT_TIMEOUT_S = 20
READ_TIMEOUT_S = 60
AUDIENCES = {
    ".ingest.monitor.azure.us": "https://monitor.azure.us/.default",
    ".ingest.monitor.azure.cn": "https://monitor.azure.cn/.default",
}
PUBLIC_AUDIENCE = "https://monitor.azure.com/.default"


class PublishError(HcibenefitError):
    exit_code = ExitCode.INCOMPLETE


def target_key(settings: AzureMonitorSettings) -> str:
    """Which destination a pending run waits for: another rule or stream is another destination."""
    return f"{TARGET}:{settings.endpoint.rstrip('/').lower()}/{settings.rule_id}/{settings.stream}"


def scope_for(endpoint: str) -> str:
    host = (urlsplit(endpoint).hostname or "").lower()
    for suffix, scope in AUDIENCES.items():
        if host.endswith(suffix):
            return scope
    return PUBLIC_AUDIENCE


@dataclass
class Publication:
    """What one publishing pass did: runs sent, runs still pending and why."""

    destination: str
    sent: dict[int, int] = field(default_factory=dict)
    """run id -> rows sent."""
    failed: dict[int, str] = field(default_factory=dict)
    """run id -> why it is still pending."""

    @property
    def complete(self) -> bool:
        return not self.failed

    def notes(self) -> list[str]:
        notes = []
        if self.sent:
            runs = ", ".join(str(r) for r in self.sent)
            notes.append(
                f"azure-monitor: published run(s) {runs} ({sum(self.sent.values())} rows) to {self.destination}"
            )
        if self.failed:
            runs = ", ".join(str(r) for r in self.failed)
            why = next(iter(self.failed.values()))
            notes.append(
                f"azure-monitor: run(s) {runs} not published ({why}); they stay in history and the next "
                "sweep --publish azure-monitor sends them"
            )
        return notes


class MonitorClient:
    """One LogsIngestionClient for a publishing pass. Close it (or use ``with``)."""

    def __init__(
        self,
        settings: AzureMonitorSettings,
        azure: AzureSettings,
        *,
        credential: TokenCredential | None = None,
    ) -> None:
        from azure.monitor.ingestion import LogsIngestionClient

        from hcibenefit.azure.credentials import make_credential

        self.settings = settings
        self.requests = 0
        self._credential = credential or make_credential(azure)
        verify = settings.cert_validation
        self._client = LogsIngestionClient(
            settings.endpoint.rstrip("/"),
            self._credential,
            credential_scopes=[scope_for(settings.endpoint)],
            connection_verify=str(verify) if not isinstance(verify, bool) else verify,
            connection_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retry_total=RETRIES,
            retry_backoff_factor=1.0,
            retry_backoff_max=30,
            user_agent=f"hcibenefit/{__version__}",
            raw_request_hook=self._count,
        )

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _count(self, _request: Any) -> None:
        self.requests += 1

    def upload(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Send the rows in chunks of at most 1 MB; raises PublishError naming the first chunk that failed."""
        from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

        failures: list[str] = []

        def on_error(error: Any) -> None:
            failures.append(_describe(error.error, len(error.failed_logs)))

        try:
            self._client.upload(
                rule_id=self.settings.rule_id,
                stream_name=self.settings.stream,
                logs=[dict(r) for r in rows],
                on_error=on_error,
            )
        except ClientAuthenticationError as exc:
            raise PublishError(f"Azure refused the login: {_describe(exc, len(rows))}") from None
        except (HttpResponseError, AzureError) as exc:
            raise PublishError(_describe(exc, len(rows))) from None
        if failures:
            more = f" (+{len(failures) - 1} more chunk(s))" if len(failures) > 1 else ""
            raise PublishError(failures[0] + more)


def _describe(exc: BaseException, rows: int) -> str:
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    text = str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__
    head = " ".join(str(p) for p in (status, code) if p)
    return f"{head + ': ' if head else ''}{text} ({rows} rows)"


def publish_pending(
    history: History,
    settings: AzureMonitorSettings,
    azure: AzureSettings,
    *,
    credential: TokenCredential | None = None,
    now: dt.datetime | None = None,
) -> Publication:
    """Send every run still pending for this destination, oldest first; a run is marked published only
    once all its rows were accepted. Stops at the first failure that would fail the others too."""
    destination = target_key(settings)
    publication = Publication(f"{settings.stream} of {settings.rule_id} at {settings.endpoint}")
    pending = history.unpublished(destination)
    if not pending:
        return publication
    try:
        client = MonitorClient(settings, azure, credential=credential)
    except HcibenefitError as exc:
        publication.failed = dict.fromkeys(pending, exc.message)
        for run_id in pending:
            history.mark_failed(run_id, destination, exc.message)
        return publication
    with client:
        for index, run_id in enumerate(pending):
            info = history.run(run_id)
            run = {**info.meta.get("run", {}), "id": info.id}
            rows = run_rows(run, history.records(info.id))
            try:
                client.upload(rows)
            except PublishError as exc:
                log.info("azure-monitor: run %d: %s", run_id, exc.message)
                # The same endpoint and credential would refuse the rest the same way: leave them pending.
                for left in pending[index:]:
                    history.mark_failed(left, destination, exc.message)
                    publication.failed[left] = exc.message
                break
            at = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
            history.mark_published(run_id, destination, rows=len(rows), at=at)
            publication.sent[run_id] = len(rows)
    return publication
