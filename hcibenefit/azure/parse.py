"""The one parser: Resource Graph pages, saved ``az graph query`` output and ARM reads → records.

Strict about shape (a row without ``id``/``type``, ``properties`` that is not an object: an
``AzureDataError`` naming the row and field), lenient about values (unknown enum values stay text,
absent properties are None), like ``facts.host``. A live page, a snapshot file and a single ARM
read all go through ``parse_resource``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcibenefit.azure.ids import last_name, norm_id, parent_of_extension, resource_group_of, subscription_of
from hcibenefit.azure.records import (
    TYPE_BRIDGE,
    TYPE_CLUSTER,
    TYPE_CUSTOM_LOCATION,
    TYPE_HOST_POOL,
    TYPE_MACHINE,
    TYPE_SESSION_HOST,
    TYPE_VM_INSTANCE,
    ArcMachine,
    AzureCluster,
    AzureInventory,
    ClusterNode,
    CustomLocation,
    HealthCheck,
    HostPool,
    Resource,
    ResourceBridge,
    SessionHost,
    VMInstance,
)
from hcibenefit.errors import ConfigError
from hcibenefit.facts.host import parse_time

SNAPSHOT_HINT = (
    'save it with: az graph query -q "$(hcibenefit arm query --print)" --first 1000 -o json > FILE '
    "(a result over 1000 rows comes in pages: save each page, with --skip-token, and pass every file)"
)


class AzureDataError(ConfigError):
    """Azure data (a snapshot file or a response) does not have the shape we read. Nothing was done."""


def _fail(where: str, message: str) -> AzureDataError:
    return AzureDataError(f"{where}: {message}", hint=SNAPSHOT_HINT)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    # Interned: thousands of resources repeat the same locations, statuses, versions and SKUs.
    return sys.intern(text) if text else None


def _bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{where}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def _base(row: Mapping[str, Any], resource_id: str, kind_type: str) -> dict[str, Any]:
    tags = row.get("tags")
    return {
        "id": norm_id(resource_id),
        "name": _text(row, "name") or last_name(resource_id),
        "type": kind_type,
        # Resource Graph rows carry these columns; an ARM read does not, so the id says.
        "subscription_id": (_text(row, "subscriptionId") or subscription_of(resource_id)).lower(),
        "resource_group": (_text(row, "resourceGroup") or resource_group_of(resource_id)).lower(),
        "location": _text(row, "location") or "",
        "tags": {str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
    }


def _cluster(
    row: Mapping[str, Any], props: Mapping[str, Any], base: dict[str, Any], where: str
) -> AzureCluster:
    reported = _object(props.get("reportedProperties"), f"{where}.properties.reportedProperties")
    desired = _object(props.get("desiredProperties"), f"{where}.properties.desiredProperties")
    assurance = _object(
        props.get("softwareAssuranceProperties"), f"{where}.properties.softwareAssuranceProperties"
    )
    nodes_where = f"{where}.properties.reportedProperties.nodes"
    nodes = []
    for index, raw in enumerate(_list(reported, "nodes", f"{where}.properties.reportedProperties")):
        node = _object(raw, f"{nodes_where}[{index}]")
        name = _text(node, "name")
        if name is None:
            continue
        nodes.append(
            ClusterNode(
                name=name,
                windows_server_subscription=_text(node, "windowsServerSubscription"),
                os_version=_text(node, "osVersion"),
                os_display_version=_text(node, "osDisplayVersion"),
                last_licensing=parse_time(node.get("lastLicensingTimestamp")),
                node_type=_text(node, "nodeType"),
            )
        )
    capabilities = _list(reported, "supportedCapabilities", f"{where}.properties.reportedProperties")
    return AzureCluster(
        **base,
        kind=_text(row, "kind"),
        status=_text(props, "status"),
        connectivity_status=_text(props, "connectivityStatus"),
        registration_time=parse_time(props.get("registrationTimestamp")),
        last_sync=parse_time(props.get("lastSyncTimestamp")),
        imds_attestation=_text(reported, "imdsAttestation"),
        cluster_name=_text(reported, "clusterName"),
        cluster_version=_text(reported, "clusterVersion"),
        supported_capabilities=tuple(str(c) for c in capabilities),
        nodes=tuple(nodes),
        wss_desired=_text(desired, "windowsServerSubscription"),
        software_assurance_status=_text(assurance, "softwareAssuranceStatus"),
        msi_expiration=parse_time(reported.get("msiExpirationTimeStamp")),
    )


def _license_status(props: Mapping[str, Any], where: str) -> str | None:
    profile = _object(props.get("licenseProfile"), f"{where}.properties.licenseProfile")
    status = _text(profile, "licenseStatus")
    if status is None:
        # Some Resource Graph rows carry the instance view under licenseProfileStorage instead.
        storage = _object(props.get("licenseProfileStorage"), f"{where}.properties.licenseProfileStorage")
        status = _text(
            _object(storage.get("properties"), f"{where}.licenseProfileStorage.properties"), "licenseStatus"
        )
    return status


def _machine(
    row: Mapping[str, Any], props: Mapping[str, Any], base: dict[str, Any], where: str
) -> ArcMachine:
    cloud = _object(props.get("cloudMetadata"), f"{where}.properties.cloudMetadata")
    return ArcMachine(
        **base,
        kind=_text(row, "kind"),
        status=_text(props, "status"),
        last_status_change=parse_time(props.get("lastStatusChange")),
        agent_version=_text(props, "agentVersion"),
        provider=_text(cloud, "provider"),
        parent_cluster_id=norm_id(props.get("parentClusterResourceId")),
        license_status=_license_status(props, where),
        os_name=_text(props, "osName"),
        os_sku=_text(props, "osSku"),
        vm_uuid=(_text(props, "vmUuid") or "").lower() or None,
    )


def _instance(
    row: Mapping[str, Any], props: Mapping[str, Any], base: dict[str, Any], where: str, authoritative: bool
) -> VMInstance:
    status = _object(props.get("status"), f"{where}.properties.status")
    guest_agent = _object(props.get("guestAgentInstallStatus"), f"{where}.properties.guestAgentInstallStatus")
    extended = _object(row.get("extendedLocation"), f"{where}.extendedLocation")
    hyperv = _text(props, "hyperVVmId")
    return VMInstance(
        **base,
        machine_id=parent_of_extension(base["id"]),
        custom_location_id=norm_id(extended.get("name")),
        power_state=_text(status, "powerState"),
        hyperv_vm_id=hyperv.lower() if hyperv else None,
        host_node_name=_text(props, "hostNodeName"),
        vm_id=_text(props, "vmId"),
        create_from_local=_bool(props, "createFromLocal"),
        guest_agent_status=_text(guest_agent, "status"),
        provisioning_state=_text(props, "provisioningState"),
        authoritative=authoritative,
    )


def _session_host(props: Mapping[str, Any], base: dict[str, Any], where: str) -> SessionHost:
    checks = []
    for index, raw in enumerate(_list(props, "sessionHostHealthCheckResults", f"{where}.properties")):
        check = _object(raw, f"{where}.properties.sessionHostHealthCheckResults[{index}]")
        name = _text(check, "healthCheckName")
        if name is not None:
            details = _object(
                check.get("additionalFailureDetails"),
                f"{where}.properties.sessionHostHealthCheckResults[{index}].additionalFailureDetails",
            )
            checks.append(
                HealthCheck(name, _text(check, "healthCheckResult") or "", _text(details, "message"))
            )
    parts = base["id"].split("/")
    pool = parts[parts.index("hostpools") + 1] if "hostpools" in parts[:-1] else ""
    return SessionHost(
        **base,
        host_pool=pool,
        vm_resource_id=norm_id(props.get("resourceId")),
        status=_text(props, "status"),
        last_heartbeat=parse_time(props.get("lastHeartBeat")),
        allow_new_session=_bool(props, "allowNewSession"),
        health_checks=tuple(checks),
        agent_version=_text(props, "agentVersion"),
        update_state=_text(props, "updateState"),
    )


def parse_host_pool(body: Any, where: str) -> HostPool:
    """A host pool as ``GET {id}?api-version=`` returns it."""
    obj = _object(body, where)
    resource_id, kind_type = _text(obj, "id"), (_text(obj, "type") or "").lower()
    if resource_id is None or kind_type != TYPE_HOST_POOL:
        raise _fail(where, f"expected a host pool ({TYPE_HOST_POOL}), got {kind_type or 'no type'}")
    props = _object(obj.get("properties"), f"{where}.properties")
    return HostPool(
        **_base(obj, resource_id, TYPE_HOST_POOL),
        host_pool_type=_text(props, "hostPoolType"),
        load_balancer_type=_text(props, "loadBalancerType"),
    )


def parse_session_hosts(rows: Iterable[tuple[str, Any]]) -> list[SessionHost]:
    """Session hosts from an ARM list (``{pool}/sessionHosts``): every row must be one."""
    found = []
    for where, row in rows:
        resource = parse_resource(row, where)
        if not isinstance(resource, SessionHost):
            raise _fail(where, "expected a session host (hostPools/sessionHosts)")
        found.append(resource)
    return found


def parse_resource(row: Any, where: str, *, authoritative: bool = False) -> Resource | None:
    """One resource (a Resource Graph row or an ARM GET body); None for a type we do not read."""
    obj = _object(row, where)
    if not isinstance(row, Mapping):
        raise _fail(where, "expected an object (one resource per row)")
    resource_id, kind_type = _text(obj, "id"), _text(obj, "type")
    if resource_id is None or kind_type is None:
        missing = "id" if resource_id is None else "type"
        raise _fail(
            where,
            f"no {missing!r}: rows must be whole resources (id, name, type, properties, ...), as "
            "hcibenefit's query returns them",
        )
    kind_type = kind_type.lower()
    parsers = {
        TYPE_CLUSTER,
        TYPE_MACHINE,
        TYPE_VM_INSTANCE,
        TYPE_CUSTOM_LOCATION,
        TYPE_BRIDGE,
        TYPE_SESSION_HOST,
    }
    if kind_type not in parsers:
        return None
    props = _object(obj.get("properties"), f"{where}.properties")
    base = _base(obj, resource_id, kind_type)
    if kind_type == TYPE_CLUSTER:
        return _cluster(obj, props, base, where)
    if kind_type == TYPE_MACHINE:
        return _machine(obj, props, base, where)
    if kind_type == TYPE_VM_INSTANCE:
        return _instance(obj, props, base, where, authoritative)
    if kind_type == TYPE_CUSTOM_LOCATION:
        return CustomLocation(
            **base,
            host_resource_id=norm_id(props.get("hostResourceId")),
            provisioning_state=_text(props, "provisioningState"),
        )
    if kind_type == TYPE_BRIDGE:
        return ResourceBridge(
            **base,
            status=_text(props, "status"),
            version=_text(props, "version"),
            provisioning_state=_text(props, "provisioningState"),
        )
    return _session_host(props, base, where)


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A row parsed when its page arrived (parse_early): its resource, None for a type we do not read."""

    resource: Resource | None


