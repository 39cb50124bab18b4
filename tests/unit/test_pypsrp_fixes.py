"""pypsrp_fixes: sessions built from many threads never corrupt each other's XML; one exchange key per process."""

from __future__ import annotations

import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hcibenefit.remoting import pypsrp_fixes


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so a race window of a few bytecodes is hit."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _envelope_prefixes_stay_stable(register: Callable[[], None], seconds: float) -> list[bytes]:
    """Threads calling `register` while others serialise a SOAP header as pypsrp does; the bad outputs."""
    from pypsrp.wsman import NAMESPACES

    stop = threading.Event()
    bad: list[bytes] = []

    def construct() -> None:
        while not stop.is_set():
            try:
                register()
            except KeyError as exc:  # the registry itself raced (pypsrp's WSMan() would raise it too)
                bad.append(f"register_namespace: KeyError {exc}".encode())
                stop.set()

    def serialise() -> None:
        while not stop.is_set():
            envelope = ET.Element(f"{{{NAMESPACES['s']}}}Envelope")
            header = ET.SubElement(envelope, f"{{{NAMESPACES['s']}}}Header")
            locale = ET.SubElement(header, f"{{{NAMESPACES['wsman']}}}Locale")
            locale.set(f"{{{NAMESPACES['xml']}}}lang", "en-US")
            text = ET.tostring(envelope, encoding="utf-8")
            if b"<s:Envelope" not in text or b'xml:lang="en-US"' not in text:
                bad.append(text)
                stop.set()

    threads = [threading.Thread(target=construct) for _ in range(3)]
    threads += [threading.Thread(target=serialise) for _ in range(3)]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return bad


def test_building_sessions_in_many_threads_never_changes_the_xml_sent(tiny_switch_interval: None) -> None:
    pypsrp_fixes.load()
    from pypsrp.wsman import WSMan

    def build_session() -> None:
        WSMan("127.0.0.1", ssl=False, auth="basic", username="u", password="p", encryption="never")

    assert _envelope_prefixes_stay_stable(build_session, seconds=1.0) == []


def test_the_race_the_fix_removes_is_real(tiny_switch_interval: None) -> None:
    """What unpatched pypsrp does in every WSMan(): this harness catches it, so the test above means something."""
    from pypsrp.wsman import NAMESPACES

    def register_like_pypsrp() -> None:
        for prefix, uri in NAMESPACES.items():
            ET.register_namespace(prefix, uri)

    bad = _envelope_prefixes_stay_stable(register_like_pypsrp, seconds=5.0)
    # Typically `<ns0:Envelope xmlns:ns0=...>`, or the reserved xml prefix rebound, which hosts reject.
    assert bad, "no corrupted envelope in 5 s"


def test_one_exchange_key_pair_per_process() -> None:
    pypsrp_fixes.load()
    from pypsrp import powershell

    before = pypsrp_fixes.exchange_keys_generated()
    first = powershell.rsa.generate_private_key(public_exponent=65537, key_size=2048)
    second = powershell.rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert first is second
    assert pypsrp_fixes.exchange_keys_generated() == max(1, before)
    assert first.key_size == 2048


def test_a_long_script_is_escaped_once_and_still_round_trips() -> None:
    pypsrp_fixes.load()
    from pypsrp.serializer import Serializer

    from hcibenefit.remoting.catalog import HOST_FACTS

    text = HOST_FACTS.text() + "\n_x0041_ \u0007 end"
    first = Serializer()._serialize_string(text)
    assert Serializer()._serialize_string(text) is first  # remembered, not escaped again
    element = ET.Element("S")
    element.text = first
    assert Serializer().deserialize(element) == text
    assert Serializer()._serialize_string("short_x0041_") == "short_x005F_x0041_"


_NEGOTIATE_ON_FIRST_USE = """
import sys
from hcibenefit.remoting import pypsrp_fixes
pypsrp_fixes.load()
print("spnego after load:", "spnego" in sys.modules)
from pypsrp.wsman import WSMan
basic = WSMan("h1", username="u", password="p", auth="basic", ssl=True, cert_validation=False)
basic.transport._build_session()
print("spnego after basic:", "spnego" in sys.modules)
ntlm = WSMan("h2", username="u", password="p", auth="ntlm", ssl=False, encryption="always")
session = ntlm.transport._build_session()
import pypsrp.negotiate
print("real class:", type(session.auth) is pypsrp.negotiate.HTTPNegotiateAuth, session.auth.auth_provider)
"""


