"""One TLS context per CA setting per process, instead of one per node's connection.

requests and urllib3 build a new `ssl.SSLContext` for every new connection and load the CA file into it
(`HTTPAdapter.cert_verify` names the file, `urllib3.util.ssl_.ssl_wrap_socket` loads it). With a CA file
of a few certificates that is about 0.3 ms per node; with a whole bundle, which is what
`cert_validation: true` means (requests' default bundle, about 150 roots), it is 16 to 20 ms per node:
more client CPU than everything else a host pass does. Loading the same file into a fresh context for
every node buys nothing, so every session whose certificates are checked against the same CA location
shares one context, loaded once.

What stays exactly as requests would do it:
- which CA location is trusted (the session's `verify`: a file, a directory, or True for requests'
  default bundle, `requests.utils.DEFAULT_CA_BUNDLE_PATH`);
- that the certificate is required and the host name checked (urllib3's own context settings:
  `create_urllib3_context(cert_reqs=CERT_REQUIRED)` turns on `check_hostname`, and urllib3 sets
  `server_hostname` per connection);
- the client certificate a session presents (`auth: certificate`): it is loaded into the shared context
  once, as urllib3 would load it into each connection's, so sessions presenting the same certificate and
  key share a context, and those presenting none never share one with them;
- `cert_validation: false` (nothing to share), and a key that needs a password (pypsrp's own adapter
  passes it to urllib3 per connection, as before).
"""

from __future__ import annotations

import os
import ssl
import threading
import weakref
from typing import Any

from hcibenefit.remoting.methods import alive, unbound

_lock = threading.Lock()
_contexts: dict[tuple[str, str, tuple[str, ...]], ssl.SSLContext] = {}


def share_tls_context(session: Any) -> None:
    """Make the https adapter of this requests session use the shared context for its `verify`."""
    verify = session.verify
    client = _client_files(session.cert)
    adapter = session.get_adapter("https://")
    if verify is False or client is None or _has_key_password(adapter):
        return
    context = _context_for(verify, client)
    if context is None:
        return  # no such CA or certificate file: requests says so on the first request, as before
    cert_now_shared = session.cert
    # These functions live on the adapter, so they reach it weakly: a strong reference would make the
    # adapter (and the session, its pools and connection) a cycle that only the garbage collector frees.
    adapter_ref = weakref.ref(adapter)
    build_key = unbound(adapter, "build_connection_pool_key_attributes")
    cert_verify = unbound(adapter, "cert_verify")

    def build_connection_pool_key_attributes(request: Any, verify_now: Any, cert: Any = None) -> Any:
        host_params, pool_kwargs = build_key(alive(adapter_ref), request, verify_now, cert)
        if verify_now == verify and cert == cert_now_shared:
            # The CA (and the client certificate) are in the context already: without the files here
            # urllib3 does not load them again.
            for name in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
                pool_kwargs.pop(name, None)
            pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
            pool_kwargs["ssl_context"] = context
        return host_params, pool_kwargs

    def verify_with_shared_context(conn: Any, url: str, verify_now: Any, cert: Any) -> None:
        # Still says so if a file has gone since.
        cert_verify(alive(adapter_ref), conn, url, verify_now, cert)
        if verify_now == verify and cert == cert_now_shared and url.lower().startswith("https"):
            conn.ca_certs = None
            conn.ca_cert_dir = None
            conn.cert_file = None
            conn.key_file = None

    adapter.build_connection_pool_key_attributes = build_connection_pool_key_attributes
    adapter.cert_verify = verify_with_shared_context


def _client_files(cert: Any) -> tuple[str, ...] | None:
    """requests' `cert` as a tuple of file names: () for none; None for a shape this does not handle."""
    if cert is None:
        return ()
    if isinstance(cert, str):
        return (cert,)
    if isinstance(cert, tuple) and len(cert) == 2 and all(isinstance(part, str) for part in cert):
        return (cert[0], cert[1])
    return None


def _has_key_password(adapter: Any) -> bool:
    # pypsrp mounts this adapter only when a key password is set (pypsrp/_pool_manager.py).
    from pypsrp._pool_manager import HTTPSAdapterWithKeyPassword

    return isinstance(adapter, HTTPSAdapterWithKeyPassword)


def _context_for(verify: bool | str, client: tuple[str, ...] = ()) -> ssl.SSLContext | None:
    from requests.utils import DEFAULT_CA_BUNDLE_PATH
    from urllib3.util.ssl_ import create_urllib3_context

    location = DEFAULT_CA_BUNDLE_PATH if verify is True else str(verify)
    if not os.path.exists(location) or not all(os.path.exists(name) for name in client):
        return None
    kind = "dir" if os.path.isdir(location) else "file"
    with _lock:
        context = _contexts.get((kind, location, client))
        if context is None:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            if kind == "dir":
                context.load_verify_locations(capath=location)
            else:
                context.load_verify_locations(cafile=location)
            if client:
                try:
                    context.load_cert_chain(*client)
                except (OSError, ssl.SSLError):
                    return None  # unreadable or mismatched: urllib3 reports it on the first connection, as before
            _contexts[(kind, location, client)] = context
        return context
