"""Around a session's first request: the logon gate and connecting ahead.

A password is tried on one node before the others use it (inventory/logon.py: one failed logon per run,
not one per node). The others wait exactly where the password is first used, so that everything before
that point overlaps the first node's logon:
- Basic and CredSSP send it with the first request: a waiting node builds its session and first message
  and opens its connection (TCP and TLS) first, then waits, then sends (`gate_around_first_send`);
- Negotiate and Kerberos use it in the token answering the host's first 401, NTLM in its AUTHENTICATE
  message: the round trips before it are not held back (`gate_at_the_challenge`).
The first answer that is not a 401 proves the credential and lets the others go.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from hcibenefit.inventory.logon import LogonGate
from hcibenefit.remoting.errors import Cancelled
from hcibenefit.remoting.methods import alive, unbound

log = logging.getLogger(__name__)


def gate_at_the_challenge(
    transport: Any, gate: LogonGate, node: str, user: str | None, cancel: threading.Event, auth_kind: str
) -> None:
    """Pass `gate` where the password is first used, inside pypsrp's answer to the host's 401
    (`HTTPNegotiateAuth.handle_401`), not before connecting: the request that drew the 401 carried no
    credential. Which token is the first to use the password:
    - NTLM: the second, AUTHENTICATE (MS-NLMP 2.2.1.3); the first, NEGOTIATE, holds only flags, so its
      round trip is also taken before the gate;
    - Negotiate and Kerberos: the first, since building it may ask a KDC for a ticket with the password.
    The handshake's last answer, if it is not a 401, proves the credential and opens the gate."""
    auth = transport.session.auth
    if getattr(auth, "handle_401", None) is None:
        # Not pypsrp's Negotiate handler: gate now, before anything is sent.
        gate.admit(node, user, cancel)
        return
    first_with_password = 2 if auth_kind == "ntlm" else 1
    # `gated` lives on the handler, so it reaches the handler weakly: a strong reference (the bound
    # method) would make the handler, and the session holding it, a cycle only the collector frees.
    handler = weakref.ref(auth)
    handle_401_of = unbound(auth, "handle_401")

    def gated(response: Any, **kwargs: Any) -> Any:
        auth_now = alive(handler)
        adapter = response.connection
        real_send = adapter.send
        tokens = 0

        def send(request: Any, **send_kwargs: Any) -> Any:
            nonlocal tokens
            tokens += 1
            if tokens == first_with_password:
                gate.admit(node, user, cancel)
                if cancel.is_set():
                    raise Cancelled(node, "cancelled before logging on")
            return real_send(request, **send_kwargs)

        adapter.send = send
        try:
            answer = handle_401_of(auth_now, response, **kwargs)
        finally:
            del adapter.send  # the class's own again
        if tokens >= first_with_password and getattr(answer, "status_code", 401) != 401:
            gate.succeeded(node)
        return answer

    auth.handle_401 = gated


def gate_around_first_send(
    wsman: Any,
    gate: LogonGate,
    node: str,
    admit: tuple[str, str | None, threading.Event] | None,
    sending: Callable[[], None],
    *,
    connect_timeout: float,
) -> None:
    """Around the session's first request: pass the gate just before it when it carries the password
    (`admit`: Basic, CredSSP), connected already (`connect_ahead`), and open the gate on its answer.
    An answer that is not a 401 proves the credential, so the nodes waiting on the gate go then, not
    only once the pool is open: the first logon costs one round trip, not two."""
    transport = wsman.transport
    send = transport.send
    own_send = getattr(transport, "__dict__", {}).get("send")

    def send_and_open_gate(message: bytes, **kwargs: Any) -> Any:
        # Once is enough. The class's own `send` comes back by deleting this one, not by storing the
        # bound method on the instance: that would be a reference cycle (transport -> its method ->
        # transport), and with it the node's whole session would wait for the garbage collector.
        if own_send is None:
            del transport.send
        else:
            transport.send = own_send
        if admit is not None:
            # Only worth it when there is a wait to hide it in: the first node sends at once.
            ahead = connect_ahead(transport, connect_timeout) if gate.would_wait(node) else None
            gate.admit(*admit)
            if ahead is not None:
                take_what_tls_sent(ahead)
            if admit[2].is_set():
                raise Cancelled(node, "cancelled before logging on")
        sending()
        response = send(message, **kwargs)
        gate.succeeded(node)
        return response

    transport.send = send_and_open_gate


