"""Read an inventory file, check it against ``schema.py`` and build the ``model.py`` values.

Checking happens in three passes, all collecting errors instead of stopping at the first:

1. YAML syntax (ruamel's own marks) and the shape of every key (``schema.py``);
2. names that must be unique across the file (clusters, nodes);
3. per node, the *effective* settings after merging node > cluster > defaults, for combinations
   pypsrp would only reject at connect time. Pass 3 runs only when pass 1 found nothing: with a
   key already invalid, the merge would fall back to a default and report a confusing second
   error about a value the user never wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hcibenefit.inventory.model import (
    DEFAULT_HTTP_PORT,
    ArcSettings,
    AttestationSettings,
    AzureMonitorSettings,
    AzureSettings,
    Cluster,
    ClusterAzure,
    CredentialSpec,
    GuestAccess,
    GuestAccessMode,
    GuestVM,
    Inventory,
    Node,
    NodeTransport,
    PasswordCommand,
    PasswordEnv,
    PasswordKeyring,
    PasswordSource,
    Policy,
    RequireBenefits,
    WinRMSettings,
)
from hcibenefit.inventory.schema import INVENTORY
from hcibenefit.yamlschema import (
    Ctx,
    Issue,
    Loc,
    SchemaError,
    Section,
    compose,
    node_loc,
    read_document,
)

__all__ = ["InventoryError", "InventoryIssue", "load_inventory", "parse_inventory"]

InventoryIssue = Issue


class InventoryError(SchemaError):
    """The inventory is invalid. ``str()`` gives one line per problem; ``errors`` lists the lines."""

    default_hint = "see inventory.example.yaml for a commented example of every key"


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load and validate an inventory file. Raises `InventoryError` (a `ConfigError`)."""
    source = os.fspath(path)
    text = read_document(
        source,
        InventoryError,
        what="the inventory file",
        hint="check the path given with the inventory option; inventory.example.yaml shows the format",
    )
    return parse_inventory(text, source, base_dir=Path(source).parent)


def parse_inventory(text: str, source_name: str, *, base_dir: Path | None = None) -> Inventory:
    """Validate inventory text. ``source_name`` is used in messages; relative paths in the file are
    resolved against ``base_dir`` (default: the directory part of ``source_name``)."""
    ctx = Ctx(source_name, base_dir if base_dir is not None else Path(source_name).parent)
    root = compose(
        text,
        ctx,
        document="an inventory",
        empty="the inventory is empty; expected a mapping with at least clusters: (see inventory.example.yaml)",
    )
    if root is None:
        raise InventoryError(ctx.issues)
    top = ctx.walk(INVENTORY, root, node_loc(root, ""))
    if not isinstance(top, Section):
        raise InventoryError(_sorted(ctx.issues))
    _check_unique_names(top, ctx)
    schema_clean = not ctx.issues
    inventory = _build(top, ctx, check_effective=schema_clean)
    if ctx.issues:
        raise InventoryError(_sorted(ctx.issues))
    return inventory


def _sorted(issues: list[InventoryIssue]) -> list[InventoryIssue]:
    return sorted(issues, key=lambda i: (i.line or 0, i.col or 0))


# --- pass 2: unique names --------------------------------------------------------------------


def _check_unique_names(top: Section, ctx: Ctx) -> None:
    # Case-insensitive: host names are (DNS), and so are cluster names in Windows failover
    # clustering.
    cluster_seen: dict[str, Loc] = {}
    node_seen: dict[str, tuple[Loc, str]] = {}
    for cluster in top.get("clusters", ()):
        cname = cluster.get("name")
        if cname is not None:
            first = cluster_seen.setdefault(cname.casefold(), cluster.loc_of("name"))
            if first != cluster.loc_of("name"):
                ctx.error(
                    cluster.loc_of("name"),
                    f'cluster name "{cname}" is already used by {first.path.removesuffix(".name")} '
                    f"(line {first.line})",
                )
        for node in cluster.get("nodes", ()):
            nname = node.get("name")
            if nname is None:
                continue
            here = node.loc_of("name")
            seen = node_seen.setdefault(nname.casefold(), (here, str(cname)))
            if seen[0] != here:
                other_loc, other_cluster = seen
                if other_cluster == str(cname):
                    where, why = "earlier in this cluster", ""
                else:
                    where, why = f'in cluster "{other_cluster}"', "; a host can belong to one cluster only"
                ctx.error(
                    here,
                    f'node "{nname}" is already listed {where} at {other_loc.path} '
                    f"(line {other_loc.line}){why}",
                )


