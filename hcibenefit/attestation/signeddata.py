"""CMS SignedData (RFC 5652): decode with asn1crypto, verify the signer's signature with cryptography.

cryptography parses PKCS#7 certificates but cannot verify a PKCS#7/CMS signature, so the CMS steps are done
here, explicitly:

* no signed attributes (what Azure sends): the signature is over the encapsulated content bytes themselves;
* signed attributes (what ``openssl cms -sign`` makes by default): the messageDigest attribute must equal the
  digest of the content, and the signature is over the DER of the attributes re-tagged as a SET OF.

Real Azure documents put the *signature* OID (sha256WithRSAEncryption) in the SignerInfo's digestAlgorithm
(docs/platform.md §8), so both digest and signature OIDs are accepted there and only the hash is taken from
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


class SignedDataError(ValueError):
    """The PKCS#7 is not a SignedData we can read (maps to the ``parse`` check)."""


class SignatureError(ValueError):
    """The signature does not verify or cannot be checked (maps to the ``signature`` check)."""


# Hashes we accept, by the name used in reasons. SHA-1 and MD5 are refused on purpose: Azure signs with
# SHA-256, and a forged SHA-1 document is within reach of a motivated attacker.
# ASSUMPTION: no HCI host signs with SHA-1.
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
_WEAK = "weak"

# OID -> hash name, for every OID that may appear in a digestAlgorithm: the plain digest OIDs and, because
# real Azure documents use them there, the RSA and ECDSA signature OIDs.
_DIGEST_OIDS: dict[str, str] = {
    "2.16.840.1.101.3.4.2.4": "SHA-224",
    "2.16.840.1.101.3.4.2.1": "SHA-256",
    "2.16.840.1.101.3.4.2.2": "SHA-384",
    "2.16.840.1.101.3.4.2.3": "SHA-512",
    "1.2.840.113549.1.1.14": "SHA-224",  # sha224WithRSAEncryption
    "1.2.840.113549.1.1.11": "SHA-256",  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": "SHA-384",  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13": "SHA-512",  # sha512WithRSAEncryption
    "1.2.840.10045.4.3.1": "SHA-224",  # ecdsa-with-SHA224
    "1.2.840.10045.4.3.2": "SHA-256",  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": "SHA-384",  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4": "SHA-512",  # ecdsa-with-SHA512
    "1.3.14.3.2.26": _WEAK,  # sha1
    "1.2.840.113549.2.5": _WEAK,  # md5
    "1.2.840.113549.1.1.5": _WEAK,  # sha1WithRSAEncryption
    "1.2.840.113549.1.1.4": _WEAK,  # md5WithRSAEncryption
    "1.2.840.10045.4.1": _WEAK,  # ecdsa-with-SHA1
}

_RSA_PLAIN = "1.2.840.113549.1.1.1"  # rsaEncryption: PKCS#1 v1.5, hash from digestAlgorithm
_EC_PLAIN = "1.2.840.10045.2.1"  # id-ecPublicKey, written by some signers instead of ecdsa-with-SHAx
_RSA_PSS = "1.2.840.113549.1.1.10"


@dataclass(frozen=True)
class SignedDocument:
    """A decoded SignedData with exactly one signer."""

    content: bytes
    content_type: str
    certificates: tuple[x509.Certificate, ...]
    signer: x509.Certificate | None
    signer_id: str
    # asn1crypto has no type hints; the SignerInfo stays an opaque value handled only in this module.
    signer_info: Any


def decode(der: bytes) -> SignedDocument:
    # asn1crypto parses lazily and reports malformed input with assorted exception types (ValueError,
    # TypeError, KeyError, ...) at the first access, so everything that touches the structure is inside this
    # boundary and becomes one readable SignedDataError.
    try:
        return _decode(der)
    except SignedDataError:
        raise
    except Exception as exc:
        raise SignedDataError(f"PKCS#7 structure is malformed ({type(exc).__name__}: {exc})") from None


