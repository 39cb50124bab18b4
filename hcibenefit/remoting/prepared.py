"""One requests preparation per session and message shape, instead of one per WinRM request.

pypsrp sends every WinRM message through `requests.Session.prepare_request`: merge the session's
cookies into a new jar, merge headers, parameters and hooks, parse and re-encode the URL, build the
Basic authorisation header (base64 of the password, every time), and measure the body. For one
session's messages all of that comes out the same each time except the body and its length: about
0.17 ms of CPU per request, 0.8 ms per node for a host pass (`bench/client_cpu_phases.py`).

`reuse_prepared_requests(session)` makes the session prepare a message's request once per shape (URL
and headers) and, for the next message of that shape, copy it with the new body and Content-Length:
the same method, URL, headers in the same order, body, cookie jar contents and hooks as requests would
give. It steps aside, preparing as requests does, whenever that could differ:

- an authentication handler other than Basic: Negotiate, NTLM, Kerberos and CredSSP keep state per
  request and register response hooks when a request is prepared;
- cookies in the session (a load balancer that sets one): requests merges them into every request;
- session parameters, a request with parameters, files, JSON, its own auth, cookies or hooks, a body
  that is not bytes or is empty;
- a session that reads the environment (`trust_env`) without its own auth: requests then looks for
  credentials in ~/.netrc on every request.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from hcibenefit.remoting.methods import alive, unbound

_MAX_SHAPES = 16
"""Shapes remembered per session (pypsrp uses one: the endpoint URL with its fixed headers)."""


def reuse_prepared_requests(session: Any) -> None:
    """Give this requests session a `prepare_request` that reuses its preparation (see the module)."""
    from requests.auth import HTTPBasicAuth

    # The function lives on the session, so it holds the session weakly: a strong reference (its bound
    # `prepare_request`) would make every session a reference cycle that only the garbage collector
    # frees (with its adapters, pools and connection: 118 objects a node), not reference counting.
    session_ref = weakref.ref(session)
    prepare = unbound(session, "prepare_request")
    templates: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    def prepare_request(request: Any) -> Any:
        session = alive(session_ref)
        key = _shape(session, request, HTTPBasicAuth)
        if key is None:
            return prepare(session, request)
        body: bytes = request.data
        with lock:
            template = templates.get(key)
        if template is None:
            template = prepare(session, _without_body(request))
            with lock:
                if len(templates) < _MAX_SHAPES:
                    templates[key] = template
        prepared = template.copy()
        prepared.hooks = {event: list(hooks) for event, hooks in template.hooks.items()}
        prepared.body = body
        prepared.headers["Content-Length"] = str(len(body))
        return prepared

    session.prepare_request = prepare_request


def _shape(session: Any, request: Any, basic: type) -> tuple[Any, ...] | None:
    """What a prepared request depends on besides its body, or None when requests must prepare it."""
    auth = session.auth
    if auth is not None and type(auth) is not basic:
        return None
    if session.trust_env and auth is None:
        return None
    if session.params or len(session.cookies):
        return None
    data = request.data
    if type(data) is not bytes or not data:
        return None
    if request.params or request.files or request.json is not None or request.auth is not None:
        return None
    if request.cookies or any(request.hooks.values()):
        return None
    headers = tuple((str(k), str(v)) for k, v in (request.headers or {}).items())
    session_headers = tuple((str(k), str(v)) for k, v in session.headers.items())
    return (request.method, request.url, headers, session_headers, id(auth), _hooks(session))


def _hooks(session: Any) -> tuple[Any, ...]:
    return tuple((event, tuple(id(h) for h in hooks)) for event, hooks in session.hooks.items())


def _without_body(request: Any) -> Any:
    import requests

    return requests.Request(method=request.method, url=request.url, headers=request.headers)
