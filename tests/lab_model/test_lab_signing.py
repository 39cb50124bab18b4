"""The lab signer's hand-assembled DER is byte for byte what asn1crypto encodes for the same SignedData."""

from __future__ import annotations

import pytest
from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hcibenefit.lab import pki
from hcibenefit.lab.signing import LabSigningChain, sign_without_attributes


@pytest.fixture(scope="module")
def chain() -> LabSigningChain:
    return LabSigningChain.generate()


def _reference(content: bytes, signer: pki.Issued, signed_bytes: bytes | None = None) -> bytes:
    """The SignedData built entirely with asn1crypto (how the lab assembled it before)."""
    key = signer.key
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(
        content if signed_bytes is None else signed_bytes, padding.PKCS1v15(), hashes.SHA256()
    )
    leaf = asn1_x509.Certificate.load(signer.cert.public_bytes(serialization.Encoding.DER))
    digest_algorithm = algos.DigestAlgorithm(
        {"algorithm": "1.2.840.113549.1.1.11", "parameters": core.Null()}
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                "issuer_and_serial_number",
                cms.IssuerAndSerialNumber({"issuer": leaf.issuer, "serial_number": leaf.serial_number}),
            ),
            "digest_algorithm": digest_algorithm,
            "signature_algorithm": algos.SignedDigestAlgorithm(
                {"algorithm": "1.2.840.113549.1.1.1", "parameters": core.Null()}
            ),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [digest_algorithm],
            "encap_content_info": {"content_type": "data", "content": content},
            "certificates": [leaf],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


# Lengths on both sides of every DER length form: short, one byte, two bytes, three bytes.
@pytest.mark.parametrize("size", [0, 1, 100, 127, 128, 200, 255, 256, 1000, 65535, 65536, 70000])
def test_same_bytes_as_asn1crypto(chain: LabSigningChain, size: int) -> None:
    content = (b'{"nonce":"0123456789"}' * (size // 22 + 1))[:size]
    assert sign_without_attributes(content, chain.leaf) == _reference(content, chain.leaf)


def test_same_bytes_for_every_signer_and_for_a_tampered_document(chain: LabSigningChain) -> None:
    content = b'{"sku":"win11-23h2-avd"}'
    for signer in (chain.leaf, chain.orphan_leaf, chain.leaf):  # the leaf twice: its cached parts
        assert sign_without_attributes(content, signer) == _reference(content, signer)
    tampered = b'{"sku":"win11-23h2-avd-altered"}'
    assert sign_without_attributes(tampered, chain.leaf, signed_bytes=content) == _reference(
        tampered, chain.leaf, signed_bytes=content
    )


def test_parses_as_signed_data_with_the_leaf_only(chain: LabSigningChain) -> None:
    parsed = cms.ContentInfo.load(sign_without_attributes(b"hello", chain.leaf))
    signed = parsed["content"]
    assert parsed["content_type"].native == "signed_data"
    assert signed["encap_content_info"]["content"].native == b"hello"
    assert len(signed["certificates"]) == 1
    assert signed["signer_infos"][0]["digest_algorithm"]["algorithm"].dotted == "1.2.840.113549.1.1.11"
