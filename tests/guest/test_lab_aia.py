"""The lab as Azure looks to a verifier: documents embed only the leaf, whose AIA names where the intermediate is.

With the fleet spec's attestation.publish_intermediate_only_via_aia the generated inventory trusts only the lab's
root, so a guest check shows the missing intermediate with the exact `attest fetch-intermediates --url` fix
naming the lab's control endpoint; running that command as printed makes the same guest's document verify.
"""

from __future__ import annotations

import shlex
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from hcibenefit.cli.app import run
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab.spec import FleetSpecError, parse_fleet
from tests.guest.conftest import by_vm

AIA_FLEET = """
attestation: {publish_intermediate_only_via_aia: true}
clusters:
  - name: c1
    version: 22H2
    nodes: [n1]
    vms:
      - {name: w11ms-01, node: n1, benefits: v1}  # V1: the guest fetches the document over HTTP
"""


def _check(lab: Any, vm: str) -> dict[str, Any]:
    result = lab.cli("guest", "check", "--vm", vm, "-o", "json")
    return by_vm(result.json()["vms"])[vm]


def _issuer_urls(cert: x509.Certificate) -> list[str]:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return [
        d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
    ]


def test_missing_intermediate_is_fixed_by_running_the_fix_as_printed(
    small_lab: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = small_lab(AIA_FLEET)
    # Only the root in the inventory's CA file: the intermediate has to come from AIA.
    assert len(x509.load_pem_x509_certificates(lab.lab.attestation_ca.read_bytes())) == 1
    url = f"{lab.lab.control_url}/lab/pki/ca01.cer"
    assert lab.state()["attestation"] == {"publish_intermediate_only_via_aia": True, "issuer_url": url}

    before = _check(lab, "w11ms-01")
    assert (before["verdict"], before["reason"]) == ("at-risk", "missing-intermediate"), before
    # The fix's first step is the command for this machine (the rest is for the guest's own store).
    fetch = before["fix"].split("; ")[0]
    assert fetch == f"hcibenefit attest fetch-intermediates --url {url}", before["fix"]
    store = tmp_path / "data" / "hcibenefit" / "intermediates"
    assert not store.exists()

    # The fix exactly as shown, with the inventory named the way `lab run` and an export name it.
    monkeypatch.setenv("HCIBENEFIT_INVENTORY", str(lab.inventory))
    argv = shlex.split(fetch)
    assert argv[0] == "hcibenefit"
    assert run(argv[1:]) == ExitCode.OK
    stored = list(store.glob("*.pem"))
    assert len(stored) == 1
    header = stored[0].read_text(encoding="utf-8")
    assert f"# source:     {url}" in header and "hcibenefit lab attestation CA 01 (lab " in header

    after = _check(lab, "w11ms-01")
    assert (after["verdict"], after["reason"]) == ("activated", "licensed"), after


def test_the_lab_publishes_the_intermediate_its_signing_leaf_names(small_lab: Any) -> None:
    lab = small_lab(AIA_FLEET).lab
    assert lab.signing is not None
    assert _issuer_urls(lab.signing.leaf.cert) == [lab.issuer_url]
    with urllib.request.urlopen(lab.issuer_url, timeout=10) as response:
        assert response.headers["Content-Type"] == "application/pkix-cert"
        served = x509.load_der_x509_certificate(response.read())
    assert served == lab.signing.intermediate.cert
    lab.signing.leaf.cert.verify_directly_issued_by(served)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{lab.pki_url}/other.cer", timeout=10)
    assert missing.value.code == 404


def test_by_default_the_lab_inventory_trusts_the_whole_chain(small_lab: Any) -> None:
    lab = small_lab(AIA_FLEET.replace("true", "false"))
    assert len(x509.load_pem_x509_certificates(lab.lab.attestation_ca.read_bytes())) == 2
    assert lab.lab.signing is not None
    assert lab.lab.signing.intermediate.cert.subject.rfc4514_string() == "CN=hcibenefit lab attestation CA 01"
    record = _check(lab, "w11ms-01")
    assert (record["verdict"], record["reason"]) == ("activated", "licensed"), record


def test_the_spec_key_is_checked_like_every_other() -> None:
    with pytest.raises(FleetSpecError) as bad:
        parse_fleet(AIA_FLEET.replace("true", "sometimes"), "aia.yaml")
    assert "aia.yaml:2" in str(bad.value) and "publish_intermediate_only_via_aia" in str(bad.value)
    assert parse_fleet(AIA_FLEET, "aia.yaml").attestation.publish_intermediate_only_via_aia
    assert not parse_fleet(
        AIA_FLEET.replace("true", "false"), "aia.yaml"
    ).attestation.publish_intermediate_only_via_aia
