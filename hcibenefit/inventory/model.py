"""The validated inventory as immutable values.

Everything here is already checked and merged: a `Node` carries its *effective* WinRM settings
(node > cluster > defaults, key by key) and credentials (node > cluster > defaults, whole object),
so consumers never re-implement precedence.

Dataclass field names are the inventory key names, and dataclass defaults are the inventory
defaults: the loader builds these classes with ``Cls(**validated_keys)``. Adding a key means adding
it to the schema table in ``schema.py`` and a field with its default here.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

from hcibenefit.errors import UsageError

Transport: TypeAlias = Literal["https", "http"]
AuthKind: TypeAlias = Literal["negotiate", "kerberos", "ntlm", "credssp", "basic", "certificate"]
Encryption: TypeAlias = Literal["auto", "always", "never"]
CredSSPMechanism: TypeAlias = Literal["auto", "ntlm", "kerberos"]
GuestAccessMode: TypeAlias = Literal["powershell-direct", "winrm"]
NodeTransport: TypeAlias = Literal["winrm", "arc"]
AzureCredentialKind: TypeAlias = Literal[
    "default", "cli", "managed-identity", "environment", "workload-identity", "access-token"
]

# The schema derives its enum checks from these, so a value is listed in exactly one place.
TRANSPORTS: tuple[str, ...] = get_args(Transport)
AUTH_KINDS: tuple[str, ...] = get_args(AuthKind)
ENCRYPTIONS: tuple[str, ...] = get_args(Encryption)
CREDSSP_MECHANISMS: tuple[str, ...] = get_args(CredSSPMechanism)
GUEST_ACCESS_MODES: tuple[str, ...] = get_args(GuestAccessMode)
NODE_TRANSPORTS: tuple[str, ...] = get_args(NodeTransport)
AZURE_CREDENTIAL_KINDS: tuple[str, ...] = get_args(AzureCredentialKind)

DEFAULT_HTTPS_PORT = 5986
DEFAULT_HTTP_PORT = 5985
DEFAULT_SAN_PATTERN = r"^(.*\.)?metadata\.(azure\.(com|us|cn)|microsoftazure\.de)$"
# EditionIDs of the guest editions that only activate through Azure Benefits (docs/platform.md §7).
DEFAULT_REQUIRED_EDITIONS = ("ServerRdsh", "ServerTurbine", "ServerTurbineCor")
DEFAULT_REQUIRED_OS_NAMES = ("*multi-session*", "*Azure Edition*")


def _public(value: Any) -> Any:
    """JSON-friendly rendering of a settings value (paths as strings, tuples as lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_public(v) for v in value]
    return value


@dataclass(frozen=True)
class WinRMSettings:
    """Effective pypsrp ``WSMan``/``RunspacePool`` options for one endpoint.

    Defaults are pypsrp 0.9's (and Ansible's psrp plugin's), so an empty inventory section behaves
    like a bare ``WSMan(host)``.
    """

    transport: Transport = "https"
    # The loader substitutes 5985 when transport is http and no layer gave a port.
    port: int = DEFAULT_HTTPS_PORT
    path: str = "wsman"
    auth: AuthKind = "negotiate"
    # True/False, or the CA bundle to validate the server certificate against.
    cert_validation: bool | Path = True
    encryption: Encryption = "auto"
    connection_timeout: float = 30
    read_timeout: float = 30
    operation_timeout: float = 20
    # JEA endpoint name; "Microsoft.PowerShell" is the default PowerShell endpoint.
    configuration_name: str = "Microsoft.PowerShell"
    reconnection_retries: int = 0
    reconnection_backoff: float = 2.0
    max_envelope_size: int = 153600
    proxy: str | None = None
    no_proxy: bool = False
    negotiate_delegate: bool = False
    negotiate_service: str = "host"
    negotiate_hostname_override: str | None = None
    negotiate_send_cbt: bool = True
    certificate_pem: Path | None = None
    certificate_key_pem: Path | None = None
    credssp_auth_mechanism: CredSSPMechanism = "auto"
    credssp_disable_tlsv1_2: bool = False
    credssp_minimum_version: int = 2

    @property
    def ssl(self) -> bool:
        return self.transport == "https"

    def to_public_dict(self) -> dict[str, Any]:
        return {f.name: _public(getattr(self, f.name)) for f in fields(self)}