# --- pass 3: effective settings --------------------------------------------------------------

# How specific a settings layer is; the most specific layer that set one of the keys involved in
# a bad combination is where the error is reported, since that is the line that made it bad.
_DEFAULTS, _CLUSTER, _NODE = 0, 1, 2


@dataclass(frozen=True)
class _Layer:
    rank: int
    section: Section | None


@dataclass
class _Merged:
    values: dict[str, Any]
    provenance: dict[str, tuple[int, Loc]]


def _merge(layers: Sequence[_Layer]) -> _Merged:
    """Key-by-key merge: a later (more specific) layer overrides only the keys it sets."""
    merged = _Merged({}, {})
    for layer in layers:
        if layer.section is None:
            continue
        for key, value in layer.section.values.items():
            merged.values[key] = value
            merged.provenance[key] = (layer.rank, layer.section.locs[key])
    return merged


def _winrm(merged: _Merged) -> WinRMSettings:
    values = dict(merged.values)
    if "port" not in values and values.get("transport") == "http":
        values["port"] = DEFAULT_HTTP_PORT  # as pypsrp and Ansible: 5985 unless told otherwise
    return WinRMSettings(**values)


class _Findings:
    """Effective-settings errors, grouped by where they are reported.

    A wrong value in ``defaults:`` affects every node; it is one error naming the affected nodes,
    not one error per node.
    """

    def __init__(self) -> None:
        self._groups: dict[tuple[Loc, str], list[str]] = {}
        self._warn: dict[tuple[Loc, str], list[str]] = {}

    def add(self, loc: Loc, message: str, subject: str, *, warning: bool = False) -> None:
        (self._warn if warning else self._groups).setdefault((loc, message), []).append(subject)

    def flush(self, ctx: Ctx) -> None:
        for (loc, message), subjects in self._groups.items():
            ctx.error(loc, f"{message} ({_affects(subjects)})")
        for (loc, message), subjects in self._warn.items():
            ctx.warn(loc, f"{message} ({_affects(subjects)})")


def _affects(subjects: list[str]) -> str:
    unique = list(dict.fromkeys(subjects))
    shown = ", ".join(unique[:3])
    more = f" and {len(unique) - 3} more" if len(unique) > 3 else ""
    return f"affects {shown}{more}"


def _anchor(merged: _Merged, keys: Sequence[str], fallback: Loc) -> Loc:
    """Location of the most specific layer that set any of ``keys`` (first key wins a tie)."""
    best: tuple[int, Loc] | None = None
    for key in keys:
        prov = merged.provenance.get(key)
        if prov is not None and (best is None or prov[0] > best[0]):
            best = prov
    return best[1] if best else fallback


# Each rule looks at effective settings and returns (keys involved, message) when they are a
# combination pypsrp rejects (or that cannot authenticate). Ordered as a user should fix them.
_Rule = Callable[[WinRMSettings, CredentialSpec | None], tuple[tuple[str, ...], str] | None]


def _rule_basic_over_http(w: WinRMSettings, _c: CredentialSpec | None) -> tuple[tuple[str, ...], str] | None:
    if w.auth == "basic" and w.transport == "http" and w.encryption != "never":
        return (
            ("auth", "transport", "encryption"),
            "basic auth over http cannot encrypt messages, so pypsrp refuses it unless encryption: "
            "never, which sends the password in clear text; use transport: https (or negotiate, "
            "kerberos, ntlm or credssp auth)",
        )
    return None


def _rule_certificate_needs_https(
    w: WinRMSettings, _c: CredentialSpec | None
) -> tuple[tuple[str, ...], str] | None:
    if w.auth == "certificate" and w.transport == "http":
        return (
            ("transport", "auth"),
            "certificate auth needs transport: https "
            "(the client certificate is presented in the TLS handshake)",
        )
    return None


def _rule_always_needs_message_encryption(
    w: WinRMSettings, _c: CredentialSpec | None
) -> tuple[tuple[str, ...], str] | None:
    if w.encryption == "always" and w.auth in ("basic", "certificate"):
        return (
            ("encryption", "auth"),
            f"encryption: always needs an auth that can encrypt messages (negotiate, kerberos, ntlm, "
            f"credssp), not {w.auth}; use encryption: auto with https",
        )
    return None


