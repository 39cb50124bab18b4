"""ConvertTo-Json's string escaping (HttpUtility.JavaScriptStringEncode as 5.1 applies it), every character."""

from __future__ import annotations

import re

from hcibenefit.lab.powershell.json51 import escape

# The rule as the sources state it: these characters, and every control character, are escaped; the named
# escapes where JavaScript has one, else \u00xx in lower case.
_ESCAPED = re.compile(r"[\x00-\x1f\"\\'<>&\x85\u2028\u2029]")
_NAMED = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _reference(text: str) -> str:
    return '"' + _ESCAPED.sub(lambda m: _NAMED.get(m.group(0)) or f"\\u{ord(m.group(0)):04x}", text) + '"'


def test_every_character_of_the_first_planes_and_the_line_separators() -> None:
    text = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF) + "\u2028\u2029😀"
    assert escape(text) == _reference(text)


def test_examples() -> None:
    assert escape("<a href='x'>&</a>") == '"\\u003ca href=\\u0027x\\u0027\\u003e\\u0026\\u003c/a\\u003e"'
    assert escape('say "hi"\r\n\tC:\\x\x01\x7f') == '"say \\"hi\\"\\r\\n\\tC:\\\\x\\u0001\x7f"'
