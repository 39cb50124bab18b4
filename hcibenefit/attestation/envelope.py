"""From whatever a user or the guest probe hands us to the DER bytes of one PKCS#7 structure.

Accepted shapes (checked in this order):

* Azure IMDS: ``{"encoding": "pkcs7", "signature": "<base64 PKCS#7>"}``.
* HCI, as the seed article decodes it: ``{"data": "<base64 JSON>"}`` whose JSON carries ``"verification":
  "<base64 PKCS#7>"`` beside other fields. ASSUMPTION: the HCI envelope is unverified (docs/platform.md §1),
  so we only rely on ``verification`` and ignore the other, unsigned, fields.
* That inner JSON on its own (``{"verification": ...}``), for people who pasted the decoded ``data``.
* A bare PKCS#7: base64 (whitespace and line breaks allowed), PEM (``-----BEGIN PKCS7/CMS-----``) or DER
  bytes.

Text may come as UTF-8 (with or without BOM) or UTF-16 with a BOM, which is what Windows PowerShell 5.1's
``Out-File`` writes by default on the guest.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from hcibenefit import jsonguard
from hcibenefit.attestation.report import Shape


class EnvelopeError(ValueError):
    """The input is not one of the shapes above; the message says which part failed, for a person."""


@dataclass(frozen=True)
class Unwrapped:
    shape: Shape
    pkcs7_der: bytes


_PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_LABELS = {"PKCS7", "CMS", "PKCS #7 SIGNED DATA"}
_WHITESPACE = re.compile(r"\s+")


def unwrap(raw: str | bytes) -> Unwrapped:
    if isinstance(raw, bytes):
        if _looks_like_der(raw):
            return Unwrapped("pkcs7", raw)
        text = _decode_text(raw)
    else:
        text = raw
    text = text.lstrip("\ufeff").strip()
    if not text:
        raise EnvelopeError("input is empty")
    if text.startswith(("{", "[")):
        return _from_json_text(text)
    if text.startswith("-----BEGIN"):
        return Unwrapped("pkcs7", _from_pem(text))
    if text.startswith('"'):
        # A JSON string literal: someone saved only the value of "signature" with ConvertTo-Json.
        value = _loads(text, "input")
        if not isinstance(value, str):
            raise EnvelopeError("input is a JSON value but neither an object nor a string")
        return Unwrapped("pkcs7", b64decode(value, "input"))
    return Unwrapped("pkcs7", b64decode(text, "input"))


def b64decode(value: str, what: str) -> bytes:
    """Strict base64 after dropping whitespace; a missing final padding is forgiven (copy-paste loses it)."""
    compact = _WHITESPACE.sub("", value)
    if not compact:
        raise EnvelopeError(f"{what} is empty")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"{what} is not base64 ({exc})") from None


def _looks_like_der(raw: bytes) -> bool:
    # A DER SEQUENCE with a long-form length: byte 2 is 0x80..0x84, which can never follow '0' in UTF-8 text
    # that we would otherwise accept, so this does not steal base64 input.
    return len(raw) > 2 and raw[0] == 0x30 and 0x80 <= raw[1] <= 0x84


def _decode_text(raw: bytes) -> str:
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"input is neither text (UTF-8/UTF-16) nor DER ({exc.reason})") from None


def _loads(text: str, what: str) -> Any:
    try:
        return jsonguard.loads(text)
    except jsonguard.UntrustedJSONError as exc:
        raise EnvelopeError(f"{what} is {exc}") from None


def _from_pem(text: str) -> bytes:
    m = _PEM_RE.search(text)
    if m is None:
        raise EnvelopeError("input starts like PEM but has no matching END line")
    if m.group(1) not in _PEM_LABELS:
        raise EnvelopeError(f"PEM block is {m.group(1)!r}, expected PKCS7 or CMS")
    return b64decode(m.group(2), "PEM body")


def _from_json_text(text: str) -> Unwrapped:
    doc = _loads(text, "input")
    if not isinstance(doc, dict):
        raise EnvelopeError("input JSON is not an object")
    if "signature" in doc:
        encoding = doc.get("encoding", "pkcs7")
        if not isinstance(encoding, str) or encoding.lower() != "pkcs7":
            raise EnvelopeError(f"unsupported encoding {encoding!r}; expected 'pkcs7'")
        return Unwrapped("azure", b64decode(_str_field(doc, "signature", "input"), "'signature'"))
    if "data" in doc:
        inner = _loads(_b64_text(_str_field(doc, "data", "input"), "'data'"), "decoded 'data'")
        if not isinstance(inner, dict):
            raise EnvelopeError("decoded 'data' is not a JSON object")
        if "verification" not in inner:
            raise EnvelopeError(f"decoded 'data' has no 'verification' field (fields: {_names(inner)})")
        return Unwrapped(
            "hci", b64decode(_str_field(inner, "verification", "decoded 'data'"), "'verification'")
        )
    if "verification" in doc:
        return Unwrapped("hci-data", b64decode(_str_field(doc, "verification", "input"), "'verification'"))
    raise EnvelopeError(
        f"JSON object has none of 'signature' (Azure), 'data' (HCI) or 'verification' (fields: {_names(doc)})"
    )


def _b64_text(value: str, what: str) -> str:
    try:
        return b64decode(value, what).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EnvelopeError(f"{what} does not decode to UTF-8 text") from None


def _str_field(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise EnvelopeError(f"'{name}' in {where} is {type(value).__name__}, expected a base64 string")
    return value


def _names(obj: dict[str, Any]) -> str:
    return ", ".join(sorted(map(str, obj))) or "none"
