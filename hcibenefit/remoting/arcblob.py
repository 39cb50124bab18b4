"""Output blobs for Arc run commands: the whole answer, where the instance view keeps only 4 KB.

``arc.output_container`` names a blob container (``https://ACCOUNT.blob.core.windows.net/CONTAINER``).
For each run command hcibenefit makes a user delegation SAS for one new append blob (read, add, create,
write; valid for the script's timeout plus an hour), hands it to the agent as ``outputBlobUri``, reads
the blob with its own Azure credential when the script ends, and deletes it. No account key or SAS is
stored anywhere; the identity needs *Storage Blob Data Contributor* on the container (which includes
the user delegation key). Arc run commands do not take managed identities for blobs (docs/arc.md).

azure-storage-blob is imported inside the class only.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from hcibenefit import __version__
from hcibenefit.inventory.model import AzureSettings

log = logging.getLogger(__name__)

KEY_LIFETIME = dt.timedelta(hours=6)
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class OutputBlob:
    name: str
    sas_url: str


class OutputBlobs:
    """One container's output blobs for a run; thread-safe."""

    def __init__(self, container_url: str, azure: AzureSettings) -> None:
        from azure.storage.blob import ContainerClient

        from hcibenefit.azure.credentials import make_credential

        verify = azure.cert_validation
        self._verify: bool | str = str(verify) if not isinstance(verify, bool) else verify
        self._credential = make_credential(azure)
        self._container: Any = ContainerClient.from_container_url(
            container_url.rstrip("/"),
            credential=self._credential,
            connection_verify=self._verify,
            connection_timeout=20,
            read_timeout=60,
            user_agent=f"hcibenefit/{__version__}",
        )
        self._lock = threading.Lock()
        self._key: Any = None
        self._key_expires: dt.datetime | None = None

    def close(self) -> None:
        self._container.close()

    def _delegation_key(self, needed_until: dt.datetime) -> Any:
        from azure.storage.blob import BlobServiceClient

        with self._lock:
            if self._key is None or self._key_expires is None or self._key_expires < needed_until:
                now = dt.datetime.now(dt.timezone.utc)
                expires = max(needed_until, now + KEY_LIFETIME)
                service: Any = BlobServiceClient(
                    self._container.url.rsplit("/", 1)[0],
                    credential=self._credential,
                    connection_verify=self._verify,
                )
                try:
                    self._key = service.get_user_delegation_key(now - CLOCK_SKEW, expires)
                finally:
                    service.close()
                self._key_expires = expires
            return self._key

    def new_blob(self, machine: str, run_command: str, timeout_s: int) -> OutputBlob:
        """A SAS URL for a blob the agent may create and append to, and we may read."""
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        now = dt.datetime.now(dt.timezone.utc)
        expiry = now + dt.timedelta(seconds=timeout_s) + dt.timedelta(hours=1)
        name = f"{machine.lower()}/{run_command}.txt"
        sas = generate_blob_sas(
            account_name=self._container.account_name,
            container_name=self._container.container_name,
            blob_name=name,
            user_delegation_key=self._delegation_key(expiry),
            permission=BlobSasPermissions(read=True, add=True, create=True, write=True),
            start=now - CLOCK_SKEW,
            expiry=expiry,
            protocol="https",
        )
        url = self._container.get_blob_client(name).url
        return OutputBlob(name, f"{url}?{sas}")

    def read(self, blob: OutputBlob) -> str:
        data = self._container.get_blob_client(blob.name).download_blob().readall()
        return bytes(data).decode("utf-8", errors="replace")

    def discard(self, blob: OutputBlob) -> None:
        try:
            self._container.get_blob_client(blob.name).delete_blob()
        except Exception as exc:  # a blob left behind costs little; the answer matters more
            log.info("output blob %s was not deleted: %s", blob.name, exc)
