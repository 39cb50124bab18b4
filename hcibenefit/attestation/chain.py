"""Chain validation from the signer certificate to a trusted root.

cryptography's verifier (``x509.verification``) is the authority: it builds the path, checks every signature,
validity period, basic constraints, key usage, path length and name constraints. Two policy changes make it
fit a *signing* certificate rather than a TLS client:

* ``build_client_verifier()`` demands the clientAuth EKU on the leaf and on every CA that carries an EKU. A
  signing certificate need not be a TLS client certificate (Windows' own chain build for the guest checks no
  EKU either), so EKU is allowed with any value, on the leaf and on CAs.
* The leaf's SAN is optional here, because the SAN gets its own check with its own failure kind.

Its error messages do not say *why* no path was found, so when it fails we walk the issuers ourselves to tell
a missing intermediate from an untrusted root.
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    VerificationError,
)

from hcibenefit.attestation.trust import TrustStore

ChainFailure = Literal["untrusted-chain", "missing-intermediate"]

_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None
)
_MAX_DEPTH = 8  # the verifier's own default; Azure's chain has 3 certificates
# Answers remembered per trust store. A fleet's documents carry a handful of signers; a sweep asks once per
# node and signer. The bound only keeps a run over many thousands of nodes from growing without end.
_REMEMBERED = 4096


@dataclass(frozen=True)
class ChainResult:
    """``failure`` is None when the chain is valid; ``subjects``: the chain, or as far as it was built."""

    failure: ChainFailure | None
    reason: str
    subjects: tuple[str, ...]
    issuer_urls: tuple[str, ...] = ()
    """For missing-intermediate: the http(s) URLs where the missing issuer's certificate is published."""


def name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def validate_chain(
    signer: x509.Certificate, embedded: tuple[x509.Certificate, ...], trust: TrustStore, at: dt.datetime
) -> ChainResult:
    """Whether ``signer`` chains to one of the store's anchors at ``at``, through ``embedded`` and the store's
    intermediates; why not, when it does not.

    The answer is a function of its arguments alone (certificates are immutable and compare by their DER
    bytes, the store is frozen), so it is remembered per store under all of them, ``at`` included: the
    documents of a fleet are signed by the same few certificates, and a run judges every guest's document
    at the same moment (a sweep, one moment per node). A document signed by another certificate, or
    judged at another moment, is a different question and gets its own answer. What belongs to each
    document alone (its signature, nonce and validity) is never remembered: ``verify_document`` checks it
    every time.
    """
    # isoformat, not the datetime: two equal moments in different zones read differently in a reason.
    key = (signer, embedded, at.isoformat())
    results = trust.chain_results
    known = results.get(key)
    if known is not None:
        return known
    result = _validate_chain(signer, embedded, trust, at)
    if len(results) < _REMEMBERED:
        results[key] = result
    return result


def _validate_chain(
    signer: x509.Certificate, embedded: tuple[x509.Certificate, ...], trust: TrustStore, at: dt.datetime
) -> ChainResult:
    pool = [c for c in embedded if c != signer] + [c for c in trust.intermediates if c != signer]
    anchors = trust.anchor_store
    if anchors is not None:
        verifier = (
            PolicyBuilder()
            .store(anchors)
            .time(at)
            .max_chain_depth(_MAX_DEPTH)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(signer, pool).chain
        except VerificationError as exc:
            return _diagnose(signer, pool, trust, at, str(exc))
        return ChainResult(
            None,
            f"chain of {len(chain)} certificate(s) to trusted root {name(chain[-1])!r} "
            f"is valid at {at.isoformat()}",
            tuple(name(c) for c in chain),
        )
    return _diagnose(signer, pool, trust, at, "the trust store is empty")


def issuer_urls(cert: x509.Certificate) -> list[str]:
    """Where the certificate says its issuer's certificate can be downloaded (AIA caIssuers URLs)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _diagnose(
    signer: x509.Certificate, pool: list[x509.Certificate], trust: TrustStore, at: dt.datetime, detail: str
) -> ChainResult:
    """Walk issuer links (name match + signature) from the signer to explain why the verifier said no."""
    anchors = set(trust.anchors)
    path = [signer]
    cert = signer
    while len(path) <= _MAX_DEPTH:
        if cert in anchors:
            return _anchored_but_rejected(path, at, detail)
        if cert.subject == cert.issuer and signed_by(cert, cert):
            return _fail(
                "untrusted-chain",
                f"chain ends at self-signed root {name(cert)!r}, which is not in the trust store "
                f"(sources: {', '.join(trust.sources) or 'none'})",
                path,
            )
        issuer = cert.issuer.rfc4514_string()
        named = [c for c in (*trust.anchors, *pool) if c.subject == cert.issuer and c not in path]
        if not named:
            urls = issuer_urls(cert)
            fetchable = [u for u in urls if urlsplit(u).scheme.lower() in ("http", "https")]
            if fetchable:
                where = (
                    f"its certificate says where to get it: {' or '.join(urls)}; fix: hcibenefit attest "
                    f"fetch-intermediates --url {shlex.quote(fetchable[0])} (keeps it only if it chains to a "
                    "root you trust), or add it to attestation.ca_files (or --ca)"
                )
            elif urls:
                where = f"its certificate says where to get it: {' or '.join(urls)}; add it to attestation.ca_files (or --ca)"
            else:
                where = (
                    "its certificate names no download location (no Authority Information Access); add it to "
                    "attestation.ca_files (or --ca)"
                )
            return _fail(
                "missing-intermediate",
                f"missing intermediate: no certificate for {issuer!r} (issuer of {name(cert)!r}) is "
                f"embedded in the document, in the CA files or among the fetched intermediates; {where}; "
                f"see docs/attestation.md (if {issuer!r} is a root, it is not in the trust store)",
                path,
                tuple(fetchable),
            )
        signing = [c for c in named if signed_by(cert, c)]
        if not signing:
            return _fail(
                "untrusted-chain",
                f"a certificate named {issuer!r} is known but its key did not sign "
                f"{name(cert)!r}: the chain leads to a different, untrusted CA with the same name",
                path,
            )
        # Prefer a trusted anchor, so the explanation is about the path the verifier would have wanted.
        cert = next((c for c in signing if c in anchors), signing[0])
        path.append(cert)
    return _fail("untrusted-chain", f"no trusted root within {_MAX_DEPTH} certificates ({detail})", path)


def _anchored_but_rejected(path: list[x509.Certificate], at: dt.datetime, detail: str) -> ChainResult:
    # A path to a trusted root exists, so the verifier refused it on policy: say which certificate and why,
    # in words, when it is a validity period (the common case: an expired HCI or intermediate certificate).
    for cert in path:
        if at < cert.not_valid_before_utc:
            why = f"certificate {name(cert)!r} is not valid before {cert.not_valid_before_utc.isoformat()}"
            return _fail("untrusted-chain", why, path)
        if at > cert.not_valid_after_utc:
            why = f"certificate {name(cert)!r} expired at {cert.not_valid_after_utc.isoformat()}"
            return _fail("untrusted-chain", why, path)
    return _fail("untrusted-chain", f"chain to trusted root {name(path[-1])!r} was rejected: {detail}", path)


def _fail(
    failure: ChainFailure, reason: str, path: list[x509.Certificate], issuer_urls: tuple[str, ...] = ()
) -> ChainResult:
    return ChainResult(failure, reason, tuple(name(c) for c in path), issuer_urls)
