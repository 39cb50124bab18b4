"""What pypsrp 0.9 does per session that breaks or costs us at fleet scale, changed in one place.

`load()` imports pypsrp on first use (so `--help` never pays for it) and applies these, once per process:

1. **XML namespace registry race.** Every `WSMan()` re-registers pypsrp's namespace prefixes in
   ElementTree's process-global registry (`pypsrp/wsman.py`), and `ET.register_namespace` deletes each
   mapping before adding it back. A thread serialising a SOAP envelope at that moment finds no prefix
   for a namespace and invents one (`ns0`, or a rebinding of the reserved `xml` prefix, which no XML
   parser accepts): the host answers HTTP 400 and the node is lost (issue 14: 2 of 16 runs at 400
   nodes). The prefixes are registered once here, and pypsrp's wsman module gets an ElementTree whose
   `register_namespace` leaves a mapping that is already in place alone, so building sessions from
   many threads never touches the registry again.
2. **One RSA key per process for the session-key exchange.** A SecureString (our guest credential)
   needs a session key, and pypsrp generates a 2048-bit RSA key pair for each runspace pool to receive
   it (82 ms of CPU per node). The key only decrypts the session key a host sends back, so one key
   pair per process serves every pool; it is generated on first use and never leaves memory.

3. **The same script text escaped for every node.** pypsrp escapes each string it serialises with a
   regular expression and a Python call per line break; our scripts (and the guest scripts passed as
   parameters) are the same constant text for every node of a run. Long strings are escaped once and
   remembered (a pure function of its input), which saves about 2 ms of CPU per script per node.

4. **A TLS context per node.** requests and urllib3 load the CA file into a new TLS context for every
   connection: 16 to 20 ms of CPU per node for a whole bundle (`cert_validation: true`). Sessions that
   check certificates against the same CA location share one context (`tlscontext.py`).

5. **spnego imported by every run.** pypsrp.wsman imports pypsrp.negotiate, and with it spnego and
   cryptography's X.509 support (about 40 ms of CPU), at import time, although only Negotiate, NTLM,
   Kerberos and CredSSP sessions use it. A run that logs on with Basic or a certificate imports pypsrp
   without it, and on a single cluster that is 4% of the run's wall time spent before the first request
   (issue 14). pypsrp.wsman's one use of the name, `HTTPNegotiateAuth(...)` when a session is built,
   imports the real module then.

Each is narrow: it replaces one name inside one pypsrp module, keeps every other behaviour, and if a
later pypsrp stops calling what it replaces, it simply stops mattering.
"""

from __future__ import annotations

import sys
import threading
import types
import xml.etree.ElementTree as ET
from typing import Any

_lock = threading.Lock()
_loaded = False


class _StableNamespaces(types.ModuleType):
    """ElementTree as pypsrp.wsman sees it: the same module, but re-registering a known prefix is a no-op."""

    def __init__(self) -> None:
        super().__init__(ET.__name__)
        vars(self).update({k: v for k, v in vars(ET).items() if not k.startswith("__")})
        self.register_namespace = _register_if_changed


_NAMESPACE_MAP: dict[str, str] = vars(ET)["_namespace_map"]  # uri -> prefix, ElementTree's registry


def _register_if_changed(prefix: str, uri: str) -> None:
    if _NAMESPACE_MAP.get(uri) != prefix:  # a new or changed mapping: let ElementTree do it
        ET.register_namespace(prefix, uri)


class _OneExchangeKey:
    """cryptography's `rsa` module as pypsrp.powershell sees it, handing out one key pair per process."""

    def __init__(self, rsa: Any) -> None:
        self._rsa = rsa
        self._key: Any = None
        self._key_lock = threading.Lock()
        self.generated = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rsa, name)

    def generate_private_key(self, public_exponent: int, key_size: int, *args: Any, **kwargs: Any) -> Any:
        with self._key_lock:
            if self._key is None or self._key.key_size != key_size:
                self._key = self._rsa.generate_private_key(public_exponent, key_size, *args, **kwargs)
                self.generated += 1
            return self._key


