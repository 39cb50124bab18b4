"""Complete a signer's chain from its publishers: follow AIA caIssuers URLs, keep only real issuers.

This is the one place in ``attestation`` that touches the network, and only when a user asks for it
(``hcibenefit attest fetch-intermediates``). What comes back is untrusted bytes, so a certificate is kept only
when all of this holds:

* it is named as the issuer of the certificate before it *and* its key verifies that certificate's signature;
* it is a CA (basicConstraints cA, and keyCertSign when it has a keyUsage) and valid now;
* it is not self-issued: a root never comes from the network, the chain must end at an anchor the user or the
  system already trusts, and when it does not, nothing from the walk is kept.

So whatever a server answers, the fetched certificates can only complete a path to a root that was already
trusted; they cannot make anything else trusted. Plain http is therefore fine (and it is what CAs publish
caIssuers on, to avoid needing TLS to fetch TLS material); https is verified as always.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from hcibenefit.attestation.chain import issuer_urls, name, signed_by
from hcibenefit.attestation.trust import TrustStore

if TYPE_CHECKING:
    import requests

MAX_HOPS = 4
"""Certificates fetched for one chain at most: Azure's needs two (issuing CA, cross-signed root)."""
MAX_BYTES = 128 * 1024
"""A certificate is 1-2 KiB, a PKCS#7 bundle of a few a few KiB more."""
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
DEADLINE = 20.0
"""Seconds for one URL, redirects included: a server trickling bytes cannot hold a run forever."""

SCHEMES = ("http", "https")

Getter = Callable[[str], bytes]
"""Fetch one URL's body; raises FetchError with a sentence saying why not."""

Outcome = Literal["anchor", "known", "fetched", "would-fetch", "failed"]


class FetchError(Exception):
    """A URL could not be fetched or its answer is unusable; the message says why, for people."""


@dataclass(frozen=True)
class Step:
    """One link of the walk: who issued ``subject``, and how we know."""

    subject: str
    issuer: str
    outcome: Outcome
    detail: str
    url: str | None = None
    cert: x509.Certificate | None = None


@dataclass(frozen=True)
class Fetched:
    cert: x509.Certificate
    url: str
    issued: x509.Certificate | None
    """The certificate it was verified to have signed (None: the start of a ``--url`` walk)."""


@dataclass(frozen=True)
class Walk:
    start: str
    steps: tuple[Step, ...]
    complete: bool
    """The walk reached an anchor in the trust store."""
    fetched: tuple[Fetched, ...] = field(default=())
    """What to store: empty unless ``complete``."""

    @property
    def error(self) -> str | None:
        last = self.steps[-1] if self.steps else None
        return last.detail if last is not None and last.outcome == "failed" else None


def is_supported(url: str) -> bool:
    return urlsplit(url).scheme.lower() in SCHEMES


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """DER or PEM certificate(s), or a certs-only PKCS#7 (DER or PEM), as publishers serve them."""
    loaders: Sequence[Callable[[bytes], list[x509.Certificate]]]
    if b"-----BEGIN" in data:
        loaders = (x509.load_pem_x509_certificates, pkcs7.load_pem_pkcs7_certificates)
    else:
        loaders = (lambda d: [x509.load_der_x509_certificate(d)], pkcs7.load_der_pkcs7_certificates)
    for loader in loaders:
        try:
            certs = loader(data)
        except ValueError:
            continue
        if certs:
            return certs
    raise FetchError("the answer is not a certificate (DER, PEM or PKCS#7 expected)")


def walk(
    leaf: x509.Certificate,
    embedded: Sequence[x509.Certificate],
    trust: TrustStore,
    get: Getter | None,
    *,
    now: dt.datetime,
    max_hops: int = MAX_HOPS,
) -> Walk:
    """From ``leaf`` up to an anchor, using known certificates first and fetching the rest.

    ``get`` None plans only (``--what-if``): the walk stops at the first URL it would fetch.
    """
    return _Walker(trust, embedded, get, now, max_hops).run(leaf, first=None)


