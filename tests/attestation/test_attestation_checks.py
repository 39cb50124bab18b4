"""The content checks (nonce, validity window, SAN) and the report itself."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from attestation_helpers import NONCE

from hcibenefit.attestation import (
    CHECK_ORDER,
    CLOCK_SKEW,
    DEFAULT_SAN_PATTERN,
    FAILURE_KINDS,
    parse_timestamp,
    verify_document,
)
from hcibenefit.attestation.content import format_imds_timestamp
from hcibenefit.attestation.verify import compile_san_pattern
from hcibenefit.errors import HcibenefitError, UsageError
from hcibenefit.lab.signing import (
    DOCUMENT_LIFETIME,
    LAB_SAN_PATTERN,
    LabSigningChain,
    sign_without_attributes,
)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)


def _doc(chain: LabSigningChain, **kwargs: Any) -> str:
    return json.dumps(chain.make_document(vm_id="vm", subscription_id="sub", nonce=NONCE, now=NOW, **kwargs))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("11/30/20 21:19:19 -0000", dt.datetime(2020, 11, 30, 21, 19, 19, tzinfo=UTC)),
        ("11/30/2020 21:19:19 -0000", dt.datetime(2020, 11, 30, 21, 19, 19, tzinfo=UTC)),
        ("11/30/20 23:19:19 +0200", dt.datetime(2020, 11, 30, 21, 19, 19, tzinfo=UTC)),
        ("11/30/20 21:19:19", dt.datetime(2020, 11, 30, 21, 19, 19, tzinfo=UTC)),
        ("2020-11-30T21:19:19Z", dt.datetime(2020, 11, 30, 21, 19, 19, tzinfo=UTC)),
        ("2020-11-30T22:19:19.5+01:00", dt.datetime(2020, 11, 30, 21, 19, 19, 500000, tzinfo=UTC)),
    ],
)
def test_timestamp_formats(text: str, expected: dt.datetime) -> None:
    assert parse_timestamp(text) == expected


def test_unreadable_timestamp_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


@pytest.mark.parametrize(
    "offset, kind",
    [
        (dt.timedelta(0), None),
        (DOCUMENT_LIFETIME + CLOCK_SKEW - dt.timedelta(seconds=1), None),  # just expired, within tolerance
        (DOCUMENT_LIFETIME + CLOCK_SKEW + dt.timedelta(seconds=1), "expired"),
        (-CLOCK_SKEW + dt.timedelta(seconds=1), None),  # our clock a little behind the host's
        (-CLOCK_SKEW - dt.timedelta(seconds=1), "not-yet-valid"),
    ],
)
def test_validity_window_and_clock_skew(
    lab_chain: LabSigningChain, offset: dt.timedelta, kind: str | None
) -> None:
    report = verify_document(
        _doc(lab_chain),
        nonce=NONCE,
        at=NOW + offset,
        trust=lab_chain.trust_store(),
        san_pattern=LAB_SAN_PATTERN,
    )
    assert report.failure_kind == kind, report.to_dict()


def test_naive_verification_time_is_utc(lab_chain: LabSigningChain) -> None:
    naive = NOW.replace(tzinfo=None)
    report = verify_document(
        _doc(lab_chain), nonce=NONCE, at=naive, trust=lab_chain.trust_store(), san_pattern=LAB_SAN_PATTERN
    )
    assert report.ok
    assert report.verified_at == NOW


@pytest.mark.parametrize(
    "name, ok",
    [
        ("metadata.azure.com", True),
        ("eastus.metadata.azure.com", True),
        ("EASTUS.Metadata.Azure.COM", True),
        ("metadata.azure.us", True),
        ("metadata.azure.cn", True),
        ("metadata.microsoftazure.de", True),
        ("metadata.azure.com.evil.test", False),
        ("evilmetadata.azure.com", False),
        ("metadata.azure.org", False),
    ],
)
def test_default_san_pattern(name: str, ok: bool) -> None:
    assert bool(compile_san_pattern(DEFAULT_SAN_PATTERN).fullmatch(name)) is ok


def test_custom_san_pattern_is_used(lab_chain: LabSigningChain) -> None:
    report = verify_document(
        _doc(lab_chain), nonce=NONCE, trust=lab_chain.trust_store(), san_pattern=r"^other\.test$"
    )
    assert report.failure_kind == "san-mismatch"
    assert "other" in report.check("san").reason


def test_invalid_san_pattern_is_a_usage_error(lab_chain: LabSigningChain) -> None:
    with pytest.raises(UsageError) as caught:
        verify_document(_doc(lab_chain), trust=lab_chain.trust_store(), san_pattern="(")
    assert isinstance(caught.value, HcibenefitError)


def test_nonce_missing_from_document(lab_chain: LabSigningChain) -> None:
    created = format_imds_timestamp(NOW)
    body = json.dumps({"timeStamp": {"createdOn": created, "expiresOn": created}}).encode()
    report = verify_document(
        sign_without_attributes(body, lab_chain.leaf),
        nonce=NONCE,
        at=NOW,
        trust=lab_chain.trust_store(),
        san_pattern=LAB_SAN_PATTERN,
    )
    assert report.failure_kind == "nonce-mismatch"
    assert "no nonce" in report.check("nonce").reason


def test_first_failure_wins_and_others_are_still_reported(lab_chain: LabSigningChain) -> None:
    # Expired, wrong SAN pattern and wrong nonce at once: the kind is the earliest check's; all are listed.
    report = verify_document(
        _doc(lab_chain, fault="expired"), nonce="0000000000", trust=lab_chain.trust_store(), at=NOW
    )
    assert report.failure_kind == "san-mismatch"
    assert [c.id for c in report.checks if c.ok is False] == ["san", "nonce", "validity"]


def test_report_to_dict_is_json(lab_chain: LabSigningChain) -> None:
    report = verify_document(
        _doc(lab_chain), nonce=NONCE, trust=lab_chain.trust_store(), san_pattern=LAB_SAN_PATTERN
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True
    assert data["failure_kind"] is None
    assert [c["id"] for c in data["checks"]] == list(CHECK_ORDER)
    assert set(data["checks"][0]) == {"id", "ok", "reason"}
    assert data["payload"]["vmId"] == "vm"
    assert data["signer"]["sans"] == ["attest.metadata.hcibenefit-lab.test"]
    assert len(data["chain"]) == 3


def test_failure_kinds_are_the_documented_set() -> None:
    assert set(FAILURE_KINDS) == {
        "unparsable",
        "bad-signature",
        "untrusted-chain",
        "missing-intermediate",
        "san-mismatch",
        "nonce-mismatch",
        "expired",
        "not-yet-valid",
    }
    assert CHECK_ORDER == ("parse", "signature", "chain", "san", "nonce", "validity")
