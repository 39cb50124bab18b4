"""A trust store remembers chain answers across a run's documents: nothing it remembers lets a bad one through.

``validate_chain`` remembers its answer per trust store under the signer certificate, the embedded
certificates and the moment. Each test first verifies a good document against a store (so there is a
remembered answer to misuse), then a bad one against the same store, and asserts the bad one fails as it
does against a fresh store.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from attestation_helpers import NONCE
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hcibenefit.attestation import TrustStore, VerificationReport, verify_document
from hcibenefit.attestation.chain import validate_chain
from hcibenefit.attestation.signeddata import decode
from hcibenefit.lab.signing import LAB_SAN_PATTERN, LabSigningChain, sign_without_attributes

VM_ID = "6c7a4b0e-3f5e-4d3a-9a51-0e8f1b2c3d4e"
SUBSCRIPTION = "8d10da13-8125-4ba9-a717-bf7490507b3d"


def _moment(chain: LabSigningChain) -> dt.datetime:
    # Within the leaf's 30 days and every document's 6 hours.
    return chain.leaf.cert.not_valid_before_utc + dt.timedelta(days=2)


def _document(chain: LabSigningChain, at: dt.datetime, **kwargs: object) -> str:
    doc = chain.make_document(
        vm_id=VM_ID, subscription_id=SUBSCRIPTION, nonce=NONCE, shape="azure", now=at, **kwargs
    )
    return json.dumps(doc)


def _verify(raw: str | bytes, trust: TrustStore, at: dt.datetime) -> VerificationReport:
    return verify_document(raw, nonce=NONCE, at=at, trust=trust, san_pattern=LAB_SAN_PATTERN)


def _kinds(report: VerificationReport) -> dict[str, bool | None]:
    return {c.id: c.ok for c in report.checks}


def _warm(chain: LabSigningChain, trust: TrustStore, at: dt.datetime) -> None:
    good = _verify(_document(chain, at), trust, at)
    assert good.ok, good.to_dict()
    assert trust.chain_results, "the good document's chain answer should be remembered"


def test_documents_of_one_signer_share_one_chain_answer(lab_chain: LabSigningChain) -> None:
    trust, at = lab_chain.trust_store(), _moment(lab_chain)
    reports = [_verify(_document(lab_chain, at), trust, at) for _ in range(3)]

    assert all(r.ok for r in reports)
    assert len(trust.chain_results) == 1
    # The remembered answer is the one a fresh store gives.
    fresh = _verify(_document(lab_chain, at), lab_chain.trust_store(), at)
    assert [r.checks for r in reports] == [fresh.checks] * 3


def test_same_certificate_other_key_fails_its_signature(lab_chain: LabSigningChain) -> None:
    """A document carrying the trusted leaf certificate but signed by another key: the remembered chain
    answer belongs to the certificate (which is fine), the signature is the document's own and fails."""
    trust, at = lab_chain.trust_store(), _moment(lab_chain)
    _warm(lab_chain, trust, at)
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    impostor = dataclasses.replace(lab_chain.leaf, key=impostor_key)
    # A genuine document's content, re-signed by the impostor's key under the genuine certificate.
    forged = sign_without_attributes(decode(_pkcs7_der(_document(lab_chain, at))).content, impostor)

    report = _verify(forged, trust, at)

    assert not report.ok
    assert report.failure_kind == "bad-signature"
    assert _kinds(report)["signature"] is False
    assert _kinds(report)["nonce"] is None and _kinds(report)["validity"] is None