def walk_from_url(
    url: str, trust: TrustStore, get: Getter, *, now: dt.datetime, max_hops: int = MAX_HOPS
) -> Walk:
    """From the certificate at ``url`` (the URL a missing-intermediate reason names) up to an anchor.

    Nothing vouches for the first certificate but its own path: it is kept only if it is a CA whose chain
    the walk completes to an anchor, so the same "cannot extend trust" guarantee holds.
    """
    walker = _Walker(trust, (), get, now, max_hops)
    try:
        candidates = walker.fetch(url)
    except FetchError as exc:
        return Walk(url, (Step(url, "?", "failed", f"{url}: {exc}", url),), complete=False)
    refusals: list[str] = []
    for cert in candidates:
        why = walker.refusal(cert)
        if why is not None:
            refusals.append(f"{name(cert)!r}: {why}")
            continue
        result = walker.run(cert, first=Fetched(cert, url, None))
        if result.complete:
            return result
        refusals.append(f"{name(cert)!r}: {result.error}")
    detail = f"{url}: nothing usable: {'; '.join(refusals)}"
    return Walk(url, (Step(url, "?", "failed", detail, url),), complete=False)


class _Walker:
    def __init__(
        self,
        trust: TrustStore,
        embedded: Sequence[x509.Certificate],
        get: Getter | None,
        now: dt.datetime,
        max_hops: int,
    ) -> None:
        self.trust = trust
        self.known = [*embedded, *trust.intermediates]
        self.get = get
        self.now = now
        self.max_hops = max_hops
        self.offered: list[
            tuple[x509.Certificate, str]
        ] = []  # every certificate an answer carried, and where
        self.answers: dict[str, list[x509.Certificate]] = {}

    def fetch(self, url: str) -> list[x509.Certificate]:
        if url not in self.answers:
            if not is_supported(url):
                raise FetchError(f"unsupported URL scheme in {url!r} (only http and https are fetched)")
            assert self.get is not None
            self.answers[url] = parse_certificates(self.get(url))
            self.offered += [(c, url) for c in self.answers[url]]
        return self.answers[url]

    def refusal(self, cert: x509.Certificate) -> str | None:
        """Why a fetched certificate may not be kept as an intermediate (None: it may)."""
        if cert.subject == cert.issuer:
            return (
                "it is a self-issued root that is not in your trust store; a root is never taken from the "
                "network (add it to your system store or attestation.ca_files if you decide to trust it)"
            )
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except (x509.ExtensionNotFound, ValueError):
            constraints = None
        if constraints is None or not constraints.ca:
            return "it is not a CA certificate (no basicConstraints cA=true)"
        try:
            usage: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            usage = None
        if usage is not None and not usage.key_cert_sign:
            return "its key usage does not allow signing certificates"
        if not cert.not_valid_before_utc <= self.now <= cert.not_valid_after_utc:
            return (
                f"it is not valid now ({cert.not_valid_before_utc.isoformat()} .. "
                f"{cert.not_valid_after_utc.isoformat()})"
            )
        return None

    def run(self, start: x509.Certificate, *, first: Fetched | None) -> Walk:
        steps: list[Step] = []
        fetched: list[Fetched] = [first] if first is not None else []
        path = [start]
        cert = start

        def done(step: Step, complete: bool) -> Walk:
            steps.append(step)
            return Walk(name(start), tuple(steps), complete, tuple(fetched) if complete else ())

        while True:
            subject, issuer = name(cert), cert.issuer.rfc4514_string()
            anchor = next((a for a in self.trust.anchors if _issued(cert, a)), None)
            if anchor is not None:
                return done(Step(subject, issuer, "anchor", "trusted root in your trust store"), True)
            if cert.subject == cert.issuer:
                why = f"the chain ends at the self-issued root {subject!r}, which is not in your trust store"
                return done(Step(subject, issuer, "failed", why), False)
            known = next((c for c in self.known if c not in path and _issued(cert, c)), None)
            if known is not None:
                steps.append(Step(subject, issuer, "known", "already in your trust material", cert=known))
                path.append(known)
                cert = known
                continue
            if len(fetched) >= self.max_hops:
                why = f"no trusted root after {self.max_hops} fetched certificates; stopped"
                return done(Step(subject, issuer, "failed", why), False)
            offered = next(
                (
                    (c, u)
                    for c, u in self.offered
                    if c not in path and _issued(cert, c) and not self.refusal(c)
                ),
                None,
            )
            if offered is not None:
                issuer_cert, url = offered
            else:
                urls = issuer_urls(cert)
                if not urls:
                    why = f"{subject!r} names no download location for its issuer (no AIA caIssuers URL)"
                    return done(Step(subject, issuer, "failed", why), False)
                if self.get is None:
                    return done(Step(subject, issuer, "would-fetch", " or ".join(urls), urls[0]), False)
                found, problems = self._from_urls(cert, urls)
                if found is None:
                    return done(Step(subject, issuer, "failed", "; ".join(problems)), False)
                issuer_cert, url = found
            fetched.append(Fetched(issuer_cert, url, cert))
            steps.append(Step(subject, issuer, "fetched", "verified issuer", url, issuer_cert))
            path.append(issuer_cert)
            cert = issuer_cert

    def _from_urls(
        self, cert: x509.Certificate, urls: list[str]
    ) -> tuple[tuple[x509.Certificate, str] | None, list[str]]:
        problems: list[str] = []
        for url in urls:
            try:
                answer = self.fetch(url)
            except FetchError as exc:
                problems.append(f"{url}: {exc}")
                continue
            refused: list[str] = []
            for candidate in answer:
                if candidate.subject != cert.issuer:
                    refused.append(
                        f"it serves {name(candidate)!r}, not the issuer {cert.issuer.rfc4514_string()!r}"
                    )
                elif not signed_by(cert, candidate):
                    refused.append(
                        f"the key of the {name(candidate)!r} it serves did not sign {name(cert)!r}"
                    )
                elif (why := self.refusal(candidate)) is not None:
                    refused.append(f"refused {name(candidate)!r}: {why}")
                else:
                    return (candidate, url), problems
            problems.append(f"{url}: {'; '.join(refused)}")
        return None, problems


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return cert.issuer == issuer.subject and signed_by(cert, issuer)


