"""The lab's signer: its documents verify, each fault fails in its own way, and the wire shape is Azure's."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from attestation_helpers import NONCE, openssl
from cryptography import x509

from hcibenefit.attestation import CHECK_ORDER, CheckId, TrustStore, VerificationReport, verify_document
from hcibenefit.lab.signing import LAB_SAN_PATTERN, LAB_SIGNER_SAN, LabSigningChain

VM_ID = "6c7a4b0e-3f5e-4d3a-9a51-0e8f1b2c3d4e"
SUBSCRIPTION = "8d10da13-8125-4ba9-a717-bf7490507b3d"


def _verify(chain: LabSigningChain, doc: dict[str, Any], **kwargs: Any) -> VerificationReport:
    kwargs.setdefault("nonce", NONCE)
    kwargs.setdefault("san_pattern", LAB_SAN_PATTERN)
    return verify_document(json.dumps(doc), trust=chain.trust_store(), **kwargs)


def _pkcs7(doc: dict[str, Any]) -> bytes:
    if "signature" in doc:
        return base64.b64decode(doc["signature"])
    return base64.b64decode(json.loads(base64.b64decode(doc["data"]))["verification"])


@pytest.mark.parametrize("shape", ["azure", "hci"])
def test_valid_document_verifies_in_both_shapes(lab_chain: LabSigningChain, shape: Any) -> None:
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, shape=shape)

    report = _verify(lab_chain, doc)

    assert report.ok, report.to_dict()
    assert report.failure_kind is None
    assert [c.id for c in report.checks] == list(CHECK_ORDER)
    assert all(c.ok is True for c in report.checks)
    assert report.shape == shape
    assert report.payload is not None
    assert report.payload["vmId"] == VM_ID
    assert report.payload["subscriptionId"] == SUBSCRIPTION
    assert report.payload["nonce"] == NONCE
    assert report.signer_sans == (LAB_SIGNER_SAN,)
    assert report.chain_subjects == (
        f"CN={LAB_SIGNER_SAN}",
        "CN=hcibenefit lab attestation CA 01",
        "CN=hcibenefit lab attestation root",
    )


def test_azure_shape_is_exactly_what_imds_returns(lab_chain: LabSigningChain) -> None:
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, shape="azure")
    assert set(doc) == {"encoding", "signature"}
    assert doc["encoding"] == "pkcs7"


def test_hci_shape_carries_verification_beside_the_fields(lab_chain: LabSigningChain) -> None:
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, shape="hci")
    assert set(doc) == {"data"}
    inner = json.loads(base64.b64decode(doc["data"]))
    assert {"verification", "vmId", "nonce", "timeStamp"} <= set(inner)


FAULTS: dict[str, tuple[CheckId, str]] = {
    "expired": ("validity", "expired"),
    "tampered": ("signature", "bad-signature"),
    "missing-intermediate": ("chain", "missing-intermediate"),
    "wrong-nonce": ("nonce", "nonce-mismatch"),
}


@pytest.mark.parametrize("shape", ["azure", "hci"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_fails_its_own_check(lab_chain: LabSigningChain, fault: Any, shape: Any) -> None:
    failing_check, kind = FAULTS[fault]
    doc = lab_chain.make_document(
        vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, fault=fault, shape=shape
    )

    report = _verify(lab_chain, doc)

    assert not report.ok
    assert report.failure_kind == kind
    assert report.check(failing_check).ok is False
    failed = [c.id for c in report.checks if c.ok is False]
    assert failed == [failing_check], report.to_dict()


def test_fault_kinds_are_distinct() -> None:
    kinds = [kind for _, kind in FAULTS.values()]
    assert len(set(kinds)) == len(kinds)


def test_tampered_document_leaves_content_checks_unevaluated(lab_chain: LabSigningChain) -> None:
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, fault="tampered")
    report = _verify(lab_chain, doc)
    assert report.check("nonce").ok is None
    assert report.check("validity").ok is None
    assert report.check("nonce").reason.startswith("not evaluated")
    # The signer is still the genuine lab leaf: the chain and SAN say so, which is what points at tampering.
    assert report.check("chain").ok is True


def test_missing_intermediate_names_the_unpublished_ca(lab_chain: LabSigningChain) -> None:
    doc = lab_chain.make_document(
        vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, fault="missing-intermediate"
    )
    report = _verify(lab_chain, doc)
    assert "CA 02 (unpublished)" in report.check("chain").reason
    assert report.check("signature").ok is True


def test_document_without_requested_nonce(lab_chain: LabSigningChain) -> None:
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=None)
    report = _verify(lab_chain, doc, nonce=None)
    assert report.ok
    assert "not compared" in report.check("nonce").reason
    assert report.payload is not None and report.payload["nonce"]  # IMDS-style generated nonce


def test_lab_document_fails_the_azure_san_pattern(lab_chain: LabSigningChain) -> None:
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE)
    report = verify_document(json.dumps(doc), nonce=NONCE, trust=lab_chain.trust_store())  # default pattern
    assert report.failure_kind == "san-mismatch"
    assert LAB_SIGNER_SAN in report.check("san").reason


def test_document_created_in_the_future_is_not_yet_valid(lab_chain: LabSigningChain) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    doc = lab_chain.make_document(
        vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, now=now + dt.timedelta(hours=1)
    )
    report = _verify(lab_chain, doc, at=now)
    assert report.failure_kind == "not-yet-valid"
    assert report.check("validity").ok is False


def test_wire_shape_matches_real_azure_documents(lab_chain: LabSigningChain) -> None:
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, shape="azure")
    signed = cms.ContentInfo.load(_pkcs7(doc))["content"]
    signer_info = signed["signer_infos"][0]

    assert signer_info["signed_attrs"].native is None  # no signed attributes
    assert signer_info["digest_algorithm"]["algorithm"].dotted == "1.2.840.113549.1.1.11"  # sha256WithRSA
    assert signer_info["signature_algorithm"]["algorithm"].dotted == "1.2.840.113549.1.1.1"
    assert signer_info["sid"].name == "issuer_and_serial_number"
    assert len(signed["certificates"]) == 1  # only the leaf
    leaf = x509.load_der_x509_certificate(signed["certificates"][0].chosen.dump())
    assert leaf == lab_chain.leaf.cert
    content = json.loads(signed["encap_content_info"]["content"].native)
    assert content["timeStamp"]["createdOn"].endswith(" -0000")  # IMDS format, e.g. 11/30/20 21:19:19 -0000


def test_ca_bundle_holds_root_and_intermediate_only(lab_chain: LabSigningChain) -> None:
    certs = x509.load_pem_x509_certificates(lab_chain.ca_bundle_pem())
    assert certs == [lab_chain.root.cert, lab_chain.intermediate.cert]
    assert lab_chain.orphan_intermediate.cert not in certs


def test_ca_bundle_file_is_enough_to_trust_the_lab(lab_chain: LabSigningChain, tmp_path: Path) -> None:
    bundle = tmp_path / "lab-ca.pem"
    bundle.write_bytes(lab_chain.ca_bundle_pem())
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE)
    report = verify_document(
        json.dumps(doc), nonce=NONCE, trust=TrustStore.from_pem_files([bundle]), san_pattern=LAB_SAN_PATTERN
    )
    assert report.ok, report.to_dict()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed")
def test_openssl_verifies_lab_documents(lab_chain: LabSigningChain, tmp_path: Path) -> None:
    """An independent CMS implementation accepts what the lab signs, signature-OID digestAlgorithm and all."""
    doc = lab_chain.make_document(vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, shape="azure")
    (tmp_path / "doc.der").write_bytes(_pkcs7(doc))
    (tmp_path / "ca.pem").write_bytes(lab_chain.ca_bundle_pem())

    out = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "doc.der",
        "-CAfile", tmp_path / "ca.pem", "-purpose", "any",
    )  # fmt: skip

    assert json.loads(out)["vmId"] == VM_ID
