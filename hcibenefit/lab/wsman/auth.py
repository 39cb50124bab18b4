"""Who may talk to a node: Basic or a client certificate over HTTPS, or NTLM/Negotiate over HTTP with WinRM
message encryption."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import spnego
import spnego.exceptions

ENCRYPTED_TYPE = (
    'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
)
_BOUNDARY = b"--Encrypted Boundary"
_OCTETS = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH = re.compile(rb"Length=(\d+)")

# pyspnego's NTLM acceptor reads its credentials from the file NTLM_USER_FILE names, a process-wide
# setting. Holding this lock while a context is created or stepped lets several servers, each with its
# own user file, share one process. Side effect: other code reading NTLM_USER_FILE during a handshake
# sees the server's file; the previous value is restored right after.
_USER_FILE_LOCK = threading.Lock()


@contextmanager
def _user_file(path: Path) -> Iterator[None]:
    with _USER_FILE_LOCK:
        previous = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = str(path)
        try:
            yield
        finally:
            if previous is None:
                del os.environ["NTLM_USER_FILE"]
            else:
                os.environ["NTLM_USER_FILE"] = previous


class AuthFailed(Exception):
    """The credentials or the token were rejected: answer 401."""


def write_user_file(path: Path, username: str, password: str) -> None:
    domain, _, user = username.rpartition("\\")
    path.write_text(f"{domain}:{user}:{password}\n", encoding="utf-8")
    path.chmod(0o600)


def check_basic(header: str, username: str, password: str) -> str:
    """The user a `Basic` Authorization header names, if its password is right."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise AuthFailed("not Basic")
    try:
        user, _, given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthFailed("malformed Basic credentials") from None
    # Windows account names are case-insensitive, passwords are not.
    if user.lower() != username.lower() or not hmac.compare_digest(given.encode(), password.encode()):
        raise AuthFailed("wrong user name or password")
    return user


MUTUAL_PROFILE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
"""The Authorization value of certificate authentication: WS-Management's (DSP0226) HTTPS mutual security
profile, which says the client authenticates with its TLS certificate. pypsrp sends exactly this."""


def check_certificate(
    header: str, certificate_der: bytes | None, mappings: dict[str, str], issuer_der: bytes
) -> str:
    """The local user a client certificate is mapped to, as WinRM's certificate mappings do it.

    A mapping (`New-Item WSMan:\\localhost\\ClientCertificate -Subject <UPN> -Issuer <thumbprint>
    -Credential <local user>`; MS-WSMV 2.2.4.3 CertMappingType) matches a certificate by the user
    principal name in its subjectAltName and by the thumbprint of the CA that issued it, and runs the
    request as the mapped local account. Certificate authentication maps to local accounts only, and
    needs the Client Authentication extended key usage.

    `mappings`: UPN (case-insensitive) -> local user. `issuer_der`: the one issuer the mappings name
    (the lab's CA); the TLS handshake has already verified the chain. Guess (not observed): every failure
    is answered as a refused logon (401), without saying which check failed.
    """
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from hcibenefit.lab.pki import UPN_OID

    if header.strip().lower() != MUTUAL_PROFILE:
        raise AuthFailed("not certificate authentication")
    if certificate_der is None:
        raise AuthFailed("no client certificate was presented")
    cert = x509.load_der_x509_certificate(certificate_der)
    issuer = x509.load_der_x509_certificate(issuer_der)
    if cert.issuer != issuer.subject:
        raise AuthFailed("the certificate's issuer is not the one the mapping names")
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise AuthFailed("the certificate lacks the client-authentication usage or a UPN") from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise AuthFailed("the certificate is not for client authentication")
    for other in names.get_values_for_type(x509.OtherName):
        if other.type_id == UPN_OID:
            upn = _der_utf8_value(other.value)
            user = mappings.get(upn.lower()) if upn is not None else None
            if user is not None:
                return user
    raise AuthFailed("no certificate mapping matches the certificate's UPN")


def _der_utf8_value(der: bytes) -> str | None:
    """The text of a DER UTF8String, or None if `der` is not one."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, start = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    value = der[start : start + length]
    if len(value) != length:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


class NegotiateAcceptor:
    """One TCP connection's NTLM/SPNEGO handshake and, once complete, its message sealing."""

    def __init__(self, user_file: Path) -> None:
        self._user_file = user_file
        self._context: Any = None
        self.user: str | None = None

    def step(self, token_b64: str) -> str | None:
        """Consume a client token; return the server token to send back, if any."""
        try:
            token = base64.b64decode(token_b64, validate=True)
            with _user_file(self._user_file):
                if self._context is None or self._context.complete:
                    self._context, self.user = spnego.server(protocol="negotiate"), None
                out = self._context.step(token)
        except (binascii.Error, spnego.exceptions.SpnegoError) as exc:
            self._context = None
            raise AuthFailed(str(exc)) from None
        if self._context.complete:
            self.user = str(self._context.client_principal)
        return base64.b64encode(out).decode() if out else None

    def unwrap(self, body: bytes) -> bytes:
        """The SOAP text inside a multipart/encrypted request body."""
        if self.user is None:
            raise AuthFailed("encrypted message before authentication")
        try:
            start = body.index(_OCTETS) + len(_OCTETS)
            sealed = body[start : body.rindex(_BOUNDARY + b"--")]
            (header_length,) = struct.unpack("<I", sealed[:4])
            expected = _LENGTH.search(body[:start])
            plain: bytes = self._context.unwrap_winrm(
                sealed[4 : 4 + header_length], sealed[4 + header_length :]
            )
        except (ValueError, struct.error, spnego.exceptions.SpnegoError) as exc:
            raise AuthFailed(f"cannot unwrap message: {exc}") from None
        if expected is None or int(expected.group(1)) != len(plain):
            raise AuthFailed("encrypted length does not match OriginalContent")
        return plain

    def wrap(self, plain: bytes) -> bytes:
        header: bytes
        sealed: bytes
        header, sealed, padding = self._context.wrap_winrm(plain)
        preamble = "\r\n".join(
            [
                "--Encrypted Boundary",
                "\tContent-Type: application/HTTP-SPNEGO-session-encrypted",
                f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(plain) + padding}",
                "--Encrypted Boundary",
                "\tContent-Type: application/octet-stream",
                "",
            ]
        ).encode()
        return preamble + struct.pack("<I", len(header)) + header + sealed + _BOUNDARY + b"--\r\n"
