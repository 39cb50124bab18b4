"""One host, one runspace pool, several of our scripts with parameters. With `pypsrp_fixes` and
`first_request` (the logon gate and connecting ahead), the only modules that touch pypsrp.

Rules this module keeps (docs/remoting.md):
- scripts go through `add_script` + `add_parameters`; user input is only ever a parameter value;
- every pool opened is closed, also when `open()` fails halfway, on errors and on Ctrl-C; a Create
  whose answer never came is deleted by the id we chose for it;
- one session per thread at a time (pypsrp has no locks); `abort()` is the one call another thread may
  make, and it uses a connection of its own;
- retries only where repeating is safe: connecting, and a read-only script that failed on a transient
  error (a dropped connection, an HTTP error without a WS-Management fault) is run once more on a fresh
  session; a mutating script is never sent twice; a wrong password is never retried.

**Several scripts, one session per node.** A `HostSession` is a runspace pool kept open for as many of
our scripts as an operation needs on that node, which is what round trips cost: opening is 2 requests
(Create, Receive), each script 2 more (Command, Receive), closing 1 (Delete, which also ends every
pipeline the shell ran, so finished pipelines are not closed one by one). A host pass is 5 requests; host
facts then the guest probe on the same session is 9, key exchange for the guest credential included:

    with HostSession(endpoint, cancel=cancel) as session:
        facts = session.run(HOST_FACTS, {"IncludeGuestOs": True})
        probe = session.run(GUEST_PROBE, {"VMName": names, "Credential": CredentialParameter(user, pw), ...})

`run_script()` is the one-script form. Work that needs something from every node before its second
script (a VM name lookup across the fleet, say) keeps the sessions it will need open in a `SessionHolder`
between the two passes, so each node still gets one session; see operations/guests/targets.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hcibenefit import jsonguard
from hcibenefit.inventory.logon import LogonGate, LogonSkipped
from hcibenefit.remoting import pypsrp_fixes
from hcibenefit.remoting.catalog import Script
from hcibenefit.remoting.errors import (
    AuthenticationFailed,
    CredentialSkipped,
    ErrorRecordInfo,
    MalformedOutputError,
    ModuleMissingError,
    QuotaExceeded,
    RemoteTimeout,
    RemotingError,
    ScriptError,
    TLSError,
    UnreachableError,
    WSManFault,
)
from hcibenefit.remoting.errors import Cancelled as Cancelled  # where callers have long imported it from
from hcibenefit.remoting.first_request import gate_around_first_send, gate_at_the_challenge

if TYPE_CHECKING:
    from hcibenefit.inventory import ResolvedCredential, Secret, WinRMSettings
    from hcibenefit.remoting.arc import ArcTarget

log = logging.getLogger(__name__)

QUOTA_MAX_SHELLS = 2150859173
OPERATION_TIMED_OUT = 2150858793
INVALID_SELECTORS = 2150858843
TRANSIENT_HTTP_STATUS = frozenset({400, 408, 429, 500, 502, 503, 504})
"""HTTP errors that carry no WS-Management fault: a proxy, a load balancer or a host under load."""
TRANSIENT_RETRY_DELAY_S = 0.2
AZ_STACKHCI_CMDLETS = ("AzStackHCI", "Az.StackHCI")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: one node (or guest) with its effective settings and credential."""

    name: str
    address: str
    settings: WinRMSettings
    credential: ResolvedCredential | None
    arc: ArcTarget | None = None
    """Set for a node with ``transport: arc``: reached through Azure Arc run commands, not WinRM."""

    @property
    def account(self) -> str:
        """Who the host runs our calls as, in words for audit records: the user name, or what stands in
        for one (a client certificate, an Arc run command's system account, the Kerberos ticket cache)."""
        if self.credential is not None and self.credential.username:
            return self.credential.username
        if self.arc is not None:
            return "(Azure Arc run command: the node's local system account)"
        if self.settings.auth == "certificate":
            return f"(client certificate {self.settings.certificate_pem})"
        return "(current Kerberos ticket)"