def http_getter(
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    deadline: float = DEADLINE,
    max_bytes: int = MAX_BYTES,
    max_redirects: int = MAX_REDIRECTS,
) -> Getter:
    """GET over http/https with requests: TLS verified, redirects followed by hand (never to another scheme),
    the body capped at ``max_bytes`` and the whole answer at ``deadline`` seconds."""
    import requests

    session = requests.Session()

    def get(url: str) -> bytes:
        started = time.monotonic()
        current = url
        for _ in range(max_redirects + 1):
            if not is_supported(current):
                raise FetchError(f"redirected to {current!r}: only http and https are followed")
            try:
                response = session.get(
                    current, timeout=(connect_timeout, read_timeout), stream=True, allow_redirects=False
                )
            except requests.exceptions.SSLError as exc:
                raise FetchError(f"TLS verification failed ({_short(exc)})") from None
            except requests.exceptions.Timeout:
                raise FetchError(f"no answer within {read_timeout:g} s") from None
            except requests.exceptions.RequestException as exc:
                raise FetchError(f"cannot connect ({_short(exc)})") from None
            with response:
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("Location", ""))
                    continue
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code} {response.reason or ''}".rstrip())
                return _read_capped(response, max_bytes, started, deadline, read_timeout)
        raise FetchError(f"more than {max_redirects} redirects")

    return get


def _read_capped(
    response: requests.Response, max_bytes: int, started: float, deadline: float, read_timeout: float
) -> bytes:
    import requests
    import urllib3.exceptions

    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"the answer is {int(declared)} bytes, more than the {max_bytes // 1024} KiB allowed"
        )
    raw = response.raw
    # read1 returns what has arrived (urllib3 2); read(n) would wait for n bytes, so a server sending one
    # byte at a time would never reach the deadline check.
    read = getattr(raw, "read1", None) or raw.read
    body = bytearray()
    try:
        while True:
            chunk = read(8192)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(f"the answer is larger than the {max_bytes // 1024} KiB allowed")
            if time.monotonic() - started > deadline:
                raise FetchError(f"the answer took longer than {deadline:g} s")
    except urllib3.exceptions.ReadTimeoutError:
        raise FetchError(f"the answer stalled for more than {read_timeout:g} s") from None
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
        raise FetchError(f"the answer broke off ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
