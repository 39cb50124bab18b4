"""`attest fetch-intermediates`: the lab's chain published on a loopback HTTP server, as Microsoft's PKI
publishes its issuing CAs at the URLs their children name (AIA caIssuers).

What must hold: a real issuer is fetched, stored privately and then used by `attest verify`; anything else a
server answers (another certificate, a non-CA with the issuer's key, a root, too much, too slowly, another
scheme) is refused with a reason and nothing is stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from hcibenefit.attestation import TrustStore, intermediates
from hcibenefit.attestation.aia import http_getter
from hcibenefit.attestation.trust import fetched_store
from hcibenefit.cli.app import run
from hcibenefit.exitcodes import ExitCode
from hcibenefit.lab import pki
from hcibenefit.lab.signing import LAB_SAN_PATTERN, LabSigningChain
from hcibenefit.operations.guests.check import trust_for
from hcibenefit.operations.intermediates import Start, document_start, fetch_intermediates

NONCE = "1234567890"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    delay: float = 0.0
    location: str | None = None
    declare_length: bool = True


@dataclass
class Publisher:
    """A loopback HTTP server answering each path from ``routes``; ``hits`` counts requests per path."""

    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)


def _handler(publisher: Publisher) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            publisher.hits[self.path] = publisher.hits.get(self.path, 0) + 1
            route = publisher.routes.get(self.path, Route(b"not found", status=404))
            time.sleep(route.delay)
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            if route.declare_length:
                self.send_header("Content-Length", str(len(route.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            # The client may give up (too large, too slow): that is the point of some tests.
            with contextlib.suppress(OSError):
                self.wfile.write(route.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _serve(publisher: Publisher, server: http.server.ThreadingHTTPServer) -> Iterator[Publisher]:
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield publisher
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def module_publisher() -> Iterator[Publisher]:
    pub = Publisher(base="")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(pub))
    pub.base = f"http://127.0.0.1:{server.server_address[1]}/pki"
    yield from _serve(pub, server)


@pytest.fixture(scope="module")
def module_chain(module_publisher: Publisher) -> LabSigningChain:
    """One chain for the module (five RSA keys take a second or two on a loaded machine)."""
    return LabSigningChain.generate(publish_at=module_publisher.base)


@pytest.fixture
def publisher(module_publisher: Publisher) -> Publisher:
    module_publisher.routes.clear()
    module_publisher.hits.clear()
    return module_publisher


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The per-user store, in this test's own XDG data directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("HCIBENEFIT_INVENTORY", raising=False)
    return intermediates.default_dir()


@dataclass(frozen=True)
class Published:
    chain: LabSigningChain
    doc: Path
    root: Path
    """The only thing trusted: the lab root (as DigiCert Global Root G2 is, in every store)."""


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def published(publisher: Publisher, module_chain: LabSigningChain, tmp_path: Path) -> Published:
    chain = module_chain
    publisher.routes["/pki/ca01.cer"] = Route(_der(chain.intermediate.cert))
    publisher.routes["/pki/root.cer"] = Route(_der(chain.root.cert))
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps(chain.make_document(vm_id="vm-1", subscription_id="sub", nonce=NONCE)))
    root = tmp_path / "root.pem"
    root.write_bytes(chain.root.cert_pem)
    return Published(chain, doc, root)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = run([*argv, "-o", "json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def _verify(capsys: pytest.CaptureFixture[str], p: Published) -> tuple[int, Any]:
    code, report, _ = _run(
        capsys, "attest", "verify", str(p.doc), "--ca", str(p.root), "--san-pattern", LAB_SAN_PATTERN
    )
    return code, report


def _fetch(capsys: pytest.CaptureFixture[str], p: Published, *extra: str) -> tuple[int, Any, str]:
    return _run(capsys, "attest", "fetch-intermediates", str(p.doc), "--ca", str(p.root), *extra)


def test_fetched_intermediate_is_stored_privately_and_verify_then_passes(
    published: Published, publisher: Publisher, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, before = _verify(capsys, published)
    assert code == ExitCode.FINDINGS and before["failure_kind"] == "missing-intermediate"
    chain_reason = next(c["reason"] for c in before["checks"] if c["id"] == "chain")
    # The reason names the exact fix, with the URL the leaf gives for its issuer.
    assert f"hcibenefit attest fetch-intermediates --url {publisher.base}/ca01.cer" in chain_reason

    code, result, _ = _fetch(capsys, published)
    assert code == ExitCode.OK, result
    assert result["complete"] is True and result["store"] == str(store)
    [stored] = result["stored"]
    intermediate = published.chain.intermediate.cert
    assert stored["new"] is True and stored["source"] == f"{publisher.base}/ca01.cer"
    assert stored["subject"] == "CN=hcibenefit lab attestation CA 01"
    assert stored["sha256"] == intermediate.fingerprint(hashes.SHA256()).hex()
    assert stored["not_after"] == intermediate.not_valid_after_utc.isoformat()
    assert [s["outcome"] for s in result["documents"][0]["steps"]] == ["fetched", "anchor"]
    assert result["documents"][0]["chain_after"]["ok"] is True
    assert publisher.hits == {"/pki/ca01.cer": 1}  # the root is trusted already: never downloaded

    path = Path(stored["file"])
    assert path.parent == store and path.name == f"{stored['sha256']}.pem"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert f"# source:     {publisher.base}/ca01.cer" in text and "# not after:" in text
    assert x509.load_pem_x509_certificate(path.read_bytes()) == intermediate

    code, after = _verify(capsys, published)
    assert code == ExitCode.OK and after["ok"] is True, after


def test_second_run_changes_nothing_and_fetches_nothing(
    published: Published, publisher: Publisher, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fetch(capsys, published)[0] == ExitCode.OK
    files = sorted(store.iterdir())
    mtimes = [f.stat().st_mtime_ns for f in files]
    code, result, _ = _fetch(capsys, published)
    assert code == ExitCode.OK and result["complete"] is True
    assert result["stored"] == []
    assert [s["outcome"] for s in result["documents"][0]["steps"]] == ["known", "anchor"]
    assert publisher.hits == {"/pki/ca01.cer": 1}
    assert sorted(store.iterdir()) == files and [f.stat().st_mtime_ns for f in files] == mtimes


def test_what_if_names_the_url_and_fetches_nothing(
    published: Published, publisher: Publisher, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = _fetch(capsys, published, "--what-if")
    assert code == ExitCode.OK and result["what_if"] is True
    [step] = result["documents"][0]["steps"]
    assert step["outcome"] == "would-fetch" and step["url"] == f"{publisher.base}/ca01.cer"
    assert publisher.hits == {} and not store.exists()


def _assert_refused(
    capsys: pytest.CaptureFixture[str], p: Published, store: Path, *expected: str
) -> dict[str, Any]:
    code, result, _ = _fetch(capsys, p)
    assert code == ExitCode.INCOMPLETE, result
    error = result["documents"][0]["error"]
    for text in expected:
        assert text in error, error
    assert result["stored"] == []
    assert not (store.exists() and any(store.glob("*.pem")))
    assert _verify(capsys, p)[1]["failure_kind"] == "missing-intermediate"
    return dict(result)


def test_a_certificate_that_did_not_sign_the_leaf_is_refused(
    published: Published, publisher: Publisher, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Another CA (real, under the same root) served where the issuer should be.
    publisher.routes["/pki/ca01.cer"] = Route(_der(published.chain.orphan_intermediate.cert))
    _assert_refused(capsys, published, store, "not the issuer 'CN=hcibenefit lab attestation CA 01'")
    # Same name, other key: an impostor.
    impostor = pki.issue(
        "hcibenefit lab attestation CA 01", issuer=published.chain.root, ca=True, key_kind="rsa"
    )
    publisher.routes["/pki/ca01.cer"] = Route(_der(impostor.cert))
    _assert_refused(capsys, published, store, "did not sign")


def test_a_non_ca_certificate_with_the_issuers_key_is_refused(
    published: Published, publisher: Publisher, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The issuer's name and key (so the leaf's signature verifies with it), but basicConstraints cA=false.
    real = published.chain.intermediate
    not_ca = (
        x509.CertificateBuilder()
        .subject_name(real.cert.subject)
        .issuer_name(published.chain.root.cert.subject)
        .public_key(real.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(real.cert.not_valid_before_utc)
        .not_valid_after(real.cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(published.chain.root.key, hashes.SHA256())
    )
    publisher.routes["/pki/ca01.cer"] = Route(_der(not_ca))
    _assert_refused(capsys, published, store, "not a CA certificate")


def test_a_root_is_never_taken_from_the_network(
    published: Published,
    publisher: Publisher,
    store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Nothing trusts the lab root here: the walk fetches CA 01, then is offered the root itself.
    other_root = tmp_path / "other-root.pem"
    other_root.write_bytes(pki.issue("some other root", ca=True).cert_pem)
    code, result, _ = _run(
        capsys, "attest", "fetch-intermediates", str(published.doc), "--ca", str(other_root)
    )
    assert code == ExitCode.INCOMPLETE
    assert "never taken from the network" in result["documents"][0]["error"]
    assert result["stored"] == [] and not (store.exists() and any(store.iterdir()))
    assert publisher.hits == {"/pki/ca01.cer": 1, "/pki/root.cer": 1}


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_oversized_answer_is_refused(
    published: Published,
    publisher: Publisher,
    store: Path,
    capsys: pytest.CaptureFixture[str],
    declare_length: bool,
) -> None:
    publisher.routes["/pki/ca01.cer"] = Route(b"\x30" * (300 * 1024), declare_length=declare_length)
    _assert_refused(capsys, published, store, "KiB allowed")


def _trust(p: Published) -> TrustStore:
    return TrustStore.from_pem_files([p.root])


def _walk_with(p: Published, store: Path, getter: Callable[[str], bytes]) -> Any:
    start = document_start(str(p.doc), p.doc.read_bytes())
    now = dt.datetime.now(dt.timezone.utc)
    return fetch_intermediates([start], _trust(p), getter, directory=store, what_if=False, now=now)


def test_a_slow_answer_is_refused(published: Published, publisher: Publisher, store: Path) -> None:
    publisher.routes["/pki/ca01.cer"] = Route(_der(published.chain.intermediate.cert), delay=1.0)
    started = time.monotonic()
    result = _walk_with(published, store, http_getter(read_timeout=0.2))
    assert time.monotonic() - started < 1.0
    assert result.incomplete and "no answer within 0.2 s" in (result.outcomes[0].walk.error or "")
    assert not store.exists()


def test_a_trickling_answer_hits_the_deadline(
    published: Published, publisher: Publisher, store: Path
) -> None:
    trickle = published.chain.intermediate.cert_pem
    stop = threading.Event()

    class Trickler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            try:
                for byte in trickle:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if stop.wait(0.05):
                        return
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/pki/ca01.cer"
        publisher.routes["/pki/ca01.cer"] = Route(status=302, location=url)
        result = _walk_with(published, store, http_getter(read_timeout=1.0, deadline=0.5))
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert "took longer than 0.5 s" in (result.outcomes[0].walk.error or "")
    assert not store.exists()


def test_unsupported_schemes_are_refused(
    publisher: Publisher, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = LabSigningChain.generate(publish_at="ldap://pki.example.test/pki")
    doc = tmp_path / "ldap-doc.json"
    doc.write_text(json.dumps(chain.make_document(vm_id="vm-1", subscription_id="sub", nonce=NONCE)))
    root = tmp_path / "root.pem"
    root.write_bytes(chain.root.cert_pem)
    p = Published(chain, doc, root)
    result = _assert_refused(capsys, p, store, "unsupported URL scheme", "only http and https")
    assert result["documents"][0]["steps"][0]["outcome"] == "failed" and publisher.hits == {}


def test_a_redirect_to_another_scheme_is_not_followed(
    published: Published, publisher: Publisher, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher.routes["/pki/ca01.cer"] = Route(status=301, location="file:///etc/passwd")
    _assert_refused(capsys, published, store, "redirected to 'file:///etc/passwd'")
    # Redirects within http(s) are followed (publishers move their files).
    publisher.routes["/pki/ca01.cer"] = Route(status=302, location="/pki/moved/ca01.cer")
    publisher.routes["/pki/moved/ca01.cer"] = Route(_der(published.chain.intermediate.cert))
    assert _fetch(capsys, published)[0] == ExitCode.OK


def test_https_is_verified(published: Published, store: Path, tmp_path: Path) -> None:
    # A server whose TLS certificate nothing trusts: the walk must not accept its answer.
    ca = pki.issue("untrusted TLS CA", ca=True)
    leaf = pki.tls_server(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    (tmp_path / "tls.pem").write_bytes(leaf.cert_pem + leaf.key_pem)
    pub = Publisher(base="")
    pub.routes["/pki/ca01.cer"] = Route(_der(published.chain.intermediate.cert))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(pub))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    url = f"https://127.0.0.1:{server.server_address[1]}/pki/ca01.cer"
    served = _serve(pub, server)
    next(served)
    try:
        now = dt.datetime.now(dt.timezone.utc)
        result = fetch_intermediates(
            [Start(url, url=url)], _trust(published), http_getter(), directory=store, what_if=False, now=now
        )
    finally:
        next(served, None)
    assert "TLS verification failed" in (result.outcomes[0].walk.error or "")
    assert not store.exists()


@pytest.mark.parametrize("form", ["pem", "pkcs7-der", "pkcs7-pem"])
def test_url_start_and_the_answer_forms_publishers_use(
    published: Published,
    publisher: Publisher,
    store: Path,
    capsys: pytest.CaptureFixture[str],
    form: str,
) -> None:
    cert = published.chain.intermediate.cert
    body = {
        "pem": published.chain.intermediate.cert_pem,
        "pkcs7-der": pkcs7.serialize_certificates([cert], serialization.Encoding.DER),
        "pkcs7-pem": pkcs7.serialize_certificates([cert], serialization.Encoding.PEM),
    }[form]
    publisher.routes["/pki/ca01.p7b"] = Route(body)
    url = f"{publisher.base}/ca01.p7b"
    code, result, _ = _run(capsys, "attest", "fetch-intermediates", "--url", url, "--ca", str(published.root))
    assert code == ExitCode.OK, result
    assert [s["source"] for s in result["stored"]] == [url]
    assert _verify(capsys, published)[0] == ExitCode.OK


def test_the_store_only_ever_adds_intermediates(published: Published, store: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    intermediates.store(store, published.chain.intermediate.cert, source="test", issued=None, now=now)
    # A root dropped into the store by hand is not an anchor (nor even an intermediate).
    (store / "dropped.pem").write_bytes(published.chain.root.cert_pem)
    (store / "junk.pem").write_bytes(b"not a certificate")
    loaded = fetched_store()
    assert loaded.anchors == () and loaded.intermediates == (published.chain.intermediate.cert,)
    default = TrustStore.default(include_system=False)
    assert published.chain.root.cert not in default.anchors
    assert published.chain.intermediate.cert in default.intermediates
    without = TrustStore.default(include_system=False, include_fetched=False)
    assert published.chain.intermediate.cert not in without.intermediates
    # guest check, guest kick and sweep build their trust here: the fetched store is in it.
    inventory = SimpleNamespace(attestation=SimpleNamespace(ca_files=[]))
    assert published.chain.intermediate.cert in trust_for(inventory).intermediates  # type: ignore[arg-type]


def test_into_directory_is_used_and_said_to_be_manual(
    published: Published, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    into = tmp_path / "pki"
    capsys.readouterr()
    code = run(
        [
            "attest",
            "fetch-intermediates",
            str(published.doc),
            "--ca",
            str(published.root),
            "--into",
            str(into),
        ]
    )
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert "not loaded automatically" in out and str(into) in out
    assert len(list(into.glob("*.pem"))) == 1 and not store.exists()


def test_bad_input_is_a_usage_error_and_fetches_nothing(
    published: Published,
    publisher: Publisher,
    store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"encoding": "pkcs7", "signature": "bm90IGEgZG9j"}')
    code, _, err = _run(capsys, "attest", "fetch-intermediates", str(published.doc), str(junk))
    assert code == ExitCode.USAGE and "junk.json" in err
    assert publisher.hits == {} and not store.exists()
    code, _, err = _run(capsys, "attest", "fetch-intermediates")
    assert code == ExitCode.USAGE and "--url" in err


def test_os_permissions_of_an_existing_store_are_tightened(published: Published, store: Path) -> None:
    store.mkdir(parents=True, mode=0o755)
    os.chmod(store, 0o755)
    now = dt.datetime.now(dt.timezone.utc)
    intermediates.store(store, published.chain.intermediate.cert, source="test", issued=None, now=now)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700


def test_guest_check_fix_is_the_exact_fetch_command(published: Published, publisher: Publisher) -> None:
    # What guest check and sweep see: the guest's document verified with the inventory's trust material.
    from hcibenefit.attestation import verify_document
    from hcibenefit.checks.guest_checks import GuestContext, fix_for
    from hcibenefit.operations.guests.check import document_check

    report = verify_document(published.doc.read_bytes(), trust=_trust(published), san_pattern=LAB_SAN_PATTERN)
    assert report.failure_kind == "missing-intermediate"
    assert report.to_dict()["missing_issuer_urls"] == [f"{publisher.base}/ca01.cer"]
    check = document_check(report)
    ctx = GuestContext("avd-sh01", "sea-hci01", "sea-hci01-n1", None, None, None)
    fix = fix_for("missing-intermediate", ctx, check)
    assert fix is not None
    assert fix.startswith(f"hcibenefit attest fetch-intermediates --url {publisher.base}/ca01.cer; ")
    assert fix.endswith("then hcibenefit guest kick --vm avd-sh01")
    # A chain whose certificate names no URL: the fix says what to do instead, with no placeholder.
    no_url = fix_for("missing-intermediate", ctx, None)
    assert no_url is not None and "attestation.ca_files" in no_url and "<" not in no_url
