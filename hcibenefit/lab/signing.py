"""The lab's attestation signer: a chain like Azure's and documents shaped like the ones IMDS returns.

Generate one ``LabSigningChain`` per lab (five RSA-2048 keys, a fraction of a second) and call
``make_document`` for each request. Clients trust ``ca_bundle_pem()`` (root + intermediate) and check the
signer's SAN against ``LAB_SAN_PATTERN``.

The wire shape copies real Azure documents (docs/platform.md §8): CMS SignedData, JSON as encapsulated
content, **no signed attributes** (the RSA PKCS#1 v1.5 signature is over the content bytes), the SignerInfo's
digestAlgorithm carrying sha256WithRSAEncryption, and only the leaf certificate embedded. cryptography's
``PKCS7SignatureBuilder`` can leave out attributes (``PKCS7Options.NoAttributes``) but always writes the plain
SHA-256 OID as digestAlgorithm, so the structure is assembled here: the signer's constant parts encoded
with asn1crypto, the document's around them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import Any, Literal

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from hcibenefit.attestation.content import format_imds_timestamp
from hcibenefit.attestation.trust import TrustStore
from hcibenefit.lab import pki

LAB_SIGNER_SAN = "attest.metadata.hcibenefit-lab.test"
LAB_SAN_PATTERN = r"^(.*\.)?metadata\.hcibenefit-lab\.test$"

Fault = Literal["valid", "expired", "tampered", "missing-intermediate", "wrong-nonce"]
DocumentShape = Literal["azure", "hci"]

# Marketplace multi-session images are the guests that activate through IMDS (docs/platform.md §1 and §6).
INTERMEDIATE_NAME = "hcibenefit lab attestation CA 01"
PUBLISHED_ROOT = "root.cer"
PUBLISHED_INTERMEDIATE = "ca01.cer"
"""File names under ``publish_at`` (DER, as Microsoft's pkiops serves its .crt files)."""

DEFAULT_SKU = "win11-23h2-avd"
DEFAULT_LICENSE_TYPE = "Windows_Client"
# ASSUMPTION: six hours between createdOn and expiresOn, as in the IMDS documentation's sample documents.
DOCUMENT_LIFETIME = dt.timedelta(hours=6)

_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"


@dataclass(frozen=True)
class LabSigningChain:
    """root -> intermediate -> leaf, plus an orphan intermediate (published nowhere) with its own leaf."""

    root: pki.Issued
    intermediate: pki.Issued
    leaf: pki.Issued
    orphan_intermediate: pki.Issued
    orphan_leaf: pki.Issued

    @classmethod
    def generate(
        cls,
        *,
        now: dt.datetime | None = None,
        publish_at: str | None = None,
        intermediate_name: str = INTERMEDIATE_NAME,
    ) -> LabSigningChain:
        """``publish_at``: a base URL where the root and intermediate are served as ``root.cer`` and
        ``ca01.cer``, named in the intermediate's and the leaf's AIA as Microsoft's certificates name
        their issuers' (None: no AIA, so a missing intermediate has nowhere to come from).

        ``intermediate_name``: the intermediate's common name. Every chain has new keys, so a lab whose
        intermediate users fetch into their per-user store names it uniquely: a stored intermediate of an
        earlier lab with the same name would otherwise read as an impostor CA to the next one."""
        start = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0) - dt.timedelta(days=1)
        root = pki.issue(
            "hcibenefit lab attestation root",
            ca=True,
            key_kind="rsa",
            not_before=start,
            not_after=start + dt.timedelta(days=3650),
        )
        intermediate = pki.issue(
            intermediate_name,
            issuer=root,
            ca=True,
            path_length=0,
            key_kind="rsa",
            not_before=start,
            not_after=start + dt.timedelta(days=730),
            ca_issuers=[f"{publish_at}/{PUBLISHED_ROOT}"] if publish_at else (),
        )
        # A different name from the published intermediate on purpose: a verifier must see "issuer not found"
        # (a missing intermediate), not "same name, wrong key" (an impostor CA).
        orphan = pki.issue(
            "hcibenefit lab attestation CA 02 (unpublished)",
            issuer=root,
            ca=True,
            path_length=0,
            key_kind="rsa",
            not_before=start,
            not_after=start + dt.timedelta(days=730),
        )
        return cls(
            root=root,
            intermediate=intermediate,
            leaf=_signer(
                intermediate, start, [f"{publish_at}/{PUBLISHED_INTERMEDIATE}"] if publish_at else []
            ),
            orphan_intermediate=orphan,
            orphan_leaf=_signer(orphan, start),
        )

    def ca_bundle_pem(self) -> bytes:
        """What a client trusts for the lab: the root and the published intermediate, PEM."""
        return self.root.cert_pem + self.intermediate.cert_pem

    def root_pem(self) -> bytes:
        """The root alone, PEM: what a client trusts when, as with Azure, the intermediate comes from AIA."""
        return self.root.cert_pem

    def published(self, file_name: str) -> bytes | None:
        """The DER certificate served as ``publish_at/file_name`` (None: not a published file)."""
        certs = {PUBLISHED_ROOT: self.root, PUBLISHED_INTERMEDIATE: self.intermediate}
        issued = certs.get(file_name)
        return issued.cert.public_bytes(serialization.Encoding.DER) if issued else None

    def trust_store(self) -> TrustStore:
        """ca_bundle_pem() as a TrustStore, without certifi or the system store (nothing outside the lab)."""
        return TrustStore.from_certificates([self.root.cert, self.intermediate.cert], source="lab")

    def make_document(
        self,
        *,
        vm_id: str,
        subscription_id: str,
        nonce: str | None,
        fault: Fault = "valid",
        shape: DocumentShape = "hci",
        now: dt.datetime | None = None,
        sku: str = DEFAULT_SKU,
        license_type: str = DEFAULT_LICENSE_TYPE,
    ) -> dict[str, Any]:
        """The JSON object the HCI host's IMDS returns for ``/metadata/attested/document``.

        ``nonce`` None behaves like IMDS without ``&nonce=``: a timestamp nonce is generated.
        """
        moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(microsecond=0)
        sent_nonce = nonce if nonce is not None else moment.strftime("%Y%m%d-%H%M%S")
        created = moment
        if fault == "expired":
            # Well past the verifier's clock-skew tolerance, so "expired" is unambiguous.
            created = moment - DOCUMENT_LIFETIME - dt.timedelta(hours=1)
        content: dict[str, Any] = {
            "licenseType": license_type,
            "nonce": _other_nonce(sent_nonce) if fault == "wrong-nonce" else sent_nonce,
            "plan": {"name": "", "product": "", "publisher": ""},
            "sku": sku,
            "subscriptionId": subscription_id,
            "timeStamp": {
                "createdOn": format_imds_timestamp(created),
                "expiresOn": format_imds_timestamp(created + DOCUMENT_LIFETIME),
            },
            "vmId": vm_id,
        }
        signer = self.orphan_leaf if fault == "missing-intermediate" else self.leaf
        signed_bytes = _compact(content)
        if fault == "tampered":
            # Altered after signing: the PKCS#7 carries content its signature was not made over.
            content = {**content, "sku": f"{sku}-altered"}
        pkcs7 = sign_without_attributes(_compact(content), signer, signed_bytes=signed_bytes)
        b64 = base64.b64encode(pkcs7).decode("ascii")
        if shape == "azure":
            return {"encoding": "pkcs7", "signature": b64}
        # ASSUMPTION (docs/platform.md §1: the HCI envelope is unverified): "data" is base64 JSON holding
        # the document's fields, unsigned, beside "verification", the base64 PKCS#7.
        return {"data": base64.b64encode(_compact({**content, "verification": b64})).decode("ascii")}