# --- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordEnv:
    """The secret is the value of an environment variable."""

    name: str

    def describe(self) -> str:
        return f"password_env {self.name}"


@dataclass(frozen=True)
class PasswordCommand:
    """The secret is what a command prints (run without a shell)."""

    argv: tuple[str, ...]

    def describe(self) -> str:
        return f"password_cmd {list(self.argv)!r}"


@dataclass(frozen=True)
class PasswordKeyring:
    """The secret is ``keyring.get_password(service, username)``."""

    service: str

    def describe(self) -> str:
        return f"keyring {self.service!r}"


PasswordSource: TypeAlias = PasswordEnv | PasswordCommand | PasswordKeyring


@dataclass(frozen=True)
class CredentialSpec:
    """Where a credential comes from. Never holds a secret.

    ``source`` is None when the inventory names only a user: the password then has to come from
    ``--ask-pass`` (or is not needed, for certificate auth).
    """

    username: str | None
    source: PasswordSource | None = None
    # Where the spec was written ("inventory.yaml:9:5: defaults.credentials"), for error messages.
    # Not part of equality, so identical specs in two places share one cache entry when resolved.
    origin: str = field(default="", compare=False)

    def describe(self) -> str:
        user = f'user "{self.username}"' if self.username else "no user"
        src = self.source.describe() if self.source else "no password source"
        return f"{user}, {src}" + (f" ({self.origin})" if self.origin else "")

    def to_public_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.username}
        match self.source:
            case PasswordEnv(name):
                out["password_env"] = name
            case PasswordCommand(argv):
                out["password_cmd"] = list(argv)
            case PasswordKeyring(service):
                out["keyring"] = service
            case None:
                out["password"] = "(--ask-pass)"
                return out
        out["password"] = "***"
        return out


# --- clusters, nodes, guests -----------------------------------------------------------------


@dataclass(frozen=True)
class ArcSettings:
    """How a node is reached with ``transport: arc``: Azure Arc run commands through Azure Resource
    Manager (docs/arc.md). Merged key by key, node > cluster > defaults, like ``winrm:``."""

    machine_id: str | None = None
    """The ARM id of the node's Arc machine; default: found with Resource Graph by the node's name."""
    output_container: str | None = None
    """An https URL of a blob container: outputs go to an append blob there, since a run command's
    instance view keeps only the last 4 KB of a script's output."""
    timeout: int = 900
    """Seconds a script may run on the node (the run command's timeoutInSeconds)."""
    poll_interval: float = 2.0
    """Seconds between two reads of a running run command, unless ARM asks for longer (Retry-After)."""

    def to_public_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    cluster: str
    winrm: WinRMSettings
    credentials: CredentialSpec | None
    guest_credentials: CredentialSpec | None
    transport: NodeTransport = "winrm"
    """winrm: a WinRM session from here; arc: Azure Arc run commands through Azure (no path to the node)."""
    arc: ArcSettings = ArcSettings()

    def to_public_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "cluster": self.cluster,
            "transport": self.transport,
            "arc": self.arc.to_public_dict() if self.transport == "arc" else None,
            "winrm": self.winrm.to_public_dict(),
            "credentials": self.credentials.to_public_dict() if self.credentials else None,
            "guest_credentials": (
                self.guest_credentials.to_public_dict() if self.guest_credentials else None
            ),
        }


@dataclass(frozen=True)
class GuestVM:
    """How to reach one guest VM. ``address`` defaults to the VM name."""

    name: str
    access: GuestAccessMode
    address: str
    winrm: WinRMSettings

    def to_public_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "access": self.access,
            "address": self.address,
            "winrm": self.winrm.to_public_dict(),
        }


