"""Every input shape we accept, and garbage of every kind: a report with a reason, never a traceback."""

from __future__ import annotations

import base64
import json
import textwrap
from typing import Any

import pytest
from asn1crypto import cms
from attestation_helpers import NONCE, document_content, openssl

from hcibenefit.attestation import CHECK_ORDER, TrustStore, VerificationReport, verify_document
from hcibenefit.lab.signing import LAB_SAN_PATTERN, LabSigningChain, sign_without_attributes


@pytest.fixture(scope="module")
def trust(lab_chain: LabSigningChain) -> TrustStore:
    return lab_chain.trust_store()


@pytest.fixture(scope="module")
def der(lab_chain: LabSigningChain) -> bytes:
    doc = lab_chain.make_document(vm_id="vm", subscription_id="sub", nonce=NONCE, shape="azure")
    return base64.b64decode(doc["signature"])


def _verify(raw: str | bytes, trust: TrustStore) -> VerificationReport:
    return verify_document(raw, nonce=NONCE, trust=trust, san_pattern=LAB_SAN_PATTERN)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: _b64(d), id="bare-base64"),
        pytest.param(lambda d: "\n".join(textwrap.wrap(_b64(d), 64)) + "\n", id="bare-base64-wrapped"),
        pytest.param(lambda d: f"  {_b64(d)[:40]} \r\n\t{_b64(d)[40:]}  ", id="bare-base64-whitespace"),
        pytest.param(lambda d: _b64(d).encode(), id="bare-base64-bytes"),
        pytest.param(lambda d: _b64(d).rstrip("="), id="bare-base64-lost-padding"),
        pytest.param(lambda d: json.dumps(_b64(d)), id="json-string"),
        pytest.param(lambda d: d, id="der-bytes"),
        pytest.param(
            lambda d: (
                "-----BEGIN CMS-----\n" + "\n".join(textwrap.wrap(_b64(d), 64)) + "\n-----END CMS-----\n"
            ),
            id="pem",
        ),
        pytest.param(
            lambda d: json.dumps({"encoding": "pkcs7", "signature": _b64(d)}).encode(), id="azure-bytes"
        ),
        pytest.param(
            lambda d: json.dumps({"encoding": "pkcs7", "signature": _b64(d)}, indent=4).encode("utf-16"),
            id="azure-utf16-bom",  # what PowerShell 5.1 Out-File writes
        ),
        pytest.param(
            lambda d: "\ufeff" + json.dumps({"encoding": "pkcs7", "signature": _b64(d)}),
            id="azure-utf8-bom",
        ),
        pytest.param(lambda d: json.dumps({"verification": _b64(d), "vmId": "vm"}), id="hci-decoded-data"),
    ],
)
def test_accepted_input_shapes(make: Any, der: bytes, trust: TrustStore) -> None:
    report = _verify(make(der), trust)
    assert report.ok, report.to_dict()


def test_shape_is_reported(der: bytes, trust: TrustStore) -> None:
    assert _verify(_b64(der), trust).shape == "pkcs7"
    assert _verify(json.dumps({"signature": _b64(der)}), trust).shape == "azure"
    assert _verify(json.dumps({"verification": _b64(der)}), trust).shape == "hci-data"


def _data(obj: Any) -> str:
    return json.dumps({"data": _b64(json.dumps(obj).encode())})


def _content_info_of_type_data() -> bytes:
    return bytes(cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump())


GARBAGE: dict[str, tuple[str | bytes, str]] = {
    "empty": ("", "empty"),
    "whitespace": ("  \n ", "empty"),
    "not-base64": ("this is not base64!", "not base64"),
    "binary-junk": (b"\xff\x00\x13\x37junk", "neither text"),
    "not-json": ("{not json", "not valid JSON"),
    "json-array": ("[1, 2]", "not an object"),
    "json-without-fields": ('{"foo": 1}', "none of 'signature'"),
    "json-signature-not-string": ('{"signature": 42}', "expected a base64 string"),
    "json-wrong-encoding": ('{"encoding": "jws", "signature": "AAAA"}', "unsupported encoding"),
    "hci-data-not-base64": ('{"data": "%%%"}', "'data' is not base64"),
    "hci-data-not-json": (json.dumps({"data": _b64(b"hello")}), "decoded 'data' is not valid JSON"),
    "hci-data-without-verification": (_data({"vmId": "x"}), "no 'verification'"),
    "base64-of-junk": (_b64(b"\x30\x03\x02\x01"), "malformed"),
    "pkcs7-not-signeddata": (_b64(_content_info_of_type_data()), "not signedData"),
    "pem-wrong-label": ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "expected PKCS7"),
}


@pytest.mark.parametrize("raw, reason", GARBAGE.values(), ids=list(GARBAGE))
def test_garbage_is_unparsable(raw: str | bytes, reason: str, trust: TrustStore) -> None:
    report = _verify(raw, trust)

    assert report.failure_kind == "unparsable"
    parse = report.check("parse")
    assert parse.ok is False
    assert reason in parse.reason
    assert [c.ok for c in report.checks] == [False] + [None] * (len(CHECK_ORDER) - 1)
    json.dumps(report.to_dict())  # still serialisable


def test_signed_content_that_is_not_json(lab_chain: LabSigningChain, trust: TrustStore) -> None:
    report = _verify(sign_without_attributes(b"hello", lab_chain.leaf), trust)
    assert report.failure_kind == "unparsable"
    assert "signed content is not valid JSON" in report.check("parse").reason


def test_signed_json_without_timestamps(lab_chain: LabSigningChain, trust: TrustStore) -> None:
    report = _verify(sign_without_attributes(b'{"nonce": "1"}', lab_chain.leaf), trust)
    assert report.failure_kind == "unparsable"
    assert "timeStamp" in report.check("parse").reason


def test_detached_signature_is_unparsable(openssl_chains: Any, trust: TrustStore) -> None:
    chain = openssl_chains("ec")
    content = chain.directory / "detached.json"
    content.write_bytes(document_content())
    der = openssl(
        "cms",
        "-sign",
        "-binary",
        "-in",
        content,
        "-signer",
        chain.leaf,
        "-inkey",
        chain.leaf_key,
        "-outform",
        "DER",
    )
    report = _verify(der, trust)
    assert report.failure_kind == "unparsable"
    assert "detached" in report.check("parse").reason


def test_truncated_pkcs7_is_unparsable(der: bytes, trust: TrustStore) -> None:
    report = _verify(_b64(der[: len(der) // 2]), trust)
    assert report.failure_kind == "unparsable"


def test_signer_certificate_not_embedded(lab_chain: LabSigningChain, der: bytes, trust: TrustStore) -> None:
    info = cms.ContentInfo.load(der)
    signed = info["content"]
    stripped = cms.ContentInfo(
        {
            "content_type": "signed_data",
            "content": cms.SignedData(
                {
                    "version": signed["version"],
                    "digest_algorithms": signed["digest_algorithms"],
                    "encap_content_info": signed["encap_content_info"],
                    "signer_infos": signed["signer_infos"],
                }
            ),
        }
    )
    report = _verify(bytes(stripped.dump()), trust)
    assert report.failure_kind == "bad-signature"
    assert "not embedded" in report.check("signature").reason
    assert report.check("chain").ok is None