def _rule_certificate_files(
    w: WinRMSettings, _c: CredentialSpec | None
) -> tuple[tuple[str, ...], str] | None:
    missing = [k for k in ("certificate_pem", "certificate_key_pem") if getattr(w, k) is None]
    if w.auth == "certificate" and missing:
        return (("auth",), f"certificate auth needs {' and '.join(missing)} (paths of PEM files)")
    return None


def _rule_timeouts(w: WinRMSettings, _c: CredentialSpec | None) -> tuple[tuple[str, ...], str] | None:
    if w.read_timeout <= w.operation_timeout:
        return (
            ("read_timeout", "operation_timeout"),
            f"read_timeout ({w.read_timeout:g}) must be greater than operation_timeout "
            f"({w.operation_timeout:g}): the server may hold a request for operation_timeout before "
            "answering, and a shorter read timeout aborts healthy operations; set read_timeout to "
            f"at least {w.operation_timeout + 10:g}",
        )
    return None


def _rule_credentials(w: WinRMSettings, c: CredentialSpec | None) -> tuple[tuple[str, ...], str] | None:
    # negotiate and kerberos may use the Kerberos ticket cache (kinit) without credentials; these
    # three always need a user and a password.
    if w.auth in ("ntlm", "basic", "credssp") and (c is None or c.username is None):
        return (
            ("auth",),
            f"{w.auth} auth needs credentials with a username (and password_env, password_cmd, "
            "keyring or --ask-pass) in defaults, the cluster or the node",
        )
    if w.auth in ("negotiate", "kerberos") and c is not None and c.username is None:
        return (("auth",), f"{w.auth} auth with credentials needs credentials.username")
    return None


_RULES: tuple[_Rule, ...] = (
    _rule_basic_over_http,
    _rule_certificate_needs_https,
    _rule_always_needs_message_encryption,
    _rule_certificate_files,
    _rule_timeouts,
    _rule_credentials,
)


def _check_winrm(
    merged: _Merged,
    settings: WinRMSettings,
    creds: CredentialSpec | None,
    fallback: Loc,
    subject: str,
    findings: _Findings,
    *,
    check_credentials: bool = True,
) -> None:
    for rule in _RULES:
        if rule is _rule_credentials and not check_credentials:
            continue
        hit = rule(settings, creds)
        if hit is not None:
            keys, message = hit
            findings.add(_anchor(merged, keys, fallback), message, subject)
    if settings.auth == "basic" and settings.transport == "http" and settings.encryption == "never":
        findings.add(
            _anchor(merged, ("auth", "transport", "encryption"), fallback),
            "basic auth over http with encryption: never sends the password in clear text",
            subject,
            warning=True,
        )
    if settings.cert_validation is False:
        findings.add(
            _anchor(merged, ("cert_validation",), fallback),
            "cert_validation: false accepts any server certificate (no protection against an impostor)",
            subject,
            warning=True,
        )


# --- building the model ----------------------------------------------------------------------


def _credentials(sec: Section | None, ctx: Ctx) -> CredentialSpec | None:
    if sec is None:
        return None
    source: PasswordSource | None = None
    if "password_env" in sec.values:
        source = PasswordEnv(sec.values["password_env"])
    elif "password_cmd" in sec.values:
        source = PasswordCommand(tuple(sec.values["password_cmd"]))
    elif "keyring" in sec.values:
        source = PasswordKeyring(sec.values["keyring"])
    origin = f"{ctx.source}:{sec.loc.line}:{sec.loc.col}: {sec.loc.path}"
    return CredentialSpec(username=sec.get("username"), source=source, origin=origin)


def _first(*sections: Section | None) -> Section | None:
    return next((s for s in sections if s is not None), None)


def _sub(sec: Section | None, key: str) -> Section | None:
    return sec.section(key) if sec is not None else None


def _guests(
    defaults: Section | None,
    cluster: Section,
    cluster_name: str,
    findings: _Findings,
    check: bool,
) -> GuestAccess:
    dg, cg = _sub(defaults, "guests"), _sub(cluster, "guests")
    access: GuestAccessMode = "powershell-direct"
    for layer in (dg, cg):
        if layer is not None and "access" in layer.values:
            access = layer.values["access"]
    merged = _merge([_Layer(_DEFAULTS, _sub(dg, "winrm")), _Layer(_CLUSTER, _sub(cg, "winrm"))])
    winrm = _winrm(merged)
    subject = f'guests of cluster "{cluster_name}"'
    if check:
        # Guest credentials are needed only when a guest is actually reached, so they are not
        # required here (many runs never touch guests).
        _check_winrm(merged, winrm, None, cluster.loc, subject, findings, check_credentials=False)
    vms = []
    for vm_name, vm in (cg.get("vms", {}) if cg else {}).items():
        vm_winrm = replace(winrm, port=vm.values["port"]) if "port" in vm.values else winrm
        vms.append(
            GuestVM(
                name=vm_name,
                access=vm.get("access", access),
                address=vm.get("address", vm_name),
                winrm=vm_winrm,
            )
        )
    return GuestAccess(access=access, winrm=winrm, vms=tuple(vms))


