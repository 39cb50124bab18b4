"""`hcibenefit attest verify FILE`: a lab document verifies, each bad kind is refused with its exit code."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.cli.app import run
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.signing import LAB_SAN_PATTERN, LabSigningChain

NONCE = "1234567890"


@pytest.fixture
def ca_file(tmp_path: Path, lab_chain: LabSigningChain) -> Path:
    path = tmp_path / "lab-ca.pem"
    path.write_bytes(lab_chain.ca_bundle_pem())
    return path


def _write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    capsys.readouterr()
    code = run(["attest", "verify", *argv, "--format", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def _lab_args(ca_file: Path) -> list[str]:
    return ["--ca", str(ca_file), "--san-pattern", LAB_SAN_PATTERN]


@pytest.fixture(autouse=True)
def _no_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCIBENEFIT_INVENTORY", raising=False)


@pytest.mark.parametrize("shape", ["hci", "azure"])
def test_a_lab_document_verifies(
    tmp_path: Path, ca_file: Path, lab_chain: LabSigningChain, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    doc = lab_chain.make_document(vm_id="vm-1", subscription_id="sub", nonce=NONCE, shape=shape)  # type: ignore[arg-type]
    code, report, _ = _verify(
        capsys, str(_write(tmp_path, "doc.json", doc)), "--nonce", NONCE, *_lab_args(ca_file)
    )
    assert code == ExitCode.OK
    assert report is not None and report["ok"] is True and report["shape"] == shape
    assert [c["id"] for c in report["checks"]] == ["parse", "signature", "chain", "san", "nonce", "validity"]
    assert report["payload"]["vmId"] == "vm-1" and report["nonce"] == NONCE


def test_the_bare_base64_signature_verifies(
    tmp_path: Path, ca_file: Path, lab_chain: LabSigningChain, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = lab_chain.make_document(vm_id="vm-1", subscription_id="sub", nonce=NONCE, shape="azure")
    path = _write(tmp_path, "signature.txt", doc["signature"] + "\n")
    code, report, _ = _verify(capsys, str(path), *_lab_args(ca_file))
    assert code == ExitCode.OK and report is not None and report["shape"] == "pkcs7"


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("expired", "expired"),
        ("tampered", "bad-signature"),
        ("missing-intermediate", "missing-intermediate"),
        ("wrong-nonce", "nonce-mismatch"),
    ],
)
def test_each_bad_kind_exits_1_with_its_failure_kind(
    tmp_path: Path,
    ca_file: Path,
    lab_chain: LabSigningChain,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    kind: str,
) -> None:
    doc = lab_chain.make_document(vm_id="vm-1", subscription_id="sub", nonce=NONCE, fault=fault)  # type: ignore[arg-type]
    code, report, _ = _verify(
        capsys, str(_write(tmp_path, "doc.json", doc)), "--nonce", NONCE, *_lab_args(ca_file)
    )
    assert code == ExitCode.FINDINGS
    assert report is not None and report["ok"] is False and report["failure_kind"] == kind


def test_trust_and_signer_name_come_from_the_options(
    tmp_path: Path, ca_file: Path, lab_chain: LabSigningChain, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(
        _write(tmp_path, "doc.json", lab_chain.make_document(vm_id="v", subscription_id="s", nonce=None))
    )
    code, report, _ = _verify(capsys, path, "--san-pattern", LAB_SAN_PATTERN)  # no lab CA: not trusted
    assert code == ExitCode.FINDINGS and report is not None
    assert report["failure_kind"] in ("untrusted-chain", "missing-intermediate")
    code, report, _ = _verify(capsys, path, "--ca", str(ca_file))  # Azure's SAN pattern by default
    assert code == ExitCode.FINDINGS and report is not None and report["failure_kind"] == "san-mismatch"


def test_a_nonce_is_only_compared_when_given(
    tmp_path: Path, ca_file: Path, lab_chain: LabSigningChain, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(
        _write(tmp_path, "doc.json", lab_chain.make_document(vm_id="v", subscription_id="s", nonce=NONCE))
    )
    assert _verify(capsys, path, *_lab_args(ca_file))[0] == ExitCode.OK
    code, report, _ = _verify(capsys, path, "--nonce", "0000000000", *_lab_args(ca_file))
    assert code == ExitCode.FINDINGS and report is not None and report["failure_kind"] == "nonce-mismatch"


def test_at_judges_validity_at_another_time(
    tmp_path: Path, ca_file: Path, lab_chain: LabSigningChain, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(
        _write(tmp_path, "doc.json", lab_chain.make_document(vm_id="v", subscription_id="s", nonce=None))
    )
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, report, _ = _verify(capsys, path, "--at", later, *_lab_args(ca_file))
    assert code == ExitCode.FINDINGS and report is not None and report["failure_kind"] == "expired"
    imds_form = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)).strftime(
        "%m/%d/%y %H:%M:%S -0000"
    )
    assert _verify(capsys, path, "--at", imds_form, *_lab_args(ca_file))[0] == ExitCode.OK


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["{missing}"], "cannot read attested document"),
        (["{doc}", "--at", "yesterday"], "--at 'yesterday' is not a timestamp"),
        (["{doc}", "--ca", "{missing}"], "cannot read CA file"),
        (["{doc}", "--san-pattern", "(unclosed"], "invalid SAN pattern"),
        (["{doc}", "--format", "yaml"], "format 'yaml' is not available"),
    ],
)
def test_unreadable_input_and_bad_usage_exit_2(
    tmp_path: Path,
    lab_chain: LabSigningChain,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    words: str,
) -> None:
    doc = _write(tmp_path, "doc.json", lab_chain.make_document(vm_id="v", subscription_id="s", nonce=None))
    args = [a.format(missing=tmp_path / "nope.json", doc=doc) for a in argv]
    capsys.readouterr()
    code = run(["attest", "verify", *args])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE and words in err


def test_garbage_is_a_finding_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = _verify(capsys, str(_write(tmp_path, "doc.json", "hello, not a document")))
    assert code == ExitCode.FINDINGS and report is not None and report["failure_kind"] == "unparsable"


def test_the_inventory_supplies_ca_files_and_san_pattern(
    tmp_path: Path, ca_file: Path, lab_chain: LabSigningChain, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "clusters:\n  - name: c\n    nodes: [n1]\n"
        f"attestation:\n  ca_files: [{json.dumps(str(ca_file))}]\n  san_pattern: {json.dumps(LAB_SAN_PATTERN)}\n"
    )
    doc = _write(tmp_path, "doc.json", lab_chain.make_document(vm_id="v", subscription_id="s", nonce=None))
    capsys.readouterr()
    code = run(["-i", str(inventory), "attest", "verify", str(doc)])
    out = capsys.readouterr().out
    assert code == ExitCode.OK and "verified" in out and "CHECK" in out and "signature" in out


def test_stdin_is_read_for_dash(
    monkeypatch: pytest.MonkeyPatch,
    ca_file: Path,
    lab_chain: LabSigningChain,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = json.dumps(lab_chain.make_document(vm_id="v", subscription_id="s", nonce=None)).encode()

    class Stdin:
        buffer = io.BytesIO(doc)

    monkeypatch.setattr("sys.stdin", Stdin())
    code, report, _ = _verify(capsys, "-", *_lab_args(ca_file))
    assert code == ExitCode.OK and report is not None and report["file"] == "-"


# --- hostile input: a verdict with the reason, never a crash ------------------------------------


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z"]
)
def test_at_the_ends_of_time_is_a_verdict_not_a_crash(
    tmp_path: Path, ca_file: Path, lab_chain: LabSigningChain, capsys: pytest.CaptureFixture[str], at: str
) -> None:
    doc = lab_chain.make_document(vm_id="vm-1", subscription_id="sub", nonce=NONCE)
    code, report, err = _verify(
        capsys, str(_write(tmp_path, "doc.json", doc)), "--at", at, *_lab_args(ca_file)
    )
    assert code == ExitCode.FINDINGS, err
    assert report is not None and report["failure_kind"] in ("untrusted-chain", "not-yet-valid", "expired")
    failing = [c for c in report["checks"] if c["ok"] is False]
    assert failing and all(c["reason"] for c in failing)


def test_an_endless_document_is_refused_with_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    code, report, err = _verify(capsys, "/dev/zero")
    assert code == ExitCode.FINDINGS, err
    assert report is not None and report["failure_kind"] == "unparsable"
    assert "larger than 1024 KiB" in report["checks"][0]["reason"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"A" * (2 * 1024 * 1024))))
    code, report, _ = _verify(capsys, "-")
    assert code == ExitCode.FINDINGS and report is not None and report["failure_kind"] == "unparsable"
