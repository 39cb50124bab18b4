"""The signed JSON inside the PKCS#7: decoding it and reading its timestamps.

IMDS writes ``timeStamp`` values like ``11/30/20 21:19:19 -0000`` (month/day/two-digit year, as .NET formats
them). ISO 8601 is accepted as well because the HCI host's format is unknown (docs/platform.md §8, "HCI
unknowns"). ASSUMPTION: a timestamp without a UTC offset is UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hcibenefit import jsonguard

_IMDS_FORMATS = ("%m/%d/%y %H:%M:%S %z", "%m/%d/%Y %H:%M:%S %z", "%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S")


class ContentError(ValueError):
    """The signed content is not an attested document (maps to the ``parse`` check)."""


@dataclass(frozen=True)
class Timestamps:
    created_on: dt.datetime
    expires_on: dt.datetime


def decode_payload(content: bytes) -> dict[str, Any]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ContentError("signed content is not UTF-8 text") from None
    try:
        payload = jsonguard.loads(text)
    except jsonguard.UntrustedJSONError as exc:
        raise ContentError(f"signed content is {exc}") from None
    if not isinstance(payload, dict):
        raise ContentError("signed content is JSON but not an object")
    return payload


def timestamps(payload: dict[str, Any]) -> Timestamps:
    stamp = payload.get("timeStamp")
    if not isinstance(stamp, dict):
        raise ContentError("signed content has no 'timeStamp' object")
    return Timestamps(_field(stamp, "createdOn"), _field(stamp, "expiresOn"))


def _field(stamp: dict[str, Any], key: str) -> dt.datetime:
    value = stamp.get(key)
    if not isinstance(value, str):
        raise ContentError(f"signed content has no 'timeStamp.{key}' string")
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ContentError(f"'timeStamp.{key}' is not a timestamp we understand: {shown!r} ({exc})") from None


def parse_timestamp(value: str, *, clamp: bool = False) -> dt.datetime:
    """Parse an IMDS (``11/30/20 21:19:19 -0000``) or ISO 8601 timestamp into an aware UTC datetime.

    A moment whose UTC value lies outside what Python can represent (``0001-01-01T00:00:00+01:00``)
    raises ValueError, or with ``clamp`` becomes the first or last representable moment.
    """
    text = value.strip()
    parsed: dt.datetime | None = None
    for fmt in _IMDS_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        # Python 3.10's fromisoformat does not know the "Z" suffix.
        iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        parsed = dt.datetime.fromisoformat(iso)
    return to_utc(parsed, clamp=clamp)


FIRST_MOMENT = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
LAST_MOMENT = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def to_utc(value: dt.datetime, *, clamp: bool = False) -> dt.datetime:
    """``value`` in UTC (naive means UTC). Out of range: ValueError, or with ``clamp`` the nearest bound."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:
        if not clamp:
            raise ValueError("outside the range of representable dates once converted to UTC") from None
        # Only a moment in year 1 or 9999 with an offset can overflow; its year says which end.
        return FIRST_MOMENT if value.year == dt.MINYEAR else LAST_MOMENT


def format_imds_timestamp(value: dt.datetime) -> str:
    """The inverse of parse_timestamp for the IMDS format, for makers of test documents."""
    return value.astimezone(dt.timezone.utc).strftime("%m/%d/%y %H:%M:%S -0000")
