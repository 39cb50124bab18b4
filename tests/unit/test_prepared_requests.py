"""remoting/prepared.py: a reused preparation is exactly what requests would have prepared, or not used."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from requests.auth import AuthBase, HTTPBasicAuth

from hcibenefit.remoting.prepared import reuse_prepared_requests

URL = "https://node1.contoso.test:5986/wsman"
HEADERS = {
    "Accept-Encoding": "identity",
    "User-Agent": "Python PSRP Client",
    "Content-Type": "application/soap+xml;charset=UTF-8",
}


def _session(auth: Any) -> requests.Session:
    session = requests.Session()
    session.headers = requests.structures.CaseInsensitiveDict(
        {"Accept-Encoding": "identity", "User-Agent": "Python PSRP Client"}
    )
    session.auth = auth
    session.trust_env = False
    return session


def _wire(prepared: requests.PreparedRequest) -> tuple[Any, ...]:
    """Everything of a prepared request that requests sends or acts on."""
    return (
        prepared.method,
        prepared.url,
        list(prepared.headers.items()),
        prepared.body,
        {event: list(hooks) for event, hooks in prepared.hooks.items()},
        sorted((c.name, c.value) for c in prepared._cookies),  # type: ignore[attr-defined]
    )


def _request(body: bytes, **extra: Any) -> requests.Request:
    return requests.Request("POST", URL, data=body, headers=dict(HEADERS), **extra)


def _reusing_and_counting(session: requests.Session) -> list[requests.Request]:
    """Count the requests that requests itself prepares, then give the session its reuse."""
    calls: list[requests.Request] = []
    original = session.prepare_request

    def counting(request: requests.Request) -> requests.PreparedRequest:
        calls.append(request)
        return original(request)

    session.prepare_request = counting  # type: ignore[method-assign]
    reuse_prepared_requests(session)
    return calls


@pytest.mark.parametrize(
    "auth", [HTTPBasicAuth("hci\\admin", "pa:ss wörd"), None], ids=["basic", "certificate"]
)
def test_a_reused_preparation_is_what_requests_prepares(auth: Any) -> None:
    plain, reusing = _session(auth), _session(auth)
    calls = _reusing_and_counting(reusing)
    for body in (b"<s:Envelope>one</s:Envelope>", b"x" * 70000, "é".encode() * 3):
        assert _wire(reusing.prepare_request(_request(body))) == _wire(plain.prepare_request(_request(body)))
    assert len(calls) == 1  # requests prepared the shape once
    first, second = reusing.prepare_request(_request(b"a")), reusing.prepare_request(_request(b"bb"))
    assert first.headers is not second.headers and first.hooks["response"] is not second.hooks["response"]
    assert first.headers["Content-Length"] == "1" and second.headers["Content-Length"] == "2"


class _Negotiate(AuthBase):
    """Stands for Negotiate/NTLM/CredSSP: state per request, a response hook registered when prepared."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.register_hook("response", lambda r, **_: r)
        return request


def _prepared_by_requests(session: requests.Session, request: requests.Request) -> bool:
    calls = _reusing_and_counting(session)
    session.prepare_request(request)
    session.prepare_request(request)
    return len(calls) == 2


def test_it_steps_aside_whenever_requests_could_prepare_differently() -> None:
    assert _prepared_by_requests(_session(_Negotiate()), _request(b"a"))
    with_cookie = _session(None)
    with_cookie.cookies.set("lb", "node2")
    assert _prepared_by_requests(with_cookie, _request(b"a"))
    reads_netrc = _session(None)
    reads_netrc.trust_env = True
    assert _prepared_by_requests(reads_netrc, _request(b"a"))
    assert _prepared_by_requests(_session(None), _request(b""))
    assert _prepared_by_requests(_session(None), _request(b"a", params={"q": "1"}))
    assert _prepared_by_requests(_session(None), requests.Request("POST", URL, data={"form": "1"}))
    assert not _prepared_by_requests(_session(None), _request(b"a"))  # and it is used when nothing differs


def test_a_cookie_set_later_is_merged_again() -> None:
    session = _session(HTTPBasicAuth("u", "p"))
    reuse_prepared_requests(session)
    session.prepare_request(_request(b"a"))
    session.cookies.set("lb", "node2")
    assert dict(session.prepare_request(_request(b"b"))._cookies) == {"lb": "node2"}  # type: ignore[attr-defined]
