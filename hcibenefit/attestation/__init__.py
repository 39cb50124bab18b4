"""Verify IMDS attested documents (Azure and Azure Stack HCI) offline.

A pure library: no remoting, and no network except ``aia`` (imported only by
``attest fetch-intermediates``, which asks for it). Input is what a user or the guest probe hands over; output is a
``VerificationReport`` with one entry per check (parse, signature, chain, san, nonce, validity).
"""

from hcibenefit.attestation.content import parse_timestamp
from hcibenefit.attestation.errors import AttestationFileError, CAFileError
from hcibenefit.attestation.report import (
    CHECK_ORDER,
    FAILURE_KINDS,
    CheckId,
    CheckResult,
    FailureKind,
    Shape,
    VerificationReport,
)
from hcibenefit.attestation.trust import TrustStore
from hcibenefit.attestation.verify import CLOCK_SKEW, DEFAULT_SAN_PATTERN, verify_document, verify_file

__all__ = [
    "CHECK_ORDER",
    "CLOCK_SKEW",
    "DEFAULT_SAN_PATTERN",
    "FAILURE_KINDS",
    "AttestationFileError",
    "CAFileError",
    "CheckId",
    "CheckResult",
    "FailureKind",
    "Shape",
    "TrustStore",
    "VerificationReport",
    "parse_timestamp",
    "verify_document",
    "verify_file",
]