def _decode(der: bytes) -> SignedDocument:
    info = cms.ContentInfo.load(der, strict=True)
    content_type = info["content_type"].native
    if content_type != "signed_data":
        raise SignedDataError(f"PKCS#7 content type is {content_type!r}, not signedData")
    signed = info["content"]
    encap = signed["encap_content_info"]
    content_field = encap["content"]
    if isinstance(content_field, core.Void):
        raise SignedDataError("PKCS#7 is a detached signature: the signed document is not embedded")
    # .native merges BER constructed/indefinite-length OCTET STRING chunks (openssl -stream writes those).
    content = content_field.native
    if not isinstance(content, bytes):
        raise SignedDataError("encapsulated content is not an OCTET STRING")

    signer_infos = signed["signer_infos"]
    if len(signer_infos) != 1:
        # ASSUMPTION: an attested document has exactly one signer; with several we would have to decide
        # which one the SAN and chain checks are about, and IMDS never sends more than one.
        raise SignedDataError(f"PKCS#7 has {len(signer_infos)} signers; expected exactly 1")
    signer_info = signer_infos[0]

    pairs: list[tuple[asn1_x509.Certificate, x509.Certificate]] = []
    certs_field = signed["certificates"]
    if not isinstance(certs_field, core.Void):
        for choice in certs_field:
            if choice.name != "certificate":
                continue  # attribute certificates and "other" formats say nothing about the signer
            a_cert = choice.chosen
            try:
                pairs.append((a_cert, x509.load_der_x509_certificate(a_cert.dump())))
            except ValueError:
                continue  # a certificate cryptography cannot load cannot be the signer we verify with
    signer, signer_id = _find_signer(signer_info["sid"], pairs)
    return SignedDocument(
        content=content,
        content_type=str(encap["content_type"].dotted),
        certificates=tuple(c for _, c in pairs),
        signer=signer,
        signer_id=signer_id,
        signer_info=signer_info,
    )


def _find_signer(
    sid: Any, pairs: list[tuple[asn1_x509.Certificate, x509.Certificate]]
) -> tuple[x509.Certificate | None, str]:
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        serial = sid.chosen["serial_number"].native
        description = f"issuer {issuer.human_friendly!r}, serial {serial:#x}"
        issuer_der = issuer.dump()
        for a_cert, cert in pairs:
            # asn1crypto's Name equality compares RFC 5280-normalised values, not raw bytes. Identical
            # bytes are equal either way and are what every signer writes (the SignerInfo copies the
            # certificate's issuer), so they are compared first: the normalisation (LDAP string prep of
            # each attribute) took a quarter of the time verifying a document took.
            if a_cert.serial_number == serial and (
                a_cert.issuer.dump() == issuer_der or a_cert.issuer == issuer
            ):
                return cert, description
        return None, description
    ski = bytes(sid.chosen.native)
    description = f"subject key identifier {ski.hex()}"
    for a_cert, cert in pairs:
        # RFC 5652 means the SubjectKeyIdentifier extension; fall back to the RFC 5280 method-1 value for
        # certificates that lack the extension.
        if (
            a_cert.key_identifier == ski
            or x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest == ski
        ):
            return cert, description
    return None, description


def verify_signature(doc: SignedDocument) -> str:
    """Verify the signer's signature and describe what was verified; raise SignatureError if it fails."""
    if doc.signer is None:
        raise SignatureError(f"the signer certificate ({doc.signer_id}) is not embedded in the PKCS#7")
    try:
        return _verify(doc, doc.signer)
    except SignatureError:
        raise
    except Exception as exc:
        # The SignerInfo is parsed lazily (see decode()); a malformed one means nothing can be verified.
        raise SignatureError(f"SignerInfo is malformed ({type(exc).__name__}: {exc})") from None