REMEMBERED_MIN_CHARS = 1024
"""Strings at least this long are escaped once per process; short ones (names, parameters) every time."""


REMEMBERED_STRINGS = 64


def _remembering(escape: Any) -> Any:
    remembered: dict[str, Any] = {}

    def serialize_string(self: Any, value: Any) -> Any:
        if not isinstance(value, str) or len(value) < REMEMBERED_MIN_CHARS:
            return escape(self, value)
        # The escaping depends only on the text: the pattern is the same on every Serializer.
        escaped = remembered.get(value)
        if escaped is None:
            escaped = escape(self, value)
            if len(remembered) < REMEMBERED_STRINGS:
                remembered[value] = escaped
        return escaped

    return serialize_string


def _sharing_tls_context(build_session: Any) -> Any:
    def build(self: Any) -> Any:
        from hcibenefit.remoting.tlscontext import share_tls_context

        session = build_session(self)
        share_tls_context(session)
        return session

    build.shares_tls_context = True  # type: ignore[attr-defined]
    return build


def _negotiate_auth(*args: Any, **kwargs: Any) -> Any:
    """`pypsrp.negotiate.HTTPNegotiateAuth(...)`, imported on first use (fix 5)."""
    from pypsrp.negotiate import HTTPNegotiateAuth

    return HTTPNegotiateAuth(*args, **kwargs)


def _import_wsman_without_negotiate() -> Any:
    """Import pypsrp.wsman while pypsrp.negotiate is a stand-in holding only `HTTPNegotiateAuth`, then take
    the stand-in away, so that anyone importing pypsrp.negotiate later gets the real module."""
    import importlib

    if "pypsrp.wsman" in sys.modules or "pypsrp.negotiate" in sys.modules:
        return importlib.import_module("pypsrp.wsman")
    stand_in = types.ModuleType("pypsrp.negotiate")
    stand_in.HTTPNegotiateAuth = _negotiate_auth  # type: ignore[attr-defined]
    sys.modules["pypsrp.negotiate"] = stand_in
    try:
        return importlib.import_module("pypsrp.wsman")
    finally:
        if sys.modules.get("pypsrp.negotiate") is stand_in:
            del sys.modules["pypsrp.negotiate"]
        package = sys.modules.get("pypsrp")
        if package is not None and getattr(package, "negotiate", None) is stand_in:
            delattr(package, "negotiate")


def load() -> None:
    """Import pypsrp and apply the fixes above (idempotent, thread-safe)."""
    global _loaded
    with _lock:
        if _loaded:
            return
        import importlib

        wsman: Any = _import_wsman_without_negotiate()
        wsman.HTTPNegotiateAuth = _negotiate_auth
        powershell: Any = importlib.import_module("pypsrp.powershell")
        for prefix, uri in wsman.NAMESPACES.items():
            ET.register_namespace(prefix, uri)
        wsman.ET = _StableNamespaces()
        if not isinstance(powershell.rsa, _OneExchangeKey):
            powershell.rsa = _OneExchangeKey(powershell.rsa)
        transport = wsman._TransportHTTP
        if not getattr(transport._build_session, "shares_tls_context", False):
            transport._build_session = _sharing_tls_context(transport._build_session)
        serializer: Any = importlib.import_module("pypsrp.serializer")
        serializer.Serializer._serialize_string = _remembering(serializer.Serializer._serialize_string)
        _loaded = True


def exchange_keys_generated() -> int:
    """How many RSA key pairs this process generated for session-key exchanges (for tests and benchmarks)."""
    load()
    import importlib

    rsa = importlib.import_module("pypsrp.powershell").rsa
    return rsa.generated if isinstance(rsa, _OneExchangeKey) else -1
