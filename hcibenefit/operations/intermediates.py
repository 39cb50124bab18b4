"""`hcibenefit attest fetch-intermediates`: complete documents' chains from the issuers' publishers.

Inputs are read and parsed before anything is fetched (a bad file is exit 2, nothing fetched or stored).
Each chain is walked (``attestation.aia``) with the trust material `attest verify` would use; a walk's
certificates are stored only when it reached a trusted root, and the documents' chains are validated again
afterwards with the stored certificates, so the report says whether the fix worked, not only what was done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from hcibenefit.attestation import intermediates
from hcibenefit.attestation.aia import FetchError, Getter, Walk, walk, walk_from_url
from hcibenefit.attestation.chain import ChainResult, name, validate_chain
from hcibenefit.attestation.envelope import EnvelopeError, unwrap
from hcibenefit.attestation.errors import AttestationFileError
from hcibenefit.attestation.signeddata import SignedDataError, decode
from hcibenefit.attestation.trust import TrustStore, fetched_store


@dataclass(frozen=True)
class Start:
    """Where one walk starts: a document's signer (with what it embeds), or an issuer URL."""

    source: str
    leaf: x509.Certificate | None = None
    embedded: tuple[x509.Certificate, ...] = ()
    url: str | None = None


@dataclass(frozen=True)
class Outcome:
    start: Start
    walk: Walk
    stored: tuple[intermediates.StoredIntermediate, ...]
    chain_after: ChainResult | None
    """The document's chain validated again with what is now stored (None: a URL, or --what-if)."""


@dataclass(frozen=True)
class FetchResult:
    directory: Path
    what_if: bool
    outcomes: tuple[Outcome, ...]

    @property
    def incomplete(self) -> bool:
        return any(not o.walk.complete for o in self.outcomes) and not self.what_if

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": str(self.directory),
            "what_if": self.what_if,
            "complete": not self.incomplete if not self.what_if else None,
            "documents": [_outcome_dict(o) for o in self.outcomes],
            "stored": [_stored_dict(s) for o in self.outcomes for s in o.stored],
        }


def document_start(source: str, raw: bytes) -> Start:
    """The signer of a document in any envelope `attest verify` accepts; AttestationFileError if none."""
    try:
        doc = decode(unwrap(raw).pkcs7_der)
    except (EnvelopeError, SignedDataError) as exc:
        raise AttestationFileError(source, f"{source}: not an attested document: {exc}") from None
    if doc.signer is None:
        raise AttestationFileError(source, f"{source}: the document does not embed its signer's certificate")
    return Start(source, doc.signer, tuple(c for c in doc.certificates if c != doc.signer))


def fetch_intermediates(
    starts: Sequence[Start],
    trust: TrustStore,
    get: Getter,
    *,
    directory: Path,
    what_if: bool,
    now: dt.datetime,
) -> FetchResult:
    """Walk every start in turn; what one walk stored is known to the next (no second download)."""
    memo = _memo(get)
    current = trust.merge(fetched_store(directory))
    outcomes: list[Outcome] = []
    for start in starts:
        if start.url is not None:
            result = _plan_url(start.url) if what_if else walk_from_url(start.url, current, memo, now=now)
        else:
            assert start.leaf is not None
            result = walk(start.leaf, start.embedded, current, None if what_if else memo, now=now)
        stored: list[intermediates.StoredIntermediate] = []
        if result.complete and not what_if:
            for item in result.fetched:
                stored.append(
                    intermediates.store(directory, item.cert, source=item.url, issued=item.issued, now=now)
                )
            added = tuple(s.cert for s in stored)
            current = current.merge(TrustStore(anchors=(), intermediates=added))
        outcomes.append(Outcome(start, result, tuple(stored), None))
    if not what_if:
        outcomes = [
            Outcome(
                o.start,
                o.walk,
                o.stored,
                validate_chain(o.start.leaf, o.start.embedded, current, now) if o.start.leaf else None,
            )
            for o in outcomes
        ]
    return FetchResult(directory, what_if, tuple(outcomes))


def _plan_url(url: str) -> Walk:
    from hcibenefit.attestation.aia import Step, is_supported

    if not is_supported(url):
        why = f"unsupported URL scheme in {url!r} (only http and https are fetched)"
        return Walk(url, (Step(url, "?", "failed", why, url),), complete=False)
    return Walk(url, (Step(url, "?", "would-fetch", url, url),), complete=False)


def _memo(get: Getter) -> Getter:
    """One download per URL per run, failures included (two documents under one CA ask for the same URL)."""
    answers: dict[str, bytes | FetchError] = {}

    def cached(url: str) -> bytes:
        if url not in answers:
            try:
                answers[url] = get(url)
            except FetchError as exc:
                answers[url] = exc
        answer = answers[url]
        if isinstance(answer, FetchError):
            raise answer
        return answer

    return cached


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    return {
        "source": o.start.source,
        "signer": name(o.start.leaf) if o.start.leaf is not None else None,
        "complete": o.walk.complete,
        "error": o.walk.error,
        "steps": [
            {
                "subject": s.subject,
                "issuer": s.issuer,
                "outcome": s.outcome,
                "url": s.url,
                "detail": s.detail,
                "certificate": _cert_dict(s.cert) if s.cert is not None else None,
            }
            for s in o.walk.steps
        ],
        "chain_after": (
            {
                "ok": o.chain_after.failure is None,
                "failure": o.chain_after.failure,
                "reason": o.chain_after.reason,
            }
            if o.chain_after is not None
            else None
        ),
    }


def _cert_dict(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": name(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "sha256": intermediates.fingerprint(cert),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _stored_dict(s: intermediates.StoredIntermediate) -> dict[str, Any]:
    return {"file": str(s.path), "new": not s.existed, "source": s.source, **_cert_dict(s.cert)}