@dataclass(frozen=True)
class CredentialParameter:
    """A script parameter of type [pscredential], e.g. the guest credential for PowerShell Direct.

    `run()` sends it as a PSCredential whose password is a SecureString, encrypted with the pool's
    session key, so the password never travels or appears as script text or a plain string.
    """

    username: str
    password: Secret

    def __repr__(self) -> str:
        return f"CredentialParameter(username={self.username!r}, password=***)"


CHALLENGED_AUTH = frozenset({"negotiate", "ntlm", "kerberos"})
"""Authentication pypsrp runs through its Negotiate handler, which uses the password only to answer the
host's first 401 (pypsrp/negotiate.py)."""


def _wsman_kwargs(endpoint: Endpoint) -> dict[str, Any]:
    s = endpoint.settings
    kwargs: dict[str, Any] = {
        "port": s.port,
        "ssl": s.ssl,
        "path": s.path,
        "auth": s.auth,
        "cert_validation": str(s.cert_validation)
        if not isinstance(s.cert_validation, bool)
        else s.cert_validation,
        "encryption": s.encryption,
        "connection_timeout": s.connection_timeout,
        "read_timeout": s.read_timeout,
        "operation_timeout": s.operation_timeout,
        # Our own retry loop decides what is safe to repeat; pypsrp must not repeat on its own.
        "reconnection_retries": 0,
        "max_envelope_size": s.max_envelope_size,
        "proxy": s.proxy,
        "no_proxy": s.no_proxy,
        "negotiate_delegate": s.negotiate_delegate,
        "negotiate_service": s.negotiate_service,
        "negotiate_send_cbt": s.negotiate_send_cbt,
    }
    if s.negotiate_hostname_override:
        kwargs["negotiate_hostname_override"] = s.negotiate_hostname_override
    if s.auth == "certificate":
        kwargs["certificate_pem"] = str(s.certificate_pem)
        kwargs["certificate_key_pem"] = str(s.certificate_key_pem)
    if s.auth == "credssp":
        kwargs["credssp_auth_mechanism"] = s.credssp_auth_mechanism
        kwargs["credssp_disable_tlsv1_2"] = s.credssp_disable_tlsv1_2
        kwargs["credssp_minimum_version"] = s.credssp_minimum_version
    if endpoint.credential is not None:
        kwargs["username"] = endpoint.credential.username
        if endpoint.credential.password is not None:
            kwargs["password"] = endpoint.credential.password.reveal()
    return kwargs


# TLS alerts a server sends about the certificate a client presented (RFC 8446 6.2).
_CLIENT_CERTIFICATE_ALERTS = (
    "alert unknown ca",
    "alert bad certificate",
    "alert certificate required",
    "alert certificate unknown",
    "alert unsupported certificate",
)


def _client_certificate_refused(exc: BaseException, settings: WinRMSettings | None) -> str | None:
    """What a TLS failure says about our client certificate, when one was presented."""
    if settings is None or settings.auth != "certificate":
        return None
    text = str(exc).lower()
    if any(alert in text for alert in _CLIENT_CERTIFICATE_ALERTS):
        return "the host did not accept the client certificate in the TLS handshake"
    if "eof occurred in violation of protocol" in text:
        # TLS 1.3: the client's certificate is checked after the client considers the handshake done,
        # and a refusing server may close before its alert is read.
        return "the host closed the TLS connection (usually: it does not accept the client certificate)"
    return None