def sign_without_attributes(
    content: bytes, signer: pki.Issued, *, signed_bytes: bytes | None = None
) -> bytes:
    """DER CMS SignedData over ``content`` in Azure's wire shape (see the module docstring).

    ``signed_bytes`` lets a caller sign something other than what is embedded, which is how a tampered
    document is made; leave it None for an honest signature.

    Everything but the content and the signature is the same for every document a signer signs (a lab
    guest probe signs one per VM), so those parts are encoded once per signer with asn1crypto and the
    rest is plain DER around them (`tests/lab_model/test_lab_signing.py` checks the bytes against
    asn1crypto's own encoding).
    """
    key = signer.key
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the Azure wire shape is RSA PKCS#1 v1.5; issue the signer with key_kind='rsa'")
    signature = key.sign(
        content if signed_bytes is None else signed_bytes, padding.PKCS1v15(), hashes.SHA256()
    )
    parts = _signer_parts(signer)
    signer_info = _tlv(
        0x30,
        _VERSION_1 + parts.sid + parts.digest_algorithm + parts.signature_algorithm + _tlv(0x04, signature),
    )
    encapsulated = _tlv(0x30, _OID_DATA + _tlv(0xA0, _tlv(0x04, content)))
    signed_data = _tlv(
        0x30,
        _VERSION_1
        + _tlv(0x31, parts.digest_algorithm)
        + encapsulated
        + _tlv(0xA0, parts.certificate)  # certificates [0] IMPLICIT SET OF: the leaf only
        + _tlv(0x31, signer_info),
    )
    return _tlv(0x30, _OID_SIGNED_DATA + _tlv(0xA0, signed_data))