def _node_winrm_layer(node: Section) -> Section | None:
    """The node's own winrm settings, with the ``port:`` shorthand folded in."""
    own = node.section("winrm")
    if "port" not in node.values:
        return own
    layer = Section(node.loc)
    if own is not None:
        layer.values.update(own.values)
        layer.locs.update(own.locs)
    layer.values["port"] = node.values["port"]
    layer.locs["port"] = node.locs["port"]
    return layer


def _build(top: Section, ctx: Ctx, *, check_effective: bool) -> Inventory:
    defaults = top.section("defaults")
    d_winrm = _sub(defaults, "winrm")
    d_creds, d_guest_creds = _sub(defaults, "credentials"), _sub(defaults, "guest_credentials")
    findings = _Findings()
    clusters = []
    for csec in top.get("clusters", ()):
        cname: str = csec.get("name", "?")
        c_winrm = csec.section("winrm")
        guest_creds = _credentials(_first(csec.section("guest_credentials"), d_guest_creds), ctx)
        nodes = []
        for nsec in csec.get("nodes", ()):
            if "name" not in nsec.values:
                continue
            merged = _merge(
                [
                    _Layer(_DEFAULTS, d_winrm),
                    _Layer(_CLUSTER, c_winrm),
                    _Layer(_NODE, _node_winrm_layer(nsec)),
                ]
            )
            winrm = _winrm(merged)
            creds = _credentials(
                _first(nsec.section("credentials"), csec.section("credentials"), d_creds), ctx
            )
            name: str = nsec.values["name"]
            transport: NodeTransport = _first_value("transport", nsec, csec, defaults) or "winrm"
            arc = ArcSettings(
                **{
                    **_values(_sub(defaults, "arc")),
                    **_values(csec.section("arc")),
                    **_values(nsec.section("arc")),
                }
            )
            if check_effective and transport != "arc":
                _check_winrm(merged, winrm, creds, nsec.loc, f'node "{name}"', findings)
            nodes.append(
                Node(
                    name=name,
                    address=nsec.get("address", name),
                    cluster=cname,
                    winrm=winrm,
                    credentials=creds,
                    guest_credentials=guest_creds,
                    transport=transport,
                    arc=arc,
                )
            )
        az = csec.section("azure")
        clusters.append(
            Cluster(
                name=cname,
                nodes=tuple(nodes),
                site=csec.get("site"),
                tags=tuple(csec.get("tags", ())),
                azure=(ClusterAzure(**{"resource_name": cname, **az.values}) if az is not None else None),
                guests=_guests(defaults, csec, cname, findings, check_effective),
                guest_credentials=guest_creds,
            )
        )
    findings.flush(ctx)
    policy_sec = top.section("policy")
    rb = _sub(policy_sec, "require_benefits")
    policy_values = {
        k: v for k, v in (policy_sec.values if policy_sec else {}).items() if k != "require_benefits"
    }
    return Inventory(
        source=Path(ctx.source),
        clusters=tuple(clusters),
        azure=AzureSettings(**_values(top.section("azure"))),
        policy=Policy(require_benefits=RequireBenefits(**_values(rb)), **policy_values),
        attestation=AttestationSettings(**_values(top.section("attestation"))),
        audit_log=top.get("audit_log"),
        azure_monitor=_azure_monitor(top.section("azure_monitor")),
        warnings=tuple(ctx.warnings),
    )


def _azure_monitor(sec: Section | None) -> AzureMonitorSettings | None:
    values = _values(sec)
    # A section missing a required key was reported already; build only what is complete.
    if "endpoint" not in values or "rule_id" not in values:
        return None
    return AzureMonitorSettings(**values)


def _first_value(key: str, *sections: Section | None) -> Any:
    """The value of `key` from the first section that sets it (node > cluster > defaults)."""
    for sec in sections:
        if sec is not None and key in sec.values:
            return sec.values[key]
    return None


def _values(sec: Section | None) -> dict[str, Any]:
    return dict(sec.values) if sec is not None else {}