def connect_ahead(transport: Any, connect_timeout: float) -> Any:
    """Open the connection the first request will use (TCP, and TLS over HTTPS) before waiting on the
    logon gate. It carries no credential, and on a real network it is one round trip for TCP and one
    or two for TLS that every node but the first would otherwise take only once the first logon is
    proven. The connection goes back to requests' pool, where that first request finds it.

    A failure is raised as requests raises it from a request (the same exception around the same
    urllib3 error, requests/adapters.py HTTPAdapter.send), so it reads the same and an unreachable host
    costs one connection timeout, not two. Through a proxy, or with a requests too old to say which
    pool a request uses, this does nothing (returns None) and the first request connects as before;
    otherwise it returns the connection, for `take_what_tls_sent`."""
    import ssl

    import requests
    from requests.utils import resolve_proxies, select_proxy
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, NewConnectionError
    from urllib3.exceptions import SSLError as Urllib3SSLError

    session = transport.session
    url = transport.endpoint
    request = requests.Request("POST", url).prepare()  # no auth: only the URL is used
    proxies = resolve_proxies(request, session.proxies, session.trust_env)
    adapter = session.get_adapter(url)
    pool_for = getattr(adapter, "get_connection_with_tls_context", None)
    if select_proxy(url, proxies) or pool_for is None:
        return None
    pool = pool_for(request, session.verify, proxies=proxies, cert=session.cert)
    adapter.cert_verify(pool, url, session.verify, session.cert)
    conn = pool._get_conn()
    try:
        if getattr(conn, "is_closed", False):
            conn.timeout = connect_timeout
            conn.connect()
    except BaseException as exc:
        conn.close()
        pool._put_conn(None)  # as urllib3 does with a connection that failed: the slot is free again
        if not isinstance(exc, Exception):
            raise
        if isinstance(exc, (ssl.SSLError, ssl.CertificateError, Urllib3SSLError)):
            reason: Exception = exc if isinstance(exc, Urllib3SSLError) else Urllib3SSLError(exc)
            raise requests.exceptions.SSLError(MaxRetryError(pool, url, reason), request=request) from None
        if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
            raise requests.exceptions.ConnectTimeout(MaxRetryError(pool, url, exc), request=request) from None
        if isinstance(exc, (HTTPError, OSError)):
            raise requests.exceptions.ConnectionError(
                MaxRetryError(pool, url, exc), request=request
            ) from None
        raise
    pool._put_conn(conn)
    return conn


def take_what_tls_sent(conn: Any) -> None:
    """Read what a TLS 1.3 server sends unasked after the handshake (session tickets, RFC 8446 4.6.1)
    on a connection opened ahead, before the first request takes it from the pool.

    urllib3 takes a pooled connection whose socket has something to read for one the server closed,
    and opens a new one (urllib3/util/connection.py, is_connection_dropped): without this, connecting
    ahead would cost a second handshake instead of saving one. A server never sends HTTP data unasked,
    so anything else read here, or the end of the connection, closes it: the first request then
    connects again, as it would have anyway."""
    import ssl

    sock = getattr(conn, "sock", None)
    if not isinstance(sock, ssl.SSLSocket):
        return  # plain TCP: nothing arrives unasked
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0.0)
        unexpected = sock.recv(1)  # processes the tickets, then finds nothing more to read
    except ssl.SSLWantReadError:
        return  # the tickets, if any, were read; nothing else was sent
    except OSError:
        unexpected = b""
    finally:
        with contextlib.suppress(OSError):  # a socket that failed may be closed already
            sock.settimeout(timeout)
    log.debug("connected ahead, but the host sent %r or hung up: connecting again", unexpected[:1])
    conn.close()