def map_exception(host: str, exc: BaseException, settings: WinRMSettings | None = None) -> RemotingError:
    """Turn a pypsrp/requests exception into a RemotingError that says what to do."""
    if isinstance(exc, RemotingError):
        return exc
    import requests
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

    if isinstance(exc, AuthenticationError) and settings is not None and settings.auth == "certificate":
        return AuthenticationFailed(
            host,
            "the host refused the client certificate (HTTP 401): no certificate mapping on it maps the "
            "certificate to a local account, or certificate authentication is off in its WinRM service",
            hint="on the host: Set-Item WSMan:\\localhost\\Service\\Auth\\Certificate $true; then New-Item "
            "-Path WSMan:\\localhost\\ClientCertificate -Subject <the certificate's UPN> -URI * -Issuer "
            "<its CA's thumbprint> -Credential (Get-Credential) (a local account)",
        )
    if isinstance(exc, AuthenticationError):
        return AuthenticationFailed(
            host,
            "the host refused the credentials (HTTP 401)",
            hint="check the user name and password source in the inventory, and the auth method "
            f"({settings.auth if settings else 'negotiate'}) the host accepts",
        )
    if isinstance(exc, WSManFaultError):
        code = int(exc.code) if exc.code is not None else None
        reason = (exc.reason or str(exc)).strip()
        if code == QUOTA_MAX_SHELLS:
            return QuotaExceeded(
                host,
                f"too many open shells for this user (WS-Management quota, fault {code})",
                hint="close other sessions or wait for them to time out; raise MaxShellsPerUser "
                '(winrm set winrm/config/winrs @{MaxShellsPerUser="50"}) if this is routine',
            )
        return WSManFault(host, code, reason)
    if isinstance(exc, requests.exceptions.SSLError) and (
        refusal := _client_certificate_refused(exc, settings)
    ):
        return TLSError(
            host,
            f"{refusal}: {_short(exc)}",
            hint="the host must trust the CA that issued certificate_pem, and the certificate must be for "
            "Client Authentication",
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(
            host,
            f"TLS handshake failed: {_short(exc)}",
            hint="check cert_validation in the inventory: a CA bundle path that signs the host's WinRM "
            "certificate, or true for the system store",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UnreachableError(host, "connection timed out", hint="check the address, port and firewall")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return RemoteTimeout(
            host,
            f"no answer within read_timeout ({settings.read_timeout if settings else '?'} s)",
            hint="the host accepted the connection but did not answer; check WinRM on it, or raise read_timeout",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return UnreachableError(
            host,
            f"cannot connect: {_short(exc)}",
            hint="check that the host is up, the name resolves, and WinRM listens on the port in the inventory",
            transient=True,
        )
    if isinstance(exc, WinRMTransportError):
        status = getattr(exc, "code", None)
        return WSManFault(host, status, _short(exc), transient=status in TRANSIENT_HTTP_STATUS)
    if isinstance(exc, TimeoutError):
        return RemoteTimeout(host, str(exc) or "timed out")
    missing = _missing_tls_file(exc)
    if missing is not None:
        setting, path = missing
        return TLSError(
            host,
            f"the file {setting} names does not exist: {path}",
            hint=f"fix {setting} in the inventory (hcibenefit inventory validate checks every such path)",
        )
    return RemotingError(host, f"{type(exc).__name__}: {_short(exc)}")


# requests checks these paths itself before connecting (requests/adapters.py, HTTPAdapter.cert_verify) and
# raises a bare OSError naming the path.
_MISSING_TLS_FILES = (
    ("Could not find a suitable TLS CA certificate bundle, invalid path: ", "cert_validation"),
    ("Could not find the TLS certificate file, invalid path: ", "certificate_pem"),
    ("Could not find the TLS key file, invalid path: ", "certificate_key_pem"),
)


def _missing_tls_file(exc: BaseException) -> tuple[str, str] | None:
    """(the inventory setting, the path) when requests refused to connect because a TLS file is missing."""
    if not isinstance(exc, OSError):
        return None
    text = str(exc)
    for prefix, setting in _MISSING_TLS_FILES:
        if text.startswith(prefix):
            return setting, text[len(prefix) :]
    return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    # urllib3 wraps the useful part ("[Errno 111] Connection refused") deep inside a long repr.
    for marker in ("[Errno", "certificate verify failed", "Name or service not known", "timed out"):
        index = text.find(marker)
        if index >= 0:
            end = text.find("'", index)
            return text[index : end if end > index else None].rstrip(")'\"")
    return text[:300]


def _record_info(record: Any) -> ErrorRecordInfo:
    # pypsrp keeps the exception's text in its adapted Message property; record.message is only the
    # category line ("ObjectNotFound: (x:String) [], ..."), so it is not used as the message.
    exception = getattr(record, "exception", None)
    adapted = getattr(exception, "adapted_properties", None) or {}
    message = adapted.get("Message") or getattr(record, "details_message", None) or str(record)
    category = getattr(record, "reason", None) or ""
    target = getattr(record, "target_object", None)
    return ErrorRecordInfo(
        message=str(message).strip(),
        error_id=str(getattr(record, "fq_error", "") or ""),
        category=str(getattr(record, "category_info", "") or category),
        target="" if target is None else str(target),
    )


class Cancellation(threading.Event):
    """Ctrl-C for one run: an event every worker polls, and the sessions that are open right now.

    Whoever cancels can close those sessions from outside (`abort_open_sessions`), since a worker may be
    blocked in a Receive that only ends when its script does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sessions_lock = threading.Lock()
        self._sessions: dict[int, HostSession] = {}

    def register(self, session: HostSession) -> None:
        with self._sessions_lock:
            self._sessions[id(session)] = session

    def unregister(self, session: HostSession) -> None:
        with self._sessions_lock:
            self._sessions.pop(id(session), None)

    def open_sessions(self) -> list[HostSession]:
        with self._sessions_lock:
            return list(self._sessions.values())

    def abort_open_sessions(self, deadline_s: float) -> list[HostSession]:
        """Until the deadline, delete the shell of every open session from outside, each as soon as the
        host has answered its Create (a Delete sent earlier could overtake the Create); returns the
        sessions not confirmed closed in time."""
        until = time.monotonic() + deadline_s
        started: dict[int, threading.Thread] = {}
        while time.monotonic() < until:
            pending = False
            for session in self.open_sessions():
                if session.closed or id(session) in started:
                    continue
                pending = True
                if session.shell_created:
                    thread = threading.Thread(
                        target=session.abort,
                        args=(max(0.1, until - time.monotonic()),),
                        name=f"hcibenefit-abort-{session.endpoint.name}",
                        daemon=True,
                    )
                    thread.start()
                    started[id(session)] = thread
            if not pending and not any(t.is_alive() for t in started.values()):
                break
            time.sleep(ABORT_POLL_S)
        return [s for s in self.open_sessions() if not s.closed]


ABORT_POLL_S = 0.02
MAX_FINISHED_PIPELINES = 8
"""Finished pipelines a session keeps before closing them one by one; deleting the shell ends them all."""


class HostSession:
    """A runspace pool on one endpoint for the length of one operation; see the module docstring.

    Use as a context manager; `run()` executes one of our scripts and returns its parsed JSON.
    """

    def __init__(self, endpoint: Endpoint, *, cancel: threading.Event | None = None) -> None:
        self.endpoint = endpoint
        self.cancel = cancel or threading.Event()
        self._wsman: Any = None
        self._pool: Any = None
        self._finished: list[Any] = []
        self._create_unanswered = False
        self._state_lock = threading.Lock()
        self.closed = True
        """True until open() succeeds and again once the shell is deleted (or was never created)."""
        self.step = "not started"
        """What the session is doing, for a person: "connecting", "running host-facts/1", "closing"."""

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> HostSession:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the shell and open the pool.

        A refused or dropped connection is tried once more after a short pause (reconnection_retries
        adds more tries, with backoff, for any unreachable host); nothing else is retried here, and a
        wrong password never is: the credential's LogonGate lets one node try it first (inventory/logon.py).
        """
        settings = self.endpoint.settings
        configured = max(0, settings.reconnection_retries)
        credential = self.endpoint.credential
        # Only a password can be locked out; a ticket cache or a certificate is not gated.
        gate = credential.gate if credential is not None and credential.password is not None else None
        user = credential.username if credential else None
        # Basic and CredSSP send the password with the first request: the gate is passed just before it,
        # once pypsrp is loaded and the session and its first message are built, so the nodes waiting on
        # the first logon have done all of that meanwhile. Negotiate, NTLM and Kerberos use the password
        # only once the host has answered a first request with a 401: that round trip (and the TCP and
        # TLS set-up) is taken before the gate, which is passed at the 401. Either way the gate is opened
        # by the first node whose logon the host accepts.
        at_challenge = gate is not None and settings.auth in CHALLENGED_AUTH
        if gate is not None:
            gate.claim(self.endpoint.name)
        attempt = 0
        while True:
            attempt += 1
            if self.cancel.is_set():
                raise Cancelled(self.endpoint.name, "cancelled before connecting")
            try:
                self._open_once(gate, user, at_challenge)
                if gate is not None:
                    gate.succeeded(self.endpoint.name)
                return
            except LogonSkipped as skipped:
                self.close()  # nothing was sent: the Create waited at the gate
                raise CredentialSkipped(
                    self.endpoint.name,
                    str(skipped),
                    hint="check the credential (hcibenefit inventory test); nothing else was tried with it",
                ) from None
            except BaseException as exc:
                error = map_exception(self.endpoint.name, exc, settings)
                # Delete the shell by its id only when the host may have created it unseen: the
                # connection dropped after sending, or we were interrupted. Never after a 401 (that
                # would be a second failed logon) or a timeout (the host would make us wait again).
                if isinstance(exc, Exception) and not (
                    isinstance(error, UnreachableError) and error.transient
                ):
                    self._create_unanswered = False
                self.close()
                if gate is not None:
                    if isinstance(error, AuthenticationFailed):
                        gate.refused(self.endpoint.name, error.detail)
                    else:
                        gate.failed_otherwise(self.endpoint.name)
                if not isinstance(exc, Exception):
                    raise
                if self.cancel.is_set():
                    raise Cancelled(self.endpoint.name, "cancelled while connecting") from None
                if isinstance(error, UnreachableError) and attempt <= configured:
                    delay = settings.reconnection_backoff * (2 ** (attempt - 1))
                elif error.transient and attempt == 1:
                    delay = TRANSIENT_RETRY_DELAY_S
                else:
                    raise error from None
                log.info(
                    "%s: %s; connecting again in %.1f s (attempt %d)",
                    self.endpoint.name,
                    error.detail,
                    delay,
                    attempt + 1,
                )
                if self.cancel.wait(delay):
                    raise Cancelled(self.endpoint.name, "cancelled") from None

    def _open_once(self, gate: LogonGate | None, user: str | None, at_challenge: bool) -> None:
        pypsrp_fixes.load()
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        self.step = "connecting"
        self._wsman = WSMan(self.endpoint.address, **_wsman_kwargs(self.endpoint))
        transport: Any = self._wsman.transport
        # pypsrp builds the requests session on first use, resolving the proxy environment for this
        # endpoint then; left to itself requests reads the environment again on every request (0.14 ms
        # each), so the session is built now and told that the environment has been read.
        transport.session = transport._build_session()
        transport.session.trust_env = False
        if gate is not None:
            admit_first = None if at_challenge else (self.endpoint.name, user, self.cancel)
            gate_around_first_send(
                self._wsman,
                gate,
                self.endpoint.name,
                admit_first,
                self._sending_create,
                connect_timeout=self.endpoint.settings.connection_timeout,
            )
            if at_challenge:
                gate_at_the_challenge(
                    transport, gate, self.endpoint.name, user, self.cancel, self.endpoint.settings.auth
                )
        pool = RunspacePool(self._wsman, configuration_name=self.endpoint.settings.configuration_name)
        self._pool = pool
        self.closed = False
        if gate is None:
            self._sending_create()  # else just before it is sent, once past the gate
        if isinstance(self.cancel, Cancellation):
            self.cancel.register(self)
        self.step = "opening a session"
        pool.open()
        self._create_unanswered = False
        self.step = "open"

    def _sending_create(self) -> None:
        # The host creates the shell under the id we chose (pool.id) even if its answer never reaches us;
        # close() deletes it by that id when the Create went unanswered (docs/remoting.md §3).
        self._create_unanswered = True

    def close(self) -> None:
        """Delete the shell (which ends its pipelines) and drop the connection; best effort, never raises."""
        with self._state_lock:
            pool, wsman = self._pool, self._wsman
            self._pool = self._wsman = None
            self._finished = []
            unanswered, self._create_unanswered = self._create_unanswered, False
        if pool is not None and not self.closed:
            self.step = "closing"
            try:
                from pypsrp.complex_objects import RunspacePoolState

                if pool.state == RunspacePoolState.OPENED:
                    pool.close()
                elif getattr(pool.shell, "opened", False):
                    pool.shell.close()
                elif unanswered:
                    _delete_shell(wsman, pool)
            except Exception as exc:  # closing is best effort; the original error matters more
                log.debug("%s: closing the runspace pool failed: %s", self.endpoint.name, exc)
        if pool is not None:
            # pypsrp's pool and its pipelines point at each other, so a closed session's output (a
            # node's whole answer) waited for a full garbage collection: some 10-20 MB at a time in a
            # 400-node sweep. Without the pool's index of them they go when the session does.
            pipelines = getattr(pool, "pipelines", None)
            if isinstance(pipelines, dict):
                pipelines.clear()
        if wsman is not None:
            try:
                wsman.close()
            except Exception as exc:
                log.debug("%s: closing the connection failed: %s", self.endpoint.name, exc)
        self._mark_closed()

    def _mark_closed(self) -> None:
        self.closed = True
        self.step = "closed"
        if isinstance(self.cancel, Cancellation):
            self.cancel.unregister(self)

    @property
    def shell_created(self) -> bool:
        """The host answered the Create: the shell exists until it is deleted."""
        pool = self._pool
        return pool is not None and bool(getattr(pool.shell, "opened", False))

    def abort(self, timeout_s: float = 2.0) -> None:
        """Delete this session's shell over a connection of its own; safe to call from another thread.

        For Ctrl-C: the thread that owns the session may be blocked in a Receive for minutes (a long
        script), so the shell is deleted from outside; the owner then fails fast and its own close()
        finds nothing left to do.
        """
        with self._state_lock:
            pool = self._pool
            # While the Create is unanswered a Delete from outside could overtake it; the owner deletes
            # the shell itself as soon as the answer comes.
            if pool is None or self.closed or not self.shell_created:
                return
        from pypsrp.wsman import WSMan

        endpoint = self.endpoint
        kwargs = _wsman_kwargs(endpoint)
        kwargs.update(
            connection_timeout=timeout_s, read_timeout=timeout_s, operation_timeout=max(1, int(timeout_s))
        )
        wsman = WSMan(endpoint.address, **kwargs)
        try:
            _delete_shell(wsman, pool)
            self.closed = True
            log.info("%s: session closed from outside", endpoint.name)
        except Exception as exc:
            error = map_exception(endpoint.name, exc, endpoint.settings)
            if isinstance(error, WSManFault) and error.code == INVALID_SELECTORS:
                self.closed = True  # already gone
            else:
                log.info("%s: could not close the session: %s", endpoint.name, error.detail)
        finally:
            try:
                wsman.close()
            except Exception as exc:
                log.debug("%s: closing the connection failed: %s", endpoint.name, exc)

    # --- running scripts ---------------------------------------------------------------------------

    def run(
        self, script: Script, parameters: Mapping[str, Any] | None = None, *, timeout_s: float = 300.0
    ) -> Any:
        """Run one of our scripts and return its JSON document (parsed).

        A read-only script that fails on a transient error runs once more on a fresh session.
        """
        attempts = 1 if script.mutating else 2
        for attempt in range(1, attempts + 1):
            if self._pool is None:
                if attempt == 1:
                    raise RemotingError(self.endpoint.name, "session is not open")
                self.open()
            try:
                return self._run_once(script, parameters, timeout_s)
            except RemotingError as error:
                if attempt == attempts or not error.transient or self.cancel.is_set():
                    raise
                log.info(
                    "%s: retrying read-only %s on a fresh session after: %s",
                    self.endpoint.name,
                    script.key,
                    error.detail,
                )
                self.close()
        raise AssertionError("unreachable")

    def _run_once(self, script: Script, parameters: Mapping[str, Any] | None, timeout_s: float) -> Any:
        from pypsrp.complex_objects import PSInvocationState
        from pypsrp.powershell import PowerShell

        host = self.endpoint.name
        if self.cancel.is_set():
            raise Cancelled(host, f"{script.key} not sent: cancelled")
        values = dict(parameters or {})
        if any(isinstance(v, CredentialParameter) for v in values.values()):
            values = self._with_secure_credentials(values)
        ps = PowerShell(self._pool)
        ps.add_script(script.text())
        if values:
            ps.add_parameters(values)
        log.debug("%s: running %s", host, script.key)
        self.step = f"running {script.key}"
        started = time.monotonic()
        try:
            ps.begin_invoke()
            while ps.state == PSInvocationState.RUNNING:
                if self.cancel.is_set():
                    # Deleting the shell (close) ends the pipeline too: one round trip instead of three.
                    raise Cancelled(host, f"{script.key} stopped: cancelled")
                remaining = timeout_s - (time.monotonic() - started)
                if remaining <= 0:
                    ps.stop()
                    raise RemoteTimeout(
                        host, f"{script.key} did not finish within {timeout_s:.0f} s and was stopped"
                    )
                ps.poll_invoke(timeout=max(1, int(min(remaining, self.endpoint.settings.operation_timeout))))
            ps.end_invoke()
        except RemotingError:
            raise
        except Exception as exc:
            if self.cancel.is_set() and self.closed:
                raise Cancelled(host, f"{script.key} stopped: cancelled") from None
            raise map_exception(host, exc, self.endpoint.settings) from None
        self.step = "open"
        self._finished.append(ps)
        if len(self._finished) > MAX_FINISHED_PIPELINES:
            self._close_pipeline(self._finished.pop(0))
        records = [_record_info(r) for r in ps.streams.error]
        for warning in ps.streams.warning:
            log.info("%s: %s warning: %s", host, script.key, getattr(warning, "message", warning))
        log.debug("%s: %s finished in %.2f s", host, script.key, time.monotonic() - started)
        if ps.had_errors or records:
            raise self._script_error(script, records)
        # The session keeps the pipeline (to close it if too many pile up), not its answer: the document
        # text (~30 KB of host facts, ~75 KB of a node's guest probe) would otherwise stay until the
        # session closes, for every node in flight at once (~10 MB at 128 nodes), and in the C heap of
        # whichever thread read it, where the freed space is not handed back for the rest of the run.
        output, ps.output = ps.output, []
        return self._parse(script, output)

    def _with_secure_credentials(self, values: dict[str, Any]) -> dict[str, Any]:
        """Swap CredentialParameter values for pypsrp PSCredentials; needs the session key first."""
        from pypsrp.complex_objects import PSCredential

        try:
            # A SecureString can only be serialised once the pool and the host share a session key
            # (two round trips, once per session; the RSA key pair is one per process: pypsrp_fixes).
            self.step = "exchanging the session key"
            self._pool.exchange_keys()
        except Exception as exc:
            raise map_exception(self.endpoint.name, exc, self.endpoint.settings) from None
        make_credential: Any = PSCredential  # pypsrp's complex objects are untyped
        return {
            name: make_credential(username=value.username, password=value.password.reveal())
            if isinstance(value, CredentialParameter)
            else value
            for name, value in values.items()
        }

    def _close_pipeline(self, ps: Any) -> None:
        try:
            ps.close()
        except Exception as exc:
            log.debug("%s: closing the pipeline failed: %s", self.endpoint.name, exc)

    def _script_error(self, script: Script, records: list[ErrorRecordInfo]) -> RemotingError:
        return script_error(self.endpoint.name, script, records)

    def _parse(self, script: Script, output: list[Any]) -> Any:
        return parse_document(self.endpoint.name, script, output)


def script_error(host: str, script: Script, records: list[ErrorRecordInfo]) -> RemotingError:
    """The error for a script that reported error records, whichever transport ran it."""
    for record in records:
        if record.error_id.startswith("CommandNotFoundException") and any(
            name in record.message for name in AZ_STACKHCI_CMDLETS
        ):
            return ModuleMissingError(
                host,
                f"the Az.StackHCI module is not installed ({record.message.split('.')[0]})",
                hint="Install-Module -Name Az.StackHCI on every node (Windows Admin Center needs 2.3 or later)",
            )
    return ScriptError(host, script.key, records)


def parse_document(host: str, script: Script, output: list[Any]) -> Any:
    """A script's one JSON document from its output objects, whichever transport ran it."""
    texts = [o for o in output if isinstance(o, str)]
    if len(texts) != 1 or len(output) != 1:
        raise MalformedOutputError(
            host,
            f"{script.key} returned {len(output)} objects, expected one JSON document",
            hint="a profile or module on the host may print to the output stream",
        )
    try:
        # jsonguard: a host's 5,000-digit number or deep nesting is malformed output, not a crash.
        document = jsonguard.loads(texts[0], max_depth=None)
    except jsonguard.UntrustedJSONError as exc:
        raise MalformedOutputError(host, f"{script.key} returned {exc}") from None
    expected = f"{script.id}/{script.version}"
    if not isinstance(document, dict) or document.get("schema") != expected:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise MalformedOutputError(host, f"{script.key} returned schema {found!r}, expected {expected!r}")
    return document


def _delete_shell(wsman: Any, pool: Any) -> None:
    """WS-Transfer Delete of the pool's shell by the id the client chose for it."""
    from pypsrp.wsman import SelectorSet

    selectors = SelectorSet()
    selectors.add_option("ShellId", pool.shell.id or pool.id)
    wsman.delete(pool.shell.resource_uri, selector_set=selectors)


def run_script(
    endpoint: Endpoint,
    script: Script,
    parameters: Mapping[str, Any] | None = None,
    *,
    cancel: threading.Event | None = None,
    timeout_s: float = 300.0,
) -> Any:
    """Open, run one script, close; a read-only script is retried once after a transient error.

    Connecting has its own retries (reconnection_retries); a connection that drops after the session
    opened, or an HTTP error without a WS-Management fault, gets one more try on a fresh session; a
    mutating script is never repeated.
    """
    if endpoint.arc is not None:
        from hcibenefit.remoting.arc import ArcSession

        # A run command is never repeated here: its own requests are retried where ARM says it is safe.
        with ArcSession(endpoint, cancel=cancel) as arc:
            return arc.run(script, parameters, timeout_s=timeout_s)
    with HostSession(endpoint, cancel=cancel) as session:
        return session.run(script, parameters, timeout_s=timeout_s)
