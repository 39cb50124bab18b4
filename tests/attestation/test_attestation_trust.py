"""Trust material and files: what becomes an anchor, and typed errors for what cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import certifi
import pytest
from attestation_helpers import NONCE
from cryptography.hazmat.primitives import serialization

from hcibenefit.attestation import AttestationFileError, CAFileError, TrustStore, verify_file
from hcibenefit.errors import HcibenefitError
from hcibenefit.lab.signing import LAB_SAN_PATTERN, LabSigningChain


def test_ca_file_roots_become_anchors_and_the_rest_intermediates(
    lab_chain: LabSigningChain, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(lab_chain.ca_bundle_pem())

    store = TrustStore.from_pem_files([bundle])

    assert store.anchors == (lab_chain.root.cert,)
    assert store.intermediates == (lab_chain.intermediate.cert,)
    assert store.sources == (str(bundle),)


def test_intermediate_alone_is_not_a_trust_anchor(lab_chain: LabSigningChain, tmp_path: Path) -> None:
    """Trusting a CA file that holds only the intermediate must not make the lab's documents trusted."""
    inter = tmp_path / "inter.pem"
    inter.write_bytes(lab_chain.intermediate.cert_pem)
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(lab_chain.make_document(vm_id="vm", subscription_id="s", nonce=NONCE)))

    report = verify_file(
        doc, nonce=NONCE, trust=TrustStore.from_pem_files([inter]), san_pattern=LAB_SAN_PATTERN
    )

    assert report.check("chain").ok is False
    assert report.failure_kind in ("missing-intermediate", "untrusted-chain")


def test_der_ca_file_is_accepted(lab_chain: LabSigningChain, tmp_path: Path) -> None:
    der = tmp_path / "root.cer"
    der.write_bytes(lab_chain.root.cert.public_bytes(serialization.Encoding.DER))
    assert TrustStore.from_pem_files([der]).anchors == (lab_chain.root.cert,)


def test_default_store_has_certifi_and_extra_files(lab_chain: LabSigningChain, tmp_path: Path) -> None:
    bundle = tmp_path / "lab.pem"
    bundle.write_bytes(lab_chain.ca_bundle_pem())

    store = TrustStore.default([bundle], include_system=False)

    assert store.sources == ("certifi", str(bundle))
    assert len(store.anchors) > 50
    assert lab_chain.root.cert in store.anchors
    assert lab_chain.intermediate.cert in store.intermediates


def test_default_store_with_system_bundle_has_no_duplicates() -> None:
    store = TrustStore.default()
    assert len(set(store.anchors)) == len(store.anchors)
    assert store.sources[0] == "certifi"


def test_default_store_does_not_trust_the_lab(lab_chain: LabSigningChain, tmp_path: Path) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(lab_chain.make_document(vm_id="vm", subscription_id="s", nonce=NONCE)))
    report = verify_file(doc, nonce=NONCE, trust=TrustStore.default(), san_pattern=LAB_SAN_PATTERN)
    assert report.check("chain").ok is False


def test_missing_ca_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(CAFileError) as caught:
        TrustStore.from_pem_files([missing])
    assert str(missing) in str(caught.value)
    assert caught.value.path == missing
    assert isinstance(caught.value, HcibenefitError)


def test_ca_file_without_certificates_names_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(CAFileError, match=r"junk\.pem"):
        TrustStore.default([junk], include_system=False)


def test_ca_file_with_a_broken_block_names_the_file_and_block(
    lab_chain: LabSigningChain, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_bytes(
        lab_chain.root.cert_pem + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(CAFileError, match=r"broken\.pem: certificate #2"):
        TrustStore.from_pem_files([broken])


def test_unreadable_document_file_is_a_typed_error(tmp_path: Path) -> None:
    trust = TrustStore.from_pem_files([certifi.where()])
    for path in (tmp_path / "missing.json", tmp_path):  # absent, and a directory
        with pytest.raises(AttestationFileError) as caught:
            verify_file(path, trust=trust)
        assert str(path) in str(caught.value)
        assert not isinstance(caught.value, CAFileError)


def test_document_file_with_bad_content_is_a_report(tmp_path: Path) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text('{"hello": "world"}')
    report = verify_file(doc, trust=TrustStore.from_pem_files([certifi.where()]))
    assert report.failure_kind == "unparsable"