def test_spnego_is_imported_only_when_a_session_negotiates() -> None:
    """Fix 5: Basic and certificate runs do not pay spnego's imports; an NTLM session gets pypsrp's own
    HTTPNegotiateAuth, and `import pypsrp.negotiate` afterwards is the real module, not the stand-in."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", _NEGOTIATE_ON_FIRST_USE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.splitlines() == [
        "spnego after load: False",
        "spnego after basic: False",
        "real class: True ntlm",
    ]


def test_pypsrp_tostring_gives_elementtree_s_bytes() -> None:
    """Fix 6: pypsrp's modules serialise with a one-pass `tostring` that gives exactly ElementTree's bytes:
    namespaces, escaping, non-ASCII text, a lone surrogate (a character reference), no declaration."""
    pypsrp_fixes.load()
    from pypsrp import messages, serializer, wsman
    from pypsrp.wsman import NAMESPACES

    envelope = ET.Element(f"{{{NAMESPACES['s']}}}Envelope")
    header = ET.SubElement(envelope, f"{{{NAMESPACES['s']}}}Header")
    locale = ET.SubElement(
        header, f"{{{NAMESPACES['wsman']}}}Locale", {f"{{{NAMESPACES['xml']}}}lang": "en-US"}
    )
    locale.text = "a < b & c > \"d\" 'e'\r\n\tVM-\u00e9\u4e2d\U0001f600 \ud800 end"
    ET.SubElement(envelope, "Empty")
    ET.SubElement(envelope, "S", {"N": 'x&"y"\n'}).text = "_x000D_"
    for module in (wsman, serializer, messages):
        assert module.ET is not ET  # each pypsrp module got the fixed ElementTree
        assert module.ET.tostring(envelope, encoding="utf-8", method="xml") == ET.tostring(
            envelope, encoding="utf-8", method="xml"
        )
    assert b"&#55296;" in wsman.ET.tostring(envelope, encoding="utf-8")
    assert not wsman.ET.tostring(envelope, encoding="utf-8").startswith(b"<?xml")
    # anything but plain UTF-8 is ElementTree's own
    assert wsman.ET.tostring(envelope, encoding="utf-16") == ET.tostring(envelope, encoding="utf-16")
    assert wsman.ET.tostring(envelope, encoding="unicode") == ET.tostring(envelope, encoding="unicode")
    assert wsman.ET.tostring(envelope, encoding="utf-8", xml_declaration=True).startswith(b"<?xml")


def test_a_pipeline_copied_through_pickle_serialises_as_deep_copied() -> None:
    """Fix 8: the command copies pypsrp serialises are independent and give the same CLIXML."""
    pypsrp_fixes.load()
    from pypsrp import complex_objects
    from pypsrp.complex_objects import Command, CommandParameter, Pipeline
    from pypsrp.serializer import Serializer

    from hcibenefit.remoting.catalog import HOST_FACTS

    def pipeline() -> Pipeline:
        command = Command(cmd=HOST_FACTS.text(), is_script=True, use_local_scope=False)
        command.args.append(CommandParameter(name="VMName", value=["vm-é*[1]", "b"]))
        command.args.append(CommandParameter(name="IncludeGuestOs", value=True))
        second = Command(cmd="Out-String", is_script=False)
        return Pipeline(is_nested=False, cmds=[command, second], history=None, redirect_err_to_out=False)

    copying = complex_objects.deepcopy
    assert getattr(copying, "through_pickle", False)
    ours = ET.tostring(Serializer().serialize(pipeline()))
    complex_objects.deepcopy = copying.__wrapped__
    try:
        theirs = ET.tostring(Serializer().serialize(pipeline()))
    finally:
        complex_objects.deepcopy = copying
    assert ours == theirs and b"vm-" in ours
    original = pipeline().commands[0]
    copied = copying(original)
    copied.args[0].value.append("c")
    assert original.args[0].value == ["vm-é*[1]", "b"]  # an independent copy
    unpicklable = {"call": lambda: 1}
    assert copying(unpicklable)["call"] is unpicklable["call"]  # not picklable: deep-copied as before


@pytest.mark.parametrize(
    "server",
    [
        "n1",
        "node01.contoso.com",
        "10.0.0.1",
        "[fe80::1%25eth0]",
        "a&b<c>.test",
        "nœud-ünïcode.test",
        "x" * 200,
    ],
)
def test_a_remembered_envelope_size_is_the_one_pypsrp_works_out(server: str) -> None:
    """Fix 9: remembered per (limit, locales, timeout, escaped endpoint length), the same for any endpoint."""
    from xml.sax.saxutils import escape

    pypsrp_fixes.load()
    from pypsrp.wsman import WSMan

    calculate = WSMan._calc_envelope_size
    assert getattr(calculate, "remembers", False)
    for limit in (153600, 512000):
        for locale in ("en-US", "de-DE-1996"):
            wsman = WSMan(server, username="u", password="p", ssl=True, cert_validation=False, locale=locale)
            wsman.transport.endpoint = f"https://{server}:5986/wsman"
            other = WSMan("z", username="u", password="p", ssl=True, cert_validation=False, locale=locale)
            written = len(escape(wsman.transport.endpoint).encode())  # as ElementTree writes it
            other.transport.endpoint = "https://" + "q" * (written - 8)  # worked out first, then remembered
            calculate(other, limit)
            assert calculate(wsman, limit) == calculate.__wrapped__(wsman, limit)


def _create_pipeline(vm: str) -> Any:
    from pypsrp.complex_objects import (
        ApartmentState,
        Command,
        CommandParameter,
        HostInfo,
        Pipeline,
        RemoteStreamOptions,
    )
    from pypsrp.messages import CreatePipeline

    from hcibenefit.remoting.catalog import HOST_FACTS

    command = Command(cmd=HOST_FACTS.text(), is_script=True, use_local_scope=False)
    command.args.append(CommandParameter(name="VMName", value=[vm]))
    pipeline = Pipeline(is_nested=False, cmds=[command], history=None, redirect_err_to_out=False)
    return CreatePipeline(
        True,
        ApartmentState(value=2),
        RemoteStreamOptions(value=0),
        False,
        HostInfo(host=None),
        pipeline,
        False,
    )


def test_a_remembered_message_packs_as_pypsrp_packs_it() -> None:
    """Fix 10: packed from the remembered XML, a message is byte for byte pypsrp's own, with its own ids;
    different data is not confused with it, and a session with a key (a secret may be in it) is left alone."""
    import uuid

    pypsrp_fixes.load()
    from pypsrp.messages import Destination, Message
    from pypsrp.serializer import Serializer

    pack = Message.pack
    assert getattr(pack, "remembers", False)

    def both(data: Any, serializer: Any = None) -> tuple[bytes, bytes]:
        rpid, pid = str(uuid.uuid4()), str(uuid.uuid4())
        message = Message(Destination.SERVER, rpid, pid, data, serializer or Serializer())
        return Message.pack(message), pack.__wrapped__(message)

    first, first_theirs = both(_create_pipeline("vm-01"))
    assert first == first_theirs
    again, again_theirs = both(_create_pipeline("vm-01"))  # the same data: from the remembered XML
    assert again == again_theirs and again[40:] == first[40:] and again[8:40] != first[8:40]
    other, other_theirs = both(_create_pipeline("vm-02"))
    assert other == other_theirs and b"vm-02" in other
    calls: list[Any] = []

    def counting(message: Any) -> bytes:
        calls.append(message)
        return bytes(pack.__wrapped__(message))

    remembering = pypsrp_fixes._remembering_packed_messages(counting, frozenset({0x21006}))
    for _ in range(2):
        remembering(
            Message(Destination.SERVER, str(uuid.uuid4()), None, _create_pipeline("vm-01"), Serializer())
        )
    assert len(calls) == 1  # the second from the remembered XML
    keyed = Serializer()
    keyed.cipher = object()  # stands for a session key: a SecureString may be in the message
    for _ in range(2):
        remembering(Message(Destination.SERVER, str(uuid.uuid4()), None, _create_pipeline("vm-01"), keyed))
    assert len(calls) == 3  # with a session key every message is packed by pypsrp


def _state(value: Any, depth: int = 0) -> Any:
    """What an object holds, compared by value all the way down (pypsrp's objects define no equality)."""
    assert depth < 50
    if isinstance(value, dict):
        return {k: _state(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_state(v, depth + 1) for v in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return (type(value).__qualname__, _state(vars(value), depth + 1))
    return value


def test_a_remembered_answer_unpacks_as_pypsrp_unpacks_it() -> None:
    """Fix 11: an answer deserialised before comes back as pypsrp would give it (same header, equal data),
    in objects of its own; script output is never remembered, nor anything in a session with a key."""
    import uuid

    pypsrp_fixes.load()
    from pypsrp.complex_objects import RunspacePoolState
    from pypsrp.messages import (
        Destination,
        Message,
        RunspacePoolStateMessage,
        SessionCapability,
    )
    from pypsrp.serializer import Serializer

    unpack = Message.unpack
    assert getattr(unpack, "remembers", False)

    def wire(data: Any) -> bytes:
        message = Message(Destination.CLIENT, str(uuid.uuid4()), str(uuid.uuid4()), data, Serializer())
        return bytes(Message.pack.__wrapped__(message))  # type: ignore[attr-defined]

    for answer in (
        SessionCapability("2.3", "2.0", "1.1.0.1"),
        RunspacePoolStateMessage(RunspacePoolState.OPENED),
    ):
        first_wire, second_wire = wire(answer), wire(answer)
        assert first_wire[40:] == second_wire[40:] and first_wire[8:40] != second_wire[8:40]
        first = Message.unpack(first_wire, Serializer())
        second = Message.unpack(second_wire, Serializer())  # from the remembered result
        theirs = unpack.__wrapped__(second_wire, Serializer())
        for ours in (first, second):
            assert (ours.destination, ours.message_type) == (theirs.destination, theirs.message_type)
        assert (second.rpid, second.pid) == (theirs.rpid, theirs.pid) != (first.rpid, first.pid)
        assert _state(second.data) == _state(theirs.data) == _state(first.data)
        assert second.data is not first.data  # objects of its own, as pypsrp would make
    calls: list[bytes] = []

    def counting(data: bytes, serializer: Any) -> Any:
        calls.append(data)
        return unpack.__wrapped__(data, serializer)

    remembering = pypsrp_fixes._remembering_unpacked_messages(
        counting, Message, frozenset({0x00010002, 0x00021005})
    ).__func__
    capability = wire(SessionCapability("2.3", "2.0", "1.1.0.1"))
    remembering(capability, Serializer())
    remembering(capability, Serializer())
    assert len(calls) == 1
    keyed = Serializer()
    keyed.cipher = object()  # a session key
    remembering(capability, keyed)
    assert len(calls) == 2


def test_what_is_remembered_stays_bounded() -> None:
    """Fixes 9 to 11 stop remembering at a number of keys or bytes: data that differs per node (a VM's
    name in a parameter, say) must not grow the process with every node."""
    by_count = pypsrp_fixes._Remembered(entries=2)
    for key in "abc":
        by_count.put(key, key.upper())
    assert (by_count.get("a"), by_count.get("b"), by_count.get("c")) == ("A", "B", None)
    by_bytes = pypsrp_fixes._Remembered(entries=10, budget=100)
    by_bytes.put("x", b"x" * 60, 60)
    by_bytes.put("y", b"y" * 60, 60)  # would pass the budget
    by_bytes.put("z", b"z", 1)
    assert (by_bytes.get("x") is not None, by_bytes.get("y"), by_bytes.get("z")) == (True, None, b"z")


def test_nodes_that_start_together_pack_and_unpack_a_repeated_message_once() -> None:
    """Fixes 10 and 11: threads that miss the same message at the same moment (every node of a run opens
    its pool at once) wait for the first to make it rather than each making it again."""
    import uuid

    pypsrp_fixes.load()
    from pypsrp.messages import Destination, Message, SessionCapability
    from pypsrp.serializer import Serializer

    pack, unpack = Message.pack.__wrapped__, Message.unpack.__wrapped__  # type: ignore[attr-defined]
    packed: list[Any] = []
    unpacked: list[bytes] = []

    def slow_pack(message: Any) -> bytes:
        packed.append(message)
        time.sleep(0.1)  # long enough for every other thread to miss the memo too, unless it waits
        return bytes(pack(message))

    def slow_unpack(data: bytes, serializer: Any) -> Any:
        unpacked.append(data)
        time.sleep(0.1)
        return unpack(data, serializer)

    remembering_pack = pypsrp_fixes._remembering_packed_messages(slow_pack, frozenset({0x21006}))
    remembering_unpack = pypsrp_fixes._remembering_unpacked_messages(
        slow_unpack, Message, frozenset({0x00010002})
    ).__func__
    capability = bytes(
        pack(
            Message(
                Destination.CLIENT,
                str(uuid.uuid4()),
                None,
                SessionCapability("2.3", "2.0", "1.1.0.1"),
                Serializer(),
            )
        )
    )
    results: list[tuple[bytes, Any]] = []

    def node() -> None:
        message = Message(
            Destination.SERVER, str(uuid.uuid4()), None, _create_pipeline("vm-01"), Serializer()
        )
        results.append((remembering_pack(message), remembering_unpack(capability, Serializer())))

    threads = [threading.Thread(target=node) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert (len(packed), len(unpacked)) == (1, 1)
    assert len({wire[40:] for wire, _ in results}) == 1
    assert {answer.data.protocol_version for _, answer in results} == {"2.3"}
