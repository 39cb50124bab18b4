"""verify_document: every check on one attested document, as a report.

Check dependencies (a check that cannot be evaluated is reported with ``ok=None``):

* ``parse`` covers the envelope, the CMS structure and the signed JSON, which must be an object with
  ``timeStamp.createdOn``/``expiresOn`` (the other fields are optional: what HCI hosts fill in is unknown).
  If it fails nothing else is evaluated; so content altered into invalid JSON is ``unparsable``, not
  ``bad-signature``.
* ``signature``, ``chain`` and ``san`` need the signer certificate; ``chain`` and ``san`` are evaluated even
  when the signature is bad, because they describe who the signer claims to be, which helps diagnosis.
* ``nonce`` and ``validity`` read the signed content, so they are only evaluated once the signature verifies:
  judging the fields of altered content would only add confusing second failures.

``failure_kind`` is the kind of the first failing check in ``CHECK_ORDER``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509

from hcibenefit.attestation.chain import name, validate_chain
from hcibenefit.attestation.content import ContentError, decode_payload, timestamps, to_utc
from hcibenefit.attestation.envelope import EnvelopeError, unwrap
from hcibenefit.attestation.errors import AttestationFileError
from hcibenefit.attestation.report import (
    CHECK_ORDER,
    CheckId,
    CheckResult,
    FailureKind,
    Shape,
    VerificationReport,
)
from hcibenefit.attestation.signeddata import SignatureError, SignedDataError, decode, verify_signature
from hcibenefit.attestation.trust import TrustStore
from hcibenefit.errors import UsageError

# The leaf SAN of Azure's IMDS signing certificates (docs/platform.md §8, after coder/coder azureidentity).
DEFAULT_SAN_PATTERN = r"^(.*\.)?metadata\.(azure\.(com|us|cn)|microsoftazure\.de)$"

# Tolerance for the document's createdOn/expiresOn against ``at``. The guest's clock and ours are not the same
# clock; five minutes is what Kerberos tolerates by default, small against IMDS documents' hours of validity.
CLOCK_SKEW = dt.timedelta(minutes=5)

# Real documents are 3-10 KiB (a base64 PKCS#7 with one certificate); anything far larger is refused
# before it is decoded, so a guest (or /dev/zero) cannot make us hold gigabytes.
MAX_DOCUMENT_BYTES = 1024 * 1024


class _Checks:
    """Collects results in any order and renders them in CHECK_ORDER, filling in what was never evaluated."""

    def __init__(self) -> None:
        self._results: dict[CheckId, CheckResult] = {}
        self._kinds: dict[CheckId, FailureKind] = {}

    def passed(self, check_id: CheckId, reason: str) -> None:
        self._results[check_id] = CheckResult(check_id, True, reason)

    def failed(self, check_id: CheckId, kind: FailureKind, reason: str) -> None:
        self._results[check_id] = CheckResult(check_id, False, reason)
        self._kinds[check_id] = kind

    def skipped(self, check_id: CheckId, reason: str) -> None:
        self._results[check_id] = CheckResult(check_id, None, f"not evaluated: {reason}")

    def checks(self, default_reason: str) -> tuple[CheckResult, ...]:
        return tuple(
            self._results.get(c, CheckResult(c, None, f"not evaluated: {default_reason}"))
            for c in CHECK_ORDER
        )

    def first_failure(self) -> FailureKind | None:
        return next((self._kinds[c] for c in CHECK_ORDER if c in self._kinds), None)


def verify_document(
    raw: str | bytes,
    *,
    nonce: str | None = None,
    at: dt.datetime | None = None,
    trust: TrustStore,
    san_pattern: str = DEFAULT_SAN_PATTERN,
) -> VerificationReport:
    """Verify an attested document in any accepted envelope (see ``envelope``). Bad content never raises.

    ``at`` is the moment certificates and timestamps are judged at (default now; a naive value is UTC).
    Raises UsageError only for an invalid ``san_pattern``, which is the caller's mistake, not the document's.
    """
    when = _utc(at or dt.datetime.now(dt.timezone.utc))
    san_re = compile_san_pattern(san_pattern)
    checks = _Checks()
    shape: Shape | None = None
    payload: dict[str, Any] | None = None

    def report(
        default_reason: str,
        signer: x509.Certificate | None = None,
        sans: tuple[str, ...] = (),
        chain_subjects: tuple[str, ...] = (),
        missing_issuer_urls: tuple[str, ...] = (),
    ) -> VerificationReport:
        return VerificationReport(
            checks=checks.checks(default_reason),
            failure_kind=checks.first_failure(),
            verified_at=when,
            shape=shape,
            payload=payload,
            signer_subject=name(signer) if signer is not None else None,
            signer_sans=sans,
            chain_subjects=chain_subjects,
            missing_issuer_urls=missing_issuer_urls,
        )

    try:
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise EnvelopeError(
                f"input is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; an attested document is a few KiB"
            )
        unwrapped = unwrap(raw)
        shape = unwrapped.shape
        doc = decode(unwrapped.pkcs7_der)
        payload = decode_payload(doc.content)
        stamps = timestamps(payload)
    except (EnvelopeError, SignedDataError, ContentError) as exc:
        checks.failed("parse", "unparsable", str(exc))
        return report("the document could not be parsed")
    checks.passed(
        "parse", f"{shape} envelope, CMS SignedData with {len(doc.certificates)} embedded certificate(s)"
    )

    signature_ok = False
    try:
        checks.passed("signature", verify_signature(doc))
        signature_ok = True
    except SignatureError as exc:
        checks.failed("signature", "bad-signature", str(exc))

    signer = doc.signer
    if signer is None:
        return report("the signer certificate is not in the document")

    chain = validate_chain(signer, doc.certificates, trust, when)
    if chain.failure is None:
        checks.passed("chain", chain.reason)
    else:
        checks.failed("chain", chain.failure, chain.reason)

    sans = _dns_sans(signer)
    matching = [s for s in sans if san_re.fullmatch(s)]
    if matching:
        checks.passed("san", f"signer SAN {matching[0]!r} matches the pattern {san_re.pattern}")
    else:
        shown = ", ".join(sans) if sans else "no DNS names"
        checks.failed(
            "san", "san-mismatch", f"signer SAN ({shown}) does not match the pattern {san_re.pattern}"
        )

    if not signature_ok:
        checks.skipped("nonce", "the signed content is not authenticated (signature check failed)")
        checks.skipped("validity", "the signed content is not authenticated (signature check failed)")
    else:
        _check_nonce(checks, payload, nonce)
        # Differences, not `when > expires_on + CLOCK_SKEW`: a document may claim year 9999, and adding
        # the tolerance to that overflows.
        if when - stamps.expires_on > CLOCK_SKEW:
            checks.failed("validity", "expired", f"document expired at {stamps.expires_on.isoformat()}")
        elif stamps.created_on - when > CLOCK_SKEW:
            checks.failed(
                "validity",
                "not-yet-valid",
                f"document was created at {stamps.created_on.isoformat()}, later than {when.isoformat()}"
                f" by more than the {int(CLOCK_SKEW.total_seconds() // 60)} min tolerance",
            )
        else:
            checks.passed(
                "validity",
                f"{when.isoformat()} is within {stamps.created_on.isoformat()} .. "
                f"{stamps.expires_on.isoformat()}"
                f" (tolerance {int(CLOCK_SKEW.total_seconds() // 60)} min)",
            )

    return report("an earlier check failed", signer, sans, chain.subjects, chain.issuer_urls)


def verify_file(
    path: str | Path,
    *,
    nonce: str | None = None,
    at: dt.datetime | None = None,
    trust: TrustStore,
    san_pattern: str = DEFAULT_SAN_PATTERN,
) -> VerificationReport:
    """verify_document on the bytes of a file; raises AttestationFileError, naming it, if unreadable."""
    raw = read_document(Path(path))
    return verify_document(raw, nonce=nonce, at=at, trust=trust, san_pattern=san_pattern)


def read_document(path: Path) -> bytes:
    """A document file's bytes, at most one more than `MAX_DOCUMENT_BYTES` (``/dev/zero`` ends too).

    Raises AttestationFileError naming the file when it cannot be read.
    """
    try:
        with path.open("rb") as stream:
            return read_limited(stream)
    except OSError as exc:
        raise AttestationFileError(
            path, f"cannot read attested document {path}: {exc.strerror or exc}"
        ) from None


def read_limited(stream: BinaryIO) -> bytes:
    """Up to MAX_DOCUMENT_BYTES + 1 bytes: enough for verify_document to tell that it is too large."""
    chunks: list[bytes] = []
    left = MAX_DOCUMENT_BYTES + 1
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def compile_san_pattern(pattern: str) -> re.Pattern[str]:
    # DNS names are case-insensitive, so the pattern is too.
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise UsageError(f"invalid SAN pattern {pattern!r}: {exc}") from None


def _check_nonce(checks: _Checks, payload: dict[str, Any], expected: str | None) -> None:
    found = payload.get("nonce")
    # IMDS writes the nonce as a string; accept a number too, since it is digits either way.
    found_text = str(found) if isinstance(found, (str, int)) and not isinstance(found, bool) else None
    if expected is None:
        # ASSUMPTION: with no nonce requested there is nothing to compare, which is not a failure; the reason
        # says so, so a reader does not mistake it for a checked nonce.
        checks.passed("nonce", f"no expected nonce given, not compared (document nonce {found_text!r})")
    elif found_text is None:
        checks.failed("nonce", "nonce-mismatch", f"document carries no nonce; expected {expected!r}")
    elif found_text != expected:
        checks.failed(
            "nonce",
            "nonce-mismatch",
            f"document nonce {found_text!r} is not the nonce we sent ({expected!r}): "
            "a replayed or foreign document",
        )
    else:
        checks.passed("nonce", f"document nonce matches {expected!r}")


def _dns_sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    except ValueError:
        return ()  # unparsable or duplicated extensions: no name we could trust
    return tuple(str(n) for n in ext.value.get_values_for_type(x509.DNSName))


def _utc(value: dt.datetime) -> dt.datetime:
    # Clamped: a moment before year 1 UTC judges like the first representable one (nothing is valid yet).
    return to_utc(value, clamp=True)
