"""Malformed inventories: every error names file:line:col: field.path and says what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hcibenefit.errors import ConfigError
from hcibenefit.inventory import InventoryError, load_inventory, parse_inventory

VALID_TAIL = """\
clusters:
  - name: c1
    nodes: [n1]
"""


def with_tail(text: str) -> str:
    """A fragment plus a valid cluster list, so the fragment's error is the only one."""
    return textwrap.dedent(text) + VALID_TAIL


# (id, inventory text, exact "file:line:col: path" prefix of the first error, words the message must have)
CASES = [
    (
        "yaml-syntax",
        """\
        clusters:
          - name: c1
           nodes: [n1]
        """,
        "inventory.yaml:3:4: YAML syntax error",
        ["expected <block end>"],
    ),
    (
        "yaml-unclosed-flow",
        """\
        clusters:
          - name: c1
            nodes: [n1
        """,
        "inventory.yaml:4:1: YAML syntax error",
        ["flow sequence at line 3"],
    ),
    (
        "yaml-two-documents",
        """\
        clusters:
          - name: c1
            nodes: [n1]
        ---
        clusters: []
        """,
        "inventory.yaml:4:1: YAML syntax error: a second YAML document starts here",
        [],
    ),
    (
        "yaml-control-character",
        "clusters:\n  - name: c\x071\n",
        "inventory.yaml:2:12: YAML syntax error: control character U+0007 is not allowed",
        [],
    ),
    (
        "yaml-recursive-alias",
        """\
        x-loop: &loop [*loop]
        clusters:
          - name: c1
            nodes: *loop
        """,
        "inventory.yaml:1:9: clusters[0].nodes[0]: recursive YAML alias",
        [],
    ),
    (
        "empty-file",
        "",
        "inventory.yaml:1:1: the inventory is empty",
        ["clusters:"],
    ),
    (
        "only-comments",
        "# nothing here yet\n",
        "inventory.yaml:1:1: the inventory is empty",
        [],
    ),
    (
        "top-level-list",
        """\
        - name: c1
        """,
        "inventory.yaml:1:1: expected a mapping at the top level",
        ["got a list"],
    ),
    (
        "clusters-not-a-list",
        """\
        clusters:
          name: c1
        """,
        "inventory.yaml:2:3: clusters: expected a non-empty list of clusters",
        ["got a mapping"],
    ),
    (
        "no-clusters",
        """\
        defaults: {}
        """,
        "inventory.yaml:1:1: clusters: missing required key",
        ["non-empty list of clusters"],
    ),
    (
        "zero-clusters",
        """\
        clusters: []
        """,
        "inventory.yaml:1:11: clusters: expected a non-empty list of clusters",
        ["got an empty list"],
    ),
    (
        "missing-node-list",
        """\
        clusters:
          - name: c1
            site: sea
        """,
        "inventory.yaml:2:5: clusters[0].nodes: missing required key",
        ["non-empty list of nodes"],
    ),
    (
        "empty-node-list",
        """\
        clusters:
          - name: c1
            nodes: []
        """,
        "inventory.yaml:3:12: clusters[0].nodes: expected a non-empty list of nodes",
        ["got an empty list"],
    ),
    (
        "node-mapping-without-name",
        """\
        clusters:
          - name: c1
            nodes:
              - address: 10.0.0.1
        """,
        "inventory.yaml:4:9: clusters[0].nodes[0].name: missing required key",
        ["host name"],
    ),
    (
        "bad-port",
        """\
        clusters:
          - name: c1
            nodes: [n1]
          - name: c2
            nodes:
              - name: n2
                port: "59x5"
        """,
        'inventory.yaml:7:15: clusters[1].nodes[0].port: expected an integer 1-65535, got "59x5"',
        [],
    ),
    (
        "port-out-of-range",
        with_tail(
            """\
            defaults:
              winrm:
                port: 70000
            """
        ),
        "inventory.yaml:3:11: defaults.winrm.port: expected an integer 1-65535, got 70000",
        [],
    ),
    (
        "port-given-twice",
        """\
        clusters:
          - name: c1
            nodes:
              - name: n1
                port: 5000
                winrm: {port: 5001}
        """,
        "inventory.yaml:6:17: clusters[0].nodes[0].winrm.port: the port is already given at line 5",
        ["once"],
    ),
    (
        "unknown-key-suggests",
        with_tail(
            """\
            defaults:
              winrm:
                trasnport: http
            """
        ),
        "inventory.yaml:3:5: defaults.winrm.trasnport: unknown key",
        ['did you mean "transport"?'],
    ),
    (
        "ansible-key-name",
        with_tail(
            """\
            defaults:
              winrm:
                message_encryption: never
            """
        ),
        "inventory.yaml:3:5: defaults.winrm.message_encryption: unknown key",
        ['did you mean "encryption"?'],
    ),
    (
        "bad-enum",
        with_tail(
            """\
            defaults:
              winrm: {auth: digest}
            """
        ),
        "inventory.yaml:2:17: defaults.winrm.auth: "
        'expected one of negotiate, kerberos, ntlm, credssp, basic, certificate, got "digest"',
        [],
    ),
    (
        "bad-guest-access",
        """\
        clusters:
          - name: c1
            nodes: [n1]
            guests:
              access: ssh
        """,
        'inventory.yaml:5:15: clusters[0].guests.access: expected one of powershell-direct, winrm, got "ssh"',
        [],
    ),
    (
        "wrong-type-bool",
        with_tail(
            """\
            defaults:
              winrm:
                negotiate_delegate: yes
            """
        ),
        'inventory.yaml:3:25: defaults.winrm.negotiate_delegate: expected true or false, got "yes"',
        [],
    ),
    (
        "wrong-type-tags",
        """\
        clusters:
          - name: c1
            tags: production
            nodes: [n1]
        """,
        'inventory.yaml:3:11: clusters[0].tags: expected a list of strings, got "production"',
        [],
    ),
    (
        "bad-host-name",
        """\
        clusters:
          - name: c1
            nodes: ["https://n1:5986/wsman"]
        """,
        "inventory.yaml:3:13: clusters[0].nodes[0]: expected a host name or IP address",
        ["https://n1:5986/wsman"],
    ),
    (
        "literal-password",
        with_tail(
            """\
            defaults:
              credentials:
                username: admin
                password: hunter2
            """
        ),
        "inventory.yaml:4:5: defaults.credentials.password: a literal password is not allowed",
        ["password_env", "password_cmd", "keyring"],
    ),
    (
        "two-password-sources",
        """\
        clusters:
          - name: c1
            credentials:
              username: admin
              password_env: HCI_PASS
              keyring: hci
            nodes: [n1]
        """,
        "inventory.yaml:6:7: clusters[0].credentials.keyring: "
        "only one of password_env, password_cmd, keyring may be given",
        ["password_env is already set at line 5"],
    ),
    (
        "password-source-without-user",
        with_tail(
            """\
            defaults:
              credentials:
                password_env: HCI_PASS
            """
        ),
        "inventory.yaml:3:5: defaults.credentials.username: missing required key",
        ["user name"],
    ),
    (
        "password-cmd-as-string",
        with_tail(
            """\
            defaults:
              credentials:
                username: admin
                password_cmd: pass show hci
            """
        ),
        "inventory.yaml:4:19: defaults.credentials.password_cmd: expected a command as a list of arguments",
        ["without a shell"],
    ),
    (
        "duplicate-node-across-clusters",
        """\
        clusters:
          - name: c1
            nodes: [hci01, hci02]
          - name: c2
            nodes:
              - HCI02
        """,
        'inventory.yaml:6:9: clusters[1].nodes[0]: node "HCI02" is already listed in cluster "c1"',
        ["clusters[0].nodes[1]", "line 3", "one cluster only"],
    ),
    (
        "duplicate-node-in-one-cluster",
        """\
        clusters:
          - name: c1
            nodes:
              - hci01
              - name: HCI01
        """,
        'inventory.yaml:5:15: clusters[0].nodes[1].name: node "HCI01" is already listed earlier in this '
        "cluster",
        ["clusters[0].nodes[0] (line 4)"],
    ),
    (
        "duplicate-cluster-name",
        """\
        clusters:
          - name: c1
            nodes: [a]
          - name: c1
            nodes: [b]
        """,
        'inventory.yaml:4:11: clusters[1].name: cluster name "c1" is already used by clusters[0]',
        ["line 2"],
    ),
    (
        "duplicate-key",
        """\
        clusters:
          - name: c1
            nodes: [a]
            name: c2
        """,
        'inventory.yaml:4:5: clusters[0].name: duplicate key "name"',
        ["first given at line 2"],
    ),
    (
        "bad-guid",
        with_tail(
            """\
            azure:
              subscriptions:
                - 8f0c5c21-4f7e-4b8e-9a6d-3c2b1a0f9e8
            """
        ),
        "inventory.yaml:3:7: azure.subscriptions[0]: expected a GUID",
        ['got "8f0c5c21-4f7e-4b8e-9a6d-3c2b1a0f9e8"'],
    ),
    (
        "bad-regex",
        with_tail(
            """\
            attestation:
              san_pattern: "metadata\\\\.(azure"
            """
        ),
        "inventory.yaml:2:16: attestation.san_pattern: expected a valid regular expression",
        ["missing )"],
    ),
    (
        "unsupported-tag",
        """\
        clusters:
          - name: !!binary aGVsbG8=
            nodes: [n1]
        """,
        "inventory.yaml:2:11: clusters[0].name: unsupported YAML tag !!binary",
        [],
    ),
    (
        "basic-over-http",
        """\
        defaults:
          winrm:
            transport: http
          credentials: {username: admin, password_env: HCI_PASS}
        clusters:
          - name: c1
            winrm:
              auth: basic
            nodes: [n1, n2]
        """,
        "inventory.yaml:8:13: clusters[0].winrm.auth: basic auth over http",
        ["encryption: never", "password in clear text", 'affects node "n1", node "n2"'],
    ),
    (
        "certificate-over-http",
        """\
        clusters:
          - name: c1
            winrm:
              auth: certificate
              certificate_pem: c.pem
              certificate_key_pem: k.pem
              transport: http
              encryption: never
            nodes: [n1]
        """,
        "inventory.yaml:7:18: clusters[0].winrm.transport: certificate auth needs transport: https",
        [],
    ),
    (
        "certificate-without-pem",
        with_tail(
            """\
            defaults:
              winrm: {auth: certificate}
            """
        ),
        "inventory.yaml:2:17: defaults.winrm.auth: "
        "certificate auth needs certificate_pem and certificate_key_pem",
        [],
    ),
    (
        "read-timeout-not-above-operation-timeout",
        """\
        defaults:
          winrm:
            read_timeout: 60
        clusters:
          - name: c1
            nodes:
              - name: n1
                winrm: {operation_timeout: 60}
        """,
        "inventory.yaml:8:36: clusters[0].nodes[0].winrm.operation_timeout: "
        "read_timeout (60) must be greater than operation_timeout (60)",
        ["at least 70"],
    ),
    (
        "ntlm-without-credentials",
        with_tail(
            """\
            defaults:
              winrm: {auth: ntlm}
            """
        ),
        "inventory.yaml:2:17: defaults.winrm.auth: ntlm auth needs credentials",
        ["username"],
    ),
]


