"""What we trust: root certificates (anchors) and intermediates we may build through, from certifi, the system
and CA files.

A CA file may hold intermediates as well as roots (real Azure documents embed only the leaf, so the
intermediates have to come from somewhere). Only self-issued certificates become anchors; every other
certificate is an untrusted intermediate that a chain may pass through but never end at. ASSUMPTION: nobody
pins an intermediate as a trust anchor; doing that would make ``--ca bundle.pem`` silently trust whatever the
intermediate issued.
"""

from __future__ import annotations

import contextlib
import functools
import re
import ssl
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import certifi
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store

from hcibenefit.attestation.errors import CAFileError

if TYPE_CHECKING:
    from hcibenefit.attestation.chain import ChainResult

_PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)

# Where Linux distributions and macOS put their bundle, after whatever the Python ssl module reports.
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, Fedora
    "/etc/ssl/ca-bundle.pem",  # SUSE
    "/etc/ssl/cert.pem",  # macOS, Alpine
)


@dataclass(frozen=True)
class TrustStore:
    """Anchors end a chain; intermediates may be passed through. ``sources`` says where they came from."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    sources: tuple[str, ...] = ()

    @classmethod
    def from_certificates(
        cls, certs: Iterable[x509.Certificate], *, source: str = "certificates"
    ) -> TrustStore:
        anchors: list[x509.Certificate] = []
        intermediates: list[x509.Certificate] = []
        for cert in certs:
            (anchors if cert.subject == cert.issuer else intermediates).append(cert)
        # dict.fromkeys: certifi and the system bundle overlap; keep the first copy, keep the order.
        return cls(tuple(dict.fromkeys(anchors)), tuple(dict.fromkeys(intermediates)), (source,))

    @classmethod
    def from_pem_files(cls, paths: Iterable[str | Path]) -> TrustStore:
        """Only the given files (PEM bundles, or one DER certificate each): no certifi, no system store.

        Raises CAFileError naming the file when one is unreadable or holds no certificate.
        """
        store = cls(anchors=())
        for path in paths:
            store = store.merge(cls.from_certificates(_load_ca_file(Path(path)), source=str(path)))
        return store

    @classmethod
    def default(
        cls,
        extra_ca_files: Iterable[str | Path] = (),
        *,
        include_system: bool = True,
        include_fetched: bool = True,
    ) -> TrustStore:
        """certifi's bundle, the system store (unless ``include_system`` is False), ``extra_ca_files`` and the
        intermediates ``attest fetch-intermediates`` stored for this user (unless ``include_fetched`` is
        False; they are only ever intermediates, see ``intermediates``)."""
        store = cls.from_certificates(_load_bundle_leniently(Path(certifi.where())), source="certifi")
        if include_system:
            store = store.merge(_system_store())
        store = store.merge(cls.from_pem_files(extra_ca_files))
        if include_fetched:
            store = store.merge(fetched_store())
        return store

    @functools.cached_property
    def anchor_store(self) -> Store | None:
        """The anchors as the verifier's Store (None when there are none), built once per TrustStore.

        Building it is the costliest step of verifying a document (about 0.3 ms for certifi's 150 roots, more
        than the signature and the path together), and it depends on the anchors alone: a run that verifies
        a thousand guests' documents builds it once. Every document's path is still built and checked.
        """
        return Store(list(self.anchors)) if self.anchors else None

    @functools.cached_property
    def chain_results(self) -> dict[tuple[object, ...], ChainResult]:
        """``chain.validate_chain``'s answers against this store, by everything they depend on (the signer,
        the embedded certificates, the moment): the certificates of a fleet's documents are the same few,
        so a run asks the same question for every guest. Owned by ``chain``; nothing else reads it."""
        return {}

    def merge(self, other: TrustStore) -> TrustStore:
        return TrustStore(
            tuple(dict.fromkeys(self.anchors + other.anchors)),
            tuple(dict.fromkeys(self.intermediates + other.intermediates)),
            self.sources + other.sources,
        )


def load_ca_file(path: Path) -> list[x509.Certificate]:
    """The certificates of one CA file (PEM bundle or one DER certificate); CAFileError naming the file."""
    return _load_ca_file(path)


def _load_ca_file(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CAFileError(path, f"cannot read CA file {path}: {exc.strerror or exc}") from None
    blocks = _PEM_CERT_RE.findall(data)
    if not blocks:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise CAFileError(
                path,
                f"CA file {path} holds no certificate (expected PEM 'BEGIN CERTIFICATE' blocks or one DER "
                "certificate)",
            ) from None
    certs: list[x509.Certificate] = []
    for number, block in enumerate(blocks, start=1):
        try:
            with _quiet_serial_warnings():
                certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            # A user-supplied file is all-or-nothing: silently skipping the one intermediate they meant to add
            # would turn into a baffling "missing intermediate" later.
            raise CAFileError(path, f"CA file {path}: certificate #{number} is malformed ({exc})") from None
    return certs


@contextlib.contextmanager
def _quiet_serial_warnings() -> Iterator[None]:
    # Some long-lived roots (one is in certifi) have non-positive serial numbers, and cryptography warns on
    # every load. The warning is about those roots, not anything the user can act on, so it is not shown.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def _load_bundle_leniently(path: Path) -> list[x509.Certificate]:
    """certifi and system bundles: skip what cannot be read instead of failing the whole run."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    certs: list[x509.Certificate] = []
    with _quiet_serial_warnings():
        for block in _PEM_CERT_RE.findall(data):
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    return certs


def _system_store() -> TrustStore:
    if sys.platform == "win32":
        # Windows keeps no bundle file. Its CA store also holds intermediates, which is where an administrator
        # installs the Microsoft TLS intermediates that the guest needs for activation as well.
        certs: list[x509.Certificate] = []
        with _quiet_serial_warnings():
            for store_name in ("ROOT", "CA"):
                for der, encoding, _trust in ssl.enum_certificates(store_name):
                    if encoding != "x509_asn":
                        continue
                    try:
                        certs.append(x509.load_der_x509_certificate(der))
                    except ValueError:
                        continue
        return TrustStore.from_certificates(certs, source="windows")
    candidates = [ssl.get_default_verify_paths().cafile, *_SYSTEM_BUNDLES]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return TrustStore.from_certificates(_load_bundle_leniently(Path(candidate)), source=candidate)
    return TrustStore(anchors=())


def fetched_store(directory: Path | None = None) -> TrustStore:
    """The per-user fetched intermediates as a TrustStore with no anchors: nothing fetched ends a chain."""
    from hcibenefit.attestation import intermediates

    folder = directory or intermediates.default_dir()
    certs = intermediates.load(folder)
    if not certs:
        return TrustStore(anchors=())
    return TrustStore(anchors=(), intermediates=tuple(dict.fromkeys(certs)), sources=(f"fetched:{folder}",))
