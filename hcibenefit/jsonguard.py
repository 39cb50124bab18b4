"""Parsing JSON that someone else wrote: a host's script output, a guest's answer, an attested document.

``json.loads`` raises more than ``JSONDecodeError`` on hostile input: ``ValueError`` for a number of more
than 4,300 digits (CPython's int conversion limit), ``RecursionError`` for deep nesting. It also accepts
``NaN``, ``Infinity`` and ``1e999`` (infinity), which are not JSON and would make our own JSON output invalid. `loads` turns
all of these into one `UntrustedJSONError` whose message says what was wrong, and bounds the nesting of
what it returns, so nothing built from the value later (a report, its JSON rendering) can hit Python's
recursion limit.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

MAX_DEPTH = 64
"""Nesting a document we parse may have. PowerShell's ConvertTo-Json stops at 100 and our scripts at
-Depth 8; IMDS documents nest 3 levels. Far below Python's recursion limit."""


class UntrustedJSONError(ValueError):
    """The text is not JSON we accept. The message starts with "not " and is for a person; no raw
    input is echoed."""


def _no_constants(name: str) -> NoReturn:
    raise UntrustedJSONError(f"not acceptable JSON: {name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as infinity, which JSON output cannot carry
        raise UntrustedJSONError(f"not acceptable JSON: the number {text[:20]} is out of range")
    return value


def loads(text: str | bytes, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """The value of ``text``, or `UntrustedJSONError`. ``max_depth=None`` skips the nesting check."""
    try:
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise UntrustedJSONError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except UntrustedJSONError:
        raise
    except RecursionError:
        raise UntrustedJSONError("not acceptable JSON: nested too deeply to parse") from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion: ..."
        raise UntrustedJSONError(f"not acceptable JSON: {str(exc).split(':')[0]}") from None
    if max_depth is not None and depth(value, stop_after=max_depth) > max_depth:
        raise UntrustedJSONError(f"not acceptable JSON: nested more than {max_depth} levels deep")
    return value


def depth(value: Any, *, stop_after: int | None = None) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0). Iterative: no recursion limit."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if stop_after is not None and deepest > stop_after:
                return deepest
        stack.extend((child, level) for child in children if isinstance(child, dict | list))
    return deepest
