"""A chain that stops at a missing intermediate names the issuer and where its certificate says to get it."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from hcibenefit.attestation.chain import issuer_urls, validate_chain
from hcibenefit.attestation.trust import TrustStore

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
AIA = "http://pki.example.test/certs/Example%20TLS%20CA%2002.crt"


def _cert(subject: str, issuer: str, key, signer, *, ca: bool, aia: str | None = None) -> x509.Certificate:  # type: ignore[no-untyped-def]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if aia:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia)
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def _chain(aia: str | None) -> tuple[x509.Certificate, x509.Certificate]:
    root_key, ca_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("Example Root", "Example Root", root_key, root_key, ca=True)
    leaf = _cert("metadata.azure.com", "Example TLS CA 02", leaf_key, ca_key, ca=False, aia=aia)
    return root, leaf


def test_the_missing_issuer_is_named_with_its_download_url() -> None:
    root, leaf = _chain(AIA)
    assert issuer_urls(leaf) == [AIA]
    result = validate_chain(leaf, (), TrustStore(anchors=(root,)), NOW)
    assert result.failure == "missing-intermediate"
    assert "'CN=Example TLS CA 02'" in result.reason and AIA in result.reason
    assert "attestation.ca_files" in result.reason


def test_without_aia_it_says_so() -> None:
    root, leaf = _chain(None)
    result = validate_chain(leaf, (), TrustStore(anchors=(root,)), NOW)
    assert result.failure == "missing-intermediate" and "no Authority Information Access" in result.reason
