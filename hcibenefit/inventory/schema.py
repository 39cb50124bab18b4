"""The inventory format, declared in one place.

Each section is a table of key -> type. Key names are a contract (scripts and pipelines rely on
them): add keys, never rename. Defaults live on the dataclasses in ``model.py``, whose field names
match these keys; a test keeps the two in step.

Rules that span several keys of one mapping are the ``rule=`` hooks below. Rules that need the
merged, effective settings of a node (basic auth over http, timeouts, credentials for the auth
kind) are in ``loader.py``, because a node can inherit each half of such a pair from a different
layer.
"""

from __future__ import annotations

from hcibenefit.inventory.model import (
    AUTH_KINDS,
    AZURE_CREDENTIAL_KINDS,
    CREDSSP_MECHANISMS,
    ENCRYPTIONS,
    GUEST_ACCESS_MODES,
    NODE_TRANSPORTS,
    TRANSPORTS,
)
from hcibenefit.yamlschema import (
    Bool,
    CertValidation,
    Choice,
    Ctx,
    DictOf,
    Field,
    FilePath,
    Guid,
    Host,
    HttpsUrl,
    Int,
    ListOf,
    Loc,
    MapSpec,
    Name,
    Number,
    Regex,
    Section,
    Str,
    StrOrMap,
    join,
)

PASSWORD_SOURCES = ("password_env", "password_cmd", "keyring")

LITERAL_PASSWORD = (
    "a literal password is not allowed in the inventory (it ends up in backups, diffs and logs); "
    "use password_env (name of an environment variable), password_cmd (a command that prints the "
    "secret, e.g. [pass, show, hci/admin]) or keyring (a system keyring service name), "
    "or run with --ask-pass"
)

PORT = Int(1, 65535)

# Names other tools use for the same settings (mostly Ansible's psrp plugin), so a user coming
# from there is told ours.
_WINRM_HINTS = {
    "protocol": "transport",
    "scheme": "transport",
    "ssl": "transport",
    "message_encryption": "encryption",
    "ca_cert": "cert_validation",
    "ca_bundle": "cert_validation",
    "verify": "cert_validation",
    "ignore_proxy": "no_proxy",
    "timeout": "operation_timeout",
    "endpoint": "configuration_name",
    "jea_endpoint": "configuration_name",
}

WINRM = MapSpec(
    "a mapping of WinRM settings",
    {
        "transport": Choice(TRANSPORTS),
        "port": PORT,
        "path": Str("a URL path such as wsman"),
        "auth": Choice(AUTH_KINDS),
        "cert_validation": CertValidation(),
        "encryption": Choice(ENCRYPTIONS),
        "connection_timeout": Number(),
        "read_timeout": Number(),
        "operation_timeout": Number(),
        "configuration_name": Str("a PowerShell session configuration (JEA endpoint) name"),
        "reconnection_retries": Int(0, 100),
        "reconnection_backoff": Number(allow_zero=True),
        "max_envelope_size": Int(8192, 10 * 1024 * 1024),
        "proxy": Str("a proxy URL such as http://proxy:3128"),
        "no_proxy": Bool(),
        "negotiate_delegate": Bool(),
        "negotiate_service": Str("a Kerberos service name such as host or WSMAN"),
        "negotiate_hostname_override": Host("a host name for the Kerberos SPN"),
        "negotiate_send_cbt": Bool(),
        "certificate_pem": FilePath("the path of the client certificate (PEM)"),
        "certificate_key_pem": FilePath("the path of the client certificate's key (PEM)"),
        "credssp_auth_mechanism": Choice(CREDSSP_MECHANISMS),
        "credssp_disable_tlsv1_2": Bool(),
        "credssp_minimum_version": Int(2, 6),
        "username": Field(refused="the user name belongs in a credentials: section next to winrm:"),
        "password": Field(refused=LITERAL_PASSWORD),
    },
    hints=_WINRM_HINTS,
)


def _credentials_rule(sec: Section, ctx: Ctx) -> None:
    given = [k for k in PASSWORD_SOURCES if k in sec.key_locs]
    # `username:` left empty counts as missing; an invalid one was reported already.
    if given and "username" not in sec.values and "username" not in sec.invalid:
        ctx.error(
            Loc(sec.loc.line, sec.loc.col, join(sec.loc.path, "username")),
            f"missing required key; {given[0]} needs the user name whose password it gives",
        )


