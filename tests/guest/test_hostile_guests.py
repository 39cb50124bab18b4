"""A guest is untrusted: whatever one guest sends, that VM gets a verdict with a reason and every other VM
is reported as usual. Against the lab over real WinRM, with one guest's answer replaced by a crafted one."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import hcibenefit.lab.powershell.cmdlets.utility as lab_utility
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab import pki
from hcibenefit.lab.signing import LabSigningChain, sign_without_attributes
from tests.guest.test_guest_lab import EXPECTED_DEFAULT, vm_args
from tests.integration.conftest import LabClient

VICTIM = "avd-ok-01"
# Same owner node as the victim (one PowerShell Direct call carries all three), and another cluster.
BYSTANDERS = ["avd-twice", "avd-wrong-nonce", "w11ms-v2-ok"]

_STAMPS = '"timeStamp":{"createdOn":"01/01/20 00:00:00 -0000","expiresOn":"01/01/99 00:00:00 -0000"}'
CRAFTED_CONTENT = {
    "date-out-of-range": (
        '{"nonce":"1","timeStamp":{"createdOn":"0001-01-01T00:00:00+01:00","expiresOn":"9999-12-31T23:59:59-01:00"}}'
    ),
    "expiry-at-the-end-of-time": (
        '{"nonce":"1","timeStamp":{"createdOn":"01/01/20 00:00:00 -0000","expiresOn":"9999-12-31T23:59:59+00:00"}}'
    ),
    "5000-digit-integer": '{"nonce":' + "7" * 5000 + "," + _STAMPS + "}",
    "deeply-nested": '{"nonce":"1",' + _STAMPS + ',"plan":' + "[" * 50_000 + "]" * 50_000 + "}",
    "nested-just-parseable": '{"nonce":"1",' + _STAMPS + ',"plan":' + "{" + '"a":{' * 900 + "}" * 901 + "}",
    "nan": '{"nonce":NaN,' + _STAMPS + "}",
}


def _crafted_document(content: str) -> dict[str, Any]:
    """An Azure-shaped document signed by a self-signed certificate the attacker made."""
    attacker = pki.issue("attest.metadata.azure.com", key_kind="rsa", dns_names=["attest.metadata.azure.com"])
    pkcs7 = sign_without_attributes(content.encode(), attacker)
    return {"encoding": "pkcs7", "signature": base64.b64encode(pkcs7).decode()}


def _victim_id(lab: LabClient) -> str:
    return next(vm.id for vm in lab.lab.state.vms.values() if vm.name == VICTIM)


def _check(lab: LabClient) -> tuple[int, dict[str, dict[str, Any]], str]:
    result = lab.cli("guest", "check", *vm_args(VICTIM, *BYSTANDERS), "--format", "json")
    assert "internal error" not in result.err and "Traceback" not in result.err, result.err
    return result.code, {r["vm"]: r for r in result.json()["vms"]}, result.err


def _assert_isolated(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for name in BYSTANDERS:
        assert (records[name]["verdict"], records[name]["reason"]) == EXPECTED_DEFAULT[name], name
    victim = records[VICTIM]
    assert victim["verdict"] in ("not-activated", "not-assessable", "at-risk") and victim["reason"]
    assert victim["detail"]
    json.dumps(records)  # what we print is valid JSON (no NaN, nothing too deep to encode)
    return victim


@pytest.mark.parametrize("case", sorted(CRAFTED_CONTENT))
def test_a_crafted_attested_document_is_one_vms_verdict(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    victim_id = _victim_id(lab)
    honest = LabSigningChain.make_document

    def make_document(self: LabSigningChain, **kwargs: Any) -> dict[str, Any]:
        if kwargs["vm_id"] == victim_id:
            return _crafted_document(CRAFTED_CONTENT[case])
        return honest(self, **kwargs)

    monkeypatch.setattr(LabSigningChain, "make_document", make_document)
    code, records, _ = _check(lab)
    assert code in (ExitCode.FINDINGS, ExitCode.FINDINGS_AND_INCOMPLETE)
    victim = _assert_isolated(records)
    verification = victim["evidence"]["document"]["verification"]
    assert verification["ok"] is False and verification["failure_kind"]


@pytest.mark.parametrize(
    "replacement",
    ["9" * 5000, "[" * 50_000 + "]" * 50_000, "NaN", '"c\\ud800"'],
    ids=["5000-digit-integer", "deeply-nested", "nan", "lone-surrogate"],
)
def test_a_hostile_guest_answer_is_one_vms_verdict(
    lab: LabClient, monkeypatch: pytest.MonkeyPatch, replacement: str
) -> None:
    honest = lab_utility.convert_to_json
    marker = json.dumps("@@hostile@@")

    def convert_to_json(value: Any, **kwargs: Any) -> str:
        """ConvertTo-Json as the lab runs it, with one value of the victim's probe document swapped for
        abuse (a guest controls every byte it answers with)."""
        text = honest(value, **kwargs)
        try:
            document = json.loads(text)
        except ValueError:
            return text
        if not isinstance(document, dict) or document.get("computer_name") != VICTIM.upper():
            return text
        if replacement.startswith('"'):
            document["computer_name"] = "@@hostile@@"
        else:
            document["licenses"][0]["grace_minutes"] = "@@hostile@@"
        return json.dumps(document).replace(marker, replacement)

    monkeypatch.setattr(lab_utility, "convert_to_json", convert_to_json)
    code, records, _ = _check(lab)
    assert code != ExitCode.USAGE
    if replacement.startswith('"'):
        # A lone surrogate is text a guest may send; it reaches the JSON report intact (escaped).
        assert records[VICTIM]["evidence"]["computer_name"] == "c\ud800"
        assert records[VICTIM]["verdict"] == "activated"
        return
    victim = _assert_isolated(records)
    assert victim["reason"] == "probe-failed" and "not acceptable JSON" in victim["detail"]


def test_attest_verify_refuses_the_same_documents_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hcibenefit.cli.app import run

    for case, content in CRAFTED_CONTENT.items():
        path = tmp_path / f"{case}.json"
        path.write_text(json.dumps(_crafted_document(content)))
        capsys.readouterr()
        assert run(["attest", "verify", str(path), "--format", "json"]) == ExitCode.FINDINGS, case
        out, err = capsys.readouterr()
        assert "internal error" not in err
        report = json.loads(out)
        assert report["ok"] is False and report["failure_kind"], case
        failing = [c for c in report["checks"] if c["ok"] is False]
        assert failing and failing[0]["reason"], case