def test_same_names_other_keys_fail_the_chain(lab_chain: LabSigningChain) -> None:
    """Another chain with the very same names (root, intermediate, leaf) but its own keys, after the
    genuine one was remembered: names are not what is remembered, so its document is an impostor's."""
    trust, at = lab_chain.trust_store(), _moment(lab_chain)
    _warm(lab_chain, trust, at)
    other = LabSigningChain.generate(now=lab_chain.root.cert.not_valid_before_utc + dt.timedelta(days=1))
    assert other.leaf.cert.subject == lab_chain.leaf.cert.subject
    assert other.leaf.cert.issuer == lab_chain.leaf.cert.issuer

    report = _verify(_document(other, at), trust, at)
    fresh = _verify(_document(other, at), lab_chain.trust_store(), at)

    assert report.failure_kind == "untrusted-chain", report.to_dict()
    assert _kinds(report)["signature"] is True  # self-consistent, just not ours
    assert report.checks[:3] == fresh.checks[:3]  # parse, signature, chain: as a fresh store says


def test_unpublished_intermediate_after_a_good_document(lab_chain: LabSigningChain) -> None:
    trust, at = lab_chain.trust_store(), _moment(lab_chain)
    _warm(lab_chain, trust, at)

    report = _verify(_document(lab_chain, at, fault="missing-intermediate"), trust, at)

    assert report.failure_kind == "missing-intermediate"


def test_expired_leaf_is_judged_at_its_own_moment(lab_chain: LabSigningChain) -> None:
    """The same leaf, good at one moment, expired at a later one: a fresh document made after the leaf
    expired (so the document itself is within its hours) fails the chain, whatever was remembered."""
    trust, at = lab_chain.trust_store(), _moment(lab_chain)
    _warm(lab_chain, trust, at)
    later = lab_chain.leaf.cert.not_valid_after_utc + dt.timedelta(hours=1)

    report = _verify(_document(lab_chain, later), trust, later)

    assert report.failure_kind == "untrusted-chain", report.to_dict()
    assert "expired" in report.check("chain").reason
    assert _kinds(report)["validity"] is True  # the document's own hours are fine; its signer is not


def test_a_store_without_the_intermediate_has_its_own_answers(lab_chain: LabSigningChain) -> None:
    trust, at = lab_chain.trust_store(), _moment(lab_chain)
    _warm(lab_chain, trust, at)
    root_only = TrustStore.from_certificates([lab_chain.root.cert], source="root only")

    report = _verify(_document(lab_chain, at), root_only, at)

    assert report.failure_kind == "missing-intermediate"


def test_a_moment_in_another_zone_reads_as_its_own(lab_chain: LabSigningChain) -> None:
    """The reason names the moment as given; an equal moment written in another zone is not served the
    remembered text of the first."""
    trust, at = lab_chain.trust_store(), _moment(lab_chain)
    signer = lab_chain.leaf.cert
    utc = validate_chain(signer, (signer,), trust, at)
    elsewhere = at.astimezone(dt.timezone(dt.timedelta(hours=2)))

    shifted = validate_chain(signer, (signer,), trust, elsewhere)

    assert utc.failure is None and shifted.failure is None
    assert at.isoformat() in utc.reason and elsewhere.isoformat() in shifted.reason


def test_signer_found_when_its_issuer_is_encoded_differently(lab_chain: LabSigningChain) -> None:
    """The SignerInfo names the signer's issuer in another string encoding (PrintableString for the
    certificate's UTF8String): RFC 5280 comparison still finds the certificate."""
    at = _moment(lab_chain)
    der = _pkcs7_der(_document(lab_chain, at))
    info = cms.ContentInfo.load(der)
    sid = info["content"]["signer_infos"][0]["sid"].chosen
    cert_issuer = asn1_x509.Certificate.load(
        lab_chain.leaf.cert.public_bytes(serialization.Encoding.DER)
    ).issuer
    reencoded = asn1_x509.Name.build(cert_issuer.native, use_printable=True)
    assert reencoded.dump() != cert_issuer.dump() and reencoded == cert_issuer
    sid["issuer"] = reencoded
    altered = info.dump(force=True)

    doc = decode(altered)

    assert doc.signer == lab_chain.leaf.cert
    report = _verify(altered, lab_chain.trust_store(), at)
    assert report.ok, report.to_dict()


def _pkcs7_der(raw: str) -> bytes:
    return base64.b64decode(json.loads(raw)["signature"])