def parse_early(row: Any, *, authoritative: bool = False) -> Any:
    """A row's (or an ARM read's) resource as soon as it arrives, so its JSON can go: a 10,000-VM fleet's
    Resource Graph rows were some 50 MB held until the last page, its ARM reads as much until the last
    read. A row that does not parse stays as it came, for whoever reads it in order (inventory_from_rows,
    reconcile) to fail on with where it was, as it would have."""
    try:
        return ParsedRow(parse_resource(row, "", authoritative=authoritative))
    except Exception:  # the same row fails again, with its place, where it is read in order
        return row


def inventory_from_rows(rows: Iterable[tuple[str, Any]]) -> AzureInventory:
    """Records from (where, row) pairs; a row may be parsed already (parse_early). A resource seen twice
    (pages, files) is kept once, the last."""
    found: dict[str, Resource] = {}
    other = 0
    for where, row in rows:
        resource = row.resource if isinstance(row, ParsedRow) else parse_resource(row, where)
        if resource is None:
            other += 1
        else:
            found[resource.id] = resource
    values = list(found.values())
    return AzureInventory(
        clusters=tuple(r for r in values if isinstance(r, AzureCluster)),
        machines=tuple(r for r in values if isinstance(r, ArcMachine)),
        instances=tuple(r for r in values if isinstance(r, VMInstance)),
        custom_locations=tuple(r for r in values if isinstance(r, CustomLocation)),
        bridges=tuple(r for r in values if isinstance(r, ResourceBridge)),
        session_hosts=tuple(r for r in values if isinstance(r, SessionHost)),
        other_rows=other,
    )


