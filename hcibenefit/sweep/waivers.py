"""Waivers: a YAML file of accepted exceptions, each silencing the results of one check (or a glob of
checks) on one target (or a glob of targets) for a stated reason, until it expires.

    waivers:
      - check: node.module-*            # a check id, or a glob of ids
        target: hci-lab-02/lab02-n3     # cluster[/node[/vm]], each part a glob; missing parts match all
        reason: node is being rebuilt (CHG0042)
        owner: alice@example.com        # optional
        expires: 2026-09-01             # optional; a date means 00:00 UTC that day

A waived result stays in every report, marked waived with its reason, and does not fail the run. A waiver
past its expiry no longer applies, and the report says so. Errors are located like the inventory's:
file:line:col: field: message.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcibenefit.checks.results import NO_PART, Result, Waiver
from hcibenefit.yamlschema import (
    INVALID,
    Ctx,
    Field,
    Int,
    ListOf,
    Loc,
    MapSpec,
    Scalar,
    SchemaError,
    Section,
    Str,
    YNode,
    compose,
    node_loc,
    read_document,
)


class WaiverError(SchemaError):
    default_hint = "see docs/sweep.md for the waivers file format"


class When(Scalar):
    expected = "a date (2026-09-01) or a date and time (2026-09-01T18:00:00Z)"

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        parsed = parse_when(str(value)) if isinstance(value, str) else None
        return parsed if parsed is not None else self.fail(node, loc, ctx)


def parse_when(text: str) -> dt.datetime | None:
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


class CheckPattern(Str):
    """A check id or a glob that matches at least one check: a typo would otherwise waive nothing, silently."""

    def __init__(self, known: Sequence[str]) -> None:
        super().__init__("a check id or a glob of check ids, such as node.module-*")
        self.known = known

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        out = super().convert(value, node, loc, ctx)
        if isinstance(out, str) and self.known and not any(_match(k, out) for k in self.known):
            import difflib

            close = difflib.get_close_matches(out.lower(), self.known, n=1)
            hint = f'; did you mean "{close[0]}"?' if close else "; `hcibenefit checks list` shows every id"
            ctx.error(loc, f'no check matches "{out}"{hint}')
            return INVALID
        return out


class TargetPattern(Str):
    def __init__(self) -> None:
        super().__init__("cluster[/node[/vm]], each part a name or a glob, such as hci-01/*/avd-*")

    def convert(self, value: object, node: YNode, loc: Loc, ctx: Ctx) -> Any:
        out = super().convert(value, node, loc, ctx)
        if isinstance(out, str):
            parts = out.split("/")
            if len(parts) > 3 or any(not p.strip() for p in parts):
                return self.fail(node, loc, ctx)
        return out


def _schema(known_checks: Sequence[str]) -> MapSpec:
    entry = MapSpec(
        "a mapping with check, target, reason and optionally owner and expires",
        {
            "check": Field(CheckPattern(known_checks), required=True),
            "target": Field(TargetPattern(), required=True),
            "reason": Field(
                Str("a reason: why this is accepted, for whoever reads the report"), required=True
            ),
            "owner": Str("who answers for this waiver"),
            "expires": When(),
        },
        hints={
            "id": "check",
            "checks": "check",
            "targets": "target",
            "expiry": "expires",
            "until": "expires",
        },
    )
    return MapSpec(
        "a mapping with waivers: (a list of waivers)",
        {
            "version": Int(1, 1),
            "waivers": Field(ListOf(entry, expected="a list of waivers"), required=True),
        },
        extension_prefix="x-",
    )


def _match(value: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(value.casefold(), pattern.casefold())


@dataclass(frozen=True)
class WaiverEntry:
    check: str
    target: str
    reason: str
    owner: str | None
    expires: dt.datetime | None
    where: str

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def matches(self, result: Result) -> bool:
        if not _match(result.check.id, self.check):
            return False
        parts = self.target.split("/")
        parts += ["*"] * (3 - len(parts))
        actual = (result.target.cluster, result.target.node or NO_PART, result.target.vm or NO_PART)
        return all(_match(a, p) for a, p in zip(actual, parts, strict=True))

    def as_waiver(self, now: dt.datetime) -> Waiver:
        return Waiver(
            self.check, self.target, self.reason, self.owner, self.expires, self.expired(now), self.where
        )


@dataclass(frozen=True)
class WaiverUse:
    """How one entry fared in a run: what it silenced, or would have if it had not expired."""

    entry: WaiverEntry
    expired: bool
    matched: tuple[str, ...]
    """Ids of the FAIL/ERROR results it matched."""

    def to_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "check": e.check,
            "target": e.target,
            "reason": e.reason,
            "owner": e.owner,
            "expires": e.expires.isoformat() if e.expires else None,
            "expired": self.expired,
            "where": e.where,
            "matched": list(self.matched),
        }

    def note(self) -> str | None:
        e = self.entry
        who = f", owner {e.owner}" if e.owner else ""
        if self.expired:
            assert e.expires is not None
            tail = f"; {len(self.matched)} result(s) it matched count again" if self.matched else ""
            return f"waiver {e.check} on {e.target} ({e.where}{who}) expired {e.expires:%Y-%m-%d %H:%M} UTC{tail}"
        if not self.matched:
            return f"waiver {e.check} on {e.target} ({e.where}{who}) matched nothing in this run"
        return None


@dataclass(frozen=True)
class Waivers:
    entries: tuple[WaiverEntry, ...] = ()
    source: str | None = None

    def apply(self, results: Iterable[Result], now: dt.datetime) -> tuple[list[Result], list[WaiverUse]]:
        """Each result with the first entry that matches it (FAIL and ERROR only), and each entry's use."""
        matched: dict[int, list[str]] = {i: [] for i in range(len(self.entries))}
        out = []
        for result in results:
            if result.status.value not in ("FAIL", "ERROR"):
                out.append(result)
                continue
            # An active waiver wins over an expired one for the same result.
            hits = [i for i, e in enumerate(self.entries) if e.matches(result)]
            hits.sort(key=lambda i: self.entries[i].expired(now))
            if hits:
                matched[hits[0]].append(result.id)
                out.append(result.with_waiver(self.entries[hits[0]].as_waiver(now)))
            else:
                out.append(result)
        uses = [WaiverUse(e, e.expired(now), tuple(matched[i])) for i, e in enumerate(self.entries)]
        return out, uses


