"""Reading what Azure believes, live or from saved ``az graph query`` output, for any command.

``open_azure`` gives the same ``AzureRead`` either way; a live source also keeps its session open
for the authoritative single reads reconciliation asks for. A failed login does not raise: it is
the error of every subscription in scope, so a command still reports what it could do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hcibenefit.azure.credentials import AzureLoginError
from hcibenefit.azure.parse import load_snapshots
from hcibenefit.azure.records import AzureInventory
from hcibenefit.inventory.model import AzureSettings, Cluster

if TYPE_CHECKING:
    from hcibenefit.azure.session import AzureRead, AzureSession

log = logging.getLogger(__name__)


@dataclass
class AzureSource:
    read: AzureRead
    session: AzureSession | None
    """Open for a live source whose login worked; None for a snapshot or a failed login."""


def scope_of(settings: AzureSettings, clusters: Sequence[Cluster]) -> list[str]:
    """The subscriptions to read: the inventory's, plus any a cluster's own azure: section names."""
    found = [s.lower() for s in settings.subscriptions]
    found += [c.azure.subscription_id for c in clusters if c.azure and c.azure.subscription_id]
    return list(dict.fromkeys(found))


def tls_warning(settings: AzureSettings) -> str | None:
    if settings.cert_validation is False:
        return f"azure.cert_validation is false: the TLS certificate of {settings.endpoint} is not checked"
    return None


def _snapshot(paths: Sequence[Path]) -> AzureRead:
    from hcibenefit.azure.session import AzureRead, AzureStats

    snapshot = load_snapshots(paths)
    return AzureRead(
        inventory=snapshot.inventory,
        errors={},
        scope=None,
        stats=AzureStats(),
        source="snapshot " + ", ".join(str(p) for p in paths),
        notes=[f"{snapshot.rows} rows from {len(paths)} file(s); no request was sent to Azure"],
    )


def _failed(exc: AzureLoginError, scope: Sequence[str], source: str) -> AzureRead:
    from hcibenefit.azure.session import ALL_SUBSCRIPTIONS, AzureRead, AzureStats

    keys = list(scope) or [ALL_SUBSCRIPTIONS]
    return AzureRead(
        inventory=AzureInventory(),
        errors=dict.fromkeys(keys, exc.message),
        scope=tuple(scope) or None,
        stats=AzureStats(),
        source=source,
        hint=exc.hint,
    )


@contextlib.contextmanager
def open_azure(
    settings: AzureSettings, subscriptions: Sequence[str], *, snapshots: Sequence[Path] = ()
) -> Iterator[AzureSource]:
    """Read the inventory query's resources: from ``snapshots`` if given (no network, no
    credential), else live. A malformed snapshot raises AzureDataError (exit 2)."""
    if snapshots:
        yield AzureSource(_snapshot(snapshots), None)
        return
    warning = tls_warning(settings)
    if warning:
        log.warning("%s", warning)
        import warnings

        # urllib3 would repeat it on every request; we said it once.
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    source = f"Resource Graph at {settings.endpoint}"
    if settings == AzureSettings():
        source += (
            " (no azure: section in the inventory: DefaultAzureCredential, every subscription it can read)"
        )
    try:
        from hcibenefit.azure.session import AzureSession

        session = AzureSession(settings)
    except AzureLoginError as exc:
        yield AzureSource(_failed(exc, subscriptions, source), None)
        return
    with session:
        try:
            read = session.read_inventory(subscriptions)
        except AzureLoginError as exc:
            yield AzureSource(_failed(exc, subscriptions, source), None)
            return
        yield AzureSource(read, session)


def stats_line(read: AzureRead) -> str:
    s = read.stats.to_dict()
    waited = f", waited {s['waited_s']} s for throttling" if s["waited_s"] else ""
    return (
        f"azure: {s['resource_graph_requests']} Resource Graph request(s) for {s['resource_graph_pages']} page(s), "
        f"{s['subscription_reads']} subscription read(s), {s['arm_reads']} ARM read(s){waited}"
    )


def records_dict(inventory: AzureInventory) -> dict[str, Any]:
    """The records as JSON-ready dicts, grouped by kind (snake_case field names, ISO times)."""
    from dataclasses import asdict

    return {
        "clusters": [asdict(r) for r in inventory.clusters],
        "machines": [asdict(r) for r in inventory.machines],
        "vm_instances": [asdict(r) for r in inventory.instances],
        "custom_locations": [asdict(r) for r in inventory.custom_locations],
        "resource_bridges": [asdict(r) for r in inventory.bridges],
        "session_hosts": [asdict(r) for r in inventory.session_hosts],
    }
