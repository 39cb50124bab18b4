"""The lab's Azure Monitor Logs Ingestion API: what ``sweep --publish azure-monitor`` sends, kept for tests.

Served by the lab's ARM HTTPS server (one endpoint, one CA). What the real azure-monitor-ingestion
client meets here, after Microsoft's "Logs Ingestion API in Azure Monitor" and its REST reference:
- ``POST /dataCollectionRules/{immutable id}/streams/{stream}?api-version=2023-01-01``, a bearer token,
  a JSON array body (``Content-Encoding: gzip`` as the SDK sends it), at most 1 MB: 413 past that.
- 204 No Content on success.
- A rule the endpoint does not know: 404; a stream the rule does not declare: 400 (the codes are the
  lab's guess: the reference names the statuses, not every error code).
- Columns the stream does not declare are dropped, as a data collection rule drops them; the lab counts
  them (``dropped_columns``) so a test can say none were.
- The stream's columns are those of the shipped rule template (hcibenefit/publish/azure-monitor/dcr.json),
  so the template is checked against what hcibenefit sends.
- Faults on demand: ``{"ingestion_fail": {"count": N, "status": 503, "retry_after": 0}}`` fails the next
  N calls (Retry-After on 429 and 503, as the service sends it).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

API_VERSION = "2023-01-01"
MAX_BODY = 1024 * 1024
PATH_PREFIX = "/datacollectionrules/"
STREAM = "Custom-HcibenefitSweep"


class IngestionError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@cache
def declared_columns() -> dict[str, str]:
    """The stream's columns as the shipped data collection rule template declares them."""
    template = json.loads(
        files("hcibenefit.publish").joinpath("azure-monitor", "dcr.json").read_text(encoding="utf-8")
    )
    rule = template["resources"][0]["properties"]
    return {c["name"]: c["type"] for c in rule["streamDeclarations"][STREAM]["columns"]}


def lab_rule_id(seed: str) -> str:
    return "dcr-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


@dataclass
class IngestionFault:
    count: int = 0
    status: int = 503
    retry_after: float = 0.0


@dataclass
class IngestionEndpoint:
    rule_id: str
    stream: str = STREAM
    rows: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    failed: int = 0
    dropped_columns: dict[str, int] = field(default_factory=dict)
    fault: IngestionFault = field(default_factory=IngestionFault)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.rows.clear()
            self.requests = self.failed = 0
            self.dropped_columns.clear()
            self.fault = IngestionFault()

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.fault = IngestionFault(
                int(request.get("count", 1)),
                int(request.get("status", 503)),
                float(request.get("retry_after", 0)),
            )
            return dict(self.fault.__dict__)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "rule_id": self.rule_id,
                "stream": self.stream,
                "requests": self.requests,
                "failed": self.failed,
                "rows": len(self.rows),
                "runs": sorted({str(r.get("RunId")) for r in self.rows}),
                "dropped_columns": dict(self.dropped_columns),
            }

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.rows]

    def handle(self, path: str, api_version: str | None, headers: Any, raw: bytes) -> None:
        """One upload; raises IngestionError for what the service would refuse."""
        with self.lock:
            self.requests += 1
            if self.fault.count > 0:
                self.fault.count -= 1
                self.failed += 1
                status = self.fault.status
                extra = {"Retry-After": f"{self.fault.retry_after:g}"} if status in (429, 503) else {}
                raise IngestionError(
                    status, "ServiceUnavailable" if status >= 500 else "Refused", "lab fault", extra
                )
        if api_version != API_VERSION:
            raise IngestionError(
                400, "InvalidApiVersion", f"The api-version '{api_version}' is not supported."
            )
        parts = path.split("/")
        # /dataCollectionRules/{rule}/streams/{stream}
        if len(parts) != 5 or parts[3].lower() != "streams":
            raise IngestionError(404, "NotFound", f"No resource matches '{path}'.")
        rule, stream = parts[2], parts[4]
        if rule != self.rule_id:
            raise IngestionError(404, "InvalidDcrImmutableId", f"Data collection rule {rule} was not found.")
        if stream != self.stream:
            raise IngestionError(400, "InvalidStream", f"Stream {stream} is not declared by rule {rule}.")
        if len(raw) > MAX_BODY:
            raise IngestionError(413, "ContentLengthLimitExceeded", "The request body is larger than 1 MB.")
        body = raw
        if (headers.get("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(raw)
            except OSError as exc:
                raise IngestionError(400, "InvalidContentEncoding", f"not gzip: {exc}") from None
        if len(body) > MAX_BODY:
            raise IngestionError(413, "ContentLengthLimitExceeded", "The request body is larger than 1 MB.")
        try:
            rows = json.loads(body)
        except ValueError as exc:
            raise IngestionError(400, "InvalidPayload", f"The body is not JSON: {exc}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise IngestionError(400, "InvalidPayload", "The body must be a JSON array of objects.")
        columns = declared_columns()
        with self.lock:
            for row in rows:
                for name in row:
                    if name not in columns:
                        self.dropped_columns[name] = self.dropped_columns.get(name, 0) + 1
                self.rows.append({k: v for k, v in row.items() if k in columns})
