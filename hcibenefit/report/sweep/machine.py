"""Formats for programs: JSON (the document itself), CSV (one row per result, the JSON findings' fields),
JUnit XML (one test case per check and target, for CI pipelines)."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, TextIO

from hcibenefit.checks.results import ResultRecord, plain
from hcibenefit.sweep.model import RECORD_FIELDS

# default=plain: a sweep's findings are ResultRecords (checks.results), encoded as the dicts they equal.
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=plain).encode


def render_json(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    """Exactly ``json.dumps(document, ensure_ascii=False, separators=(",", ":"))``, written a top-level
    value at a time and a list's items one by one.

    Compact: a 1,000-VM fleet has tens of thousands of results; `jq .` indents when a person reads it.
    Piecewise: a 10,000-VM sweep's document is some 70 MB of JSON, and one ``dumps`` builds it twice
    over in memory before the stream sees a byte.
    """
    del width
    if not all(isinstance(key, str) for key in document):
        stream.write(json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=plain) + "\n")
        return
    stream.write("{")
    for index, (key, value) in enumerate(document.items()):
        stream.write(("," if index else "") + _compact(key) + ":")
        if isinstance(value, list):
            stream.write("[")
            for position, item in enumerate(value):
                stream.write(
                    ("," if position else "") + _compact(plain(item) if type(item) is ResultRecord else item)
                )
            stream.write("]")
        else:
            stream.write(_compact(value))
    stream.write("}\n")


def render_csv(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    del width
    writer = csv.DictWriter(stream, fieldnames=RECORD_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in document["findings"]:
        writer.writerow({k: _csv_value(record.get(k)) for k in RECORD_FIELDS})


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A cell starting with = + - @ runs as a formula when a spreadsheet opens the file.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value: Any) -> str:
    """Text XML 1.0 can carry: a guest's answer may hold control characters ElementTree would write as is."""
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def render_junit(document: Mapping[str, Any], stream: TextIO, width: int | None) -> None:
    """One <testsuite> per check, one <testcase> per target: FAIL a <failure>, ERROR an <error>, N/A and
    waived results <skipped> with why."""
    del width
    run = document["run"]
    suites: dict[str, list[Mapping[str, Any]]] = {}
    for record in document["findings"]:
        suites.setdefault(record["check"], []).append(record)
    root = ET.Element(
        "testsuites",
        name="hcibenefit sweep",
        timestamp=run["started"],
        time=f"{run['duration_s']:.3f}",
        tests=str(len(document["findings"])),
    )
    totals = {"failures": 0, "errors": 0, "skipped": 0}
    for check, records in sorted(suites.items()):
        suite = ET.SubElement(
            root, "testsuite", name=check, tests=str(len(records)), timestamp=run["started"]
        )
        counts = {"failures": 0, "errors": 0, "skipped": 0}
        for r in records:
            target = "/".join(p for p in (r["cluster"], r.get("node"), r.get("vm")) if p)
            case = ET.SubElement(
                suite, "testcase", classname=_x(f"hcibenefit.{r['cluster']}"), name=_x(f"{check} {target}")
            )
            case.set("id", _x(r["id"]))
            if r.get("waived"):
                ET.SubElement(case, "skipped", message=_x(f"waived: {r['waiver_reason']}"))
                counts["skipped"] += 1
            elif r["status"] == "FAIL":
                failure = ET.SubElement(case, "failure", message=_x(r["message"]), type=r["severity"])
                failure.text = _x(f"{r['title']}: {r['message']}\nfix: {r.get('remediation') or '-'}")
                counts["failures"] += 1
            elif r["status"] == "ERROR":
                error = ET.SubElement(case, "error", message=_x(r["message"]), type="not-assessed")
                error.text = _x(f"{r['title']}: not assessed: {r['message']}")
                counts["errors"] += 1
            elif r["status"] == "N/A":
                ET.SubElement(case, "skipped", message=_x(f"not applicable: {r['message']}"))
                counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(root, encoding="unicode"))
    stream.write("\n")
