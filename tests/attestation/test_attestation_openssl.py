"""Documents from `openssl cms -sign` and openssl-made certificates: we agree with independent code."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attestation_helpers import NONCE, OpensslChain, document_content, make_openssl_chain, openssl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from hcibenefit.attestation import TrustStore, verify_document
from hcibenefit.lab.signing import LabSigningChain

Chains = Callable[[str], OpensslChain]


def _trust(*files: Path) -> TrustStore:
    return TrustStore.from_pem_files(files)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
@pytest.mark.parametrize("attributes", [False, True], ids=["noattr", "signed-attrs"])
def test_openssl_documents_verify(openssl_chains: Chains, kind: str, attributes: bool) -> None:
    chain = openssl_chains(kind)
    der = chain.sign(document_content(), attributes=attributes)
    doc = json.dumps({"encoding": "pkcs7", "signature": base64.b64encode(der).decode()})

    report = verify_document(doc, nonce=NONCE, trust=_trust(chain.root, chain.intermediate))

    assert report.ok, report.to_dict()
    expected = "signed attributes" if attributes else "content (no signed attributes)"
    assert expected in report.check("signature").reason
    assert ("ECDSA" if kind == "ec" else "RSA") in report.check("signature").reason
    assert report.check("san").ok is True  # test.metadata.azure.com matches the default Azure pattern


@pytest.mark.parametrize("attributes", [False, True], ids=["noattr", "signed-attrs"])
def test_signer_identified_by_subject_key_identifier(openssl_chains: Chains, attributes: bool) -> None:
    chain = openssl_chains("ec")
    der = chain.sign(document_content(), attributes=attributes, keyid=True)
    report = verify_document(der, nonce=NONCE, trust=_trust(chain.root, chain.intermediate))
    assert report.ok, report.to_dict()


def test_intermediate_embedded_in_the_document_is_used(openssl_chains: Chains) -> None:
    chain = openssl_chains("rsa")
    der = chain.sign(document_content(), attributes=False, embed=(chain.intermediate,))
    report = verify_document(der, nonce=NONCE, trust=_trust(chain.root))
    assert report.ok, report.to_dict()
    assert len(report.chain_subjects) == 3


def test_missing_intermediate(openssl_chains: Chains) -> None:
    chain = openssl_chains("rsa")
    der = chain.sign(document_content(), attributes=False)  # leaf only, like Azure
    report = verify_document(der, nonce=NONCE, trust=_trust(chain.root))
    assert report.failure_kind == "missing-intermediate"
    assert "Test RSA Intermediate" in report.check("chain").reason
    assert report.check("signature").ok is True


@pytest.mark.parametrize("attributes", [False, True], ids=["noattr", "signed-attrs"])
def test_untrusted_root_is_rejected_although_the_signature_is_valid(
    openssl_chains: Chains, lab_chain: LabSigningChain, attributes: bool
) -> None:
    chain = openssl_chains("ec")
    # The whole chain travels with the document, as an attacker's would; only the root is not trusted.
    der = chain.sign(document_content(), attributes=attributes, embed=(chain.intermediate, chain.root))

    report = verify_document(der, nonce=NONCE, trust=lab_chain.trust_store())  # some other root only

    assert report.check("signature").ok is True
    assert report.failure_kind == "untrusted-chain"
    assert "Test EC Root" in report.check("chain").reason
    assert "not in the trust store" in report.check("chain").reason


def test_impostor_root_with_the_trusted_name_is_rejected(openssl_chains: Chains, tmp_path: Path) -> None:
    chain = openssl_chains("ec")
    impostor = make_openssl_chain(tmp_path, "ec", root_name="Test EC Root")  # same name, other key
    der = impostor.sign(document_content(), attributes=False, embed=(impostor.intermediate,))

    report = verify_document(der, nonce=NONCE, trust=_trust(chain.root))

    assert report.check("signature").ok is True
    assert report.failure_kind == "untrusted-chain"
    assert "different, untrusted CA with the same name" in report.check("chain").reason


@pytest.mark.parametrize("attributes", [False, True], ids=["noattr", "signed-attrs"])
def test_content_altered_after_openssl_signed_it(openssl_chains: Chains, attributes: bool) -> None:
    chain = openssl_chains("rsa")
    der = chain.sign(document_content(nonce="1111111111"), attributes=attributes)
    altered = der.replace(b'"nonce": "1111111111"', b'"nonce": "2222222222"')
    assert altered != der

    report = verify_document(altered, trust=_trust(chain.root, chain.intermediate))

    assert report.failure_kind == "bad-signature"
    if attributes:
        assert "messageDigest" in report.check("signature").reason


def test_certificates_are_judged_at_the_verification_time(openssl_chains: Chains) -> None:
    chain = openssl_chains("ec")
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)  # before openssl's notBefore
    der = chain.sign(document_content(now=past), attributes=False)

    report = verify_document(der, at=past, trust=_trust(chain.root, chain.intermediate))

    assert report.failure_kind == "untrusted-chain"
    assert "not valid before" in report.check("chain").reason
    assert report.check("validity").ok is True  # the document itself was current at that time


def test_openssl_streamed_ber_document_verifies(openssl_chains: Chains) -> None:
    """`-stream` writes indefinite-length BER with a chunked content OCTET STRING."""
    chain = openssl_chains("ec")
    source = chain.directory / "stream.json"
    source.write_bytes(document_content())
    der = openssl(
        "cms", "-sign", "-binary", "-nodetach", "-stream", "-in", source,
        "-signer", chain.leaf, "-inkey", chain.leaf_key, "-outform", "DER",
    )  # fmt: skip
    assert der[1] == 0x80  # indefinite length: really BER
    report = verify_document(der, nonce=NONCE, trust=_trust(chain.root, chain.intermediate))
    assert report.ok, report.to_dict()


@pytest.mark.parametrize("options", [[], [pkcs7.PKCS7Options.NoAttributes]], ids=["signed-attrs", "noattr"])
def test_cryptography_pkcs7_builder_documents_verify(openssl_chains: Chains, options: list[Any]) -> None:
    """A second independent signer: cryptography's PKCS7SignatureBuilder (it adds SMIMECapabilities too)."""
    chain = openssl_chains("rsa")
    cert = x509.load_pem_x509_certificate(chain.leaf.read_bytes())
    key = serialization.load_pem_private_key(chain.leaf_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(document_content())
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, *options])
    )
    report = verify_document(der, nonce=NONCE, trust=_trust(chain.root, chain.intermediate))
    assert report.ok, report.to_dict()
