"""Certificates the lab makes for itself: a TLS CA for the WinRM endpoints and signing chains.

Everything here is generated at start-up and lives only as long as the lab; nothing is trusted outside it.
EC P-256 keys keep start-up fast (a 40-node fleet gets its certificates in milliseconds); RSA is
available where a real-world shape matters (Azure signs attested documents with RSA).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_key(kind: str = "ec") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    path_length: int | None = None,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    key_kind: str = "ec",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    extended_usages: Iterable[x509.ObjectIdentifier] = (),
    ca_issuers: Iterable[str] = (),
    user_principal_names: Iterable[str] = (),
) -> Issued:
    """Issue a certificate signed by ``issuer`` (self-signed when None).

    ``ca_issuers``: URLs for the Authority Information Access extension, where a client may download the
    issuer's certificate (as Microsoft's certificates name their issuers').
    """
    key = new_key(key_kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or (_now() - dt.timedelta(minutes=5))
    end = not_after or (start + dt.timedelta(days=30))
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=not ca and key_kind == "rsa",
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    sans += [x509.OtherName(UPN_OID, _der_utf8(upn)) for upn in user_principal_names]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    aia = [
        x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url))
        for url in ca_issuers
    ]
    if aia:
        builder = builder.add_extension(x509.AuthorityInformationAccess(aia), critical=False)
    usages = list(extended_usages)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    return Issued(cert=cert, key=key)


UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
"""szOID_NT_PRINCIPAL_NAME: the user principal name a Windows client certificate carries in its SAN."""


def _der_utf8(text: str) -> bytes:
    """DER UTF8String (tag 12) holding `text`: the value of a UPN otherName."""
    data = text.encode("utf-8")
    if len(data) < 0x80:
        return bytes([0x0C, len(data)]) + data
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(size)]) + size + data


def tls_server(ca: Issued, *, dns_names: Iterable[str], ip_addresses: Iterable[str]) -> Issued:
    """A server certificate for WinRM over HTTPS, valid for every name and address a client may use."""
    names = list(dns_names)
    return issue(
        names[0] if names else "hcibenefit-lab",
        issuer=ca,
        dns_names=names,
        ip_addresses=ip_addresses,
        extended_usages=[ExtendedKeyUsageOID.SERVER_AUTH],
    )


def tls_client(ca: Issued, *, user_principal_name: str) -> Issued:
    """A client certificate for WinRM certificate authentication, shaped as WinRM requires one: the
    Client Authentication extended usage and the user's UPN as a subjectAltName otherName (the value a
    WinRM certificate mapping's Subject is matched against: MS-WSMV 2.2.4.3 CertMappingType)."""
    return issue(
        user_principal_name,
        issuer=ca,
        user_principal_names=[user_principal_name],
        extended_usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
