"""Random and adversarial input for the parsers that take what others wrote: the attested-document
verifier, a guest's probe answer and the inventory loader. Every outcome must be a verdict (a report, a
FactsError) or a located error (an InventoryError whose every line has file:line), never another exception.

Derandomized so CI sees the same inputs every run (600 generated inputs plus the adversarial table);
explore with ten times as many fresh ones:
``HCIBENEFIT_FUZZ_SCALE=10 python -m pytest tests/unit/test_fuzz_hostile_input.py --hypothesis-show-statistics``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcibenefit import jsonguard, yamlschema
from hcibenefit.attestation import TrustStore, VerificationReport, verify_document
from hcibenefit.attestation.content import format_imds_timestamp
from hcibenefit.facts.guest import body_document, parse_probe_body
from hcibenefit.facts.host import FactsError
from hcibenefit.inventory import InventoryError, parse_inventory
from hcibenefit.lab import pki
from hcibenefit.lab.signing import sign_without_attributes

# 1 (CI): the same inputs every run. N > 1: N times as many, fresh random ones each run.
SCALE = int(os.environ.get("HCIBENEFIT_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples * SCALE,
        derandomize=SCALE == 1,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- building blocks ----------------------------------------------------------------------------------

_ATTACKER = pki.issue("attest.metadata.azure.com", key_kind="rsa", dns_names=["attest.metadata.azure.com"])
_TRUST = TrustStore.from_certificates([_ATTACKER.cert], source="fuzz")

_FAR = st.sampled_from(
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59+00:00",
        "01/01/0001 00:00:00 +2359",
        "12/31/9999 23:59:59 -2359",
        "13/45/99 99:99:99 -0000",
        "",
        "Z",
        "9" * 5000,
        "2024-02-30T00:00:00Z",
    ]
)
_DATETIMES = st.datetimes(timezones=st.timezones() | st.just(dt.timezone(dt.timedelta(hours=23, minutes=59))))


def _timestamp_text() -> st.SearchStrategy[str]:
    as_iso = _DATETIMES.map(lambda d: d.isoformat())
    as_imds = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9998, 1, 1)).map(
        lambda d: format_imds_timestamp(d.replace(tzinfo=dt.timezone.utc))
    )
    return st.one_of(_FAR, as_iso, as_imds, st.text(max_size=40))


_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def _hostile_json_text(draw: st.DrawFn, base: dict[str, Any]) -> str:
    """``base`` as JSON text, with one field's value swapped for raw abuse JSON cannot build."""
    abuse = draw(
        st.sampled_from(
            [
                "9" * draw(st.integers(4000, 6000)),
                "-" + "1" * 4301,
                "[" * draw(st.integers(60, 3_000)) + "]" * 0,
                "NaN",
                "Infinity",
                "1e999999",
                '"\\ud800"',
                '{"a":' * 200 + "1" + "}" * 200,
                '"' + "\\u0000" * 3 + '"',
            ]
        )
    )
    if abuse.startswith("[") and not abuse.endswith("]"):
        abuse += "]" * len(abuse)
    marker = "@@abuse@@"
    key = draw(st.sampled_from([*base.keys(), "extra"]))
    text = json.dumps({**base, key: marker})
    return text.replace(json.dumps(marker), abuse)


def _signed(content: bytes, shape: str) -> str:
    pkcs7 = base64.b64encode(sign_without_attributes(content, _ATTACKER)).decode()
    if shape == "azure":
        return json.dumps({"encoding": "pkcs7", "signature": pkcs7})
    if shape == "hci":
        return json.dumps({"data": base64.b64encode(json.dumps({"verification": pkcs7}).encode()).decode()})
    return pkcs7


@st.composite
def _payloads(draw: st.DrawFn) -> bytes:
    stamp = {"createdOn": draw(_timestamp_text()), "expiresOn": draw(_timestamp_text())}
    base: dict[str, Any] = {"nonce": draw(st.one_of(st.just("1234567890"), _JSON)), "timeStamp": stamp}
    if draw(st.booleans()):
        base.update(draw(st.dictionaries(st.sampled_from(["vmId", "plan", "sku", "x"]), _JSON, max_size=3)))
    if draw(st.booleans()):
        return draw(_hostile_json_text(base)).encode()
    return json.dumps(base).encode()


_DOCUMENTS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    _JSON.map(json.dumps),
    st.tuples(_payloads(), st.sampled_from(["azure", "hci", "bare"])).map(lambda p: _signed(*p)),
    st.builds(
        lambda value, key: json.dumps({key: value}),
        _JSON,
        st.sampled_from(["signature", "data", "verification", "encoding"]),
    ),
    _hostile_json_text({"encoding": "pkcs7", "signature": "AAAA"}),
    st.sampled_from(["[" * 100_000, "{" * 100_000, "\ufeff", "-----BEGIN PKCS7-----\n", "A" * 2_000_000]),
)


