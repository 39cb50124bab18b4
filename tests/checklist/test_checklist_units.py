"""The checklist's pure parts: how results fold into items, fixes merge, releases are judged, the go/no-go
line and exit code, and --vm-file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hcibenefit.checklist import avd
from hcibenefit.checklist.items import ITEMS
from hcibenefit.checklist.judge import merge_fixes
from hcibenefit.checklist.model import Checklist, Item, ItemStatus, VMChecklist, go_line, worst
from hcibenefit.cli.checklist_cmd import exit_code, read_vm_file
from hcibenefit.errors import UsageError

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)
P, W, F, N = ItemStatus.PASS, ItemStatus.WARN, ItemStatus.FAIL, ItemStatus.NA


def test_worst_status_wins_and_pass_beats_not_applicable() -> None:
    assert worst([P, N, W]) is W
    assert worst([N, F, W, P]) is F
    assert worst([N, P]) is P
    assert worst([N, N]) is N
    assert worst([]) is N


def test_overlapping_fixes_are_said_once() -> None:
    a = "first on n3: Install-Module -Name Az.StackHCI; then hcibenefit host enable --cluster c --node n3"
    b = "hcibenefit host enable --cluster c --node n3"
    assert merge_fixes([a, b, None, a]) == a
    assert merge_fixes([b, a]) == f"{b}; also {a}"
    assert merge_fixes([None, ""]) is None
    assert merge_fixes(["hcibenefit host sync --node n1", "hcibenefit host sync --node n2"]) == (
        "hcibenefit host sync --node n1; also hcibenefit host sync --node n2"
    )


@pytest.mark.parametrize(
    ("release", "build", "now", "verdict"),
    [
        ("22H2", "20349", NOW, "fail"),
        ("21H2", "20348", NOW, "fail"),
        ("23H2", "20350", NOW, "warn"),
        ("23H2+", "25398", NOW, "warn"),
        ("23H2+", "25398", dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc), "ok"),
        ("23H2+", "26100", NOW, "ok"),
        ("23H2+", "26200", NOW, "ok"),
        ("unknown", "", NOW, "fail"),
    ],
)
def test_releases(release: str, build: str, now: dt.datetime, verdict: str) -> None:
    assert avd.release_of(release, build, now).verdict == verdict


def _vm(name: str, *statuses: ItemStatus, assessed: bool = True) -> VMChecklist:
    items = tuple(Item(f"i{n}", "t", "C1", s, "e", assessed=assessed) for n, s in enumerate(statuses))
    return VMChecklist(name, "c", "n", items)


def test_go_no_go_and_exit_codes() -> None:
    go = Checklist((_vm("a", P, N, W),), strict=False, window_days=14)
    assert go.go and exit_code(go) == 0 and go_line(go).startswith("GO: all 1 session host(s)")
    assert "1 warning(s)" in go_line(go)
    strict = Checklist((_vm("a", P, N, W),), strict=True, window_days=14)
    assert not strict.go and exit_code(strict) == 1 and "(--strict)" in go_line(strict)
    failing = Checklist((_vm("a", P), _vm("b", F)), strict=False, window_days=14)
    assert not failing.go and exit_code(failing) == 1
    assert go_line(failing) == "NO-GO: 1 of 2 session host(s) have a FAIL item: b"
    unknown = Checklist((_vm("a", F, assessed=False),), strict=False, window_days=14)
    assert exit_code(unknown) == 4
    both = Checklist((_vm("a", F), _vm("b", F, assessed=False)), strict=False, window_days=14)
    assert exit_code(both) == 5
    empty = Checklist((), strict=False, window_days=14)
    assert not empty.go and exit_code(empty) == 1 and go_line(empty).startswith("NO-GO: no session host")


def test_json_keeps_the_contract_fields_first() -> None:
    document = Checklist((_vm("a", P),), strict=False, window_days=7).to_dict()
    assert list(document)[:2] == ["go", "vms"]
    assert list(document["vms"][0])[:4] == ["vm", "cluster", "go", "items"]
    assert list(document["vms"][0]["items"][0])[:4] == ["item", "status", "evidence", "fix"]


def test_items_are_unique_and_name_only_registered_checks() -> None:
    from hcibenefit.checks.registry import all_checks

    ids = [d.id for d in ITEMS]
    assert len(ids) == len(set(ids))
    known = {m.id for m in all_checks()}
    for definition in ITEMS:
        assert set(definition.checks) <= known, definition.id


def test_vm_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_bytes("\ufeff# pool 01\navd-sh01\r\n\n  avd-[ab]*  \n#avd-old\nname with spaces\n".encode())
    assert read_vm_file(path) == ("avd-sh01", "avd-[ab]*", "name with spaces")
    path.write_text("# nothing\n\n")
    with pytest.raises(UsageError, match="no VM names"):
        read_vm_file(path)
    path.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(UsageError, match=r"hosts.txt:2: not UTF-8"):
        read_vm_file(path)
    path.write_bytes(b"x" * (3 * 1024 * 1024))
    with pytest.raises(UsageError, match="larger than 2 MiB"):
        read_vm_file(path)
    with pytest.raises(UsageError, match="no such file"):
        read_vm_file(tmp_path / "missing")
