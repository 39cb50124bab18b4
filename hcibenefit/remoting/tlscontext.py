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
- `cert_validation: false` (nothing to share), and sessions that present a client certificate (the
  certificate is loaded into the context, so it stays one context per connection, as before).
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

_lock = threading.Lock()
_contexts: dict[tuple[str, str], ssl.SSLContext] = {}


def share_tls_context(session: Any) -> None:
    """Make the https adapter of this requests session use the shared context for its `verify`."""
    verify = session.verify
    if verify is False or session.cert is not None:
        return
    context = _context_for(verify)
    if context is None:
        return  # no such CA file: requests says so on the first request, as before
    adapter = session.get_adapter("https://")
    build_key = adapter.build_connection_pool_key_attributes
    cert_verify = adapter.cert_verify

    def build_connection_pool_key_attributes(request: Any, verify_now: Any, cert: Any = None) -> Any:
        host_params, pool_kwargs = build_key(request, verify_now, cert)
        if verify_now == verify and cert is None:
            # The CA is in the context already: without the file here urllib3 does not load it again.
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
            pool_kwargs["ssl_context"] = context
        return host_params, pool_kwargs

    def verify_with_shared_context(conn: Any, url: str, verify_now: Any, cert: Any) -> None:
        cert_verify(conn, url, verify_now, cert)
        if verify_now == verify and cert is None and url.lower().startswith("https"):
            conn.ca_certs = None
            conn.ca_cert_dir = None

    adapter.build_connection_pool_key_attributes = build_connection_pool_key_attributes
    adapter.cert_verify = verify_with_shared_context


def _context_for(verify: bool | str) -> ssl.SSLContext | None:
    from requests.utils import DEFAULT_CA_BUNDLE_PATH
    from urllib3.util.ssl_ import create_urllib3_context

    location = DEFAULT_CA_BUNDLE_PATH if verify is True else str(verify)
    if not os.path.exists(location):
        return None
    kind = "dir" if os.path.isdir(location) else "file"
    with _lock:
        context = _contexts.get((kind, location))
        if context is None:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            if kind == "dir":
                context.load_verify_locations(capath=location)
            else:
                context.load_verify_locations(cafile=location)
            _contexts[(kind, location)] = context
        return context