_VERSION_1 = b"\x02\x01\x01"  # INTEGER 1 (CMSVersion v1)
_OID_DATA = bytes.fromhex("06092a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2


def _tlv(tag: int, body: bytes) -> bytes:
    """One DER element: tag, definite length (short or long form), body."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


@dataclass(frozen=True)
class _SignerParts:
    """A signer's constant DER parts: IssuerAndSerialNumber, the two algorithm identifiers, its certificate."""

    sid: bytes
    digest_algorithm: bytes
    signature_algorithm: bytes
    certificate: bytes


_SIGNER_PARTS: dict[bytes, _SignerParts] = {}
_SIGNER_PARTS_LOCK = threading.Lock()


def _signer_parts(signer: pki.Issued) -> _SignerParts:
    certificate = signer.cert.public_bytes(serialization.Encoding.DER)
    with _SIGNER_PARTS_LOCK:
        parts = _SIGNER_PARTS.get(certificate)
    if parts is not None:
        return parts
    leaf = asn1_x509.Certificate.load(certificate)
    parts = _SignerParts(
        sid=cms.IssuerAndSerialNumber({"issuer": leaf.issuer, "serial_number": leaf.serial_number}).dump(),
        digest_algorithm=algos.DigestAlgorithm(
            {"algorithm": _SHA256_WITH_RSA, "parameters": core.Null()}
        ).dump(),
        signature_algorithm=algos.SignedDigestAlgorithm(
            {"algorithm": _RSA_ENCRYPTION, "parameters": core.Null()}
        ).dump(),
        certificate=certificate,
    )
    with _SIGNER_PARTS_LOCK:
        if len(_SIGNER_PARTS) < 64:  # a lab has two signers; tests make a few more
            _SIGNER_PARTS[certificate] = parts
    return parts


def _signer(issuer: pki.Issued, start: dt.datetime, ca_issuers: list[str] | None = None) -> pki.Issued:
    # Azure's IMDS leaf is a TLS certificate (serverAuth, clientAuth); HCI hosts renew theirs every 30 days.
    return pki.issue(
        LAB_SIGNER_SAN,
        issuer=issuer,
        dns_names=[LAB_SIGNER_SAN],
        key_kind="rsa",
        not_before=start,
        not_after=start + dt.timedelta(days=30),
        extended_usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        ca_issuers=ca_issuers or (),
    )


def _other_nonce(nonce: str) -> str:
    # Same length and alphabet when the nonce is digits (IMDS nonces are 10 digits), always different.
    if nonce.isdigit():
        return "".join(str((int(d) + 1) % 10) for d in nonce)
    return f"{nonce}-other"


def _compact(obj: dict[str, Any]) -> bytes:
    # IMDS sends compact JSON; key order is kept as built.
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")
