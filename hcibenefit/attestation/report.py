"""The result of verifying one attested document: one entry per check, plus what was learned on the way.

Bad content never raises; it becomes a report. Consumers branch on ``failure_kind`` (a closed set) and show
``reason`` to people.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

CheckId = Literal["parse", "signature", "chain", "san", "nonce", "validity"]
CHECK_ORDER: tuple[CheckId, ...] = get_args(CheckId)

FailureKind = Literal[
    "unparsable",
    "bad-signature",
    "untrusted-chain",
    "missing-intermediate",
    "san-mismatch",
    "nonce-mismatch",
    "expired",
    "not-yet-valid",
]
FAILURE_KINDS: tuple[FailureKind, ...] = get_args(FailureKind)

# Envelope the document arrived in: Azure IMDS, the HCI/seed-article shape, the decoded HCI ``data`` object,
# or a PKCS#7 handed over on its own (base64, PEM or DER).
Shape = Literal["azure", "hci", "hci-data", "pkcs7"]


@dataclass(frozen=True)
class CheckResult:
    """One check. ``ok`` is None when the check was not evaluated because a step it depends on failed."""

    id: CheckId
    ok: bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "reason": self.reason}


@dataclass(frozen=True)
class VerificationReport:
    """Everything ``verify_document`` found out. ``checks`` always holds all six ids in ``CHECK_ORDER``."""

    checks: tuple[CheckResult, ...]
    failure_kind: FailureKind | None
    verified_at: dt.datetime
    shape: Shape | None = None
    # The signed JSON as decoded, even when a later check failed (it is what the signer, or a tamperer, sent).
    # A dict inside a frozen dataclass: excluded from hashing, and callers must treat it as read-only.
    payload: dict[str, Any] | None = field(default=None, hash=False)
    signer_subject: str | None = None
    signer_sans: tuple[str, ...] = ()
    chain_subjects: tuple[str, ...] = ()
    missing_issuer_urls: tuple[str, ...] = ()
    """When the chain misses an intermediate: where its certificate says it is published (http/https)."""

    @property
    def ok(self) -> bool:
        return self.failure_kind is None

    def check(self, check_id: CheckId) -> CheckResult:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failure_kind": self.failure_kind,
            "verified_at": self.verified_at.isoformat(),
            "shape": self.shape,
            "checks": [c.to_dict() for c in self.checks],
            "payload": self.payload,
            "signer": {"subject": self.signer_subject, "sans": list(self.signer_sans)},
            "chain": list(self.chain_subjects),
            "missing_issuer_urls": list(self.missing_issuer_urls),
        }
