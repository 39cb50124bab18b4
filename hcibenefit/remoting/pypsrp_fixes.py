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

6. **ElementTree writing bytes one piece at a time.** pypsrp turns every SOAP envelope and CLIXML
   fragment into bytes with `ET.tostring(..., encoding="utf-8")`, which writes each piece of markup
   through a text wrapper over a byte buffer; that wrapper calls a Python-level decoder reset on every
   write, 50 to 60 of them per envelope (22 serialisations per node: about 1.4 ms of CPU per node).
   pypsrp's modules get an ElementTree whose `tostring` builds the text first and encodes it once:
   the same bytes (same escaping, no XML declaration for UTF-8, unencodable characters as character
   references), in about half the time (`tests/unit/test_pypsrp_fixes.py` compares them).

7. **requests prepared from scratch for every message.** pypsrp has requests prepare each WinRM request
   anew (cookies, headers, URL, the Basic authorisation header, hooks): 0.17 ms of CPU a request, and
   for one session only the body differs. Sessions that log on with Basic or a certificate prepare once
   per message shape and copy that with the new body (`prepared.py`, which says when it steps aside).

8. **A pipeline's commands deep-copied twice per node.** pypsrp copies each command of a pipeline with
   `copy.deepcopy` every time it serialises the pipeline (twice per node), and `deepcopy` walks every
   metadata object of the command in Python: about 210 us a copy. A pickle round trip makes the same
   independent copy of the same classes and values in C, in about a third of the time; anything that
   does not pickle is deep-copied as before.
9. **The envelope size worked out by serialising a dummy envelope.** Every `WSMan()` (and the pool,
   once the host says its limit) builds and serialises a skeleton SOAP envelope to learn how much of a
   message the headers leave for payload: 50 us each, twice per node. The answer depends only on the
   size limit, the locales, the operation timeout and the length of the endpoint's escaped URL (the
   one text that differs between nodes), so it is worked out once per such combination.

10. **The same messages serialised for every node.** Opening a pool sends SESSION_CAPABILITY and
    INIT_RUNSPACEPOOL, and running a script sends CREATE_PIPELINE with the script and its parameters;
    pypsrp serialises each from its objects every time (100, 190 and 880 us a node: 1.2 ms, 15% of a
    host pass's CPU), although for a run's nodes they are the same objects with the same values. What
    a message's XML says depends only on its data (the serialiser numbers its references afresh for
    every message) as long as no SecureString is in it, and a SecureString needs the session key. So
    while a session has no session key, a message of these types is packed from the XML remembered for
    the same data (compared as its pickle), and only its header (the pool's and pipeline's ids) is new.
    A session with a key (a guest credential), data that does not pickle, or debug logging (which
    prints each packed message) packs as pypsrp does.
11. **The same answers deserialised for every node.** Every node answers the pool's opening with its
    SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA (its PowerShell version table) and RUNSPACEPOOL_STATE,
    and every finished script with PIPELINE_STATE; across a fleet these are mostly the same bytes, and
    pypsrp deserialises each from XML in Python: 1 ms of CPU per node. A message of these types whose
    bytes (past the 40-byte header) match one deserialised before gets its own copy of that result (a
    pickle round trip: new objects, as pypsrp would make, in a tenth of the time); others, a session with
    a session key, and debug logging go to pypsrp. Script output, error records and host calls are never
    remembered.

    For both, nodes that start together would each miss the memo and make the same message at once;
    the first one makes it while the others wait for it (`_Remembered.making`), so it is made once.

Each is narrow: it replaces one name inside one pypsrp module, keeps every other behaviour, and if a
later pypsrp stops calling what it replaces, it simply stops mattering.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_loaded = False


class _PypsrpElementTree(types.ModuleType):
    """ElementTree as pypsrp's modules see it: the same module, but re-registering a known prefix is a
    no-op (fix 1) and UTF-8 `tostring` encodes once (fix 6)."""

    def __init__(self) -> None:
        super().__init__(ET.__name__)
        vars(self).update({k: v for k, v in vars(ET).items() if not k.startswith("__")})
        self.register_namespace = _register_if_changed
        self.tostring = _tostring


_ONE_PASS_ENCODINGS = frozenset({"utf-8", "UTF-8", "utf8"})