@dataclass(frozen=True)
class GuestAccess:
    """How the guests of one cluster are reached: PowerShell Direct from the host, or WinRM."""

    access: GuestAccessMode = "powershell-direct"
    winrm: WinRMSettings = WinRMSettings()
    vms: tuple[GuestVM, ...] = ()

    def vm(self, name: str) -> GuestVM:
        """The settings for a VM: its own entry if listed, else the cluster-wide ones."""
        # Hyper-V VM names are compared case-insensitively, like Windows does.
        key = name.casefold()
        for vm in self.vms:
            if vm.name.casefold() == key:
                return vm
        return GuestVM(name=name, access=self.access, address=name, winrm=self.winrm)

    def to_public_dict(self) -> dict[str, Any]:
        return {
            "access": self.access,
            "winrm": self.winrm.to_public_dict(),
            "vms": {vm.name: vm.to_public_dict() for vm in self.vms},
        }


@dataclass(frozen=True)
class ClusterAzure:
    """Where the cluster's ARM resource is. ``resource_name`` defaults to the cluster name."""

    subscription_id: str | None = None
    resource_group: str | None = None
    resource_name: str | None = None

    def to_public_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Cluster:
    name: str
    nodes: tuple[Node, ...]
    site: str | None = None
    tags: tuple[str, ...] = ()
    azure: ClusterAzure | None = None
    guests: GuestAccess = GuestAccess()
    guest_credentials: CredentialSpec | None = None

    def to_public_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "site": self.site,
            "tags": list(self.tags),
            "azure": self.azure.to_public_dict() if self.azure else None,
            "guests": self.guests.to_public_dict(),
            "guest_credentials": (
                self.guest_credentials.to_public_dict() if self.guest_credentials else None
            ),
            "nodes": [n.to_public_dict() for n in self.nodes],
        }


# --- fleet-wide sections ---------------------------------------------------------------------