def _verify(doc: SignedDocument, signer: x509.Certificate) -> str:
    si = doc.signer_info
    digest_oid = str(si["digest_algorithm"]["algorithm"].dotted)
    hash_name = _DIGEST_OIDS.get(digest_oid)
    if hash_name is None:
        raise SignatureError(f"unsupported digest algorithm {digest_oid}")
    if hash_name == _WEAK:
        raise SignatureError(f"digest algorithm {digest_oid} (SHA-1/MD5) is not accepted")
    hash_cls = _HASHES[hash_name]

    sig_oid = str(si["signature_algorithm"]["algorithm"].dotted)
    scheme = _signature_scheme(sig_oid, hash_name)
    key = signer.public_key()
    signature = bytes(si["signature"].native)

    signed_attrs = si["signed_attrs"]
    if isinstance(signed_attrs, core.Void) or len(signed_attrs) == 0:
        message = doc.content
        what = "content (no signed attributes)"
    else:
        _check_signed_attributes(signed_attrs, doc, hash_cls)
        # The signature covers the DER of the attributes as a SET OF, but they are carried with an IMPLICIT
        # [0] tag. Re-tag the bytes exactly as received (0xA0 -> 0x31) rather than re-encoding them, so a
        # signer's encoding choices cannot change what we hash.
        raw = bytes(signed_attrs.dump())
        message = b"\x31" + raw[1:]
        what = "signed attributes"

    try:
        if scheme == "rsa":
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError(f"signature algorithm {sig_oid} is RSA but the signer key is not")
            key.verify(signature, message, padding.PKCS1v15(), hash_cls())
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SignatureError(f"signature algorithm {sig_oid} is ECDSA but the signer key is not")
            key.verify(signature, message, ec.ECDSA(hash_cls()))
    except InvalidSignature:
        raise SignatureError(
            f"signature over the {what} does not verify with the signer's key: the document was altered "
            "or signed by another key"
        ) from None
    return f"{scheme.upper()} {hash_name} signature over the {what} verifies"


def _signature_scheme(sig_oid: str, hash_name: str) -> str:
    if sig_oid == _RSA_PSS:
        raise SignatureError("RSASSA-PSS signatures are not supported (Azure uses PKCS#1 v1.5)")
    if sig_oid in (_RSA_PLAIN, _EC_PLAIN):
        return "rsa" if sig_oid == _RSA_PLAIN else "ecdsa"
    implied = _DIGEST_OIDS.get(sig_oid)
    if implied is None or not sig_oid.startswith(("1.2.840.113549.1.1.", "1.2.840.10045.4.")):
        raise SignatureError(f"unsupported signature algorithm {sig_oid}")
    if implied == _WEAK:
        raise SignatureError(f"signature algorithm {sig_oid} (SHA-1/MD5) is not accepted")
    if implied != hash_name:
        raise SignatureError(
            f"signature algorithm {sig_oid} implies {implied} but the digest algorithm is {hash_name}"
        )
    return "rsa" if sig_oid.startswith("1.2.840.113549.") else "ecdsa"


def _check_signed_attributes(attrs: Any, doc: SignedDocument, hash_cls: type[hashes.HashAlgorithm]) -> None:
    digests: list[bytes] = []
    content_types: list[str] = []
    for attr in attrs:
        kind = attr["type"].native
        values = attr["values"]
        if kind == "message_digest":
            digests.extend(bytes(v.native) for v in values)
        elif kind == "content_type":
            content_types.extend(str(v.dotted) for v in values)
    # RFC 5652 section 11: each attribute exactly once, with exactly one value. More than one digest would let
    # a forger pick which one a lax verifier compares.
    if len(digests) != 1:
        raise SignatureError(
            f"signed attributes carry {len(digests)} messageDigest values; expected exactly 1"
        )
    if len(content_types) != 1 or content_types[0] != doc.content_type:
        raise SignatureError(
            "signed contentType attribute is missing or does not match the encapsulated content"
        )
    h = hashes.Hash(hash_cls())
    h.update(doc.content)
    if h.finalize() != digests[0]:
        raise SignatureError(
            "messageDigest attribute does not match the digest of the content: the content was altered"
        )