def _tostring(element: ET.Element, encoding: Any = None, method: Any = None, **kwargs: Any) -> Any:
    """`ET.tostring`, with UTF-8 built as text and encoded once (fix 6).

    ElementTree writes UTF-8 through `io.TextIOWrapper(errors="xmlcharrefreplace", newline="\n")` and adds
    no XML declaration for UTF-8 unless asked; encoding the text with the same error handler gives the same
    bytes. Anything else (another encoding, a declaration asked for) goes to ElementTree itself."""
    if encoding in _ONE_PASS_ENCODINGS and not kwargs:
        return ET.tostring(element, encoding="unicode", method=method).encode("utf-8", "xmlcharrefreplace")
    return ET.tostring(element, encoding=encoding, method=method, **kwargs)


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
        from hcibenefit.remoting.prepared import reuse_prepared_requests
        from hcibenefit.remoting.tlscontext import share_tls_context

        session = build_session(self)
        share_tls_context(session)  # fix 4
        reuse_prepared_requests(session)  # fix 7
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


class _Remembered:
    """A thread-safe memo that stops growing at `entries` keys or `budget` bytes (keys and values): what
    fixes 9 to 11 remember is the same for every node of a run, so a full memo means the data differs
    from node to node and remembering more would not pay."""

    def __init__(self, entries: int, budget: int | None = None) -> None:
        self._values: dict[Any, Any] = {}
        self._entries = entries
        self._budget = budget
        self._kept = 0
        self._lock = threading.Lock()
        self._making = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            return self._values.get(key)

    @contextlib.contextmanager
    def making(self) -> Iterator[None]:
        """Held while a value that was not found is made and put, so that the nodes that start together
        make it once: a thread that missed the same key meanwhile asks again once it holds this, and finds
        it. Not held once the memo is full, when nothing more is put."""
        with self._lock:
            full = len(self._values) >= self._entries
        if full:
            yield
            return
        with self._making:
            yield

    def put(self, key: Any, value: Any, size: int = 0) -> None:
        with self._lock:
            if len(self._values) >= self._entries or (
                self._budget is not None and self._kept + size > self._budget
            ):
                return
            self._values[key] = value
            self._kept += size


def _copying_through_pickle(deepcopy: Any) -> Any:
    import pickle

    def copy(value: Any, memo: Any = None) -> Any:
        if memo is None:
            try:
                return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
            except Exception:  # not picklable: copy it as pypsrp would
                pass
        return deepcopy(value, memo)

    copy.through_pickle = True  # type: ignore[attr-defined]
    copy.__wrapped__ = deepcopy  # type: ignore[attr-defined]
    return copy


_ENVELOPE_SIZES_KEPT = 64


