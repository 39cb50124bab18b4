"""Valid inventories: defaults, precedence, paths, the example file, lookups, public view."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from hcibenefit.errors import UsageError
from hcibenefit.inventory import (
    AttestationSettings,
    AzureSettings,
    ClusterAzure,
    CredentialSpec,
    Inventory,
    PasswordCommand,
    PasswordEnv,
    PasswordKeyring,
    RequireBenefits,
    UnknownTargetError,
    WinRMSettings,
    load_inventory,
    parse_inventory,
    schema,
)
from hcibenefit.inventory.model import ArcSettings, AzureMonitorSettings

REPO = Path(__file__).resolve().parents[2]


def parse(text: str, **kw: object) -> Inventory:
    return parse_inventory(textwrap.dedent(text), "inventory.yaml", **kw)  # type: ignore[arg-type]


MINIMAL = """\
clusters:
  - name: c1
    nodes: [n1]
"""


def test_defaults_follow_pypsrp() -> None:
    w = parse(MINIMAL).node("n1").winrm
    assert (w.transport, w.port, w.auth, w.cert_validation, w.encryption, w.path) == (
        "https",
        5986,
        "negotiate",
        True,
        "auto",
        "wsman",
    )
    assert (w.connection_timeout, w.read_timeout, w.operation_timeout) == (30, 30, 20)
    assert w.configuration_name == "Microsoft.PowerShell"
    assert (w.reconnection_retries, w.reconnection_backoff, w.max_envelope_size) == (0, 2.0, 153600)
    assert w.negotiate_service == "host" and w.negotiate_send_cbt is True and w.ssl is True


def test_http_defaults_to_5985_unless_a_port_is_given() -> None:
    inv = parse(
        """\
        defaults:
          winrm: {transport: http}
        clusters:
          - name: c1
            nodes: [a, {name: b, port: 8080}]
          - name: c2
            winrm: {transport: https}
            nodes: [c]
        """
    )
    assert inv.node("a").winrm.port == 5985
    assert inv.node("b").winrm.port == 8080
    assert inv.node("c").winrm.port == 5986


def test_explicit_default_port_survives_a_cluster_switching_to_http() -> None:
    inv = parse(
        """\
        defaults:
          winrm: {port: 5986}
        clusters:
          - name: c1
            winrm: {transport: http}
            nodes: [a]
        """
    )
    assert inv.node("a").winrm.port == 5986


PRECEDENCE = """\
defaults:
  winrm: {auth: kerberos, port: 5990, read_timeout: 50, operation_timeout: 40}
  credentials: {username: d-user, password_env: D_PASS}
  guest_credentials: {username: g-user, keyring: guests}
clusters:
  - name: c1
    winrm: {port: 5991, configuration_name: HciJea}
    credentials: {username: c-user, keyring: hci}
    nodes:
      - plain
      - name: special
        address: 10.0.0.5
        port: 5992
        winrm: {read_timeout: 90, operation_timeout: 60}
        credentials: {username: n-user, password_cmd: [get-secret, n]}
  - name: c2
    nodes: [other]