def _assert_verdict(report: VerificationReport) -> None:
    assert isinstance(report, VerificationReport)
    assert [c.id for c in report.checks] == ["parse", "signature", "chain", "san", "nonce", "validity"]
    if not report.ok:
        failing = [c for c in report.checks if c.ok is False]
        assert failing and all(c.reason for c in failing)
    # What is reported can be rendered: strict JSON (no NaN), not nested past Python's stack.
    json.dumps(report.to_dict(), allow_nan=False)
    assert jsonguard.depth(report.to_dict()) <= jsonguard.MAX_DEPTH + 4


# --- the attested-document verifier -------------------------------------------------------------------


@fuzz(200)
@given(raw=_DOCUMENTS, at=st.one_of(st.none(), _DATETIMES), nonce=st.one_of(st.none(), st.text(max_size=12)))
def test_any_document_gets_a_verdict(raw: str | bytes, at: dt.datetime | None, nonce: str | None) -> None:
    _assert_verdict(verify_document(raw, nonce=nonce, at=at, trust=_TRUST))


# --- a guest's probe answer ---------------------------------------------------------------------------

_PROBE_KEYS = ["schema", "computer_name", "collected_at", "nonce", "os", "licenses", "task", "imds"]
_PROBE_KEYS += ["document", "addresses", "events", "problems"]


@st.composite
def _probe_answers(draw: st.DrawFn) -> tuple[str, ...]:
    body: dict[str, Any] = {"schema": "guest-probe-body/1"}
    for key in draw(st.lists(st.sampled_from(_PROBE_KEYS[1:]), unique=True, max_size=len(_PROBE_KEYS) - 1)):
        body[key] = draw(_JSON)
    text = draw(_hostile_json_text(body)) if draw(st.booleans()) else json.dumps(body)
    return (*draw(st.lists(st.text(max_size=20), max_size=2)), text)


@fuzz(150)
@given(outputs=_probe_answers())
def test_any_guest_answer_is_parsed_or_refused_with_a_reason(outputs: tuple[str, ...]) -> None:
    try:
        probe = parse_probe_body(body_document(outputs, schema="guest-probe-body/1"))
    except FactsError as exc:
        assert str(exc)
        return
    assert probe.computer_name is not None


# --- the inventory loader ------------------------------------------------------------------------------

_NASTY_SCALARS = [
    '"c\\ud800"',
    '"avd-esc\\e[31mRED\\e[0m\\e]0;pwned\\a"',
    '"line\\nforged"',
    '"nul\\0byte"',
    "9" * 5000,
    "1e999",
    ".nan",
    "-.inf",
    "0x" + "f" * 5000,
    "https://[::1",
    "!!binary aGVsbG8=",
    "!!python/object:os.system {}",
    "~",
    "''",
    "*undefined",
    "&anchor",
    "[",
    "{",
    "2024-01-01",
    "yes",
    "' '",
]
_KEYS = [
    "clusters", "name", "nodes", "address", "port", "winrm", "credentials", "username", "password_env",
    "password_cmd", "keyring", "password", "defaults", "guests", "vms", "access", "cert_validation",
    "certificate_pem", "proxy", "endpoint", "tenant_id", "subscriptions", "policy", "exclude_globs",
    "attestation", "ca_files", "san_pattern", "audit_log", "x-common", "<<", "tags", "site", "azure",
]  # fmt: skip


def _yaml_scalar() -> st.SearchStrategy[str]:
    safe = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
    return st.one_of(st.sampled_from(_NASTY_SCALARS), safe, st.integers(-70000, 70000).map(str))


@st.composite
def _yaml_value(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["scalar", "scalar", "list", "map"] if depth < 4 else ["scalar"]))
    if kind == "scalar":
        return draw(_yaml_scalar())
    items = draw(st.lists(_yaml_value(depth + 1), max_size=3))
    if kind == "list":
        return "[" + ", ".join(items) + "]"
    keys = draw(st.lists(st.sampled_from(_KEYS), min_size=len(items), max_size=len(items)))
    return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"


@st.composite
def _inventories(draw: st.DrawFn) -> str:
    clusters = draw(st.lists(_yaml_value(1), min_size=0, max_size=3))
    lines = [f"x-a: &a {draw(_yaml_value(2))}"]
    if draw(st.booleans()):
        lines.append(f"defaults: {draw(_yaml_value(1))}")
    lines.append("clusters:")
    lines += [f"  - {c}" for c in clusters] or ["  []"]
    if draw(st.booleans()):
        lines.append(f"  - {{name: c, nodes: [n1], <<: *a, {draw(st.sampled_from(_KEYS))}: *a}}")
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=2)):
        lines.append(f"{key}: {draw(_yaml_value(1))}")
    return "\n".join(lines) + "\n"


