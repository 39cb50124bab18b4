"""Reports are rendered whole before any of it is written, without holding a large one in memory twice."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, TextIO

import pytest

import hcibenefit.cli.context as context_module
from hcibenefit.cli.context import AppContext
from hcibenefit.errors import UsageError
from hcibenefit.report.sweep.machine import render_json

DOCUMENTS: list[dict[str, Any]] = [
    {},
    {"findings": []},
    {
        "run": {"id": 1, "nested": [1, {"a": None}]},
        "findings": [{"vm": "avd-1", "x": 1.5}, {"vm": "é\ud800"}],
    },
    {"a": [], "b": 'text "quoted" \\ back\nline', "c": [[1, 2], []], "d": True, "findings": [{"k": []}]},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_sweep_json_written_piecewise_is_exactly_one_dumps(document: dict[str, Any]) -> None:
    out = io.StringIO()
    render_json(document, out, None)
    assert out.getvalue() == json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


def test_a_document_with_keys_json_would_convert_is_still_one_dumps() -> None:
    out = io.StringIO()
    render_json({1: "one", "findings": [1]}, out, None)  # type: ignore[dict-item]
    assert out.getvalue() == '{"1":"one","findings":[1]}\n'


def _render(document: dict[str, Any], fmt: str, stream: TextIO, width: int | None) -> None:
    render_json(document, stream, width)


def test_a_report_larger_than_the_memory_spool_is_written_whole_and_unchanged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(context_module, "_SPOOL_CHARS", 1000)  # spill to the temporary file at once
    monkeypatch.setattr(context_module, "_COPY_CHARS", 333)  # and copy it in many pieces
    rolled: list[bool] = []
    real = context_module._render_buffer

    def watched() -> TextIO:
        buffer = real()
        original_copy = context_module._copy

        def copy(buf: TextIO, stream: TextIO) -> None:
            rolled.append(bool(getattr(buf, "_rolled", False)))
            original_copy(buf, stream)

        monkeypatch.setattr(context_module, "_copy", copy)
        return buffer

    monkeypatch.setattr(context_module, "_render_buffer", watched)
    document = {"findings": [{"vm": f"avd-{i}", "note": "é\ud800 ✓"} for i in range(500)]}
    AppContext().emit_document(document, "csv", _render)  # not json: no envelope, the document as it is
    out = capsys.readouterr().out
    assert rolled == [True]
    # The lone surrogate is escaped for the stream as before; everything else is byte for byte the same.
    expected = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
    assert out == expected.replace("\ud800", "\\ud800")


def test_a_failure_while_rendering_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(document: Any, fmt: str, stream: TextIO, width: int | None) -> None:
        stream.write("x" * 20_000_000)  # past the spool: on disk by now
        raise RuntimeError("renderer bug")

    with pytest.raises(RuntimeError):
        AppContext().emit_document({}, "csv", broken)
    assert capsys.readouterr().out == ""


def test_a_report_that_cannot_spill_to_the_temporary_directory_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    monkeypatch.setattr(context_module, "_SPOOL_CHARS", 10)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(UsageError) as caught:
        AppContext().emit_document({"findings": list(range(100))}, "csv", _render)
    assert "before writing it" in str(caught.value) and "nothing of it was written" in str(caught.value)
    assert capsys.readouterr().out == ""