CREDENTIALS = MapSpec(
    "a mapping with username and one of password_env, password_cmd, keyring",
    {
        "username": Name("a user name such as CORP\\svc-hci or svc-hci@corp.example"),
        "password_env": Field(Str("an environment variable name", r"[A-Za-z_][A-Za-z0-9_]*"), sensitive=True),
        "password_cmd": Field(
            ListOf(
                Str("a non-empty string"),
                min_items=1,
                expected="a command as a list of arguments, e.g. [pass, show, hci/admin] "
                "(it is run without a shell)",
            ),
            sensitive=True,
        ),
        "keyring": Field(Str("a keyring service name"), sensitive=True),
        "password": Field(refused=LITERAL_PASSWORD),
    },
    exclusive=[PASSWORD_SOURCES],
    rule=_credentials_rule,
    hints={"user": "username", "remote_user": "username", "password_command": "password_cmd"},
)

_GUEST_ACCESS = Choice(GUEST_ACCESS_MODES)

GUESTS_DEFAULTS = MapSpec(
    "a mapping with access and winrm",
    {"access": _GUEST_ACCESS, "winrm": WINRM},
)

GUEST_VM = MapSpec(
    "a mapping with access, address and port",
    {"access": _GUEST_ACCESS, "address": Host(), "port": PORT},
)

GUESTS = MapSpec(
    "a mapping with access, winrm and vms",
    {
        **GUESTS_DEFAULTS.fields,
        "vms": DictOf(GUEST_VM, expected="a mapping of VM name to settings", key=Name("a VM name")),
    },
)

_NODE_TRANSPORT = Choice(NODE_TRANSPORTS)
"""`transport:` beside `winrm:`: how the node is reached at all (winrm.transport is WinRM's http/https)."""

ARC = MapSpec(
    "a mapping of Azure Arc run command settings (output_container, timeout, poll_interval)",
    {
        "output_container": HttpsUrl(),
        "timeout": Int(30, 86400),
        "poll_interval": Number(),
    },
    hints={"storage": "output_container", "container": "output_container", "timeout_in_seconds": "timeout"},
)

ARC_NODE = MapSpec(
    "a mapping of Azure Arc run command settings (machine_id, output_container, timeout, poll_interval)",
    {
        **ARC.fields,
        "machine_id": Str(
            "an Arc machine resource id (/subscriptions/.../providers/Microsoft.HybridCompute/machines/NAME)",
            r"(?i)/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.HybridCompute/machines/[^/]+",
        ),
    },
    hints=ARC.hints,
)

DEFAULTS = MapSpec(
    "a mapping with transport, winrm, arc, credentials, guest_credentials and guests",
    {
        "transport": _NODE_TRANSPORT,
        "arc": ARC,
        "winrm": WINRM,
        "credentials": CREDENTIALS,
        "guest_credentials": CREDENTIALS,
        "guests": GUESTS_DEFAULTS,
    },
)


def _node_rule(sec: Section, ctx: Ctx) -> None:
    winrm = sec.section("winrm")
    if "port" in sec.key_locs and winrm is not None and "port" in winrm.key_locs:
        ctx.error(
            winrm.key_locs["port"],
            f"the port is already given at line {sec.key_locs['port'].line} (port: is short for "
            "winrm.port); give it once",
        )


NODE = StrOrMap(
    Host(),
    MapSpec(
        "a mapping with name and optional address, port, winrm, credentials",
        {
            "name": Field(Host(), required=True),
            "address": Host(),
            "port": PORT,
            "transport": _NODE_TRANSPORT,
            "arc": ARC_NODE,
            "winrm": WINRM,
            "credentials": CREDENTIALS,
        },
        rule=_node_rule,
        hints={"host": "name", "hostname": "name", "ip": "address", "remote_addr": "address"},
    ),
    key="name",
    expected="a host name or a mapping with name:",
)

CLUSTER_AZURE = MapSpec(
    "a mapping with subscription_id, resource_group and resource_name",
    {
        "subscription_id": Guid(),
        "resource_group": Name("a resource group name"),
        "resource_name": Name("the cluster's Azure resource name"),
    },
    hints={"subscription": "subscription_id"},
)

CLUSTER = MapSpec(
    "a mapping with name and nodes",
    {
        "name": Field(Name("a cluster name"), required=True),
        "site": Name("a site name"),
        "tags": ListOf(Name(), expected="a list of strings"),
        "nodes": Field(
            ListOf(
                NODE, min_items=1, expected="a non-empty list of nodes (host names or mappings with name:)"
            ),
            required=True,
        ),
        "azure": CLUSTER_AZURE,
        "transport": _NODE_TRANSPORT,
        "arc": ARC,
        "winrm": WINRM,
        "credentials": CREDENTIALS,
        "guest_credentials": CREDENTIALS,
        "guests": GUESTS,
    },
    # port: is short for winrm.port on a node only; on a cluster it belongs in winrm:.
    hints={"hosts": "nodes", "servers": "nodes", "port": "winrm"},
)