@dataclass(frozen=True)
class AzureSettings:
    """How to reach Azure Resource Manager. ``subscriptions`` empty: every one the credential sees."""

    tenant_id: str | None = None
    subscriptions: tuple[str, ...] = ()
    endpoint: str = "https://management.azure.com"
    credential: AzureCredentialKind = "default"
    cert_validation: bool | Path = True
    client_id: str | None = None
    """A user-assigned managed identity's (or a workload identity's) client id."""
    token_env: str | None = None
    """For ``credential: access-token``: the environment variable holding a bearer token."""

    def to_public_dict(self) -> dict[str, Any]:
        return {f.name: _public(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class AzureMonitorSettings:
    """Where ``sweep --publish azure-monitor`` sends results: the Logs Ingestion API of a data collection
    endpoint, into the stream of a data collection rule (docs/azure-monitor.md). The credential is the
    ``azure:`` section's."""

    endpoint: str
    """The data collection endpoint's logs ingestion URL (https://NAME.REGION-1.ingest.monitor.azure.com)."""
    rule_id: str
    """The data collection rule's immutable id (dcr-...), not its resource id."""
    stream: str = "Custom-HcibenefitSweep"
    cert_validation: bool | Path = True

    def to_public_dict(self) -> dict[str, Any]:
        return {f.name: _public(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class RequireBenefits:
    """Which VMs must have Azure Benefits: by guest edition, by OS name glob, or by VM name glob."""

    editions: tuple[str, ...] = DEFAULT_REQUIRED_EDITIONS
    os_names: tuple[str, ...] = DEFAULT_REQUIRED_OS_NAMES
    name_globs: tuple[str, ...] = ()


def _glob_any(value: str, globs: tuple[str, ...]) -> bool:
    # Case-insensitive on every platform: VM names and OS captions are not case-significant.
    folded = value.casefold()
    return any(fnmatch.fnmatchcase(folded, g.casefold()) for g in globs)


@dataclass(frozen=True)
class Policy:
    require_benefits: RequireBenefits = RequireBenefits()
    exclude_globs: tuple[str, ...] = ()
    expiry_warning_days: int = 7
    waivers: Path | None = None
    """The sweep's waivers file (sweep.waivers); --waivers overrides it."""

    def exclusion(self, vm_name: str) -> str | None:
        """The exclude_globs rule that takes this VM out of every report and change, or None."""
        folded = vm_name.casefold()
        return next((g for g in self.exclude_globs if fnmatch.fnmatchcase(folded, g.casefold())), None)

    def requires_benefits(
        self, vm_name: str, *, edition_id: str | None = None, os_name: str | None = None
    ) -> bool:
        """Whether the policy says this VM must have Azure Benefits. Exclusions win."""
        if _glob_any(vm_name, self.exclude_globs):
            return False
        rb = self.require_benefits
        if _glob_any(vm_name, rb.name_globs):
            return True
        if edition_id is not None and edition_id.casefold() in {e.casefold() for e in rb.editions}:
            return True
        return os_name is not None and _glob_any(os_name, rb.os_names)

    def to_public_dict(self) -> dict[str, Any]:
        rb = self.require_benefits
        return {
            "require_benefits": {f.name: _public(getattr(rb, f.name)) for f in fields(rb)},
            "exclude_globs": list(self.exclude_globs),
            "expiry_warning_days": self.expiry_warning_days,
            "waivers": _public(self.waivers),
        }


@dataclass(frozen=True)
class AttestationSettings:
    ca_files: tuple[Path, ...] = ()
    san_pattern: str = DEFAULT_SAN_PATTERN

    def to_public_dict(self) -> dict[str, Any]:
        return {"ca_files": _public(self.ca_files), "san_pattern": self.san_pattern}


class UnknownTargetError(UsageError, KeyError):
    """A cluster or node name that is not in the inventory (also a KeyError for dict-like use)."""


def _unknown(kind: str, name: str, known: list[str], source: Path) -> UnknownTargetError:
    import difflib  # only on this error path: keeps start-up imports small

    close = difflib.get_close_matches(name, known, n=1)
    hint = f'did you mean "{close[0]}"?' if close else None
    return UnknownTargetError(f'no {kind} named "{name}" in {source}', hint=hint)


@dataclass(frozen=True)
class Inventory:
    source: Path
    clusters: tuple[Cluster, ...]
    azure: AzureSettings = AzureSettings()
    policy: Policy = Policy()
    attestation: AttestationSettings = AttestationSettings()
    audit_log: Path | None = None
    azure_monitor: AzureMonitorSettings | None = None
    # Accepted but risky settings (e.g. basic auth sending a password in clear text).
    warnings: tuple[str, ...] = ()

    def cluster(self, name: str) -> Cluster:
        """The cluster with this name (case-insensitive); `UnknownTargetError` if there is none."""
        key = name.casefold()
        for c in self.clusters:
            if c.name.casefold() == key:
                return c
        raise _unknown("cluster", name, [c.name for c in self.clusters], self.source)

    def node(self, name: str) -> Node:
        """The node with this host name (case-insensitive, as DNS is)."""
        key = name.casefold()
        for n in self.all_nodes():
            if n.name.casefold() == key:
                return n
        raise _unknown("node", name, [n.name for n in self.all_nodes()], self.source)

    def all_nodes(self) -> tuple[Node, ...]:
        return tuple(n for c in self.clusters for n in c.nodes)

    def to_public_dict(self) -> dict[str, Any]:
        """Effective settings for ``inventory show``. Holds credential sources, never secrets."""
        return {
            "source": str(self.source),
            "clusters": [c.to_public_dict() for c in self.clusters],
            "azure": self.azure.to_public_dict(),
            "policy": self.policy.to_public_dict(),
            "attestation": self.attestation.to_public_dict(),
            "audit_log": _public(self.audit_log),
            "azure_monitor": self.azure_monitor.to_public_dict() if self.azure_monitor else None,
            "warnings": list(self.warnings),
        }