"""


def test_node_over_cluster_over_defaults_key_by_key() -> None:
    inv = parse(PRECEDENCE)
    plain, special, other = inv.node("plain"), inv.node("special"), inv.node("other")
    # cluster port and JEA endpoint, defaults' auth and timeouts
    assert (plain.winrm.port, plain.winrm.auth, plain.winrm.configuration_name) == (
        5991,
        "kerberos",
        "HciJea",
    )
    assert (plain.winrm.read_timeout, plain.winrm.operation_timeout) == (50, 40)
    # the node overrides port and timeouts only: cluster JEA and defaults' auth stay
    assert (special.winrm.port, special.winrm.auth, special.winrm.configuration_name) == (
        5992,
        "kerberos",
        "HciJea",
    )
    assert (special.winrm.read_timeout, special.winrm.operation_timeout) == (90, 60)
    assert special.address == "10.0.0.5" and plain.address == "plain"
    assert (other.winrm.port, other.winrm.configuration_name) == (5990, "Microsoft.PowerShell")


def test_credentials_are_replaced_whole() -> None:
    inv = parse(PRECEDENCE)
    assert inv.node("plain").credentials == CredentialSpec("c-user", PasswordKeyring("hci"))
    assert inv.node("special").credentials == CredentialSpec("n-user", PasswordCommand(("get-secret", "n")))
    assert inv.node("other").credentials == CredentialSpec("d-user", PasswordEnv("D_PASS"))
    assert inv.node("plain").guest_credentials == CredentialSpec("g-user", PasswordKeyring("guests"))
    origin = inv.node("plain").credentials.origin  # type: ignore[union-attr]
    assert origin == "inventory.yaml:8:18: clusters[0].credentials"


def test_no_credentials_means_ticket_cache_for_kerberos() -> None:
    inv = parse(MINIMAL)
    assert inv.node("n1").credentials is None


def test_guests_access_and_per_vm_overrides() -> None:
    inv = parse(
        """\
        defaults:
          guests:
            winrm: {auth: ntlm, cert_validation: false}
        clusters:
          - name: c1
            nodes: [n1]
            guests:
              winrm: {port: 5999}
              vms:
                avd-01: {access: winrm, address: 10.1.1.1}
                avd-02: {access: winrm, port: 6001}
          - name: c2
            nodes: [n2]
        """
    )
    g = inv.cluster("c1").guests
    assert g.access == "powershell-direct"
    assert (g.winrm.auth, g.winrm.port, g.winrm.cert_validation) == ("ntlm", 5999, False)
    assert g.vm("AVD-01").address == "10.1.1.1" and g.vm("avd-01").access == "winrm"
    assert g.vm("avd-02").winrm.port == 6001 and g.vm("avd-02").address == "avd-02"
    assert g.vm("other-vm").access == "powershell-direct" and g.vm("other-vm").address == "other-vm"
    assert inv.cluster("c2").guests.winrm.auth == "ntlm"
    assert any("cert_validation: false" in w for w in inv.warnings)


def test_relative_paths_resolve_against_the_inventory_directory(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "inv.yaml").write_text(
        textwrap.dedent(
            """\
            defaults:
              winrm: {cert_validation: pki/ca.pem}
            clusters:
              - name: c1
                nodes: [n1]
            attestation:
              ca_files: [roots/a.pem, /abs/b.pem]
            audit_log: logs/audit.log
            """
        )
    )
    inv = load_inventory(conf / "inv.yaml")
    assert inv.node("n1").winrm.cert_validation == conf / "pki" / "ca.pem"
    assert inv.attestation.ca_files == (conf / "roots" / "a.pem", Path("/abs/b.pem"))
    assert inv.audit_log == conf / "logs" / "audit.log"


def test_fleet_sections_defaults() -> None:
    inv = parse(MINIMAL)
    assert inv.azure == AzureSettings(None, (), "https://management.azure.com", "default", True)
    assert inv.policy.require_benefits.editions == ("ServerRdsh", "ServerTurbine", "ServerTurbineCor")
    assert inv.policy.require_benefits.os_names == ("*multi-session*", "*Azure Edition*")
    assert inv.policy.expiry_warning_days == 7
    assert inv.attestation.san_pattern == r"^(.*\.)?metadata\.(azure\.(com|us|cn)|microsoftazure\.de)$"
    assert inv.audit_log is None and inv.cluster("c1").azure is None


def test_cluster_azure_and_guid_normalisation() -> None:
    inv = parse(
        """\
        clusters:
          - name: c1
            nodes: [n1]
            azure: {subscription_id: 8F0C5C21-4F7E-4B8E-9A6D-3C2B1A0F9E8D, resource_group: rg}
        azure:
          subscriptions: [8F0C5C21-4F7E-4B8E-9A6D-3C2B1A0F9E8D]
          credential: managed-identity
        """
    )
    assert inv.cluster("c1").azure == ClusterAzure("8f0c5c21-4f7e-4b8e-9a6d-3c2b1a0f9e8d", "rg", "c1")
    assert inv.azure.subscriptions == ("8f0c5c21-4f7e-4b8e-9a6d-3c2b1a0f9e8d",)
    assert inv.azure.credential == "managed-identity"


def test_policy_decides_which_vms_need_benefits() -> None:
    inv = parse(
        MINIMAL + "policy:\n  require_benefits: {name_globs: [avd-*]}\n  exclude_globs: [avd-test*]\n"
    )
    p = inv.policy
    assert p.requires_benefits("vm1", edition_id="ServerRdsh")
    assert p.requires_benefits("vm2", os_name="Windows Server 2022 Datacenter: Azure Edition")
    assert not p.requires_benefits("vm3", edition_id="ServerDatacenter", os_name="Windows Server 2022")
    assert p.requires_benefits("AVD-07")
    assert not p.requires_benefits("avd-test1", edition_id="ServerRdsh")


def test_yaml_anchors_merge_keys_and_extension_keys() -> None:
    inv = parse(
        """\
        x-kerberos: &kerberos {auth: kerberos, port: 6000}
        clusters:
          - name: c1
            winrm:
              <<: *kerberos
              port: 6001
            nodes: [n1]
        """
    )
    assert (inv.node("n1").winrm.auth, inv.node("n1").winrm.port) == ("kerberos", 6001)


def test_null_values_count_as_not_set() -> None:
    inv = parse(
        """\
        defaults:
          winrm:
          credentials: ~
        clusters:
          - name: c1
            site:
            nodes: [n1]
        """
    )
    assert inv.node("n1").winrm == WinRMSettings() and inv.cluster("c1").site is None


def test_enum_values_are_case_insensitive_and_stored_canonically() -> None:
    inv = parse(MINIMAL.replace("nodes: [n1]", "nodes: [n1]\n    winrm: {transport: HTTPS, auth: Kerberos}"))
    assert (inv.node("n1").winrm.transport, inv.node("n1").winrm.auth) == ("https", "kerberos")


def test_lookups_are_case_insensitive_and_unknown_names_are_usage_errors() -> None:
    inv = parse(PRECEDENCE)
    assert inv.node("PLAIN").name == "plain" and inv.cluster("C2").name == "c2"
    assert [n.name for n in inv.all_nodes()] == ["plain", "special", "other"]
    assert [n.cluster for n in inv.all_nodes()] == ["c1", "c1", "c2"]
    with pytest.raises(UnknownTargetError) as ei:
        inv.node("speciel")
    assert isinstance(ei.value, UsageError) and isinstance(ei.value, KeyError)
    assert ei.value.hint == 'did you mean "special"?'
    assert str(ei.value) == 'no node named "speciel" in inventory.yaml'


def test_public_dict_shows_sources_not_secrets() -> None:
    inv = parse(PRECEDENCE)
    data = inv.to_public_dict()
    json.dumps(data)  # plain JSON types only
    special = data["clusters"][0]["nodes"][1]
    assert special["winrm"]["port"] == 5992 and special["winrm"]["configuration_name"] == "HciJea"
    assert special["credentials"] == {
        "username": "n-user",
        "password_cmd": ["get-secret", "n"],
        "password": "***",
    }
    assert data["clusters"][1]["nodes"][0]["credentials"] == {
        "username": "d-user",
        "password_env": "D_PASS",
        "password": "***",
    }


def test_example_inventory_loads() -> None:
    inv = load_inventory(REPO / "inventory.example.yaml")
    assert len(inv.clusters) == 4
    assert {c.site for c in inv.clusters} == {"seattle", "frankfurt", "store-0421"}
    arc = [n for n in inv.all_nodes() if n.transport == "arc"]
    assert [n.name for n in arc] == ["store-0421-n1", "store-0421-n2"]
    assert all(n.arc.output_container and n.arc.timeout == 900 for n in arc)
    assert arc[1].arc.machine_id and arc[1].arc.machine_id.endswith("/machines/store-0421-n2")
    assert inv.azure_monitor is not None and inv.azure_monitor.stream == "Custom-HcibenefitSweep"
    assert {n.winrm.auth for n in inv.all_nodes()} >= {"kerberos", "ntlm"}
    assert any(n.winrm.configuration_name != "Microsoft.PowerShell" for n in inv.all_nodes())
    sources = {type(n.credentials.source) for n in inv.all_nodes() if n.credentials}
    assert sources == {PasswordEnv, PasswordCommand, PasswordKeyring}
    assert any(vm.access == "winrm" for c in inv.clusters for vm in c.guests.vms)
    assert inv.warnings == ()


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        (schema.WINRM, WinRMSettings),
        (schema.AZURE, AzureSettings),
        (schema.CLUSTER_AZURE, ClusterAzure),
        (schema.REQUIRE_BENEFITS, RequireBenefits),
        (schema.ATTESTATION, AttestationSettings),
        (schema.ARC_NODE, ArcSettings),
        (schema.AZURE_MONITOR, AzureMonitorSettings),
    ],
)
def test_schema_keys_match_model_fields(spec: schema.MapSpec, cls: type) -> None:
    # The loader builds these classes with Cls(**keys): a key added to one but not the other
    # would fail at load time, or never be settable.
    assert set(spec.known) == {f.name for f in dataclasses.fields(cls)}


def test_risky_but_valid_settings_are_warnings() -> None:
    inv = parse(
        """\
        defaults:
          winrm: {transport: http, auth: basic, encryption: never}
          credentials: {username: admin, password_env: P}
        clusters:
          - name: c1
            nodes: [n1, n2]
        """
    )
    assert inv.node("n1").winrm.port == 5985
    assert inv.warnings == (
        "inventory.yaml:2:34: defaults.winrm.auth: basic auth over http with encryption: never sends "
        'the password in clear text (affects node "n1", node "n2")',
    )
