"""The guest scripts' param() blocks and the lab's bindings agree, so the lab rejects what PowerShell would."""

from __future__ import annotations

import pytest

from hcibenefit.lab.binding import Param
from hcibenefit.lab.guest_emulation import KICK_BODY_SIGNATURE, PROBE_BODY_SIGNATURE, guest_emulations
from hcibenefit.remoting.catalog import GUEST_KICK, GUEST_KICK_BODY, GUEST_PROBE, GUEST_PROBE_BODY, Script

scripts_test = pytest.importorskip("tests.scripts.test_powershell_scripts")


class _NoSecrets:
    signing = None
    guest_password = None


EMULATED = guest_emulations(_NoSecrets())


@pytest.mark.parametrize(
    ("script", "signature"),
    [
        (GUEST_PROBE, EMULATED["guest-probe/1"].signature),
        (GUEST_KICK, EMULATED["guest-kick/1"].signature),
        (GUEST_PROBE_BODY, PROBE_BODY_SIGNATURE),
        (GUEST_KICK_BODY, KICK_BODY_SIGNATURE),
    ],
    ids=lambda v: getattr(v, "key", ""),
)
def test_lab_binds_the_parameters_the_script_declares(script: Script, signature: tuple[Param, ...]) -> None:
    declared = scripts_test._declared_parameters(scripts_test.SCRIPT_DIR / script.filename)
    assert {p.name: (p.type, p.mandatory) for p in signature} == declared


def test_host_scripts_pass_the_body_as_a_parameter_never_as_their_own_text() -> None:
    for host, body in ((GUEST_PROBE, GUEST_PROBE_BODY), (GUEST_KICK, GUEST_KICK_BODY)):
        text = host.text()
        assert "[scriptblock]::Create($" in text and "-Credential $Credential" in text
        assert body.text().splitlines()[0] not in text
        assert "-ThrottleLimit $ThrottleLimit" in text and "-ErrorVariable failures" in text