def _azure_rule(sec: Section, ctx: Ctx) -> None:
    kind = sec.values.get("credential", "default")
    if kind == "access-token" and "token_env" not in sec.values and "token_env" not in sec.invalid:
        ctx.error(
            Loc(sec.loc.line, sec.loc.col, join(sec.loc.path, "token_env")),
            "missing required key; credential: access-token reads its token from the environment variable "
            "token_env names (e.g. after export AZ_TOKEN=$(az account get-access-token --query accessToken -o tsv))",
        )
    if "token_env" in sec.values and kind != "access-token":
        ctx.error(
            sec.key_locs["token_env"], f"token_env is used only with credential: access-token, not {kind}"
        )
    if "client_id" in sec.values and kind not in ("default", "managed-identity", "workload-identity"):
        ctx.error(
            sec.key_locs["client_id"],
            f"client_id names a managed or workload identity; credential: {kind} does not use one",
        )


AZURE = MapSpec(
    "a mapping of Azure settings",
    {
        "tenant_id": Guid(),
        "subscriptions": ListOf(Guid(), expected="a list of subscription GUIDs"),
        "endpoint": HttpsUrl(),
        "credential": Choice(AZURE_CREDENTIAL_KINDS),
        "cert_validation": CertValidation(),
        "client_id": Guid(),
        "token_env": Field(Str("an environment variable name", r"[A-Za-z_][A-Za-z0-9_]*"), sensitive=True),
        "token": Field(
            refused="a literal access token is not allowed in the inventory; put it in an environment "
            "variable and name that variable in token_env"
        ),
    },
    rule=_azure_rule,
    hints={
        "tenant": "tenant_id",
        "subscription_id": "subscriptions",
        "managed_identity_client_id": "client_id",
    },
)

AZURE_MONITOR = MapSpec(
    "a mapping with endpoint, rule_id and stream",
    {
        "endpoint": Field(HttpsUrl(), required=True),
        "rule_id": Field(
            Str(
                "a data collection rule's immutable id such as dcr-0123456789abcdef0123456789abcdef",
                r"dcr-[0-9a-fA-F]{32}",
            ),
            required=True,
        ),
        "stream": Str("a stream name such as Custom-HcibenefitSweep", r"Custom-[A-Za-z0-9_]+"),
        "cert_validation": CertValidation(),
    },
    hints={
        "dce": "endpoint",
        "data_collection_endpoint": "endpoint",
        "dcr": "rule_id",
        "dcr_id": "rule_id",
        "immutable_id": "rule_id",
        "stream_name": "stream",
    },
)

REQUIRE_BENEFITS = MapSpec(
    "a mapping with editions, os_names and name_globs",
    {
        "editions": ListOf(Name(), expected="a list of EditionIDs such as [ServerRdsh]"),
        "os_names": ListOf(Name(), expected='a list of globs such as ["*multi-session*"]'),
        "name_globs": ListOf(Name(), expected='a list of globs such as ["avd-*"]'),
    },
)

POLICY = MapSpec(
    "a mapping with require_benefits, exclude_globs, expiry_warning_days and waivers",
    {
        "require_benefits": REQUIRE_BENEFITS,
        "exclude_globs": ListOf(Name(), expected='a list of globs such as ["test-*"]'),
        "expiry_warning_days": Int(0, 365),
        "waivers": FilePath("the path of a waivers file (YAML), relative to the inventory"),
    },
)

ATTESTATION = MapSpec(
    "a mapping with ca_files and san_pattern",
    {
        "ca_files": ListOf(FilePath("a PEM file path"), expected="a list of PEM file paths"),
        "san_pattern": Regex(),
    },
)

INVENTORY = MapSpec(
    "a mapping at the top level (with clusters: and optionally defaults, azure, policy, ...)",
    {
        # Optional format version; only 1 exists. Lets a future format refuse old files clearly.
        "version": Int(1, 1),
        "defaults": DEFAULTS,
        "clusters": Field(
            ListOf(CLUSTER, min_items=1, expected="a non-empty list of clusters"), required=True
        ),
        "azure": AZURE,
        "policy": POLICY,
        "attestation": ATTESTATION,
        "audit_log": FilePath(),
        "azure_monitor": AZURE_MONITOR,
    },
    # `x-common: &common {...}` at the top level holds YAML anchors for reuse (as in Compose files).
    extension_prefix="x-",
)