# --- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One Resource Graph answer: a live response body, or ``az graph query -o json`` output."""

    rows: Sequence[Any]
    skip_token: str | None
    total_records: int | None
    truncated: bool


def _table_rows(data: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The ``table`` result format: columns plus rows of values."""
    columns = [c.get("name") if isinstance(c, Mapping) else None for c in _list(data, "columns", where)]
    if not columns or any(not isinstance(c, str) for c in columns):
        raise _fail(f"{where}.columns", "expected a list of {name, type} objects")
    rows = []
    for index, raw in enumerate(_list(data, "rows", where)):
        if not isinstance(raw, list) or len(raw) != len(columns):
            raise _fail(f"{where}.rows[{index}]", f"expected a list of {len(columns)} values")
        rows.append(dict(zip([str(c) for c in columns], raw, strict=True)))
    return rows


def parse_page(body: Any, where: str) -> Page:
    """Accepts the REST body (``data``, ``$skipToken``, ``totalRecords``), the az CLI's object form
    (``data``, ``skip_token``, ``total_records``) and the older CLI's bare array of rows."""
    if isinstance(body, list):
        return Page(body, None, None, False)
    if not isinstance(body, Mapping):
        raise _fail(
            where,
            f"expected az graph query output (an object with data, or a list), got {type(body).__name__}",
        )
    if "data" not in body:
        keys = ", ".join(sorted(str(k) for k in body)[:8]) or "no keys"
        raise _fail(
            where,
            f'not az graph query output: expected an object with "data": [...] or a list of rows, got an object with {keys}',
        )
    data = body["data"]
    if isinstance(data, Mapping):
        rows: list[Any] = _table_rows(data, f"{where}.data")
    elif isinstance(data, list):
        rows = data
    else:
        raise _fail(f"{where}.data", f"expected a list of rows, got {type(data).__name__}")
    token = body.get("$skipToken", body.get("skip_token", body.get("skipToken")))
    total = body.get("totalRecords", body.get("total_records"))
    truncated = body.get("resultTruncated", body.get("result_truncated"))
    return Page(
        rows=rows,
        skip_token=str(token) if token else None,
        total_records=int(total) if isinstance(total, int | float) and not isinstance(total, bool) else None,
        # The REST examples send the string "false"; the SDK model says boolean.
        truncated=str(truncated).lower() == "true",
    )


# --- snapshots ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    inventory: AzureInventory
    files: tuple[Path, ...]
    rows: int


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AzureDataError(f"{path}: no such file", hint=SNAPSHOT_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AzureDataError(f"{path}: cannot read: {exc}", hint=SNAPSHOT_HINT) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AzureDataError(
            f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}", hint=SNAPSHOT_HINT
        ) from None


def load_snapshots(paths: Sequence[Path]) -> Snapshot:
    """Saved ``az graph query`` output, one file per page, parsed as a live run would be.

    A result that says it has more rows than the files hold (``total_records``), or whose every
    page still points at a next one (``skip_token``), is refused: reconciling half a fleet would
    report the other half as missing from Azure.
    """
    pages = [(path, parse_page(_read_json(path), str(path))) for path in paths]
    rows = [(f"{path}: data[{i}]", row) for path, page in pages for i, row in enumerate(page.rows)]
    inventory = inventory_from_rows(rows)
    for path, page in pages:
        if page.truncated:
            raise AzureDataError(
                f"{path}: Resource Graph marked this result truncated (result_truncated): it is not "
                "complete and cannot be paged",
                hint="run the query hcibenefit arm query --print prints, unchanged: it never truncates",
            )
    tokens = [page.skip_token for _, page in pages]
    if tokens and all(tokens):
        raise AzureDataError(
            f"{paths[-1]}: the snapshot is one page of a larger result (skip_token is set and no file "
            "holds the last page)",
            hint=SNAPSHOT_HINT,
        )
    expected = max((page.total_records or 0 for _, page in pages), default=0)
    unique = len({norm_id(row.get("id")) for _, row in rows if isinstance(row, Mapping)})
    if expected and unique < expected:
        raise AzureDataError(
            f"{paths[0]}: the snapshot holds {unique} of the {expected} rows its total_records announces",
            hint=SNAPSHOT_HINT,
        )
    return Snapshot(inventory=inventory, files=tuple(paths), rows=len(rows))