def _parse(text: str) -> InventoryError:
    with pytest.raises(InventoryError) as ei:
        parse_inventory(textwrap.dedent(text), "inventory.yaml")
    return ei.value


@pytest.mark.parametrize(("text", "prefix", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_inventory(text: str, prefix: str, words: list[str]) -> None:
    err = _parse(text)
    assert isinstance(err, ConfigError)
    first = err.errors[0]
    assert first.startswith(prefix), first
    for word in words:
        assert word in first, (word, first)
    assert str(err).splitlines() == err.errors
    assert err.hint


def test_all_errors_are_collected_in_file_order() -> None:
    err = _parse(
        """\
        defaults:
          winrm:
            transport: htps
            port: 0
        clusters:
          - name: c1
            nodes: []
          - name: c2
            nodes: [a]
            colour: blue
        """
    )
    assert [e.split(": ")[0] + ": " + e.split(": ")[1] for e in err.errors] == [
        "inventory.yaml:3:16: defaults.winrm.transport",
        "inventory.yaml:4:11: defaults.winrm.port",
        "inventory.yaml:7:12: clusters[0].nodes",
        "inventory.yaml:10:5: clusters[1].colour",
    ]
    assert [(i.line, i.col) for i in err.issues] == [(3, 16), (4, 11), (7, 12), (10, 5)]


def test_one_error_for_a_default_that_breaks_many_nodes() -> None:
    err = _parse(
        """\
        defaults:
          winrm: {operation_timeout: 45}
        clusters:
          - name: c1
            nodes: [a, b, c, d, e]
        """
    )
    assert len(err.errors) == 1
    assert 'affects node "a", node "b", node "c" and 2 more' in err.errors[0]


def test_credential_values_are_never_echoed() -> None:
    # Someone pasted the password where the variable name belongs: the error must not repeat it.
    err = _parse(
        with_tail(
            """\
            defaults:
              credentials:
                username: admin
                password_env: "Summer2024!"
                password: "Winter2024!"
            """
        )
    )
    text = str(err)
    assert (
        "inventory.yaml:4:19: defaults.credentials.password_env: expected an environment variable name"
        in text
    )
    assert "Summer2024" not in text and "Winter2024" not in text


def test_missing_file_is_a_clean_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InventoryError) as ei:
        load_inventory(missing)
    assert str(ei.value) == f"{missing}: cannot read the inventory file: No such file or directory"
    assert ei.value.__cause__ is None and ei.value.__suppress_context__


def test_directory_is_a_clean_config_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as ei:
        load_inventory(str(tmp_path))
    assert str(ei.value).startswith(f"{tmp_path}: cannot read the inventory file: ")


def test_non_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "inv.yaml"
    p.write_bytes(b"clusters:\n  - name: c\xe91\n")
    with pytest.raises(InventoryError) as ei:
        load_inventory(p)
    assert str(ei.value) == f"{p}:2:12: not UTF-8 text (byte 0xe9)"


def test_file_name_is_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("inventory.yaml").write_text("clusters:\n  - name: c1\n    nodes: [n1]\n    port: 1\n")
    with pytest.raises(InventoryError) as ei:
        load_inventory("inventory.yaml")
    assert ei.value.errors == [
        'inventory.yaml:4:5: clusters[0].port: unknown key "port"; did you mean "winrm"?'
    ]


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "inv.yaml"
    p.write_bytes("\ufeffclusters:\n  - name: c1\n    nodes: [n1]\n".encode())
    assert load_inventory(p).node("n1").name == "n1"
