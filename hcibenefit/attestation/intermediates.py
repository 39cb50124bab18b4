"""The per-user store of intermediates fetched from their publishers (``attest fetch-intermediates``).

One PEM file per certificate, named by its SHA-256 fingerprint, with a readable header that says where it came
from (``openssl x509 -in FILE -noout -text`` and ``certutil -dump FILE`` read them as they are). The directory
is private to the user (0700, files 0600) because it is trust material, even though what it holds can never
end a chain: everything loaded from here is an *intermediate*, never an anchor, so a file dropped into it can
at most complete a chain to a root the user already trusts. Self-issued certificates found here are ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

log = logging.getLogger(__name__)

HEADER_MARK = "# hcibenefit fetched intermediate"


def default_dir() -> Path:
    """$XDG_DATA_HOME/hcibenefit/intermediates (~/.local/share/...), %LOCALAPPDATA%\\hcibenefit\\... on Windows."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "hcibenefit" / "intermediates"


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class StoredIntermediate:
    path: Path
    cert: x509.Certificate
    existed: bool
    """True when the file was already there (a second run changes nothing)."""
    source: str


def store(
    directory: Path, cert: x509.Certificate, *, source: str, issued: x509.Certificate | None, now: dt.datetime
) -> StoredIntermediate:
    """Write ``cert`` as ``<sha256>.pem`` (atomically, 0600) unless that file already holds it."""
    _private_dir(directory)
    path = directory / f"{fingerprint(cert)}.pem"
    if path.is_file() and _holds(path, cert):
        return StoredIntermediate(path, cert, existed=True, source=source)
    header = [
        HEADER_MARK,
        f"# subject:    {cert.subject.rfc4514_string()}",
        f"# issuer:     {cert.issuer.rfc4514_string()}",
        f"# sha256:     {fingerprint(cert)}",
        f"# not after:  {cert.not_valid_after_utc.isoformat()}",
        f"# source:     {_one_line(source)}",
        f"# fetched:    {now.isoformat()}",
    ]
    if issued is not None:
        header.append(f"# issued:     {issued.subject.rfc4514_string()}")
    text = "\n".join(header).encode("utf-8") + b"\n" + cert.public_bytes(serialization.Encoding.PEM)
    fd, tmp = tempfile.mkstemp(prefix=".fetch-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return StoredIntermediate(path, cert, existed=False, source=source)


def load(directory: Path | None = None) -> list[x509.Certificate]:
    """The certificates in the store (missing directory: none). Unreadable files are skipped with a warning:
    the store only ever adds intermediates, so losing one can make a chain incomplete, never trusted."""
    folder = directory or default_dir()
    try:
        files = sorted(p for p in folder.glob("*.pem") if p.is_file())
    except OSError:
        return []
    certs: list[x509.Certificate] = []
    for path in files:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("skipping fetched intermediate %s: %s", path, exc)
            continue
        if cert.subject == cert.issuer:
            log.warning(
                "skipping %s: a self-issued certificate is never trusted from the fetched store", path
            )
            continue
        certs.append(cert)
    return certs


def _holds(path: Path, cert: x509.Certificate) -> bool:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()) == cert
    except (OSError, ValueError):
        return False


def _private_dir(directory: Path) -> None:
    existed = directory.is_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not existed or directory == default_dir():
        # Our own directory is kept private even if something loosened it; a --into directory the user
        # already had keeps the permissions they gave it.
        os.chmod(directory, 0o700)


def _one_line(text: str) -> str:
    # A URL comes from a certificate: no line break may forge another header line.
    return "".join(c if c.isprintable() else "?" for c in text)
