"""The host-side guest scripts carry the guest bodies as parameter values, never as their own text."""

from __future__ import annotations

from hcibenefit.remoting.catalog import GUEST_KICK, GUEST_KICK_BODY, GUEST_PROBE, GUEST_PROBE_BODY


def test_host_scripts_pass_the_body_as_a_parameter_never_as_their_own_text() -> None:
    for host, body in ((GUEST_PROBE, GUEST_PROBE_BODY), (GUEST_KICK, GUEST_KICK_BODY)):
        text = host.text()
        assert "[scriptblock]::Create($" in text and "-Credential $Credential" in text
        assert body.text().splitlines()[0] not in text
        assert "-ThrottleLimit $ThrottleLimit" in text and "-ErrorVariable failures" in text