def load_waivers(path: str | os.PathLike[str], known_checks: Sequence[str]) -> Waivers:
    source = os.fspath(path)
    text = read_document(source, WaiverError, what="the waivers file")
    return parse_waivers(text, source, known_checks)


def parse_waivers(text: str, source: str, known_checks: Sequence[str]) -> Waivers:
    ctx = Ctx(source, Path(source).parent)
    root = compose(text, ctx, document="a waivers file", empty="the waivers file is empty; expected waivers:")
    if root is None:
        raise WaiverError(ctx.issues)
    top = ctx.walk(_schema(known_checks), root, node_loc(root, ""))
    if ctx.issues or not isinstance(top, Section):
        raise WaiverError(sorted(ctx.issues, key=lambda i: (i.line or 0, i.col or 0)))
    entries = []
    for item in top.get("waivers", ()):
        assert isinstance(item, Section)
        entries.append(
            WaiverEntry(
                check=item.get("check"),
                target=item.get("target"),
                reason=item.get("reason"),
                owner=item.get("owner"),
                expires=item.get("expires"),
                where=f"{source}:{item.loc.line}",
            )
        )
    return Waivers(tuple(entries), source)


__all__ = ["WaiverEntry", "WaiverError", "WaiverUse", "Waivers", "load_waivers", "parse_waivers"]