def _escaped_length(text: str) -> int:
    """Bytes of `text` as ElementTree writes element text in UTF-8 (`_escape_cdata`: &, <, >)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return len(escaped.encode("utf-8", "xmlcharrefreplace"))


def _remembering_envelope_size(calculate: Any) -> Any:
    remembered = _Remembered(_ENVELOPE_SIZES_KEPT)

    def calc_envelope_size(self: Any, max_envelope_size: int) -> int:
        endpoint = getattr(getattr(self, "transport", None), "endpoint", None)
        if not isinstance(endpoint, str):
            return int(calculate(self, max_envelope_size))
        # Everything the skeleton envelope's length depends on (pypsrp/wsman.py: _calc_envelope_size and
        # _create_header); the endpoint only through its length as ElementTree writes it (escaped, UTF-8).
        key = (
            type(self),
            max_envelope_size,
            str(self.max_envelope_size),
            self.data_locale,
            self.locale,
            str(self.operation_timeout),
            len(str(self.session_id)),
            _escaped_length(endpoint),
        )
        size = remembered.get(key)
        if size is None:
            size = int(calculate(self, max_envelope_size))
            remembered.put(key, size)
        return int(size)

    calc_envelope_size.remembers = True  # type: ignore[attr-defined]
    calc_envelope_size.__wrapped__ = calculate  # type: ignore[attr-defined]
    return calc_envelope_size


_HEADER_BYTES = 40
"""A PSRP message before its XML: destination and type (4 bytes each), then the pool's and the pipeline's
ids (16 each) ([MS-PSRP] 2.2.1; pypsrp/messages.py Message.pack)."""
_PACKED_KEPT = 32
_PACKED_KEPT_BYTES = 8 * 1024 * 1024


def _may_remember(message_type: int | None, remembered_types: frozenset[int], serializer: Any) -> bool:
    """Whether fixes 10 and 11 may pack or unpack this message from memory: one of their types, in a session
    with no session key (its messages may carry a secret), with pypsrp's debug logging off (which prints
    every message as it is packed)."""
    import logging

    return (
        message_type in remembered_types
        and getattr(serializer, "cipher", True) is None
        and not logging.getLogger("pypsrp.messages").isEnabledFor(logging.DEBUG)
    )


def _remembering_packed_messages(pack: Any, remembered_types: frozenset[int]) -> Any:
    import pickle
    import struct

    remembered = _Remembered(_PACKED_KEPT, _PACKED_KEPT_BYTES)

    def remembering_pack(self: Any) -> Any:
        if not _may_remember(self.message_type, remembered_types, self._serializer):
            return pack(self)
        try:
            key = (self.message_type, pickle.dumps(self.data, pickle.HIGHEST_PROTOCOL))
        except Exception:  # data that does not pickle: pack it as pypsrp does
            return pack(self)
        xml = remembered.get(key)
        if xml is None:
            with remembered.making():
                xml = remembered.get(key)
                if xml is None:
                    packed = pack(self)
                    remembered.put(key, packed[_HEADER_BYTES:], len(key[1]) + len(packed))
                    return packed
        header = (
            struct.pack("<II", self.destination, self.message_type) + self.rpid.bytes_le + self.pid.bytes_le
        )
        return header + xml

    remembering_pack.remembers = True  # type: ignore[attr-defined]
    remembering_pack.__wrapped__ = pack  # type: ignore[attr-defined]
    return remembering_pack


def _remembering_unpacked_messages(unpack: Any, message_class: Any, remembered_types: frozenset[int]) -> Any:
    import pickle
    import struct
    import uuid

    remembered = _Remembered(_PACKED_KEPT, _PACKED_KEPT_BYTES)

    def remembering_unpack(data: bytes, serializer: Any) -> Any:
        message_type = struct.unpack_from("<I", data, 4)[0] if len(data) >= _HEADER_BYTES else None
        if not _may_remember(message_type, remembered_types, serializer):
            return unpack(data, serializer)
        key = (message_type, bytes(data[_HEADER_BYTES:]))
        pickled = remembered.get(key)
        if pickled is None:
            with remembered.making():
                pickled = remembered.get(key)
                if pickled is None:
                    message = unpack(data, serializer)
                    try:
                        pickled = pickle.dumps(message.data, pickle.HIGHEST_PROTOCOL)
                    except Exception:  # a result that does not pickle is simply not remembered
                        return message
                    remembered.put(key, pickled, len(key[1]) + len(pickled))
                    return message
        # The rest as pypsrp/messages.py Message.unpack does it.
        destination = struct.unpack_from("<I", data, 0)[0]
        rpid = str(uuid.UUID(bytes_le=bytes(data[8:24])))
        pid = str(uuid.UUID(bytes_le=bytes(data[24:40])))
        return message_class(destination, rpid, pid, pickle.loads(pickled), serializer)

    remembering_unpack.remembers = True  # type: ignore[attr-defined]
    remembering_unpack.__wrapped__ = unpack  # type: ignore[attr-defined]
    return staticmethod(remembering_unpack)


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
        element_tree = _PypsrpElementTree()
        wsman.ET = element_tree
        if not isinstance(powershell.rsa, _OneExchangeKey):
            powershell.rsa = _OneExchangeKey(powershell.rsa)
        transport = wsman._TransportHTTP
        if not getattr(transport._build_session, "shares_tls_context", False):
            transport._build_session = _sharing_tls_context(transport._build_session)
        serializer: Any = importlib.import_module("pypsrp.serializer")
        serializer.ET = element_tree
        complex_objects: Any = importlib.import_module("pypsrp.complex_objects")
        if not getattr(complex_objects.deepcopy, "through_pickle", False):
            complex_objects.deepcopy = _copying_through_pickle(complex_objects.deepcopy)
        if not getattr(wsman.WSMan._calc_envelope_size, "remembers", False):
            wsman.WSMan._calc_envelope_size = _remembering_envelope_size(wsman.WSMan._calc_envelope_size)
        messages: Any = importlib.import_module("pypsrp.messages")
        messages.ET = element_tree
        if not getattr(messages.Message.pack, "remembers", False):
            kinds = messages.MessageType
            messages.Message.pack = _remembering_packed_messages(
                messages.Message.pack,
                frozenset({kinds.SESSION_CAPABILITY, kinds.INIT_RUNSPACEPOOL, kinds.CREATE_PIPELINE}),
            )
        if not getattr(messages.Message.unpack, "remembers", False):
            kinds = messages.MessageType
            answers = (kinds.SESSION_CAPABILITY, kinds.APPLICATION_PRIVATE_DATA, kinds.RUNSPACEPOOL_STATE)
            messages.Message.unpack = _remembering_unpacked_messages(
                messages.Message.unpack, messages.Message, frozenset({*answers, kinds.PIPELINE_STATE})
            )
        serializer.Serializer._serialize_string = _remembering(serializer.Serializer._serialize_string)
        _loaded = True


def exchange_keys_generated() -> int:
    """How many RSA key pairs this process generated for session-key exchanges (for tests and benchmarks)."""
    load()
    import importlib

    rsa = importlib.import_module("pypsrp.powershell").rsa
    return rsa.generated if isinstance(rsa, _OneExchangeKey) else -1
