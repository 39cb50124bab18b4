"""The signed JSON inside the PKCS#7: decoding it and reading its timestamps.

IMDS writes ``timeStamp`` values like ``11/30/20 21:19:19 -0000`` (month/day/two-digit year, as .NET formats
them). ISO 8601 is accepted as well because the HCI host's format is unknown (platform.md section 8, "HCI
unknowns"). ASSUMPTION: a timestamp without a UTC offset is UTC.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

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
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContentError(f"signed content is not JSON ({exc.msg} at column {exc.colno})") from None
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
    except ValueError:
        raise ContentError(f"'timeStamp.{key}' is not a timestamp we understand: {value!r}") from None


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an IMDS (``11/30/20 21:19:19 -0000``) or ISO 8601 timestamp into an aware UTC datetime."""
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
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def format_imds_timestamp(value: dt.datetime) -> str:
    """The inverse of parse_timestamp for the IMDS format, for makers of test documents."""
    return value.astimezone(dt.timezone.utc).strftime("%m/%d/%y %H:%M:%S -0000")
