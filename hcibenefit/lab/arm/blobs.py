"""The lab's blob storage: the output blobs of Arc run commands (``arc.output_container``).

One storage account, ``hcibenefitlab``, served path-style by the lab's ARM HTTPS server
(``https://127.0.0.1:PORT/hcibenefitlab/CONTAINER/BLOB``, as Azurite and azure-storage-blob do for an IP
address). What azure-storage-blob meets here, after the Blob service REST reference:
- ``POST /?restype=service&comp=userdelegationkey`` (bearer token): a user delegation key, XML;
- ``GET`` a blob (bearer token, ``x-ms-range``): 206 with Content-Range, ``x-ms-blob-type: AppendBlob``;
  404 ``BlobNotFound`` when there is none;
- ``DELETE`` a blob: 202.
The Arc agent writes through the SAS URL hcibenefit made (``write_from_agent``). The lab checks what a
SAS must grant an agent (read, add, create, write; for a blob; not expired; from a key it issued) but
does not recompute the signature: the HMAC is azure-storage-blob's own code, not ours (a guess, said).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
import uuid
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ACCOUNT = "hcibenefitlab"
VERSION = "2025-01-05"


def _xml_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()


class BlobError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class BlobStore:
    def __init__(self, token: str) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.blobs: dict[str, bytes] = {}
        self.keys: set[str] = set()
        self.counters = {"written": 0, "read": 0, "deleted": 0, "refused": 0, "keys": 0}

    def reset(self) -> None:
        with self.lock:
            self.blobs.clear()
            self.counters = dict.fromkeys(self.counters, 0)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"account": ACCOUNT, "blobs": sorted(self.blobs), **self.counters}

    @staticmethod
    def handles(path: str) -> bool:
        return path == f"/{ACCOUNT}" or path.startswith(f"/{ACCOUNT}/")

    # --- the agent's side (through a SAS URL) --------------------------------------------------------

    def write_from_agent(self, sas_url: str, text: str) -> None:
        """The Arc agent appends the script's output to the blob the SAS names (creating it)."""
        url = urlsplit(sas_url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        now = dt.datetime.now(dt.timezone.utc)
        problems = []
        if not self.handles(url.path) or url.path.count("/") < 3:
            problems.append("not a blob of the lab's account")
        if query.get("sr") != "b":
            problems.append("the SAS is not for a blob (sr=b)")
        if not set("acw") <= set(query.get("sp", "")):
            problems.append(f"the SAS grants {query.get('sp', '')!r}, the agent needs add, create and write")
        if not query.get("sig"):
            problems.append("the SAS has no signature")
        if query.get("skoid") not in self.keys:
            problems.append("the SAS is not signed with a user delegation key the lab issued")
        try:
            if dt.datetime.fromisoformat(query.get("se", "").replace("Z", "+00:00")) <= now:
                problems.append("the SAS has expired")
        except ValueError:
            problems.append("the SAS has no valid expiry (se)")
        if problems:
            with self.lock:
                self.counters["refused"] += 1
            raise BlobError(403, "AuthenticationFailed", "; ".join(problems))
        with self.lock:
            key = unquote(url.path)
            self.blobs[key] = self.blobs.get(key, b"") + text.encode("utf-8")
            self.counters["written"] += 1

    # --- hcibenefit's side (bearer token) ----------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        common = {
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-version": VERSION,
            "Date": formatdate(usegmt=True),
        }
        try:
            if {k.lower(): v for k, v in headers.items()}.get("authorization") != f"Bearer {self.token}":
                raise BlobError(
                    401, "InvalidAuthenticationInfo", "Server failed to authenticate the request."
                )
            params = {k: v[0] for k, v in parse_qs(query).items()}
            if method == "POST" and params.get("comp") == "userdelegationkey":
                return 200, self._delegation_key(raw), {**common, "Content-Type": "application/xml"}
            key = unquote(path)
            if method in ("GET", "HEAD"):
                return self._read(key, headers, common)
            if method == "DELETE":
                with self.lock:
                    if self.blobs.pop(key, None) is None:
                        raise BlobError(404, "BlobNotFound", "The specified blob does not exist.")
                    self.counters["deleted"] += 1
                return 202, b"", {**common, "x-ms-delete-type-permanent": "true"}
            raise BlobError(
                400, "UnsupportedHttpVerb", f"The lab's blob service does not serve {method} here."
            )
        except BlobError as exc:
            body = _xml_error(exc.code, exc.message)
            return (
                exc.status,
                body,
                {**common, "x-ms-error-code": exc.code, "Content-Type": "application/xml"},
            )

    def _delegation_key(self, raw: bytes) -> bytes:
        text = raw.decode("utf-8", errors="replace")

        def element(name: str) -> str:
            start, end = text.find(f"<{name}>"), text.find(f"</{name}>")
            if start < 0 or end < 0:
                raise BlobError(400, "InvalidXmlDocument", f"KeyInfo needs {name}.")
            return text[start + len(name) + 2 : end]

        start, expiry = element("Start"), element("Expiry")
        oid = str(uuid.uuid5(uuid.NAMESPACE_DNS, "labadmin"))
        with self.lock:
            self.keys.add(oid)
            self.counters["keys"] += 1
        value = base64.b64encode(hashlib.sha256(secrets.token_bytes(32)).digest()).decode()
        return (
            '<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>'
            f"<SignedOid>{oid}</SignedOid><SignedTid>{uuid.uuid5(uuid.NAMESPACE_DNS, 'hcibenefit-lab-tenant')}</SignedTid>"
            f"<SignedStart>{start}</SignedStart><SignedExpiry>{expiry}</SignedExpiry>"
            f"<SignedService>b</SignedService><SignedVersion>{VERSION}</SignedVersion><Value>{value}</Value>"
            "</UserDelegationKey>"
        ).encode()

    def _read(
        self, key: str, headers: dict[str, str], common: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            data = self.blobs.get(key)
            if data is not None:
                self.counters["read"] += 1
        if data is None:
            raise BlobError(404, "BlobNotFound", "The specified blob does not exist.")
        info = {
            **common,
            "Content-Type": "application/octet-stream",
            "ETag": f'"0x{hashlib.sha256(data).hexdigest()[:16].upper()}"',
            "Last-Modified": formatdate(usegmt=True),
            "Accept-Ranges": "bytes",
            "x-ms-blob-type": "AppendBlob",
            "x-ms-blob-committed-block-count": "1",
            "x-ms-server-encrypted": "true",
        }
        wanted = {k.lower(): v for k, v in headers.items()}.get("x-ms-range") or {
            k.lower(): v for k, v in headers.items()
        }.get("range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[len("bytes=") :].partition("-")
            begin = int(first or 0)
            end = min(int(last) if last else len(data) - 1, len(data) - 1)
            if begin >= len(data):
                raise BlobError(
                    416,
                    "InvalidRange",
                    "The range specified is invalid for the current size of the resource.",
                )
            chunk = data[begin : end + 1]
            return 206, chunk, {**info, "Content-Range": f"bytes {begin}-{end}/{len(data)}"}
        return 200, data, info
