"""Who may talk to a node: Basic over HTTPS, or NTLM/Negotiate over HTTP with WinRM message encryption."""

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