def _bomb(depth: int, width: int, merge: bool) -> str:
    lines = ["x-a0: &a0 {k: v, j: w}" if merge else "x-a0: &a0 [v, v, v, v]"]
    for i in range(1, depth + 1):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"x-a{i}: &a{i} {{<<: [{refs}]}}" if merge else f"x-a{i}: &a{i} [{refs}]")
    use = f"<<: *a{depth}" if merge else f"tags: *a{depth}"
    return "\n".join(lines) + f"\nclusters:\n  - {{name: c, nodes: [n1], {use}}}\n"


ADVERSARIAL_INVENTORIES = {
    "merge-key-bomb": _bomb(9, 9, merge=True),
    "alias-bomb": _bomb(9, 9, merge=False),
    "480-levels-of-lists": "clusters: " + "[" * 480 + "]" * 480 + "\n",
    "480-levels-of-mappings": "clusters:\n" + "".join("  " * i + f"- a{i}:\n" for i in range(1, 481)),
    "long-merge-chain": "\n".join(
        ["x-0: &m0 {site: s}"] + [f"x-{i}: &m{i} {{<<: *m{i - 1}}}" for i in range(1, 200)]
    )
    + "\nclusters:\n  - {name: c, nodes: [n1], <<: *m199}\n",
    "recursive-alias": "clusters: &c\n  - {name: c, nodes: *c}\n",
    "lone-surrogate": 'clusters:\n  - name: "c\\ud800"\n    nodes: [n1]\n',
    "escape-in-name": 'clusters:\n  - name: "avd-esc\\e[31mRED\\e[0m\\e]0;pwned\\a"\n    nodes: [n1]\n',
    "newline-in-vm-name": 'clusters:\n  - name: c\n    nodes: [n1]\n    guests: {vms: {"a\\nb": {port: 1}}}\n',
    "nul-in-path": 'audit_log: "a\\0b"\nclusters: [{name: c, nodes: [n1]}]\n',
    "broken-url": "azure: {endpoint: 'https://[::1'}\nclusters: [{name: c, nodes: [n1]}]\n",
    "huge-port": f"clusters: [{{name: c, nodes: [{{name: n1, port: {'9' * 5000}}}]}}]\n",
    "hex-port": f"clusters: [{{name: c, nodes: [{{name: n1, port: 0x{'f' * 5000}}}]}}]\n",
    "many-values": "clusters:\n  - name: c\n    nodes: [n1]\n    tags: [" + ",".join(["t"] * 3_000) + "]\n",
    "python-tag": "clusters: !!python/object/apply:os.system [echo]\n",
    "two-documents": "clusters: []\n---\nclusters: []\n",
    "control-character-in-yaml": "clusters: [{name: c\x07, nodes: [n1]}]\n",
}


def _assert_located(text: str) -> None:
    try:
        parse_inventory(text, "fuzz.yaml")
    except InventoryError as exc:
        assert exc.issues, "an InventoryError without an issue"
        for issue in exc.issues:
            assert issue.source == "fuzz.yaml" and issue.line is not None and issue.line >= 1, str(issue)
            assert issue.message
        str(exc).encode("utf-8")  # the message can be printed


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_INVENTORIES))
def test_adversarial_inventories_fail_fast_with_a_located_error(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real limits take a second or two to reach (bench/hostile_input.py prints how long); here they
    # are lowered so the same code paths trip in milliseconds.
    monkeypatch.setattr(yamlschema, "MAX_NODES", 2_000)
    monkeypatch.setattr(yamlschema, "MAX_EXPANDED", 20_000)
    text = ADVERSARIAL_INVENTORIES[name]
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "fuzz.yaml")
    for issue in caught.value.issues:
        assert issue.line is not None, str(issue)
    if name in (
        "merge-key-bomb",
        "480-levels-of-lists",
        "480-levels-of-mappings",
        "many-values",
    ):
        assert "limit:" in str(caught.value), str(caught.value)


@fuzz(150)
@given(text=_inventories())
def test_any_inventory_is_loaded_or_refused_with_file_and_line(text: str) -> None:
    _assert_located(text)


@fuzz(100)
@given(text=st.text(max_size=400))
def test_any_text_is_loaded_or_refused_with_file_and_line(text: str) -> None:
    _assert_located(text)


@pytest.mark.parametrize(
    "name", ["merge-key-bomb", "480-levels-of-lists", "lone-surrogate", "python-tag", "recursive-alias"]
)
def test_the_lab_fleet_spec_shares_the_limits(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcibenefit.lab.spec import FleetSpecError, parse_fleet

    monkeypatch.setattr(yamlschema, "MAX_EXPANDED", 20_000)
    with pytest.raises(FleetSpecError) as caught:
        parse_fleet(ADVERSARIAL_INVENTORIES[name], "fleet.yaml")
    assert caught.value.issues and all(i.line is not None for i in caught.value.issues), str(caught.value)
