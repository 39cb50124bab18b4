"""One host, one runspace pool, our scripts with parameters. The only module that touches pypsrp.

Rules this module keeps (remoting.md):
- scripts go through `add_script` + `add_parameters`; user input is only ever a parameter value;
- every pool and pipeline opened is closed, also when `open()` fails halfway, on errors and on Ctrl-C;
- one session per thread (pypsrp has no locks);
- retries only where repeating is safe: connecting, and read-only scripts; a mutating script is never
  sent twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hcibenefit import jsonguard
from hcibenefit.inventory.logon import LogonSkipped
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

if TYPE_CHECKING:
    from hcibenefit.inventory import ResolvedCredential, Secret, WinRMSettings

log = logging.getLogger(__name__)

QUOTA_MAX_SHELLS = 2150859173
OPERATION_TIMED_OUT = 2150858793
AZ_STACKHCI_CMDLETS = ("AzStackHCI", "Az.StackHCI")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: one node (or guest) with its effective settings and credential."""

    name: str
    address: str
    settings: WinRMSettings
    credential: ResolvedCredential | None


class Cancelled(RemotingError):
    kind = "cancelled"


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


def map_exception(host: str, exc: BaseException, settings: WinRMSettings | None = None) -> RemotingError:
    """Turn a pypsrp/requests exception into a RemotingError that says what to do."""
    if isinstance(exc, RemotingError):
        return exc
    import requests
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

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
        )
    if isinstance(exc, WinRMTransportError):
        return WSManFault(host, getattr(exc, "code", None), _short(exc))
    if isinstance(exc, TimeoutError):
        return RemoteTimeout(host, str(exc) or "timed out")
    return RemotingError(host, f"{type(exc).__name__}: {_short(exc)}")


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


class HostSession:
    """A runspace pool on one endpoint for the length of one operation.

    Use as a context manager; `run()` executes one of our scripts and returns its parsed JSON.
    """

    def __init__(self, endpoint: Endpoint, *, cancel: threading.Event | None = None) -> None:
        self.endpoint = endpoint
        self.cancel = cancel or threading.Event()
        self._wsman: Any = None
        self._pool: Any = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> HostSession:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        settings = self.endpoint.settings
        attempts = 1 + max(0, settings.reconnection_retries)
        credential = self.endpoint.credential
        # Only a password can be locked out; a ticket cache or a certificate is not gated.
        gate = credential.gate if credential is not None and credential.password is not None else None
        for attempt in range(1, attempts + 1):
            try:
                if gate is not None:
                    gate.admit(self.endpoint.name, credential.username if credential else None, self.cancel)
                self._open_once()
                if gate is not None:
                    gate.succeeded(self.endpoint.name)
                return
            except LogonSkipped as skipped:
                raise CredentialSkipped(
                    self.endpoint.name,
                    str(skipped),
                    hint="check the credential (hcibenefit inventory test); nothing else was tried with it",
                ) from None
            except BaseException as exc:
                self.close()
                error = map_exception(self.endpoint.name, exc, settings)
                if gate is not None:
                    if isinstance(error, AuthenticationFailed):
                        gate.refused(self.endpoint.name, error.detail)
                    else:
                        gate.failed_otherwise(self.endpoint.name)
                if (
                    not isinstance(exc, Exception)
                    or not isinstance(error, UnreachableError)
                    or attempt == attempts
                ):
                    if isinstance(exc, Exception):
                        raise error from None
                    raise
                delay = settings.reconnection_backoff * (2 ** (attempt - 1))
                log.info(
                    "%s: %s; retrying in %.1f s (%d/%d)",
                    self.endpoint.name,
                    error.detail,
                    delay,
                    attempt,
                    attempts - 1,
                )
                if self.cancel.wait(delay):
                    raise Cancelled(self.endpoint.name, "cancelled") from None

    def _open_once(self) -> None:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        self._wsman = WSMan(self.endpoint.address, **_wsman_kwargs(self.endpoint))
        pool = RunspacePool(self._wsman, configuration_name=self.endpoint.settings.configuration_name)
        self._pool = pool
        # RunspacePool.open() can fail after the shell was created; without this the shell would live on
        # the host until its idle timeout (remoting.md section 3), so close() below deletes it.
        pool.open()

    def close(self) -> None:
        pool, wsman = self._pool, self._wsman
        self._pool = self._wsman = None
        if pool is not None:
            try:
                from pypsrp.complex_objects import RunspacePoolState

                if pool.state == RunspacePoolState.OPENED:
                    pool.close()
                elif getattr(pool.shell, "opened", False):
                    pool.shell.close()
            except Exception as exc:  # closing is best effort; the original error matters more
                log.debug("%s: closing the runspace pool failed: %s", self.endpoint.name, exc)
        if wsman is not None:
            try:
                wsman.close()
            except Exception as exc:
                log.debug("%s: closing the connection failed: %s", self.endpoint.name, exc)

    # --- running scripts ---------------------------------------------------------------------------

    def run(
        self, script: Script, parameters: Mapping[str, Any] | None = None, *, timeout_s: float = 300.0
    ) -> Any:
        """Run one of our scripts and return its JSON document (parsed)."""
        if self._pool is None:
            raise RemotingError(self.endpoint.name, "session is not open")
        from pypsrp.complex_objects import PSInvocationState
        from pypsrp.powershell import PowerShell

        host = self.endpoint.name
        values = dict(parameters or {})
        if any(isinstance(v, CredentialParameter) for v in values.values()):
            values = self._with_secure_credentials(values)
        ps = PowerShell(self._pool)
        ps.add_script(script.text())
        if values:
            ps.add_parameters(values)
        log.debug("%s: running %s", host, script.key)
        started = time.monotonic()
        try:
            ps.begin_invoke()
            while ps.state == PSInvocationState.RUNNING:
                if self.cancel.is_set():
                    ps.stop()
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
            raise map_exception(host, exc, self.endpoint.settings) from None
        finally:
            self._close_pipeline(ps)
        records = [_record_info(r) for r in ps.streams.error]
        for warning in ps.streams.warning:
            log.info("%s: %s warning: %s", host, script.key, getattr(warning, "message", warning))
        log.debug("%s: %s finished in %.2f s", host, script.key, time.monotonic() - started)
        if ps.had_errors or records:
            raise self._script_error(script, records)
        return self._parse(script, ps.output)

    def _with_secure_credentials(self, values: dict[str, Any]) -> dict[str, Any]:
        """Swap CredentialParameter values for pypsrp PSCredentials; needs the session key first."""
        from pypsrp.complex_objects import PSCredential

        try:
            # A SecureString can only be serialised once the pool and the host share a session key.
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
        host = self.endpoint.name
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

    def _parse(self, script: Script, output: list[Any]) -> Any:
        texts = [o for o in output if isinstance(o, str)]
        if len(texts) != 1 or len(output) != 1:
            raise MalformedOutputError(
                self.endpoint.name,
                f"{script.key} returned {len(output)} objects, expected one JSON document",
                hint="a profile or module on the host may print to the output stream",
            )
        try:
            # jsonguard: a host's 5,000-digit number or deep nesting is malformed output, not a crash.
            document = jsonguard.loads(texts[0], max_depth=None)
        except jsonguard.UntrustedJSONError as exc:
            raise MalformedOutputError(self.endpoint.name, f"{script.key} returned {exc}") from None
        expected = f"{script.id}/{script.version}"
        if not isinstance(document, dict) or document.get("schema") != expected:
            found = document.get("schema") if isinstance(document, dict) else type(document).__name__
            raise MalformedOutputError(
                self.endpoint.name, f"{script.key} returned schema {found!r}, expected {expected!r}"
            )
        return document


def run_script(
    endpoint: Endpoint,
    script: Script,
    parameters: Mapping[str, Any] | None = None,
    *,
    cancel: threading.Event | None = None,
    timeout_s: float = 300.0,
) -> Any:
    """Open, run one script, close.

    A read-only script whose connection drops after the session opened is run once more on a fresh
    session; connecting has its own retries inside open(), and a mutating script is never repeated.
    """
    attempts = 1 if script.mutating else 2
    for attempt in range(1, attempts + 1):
        session = HostSession(endpoint, cancel=cancel)
        session.open()
        try:
            return session.run(script, parameters, timeout_s=timeout_s)
        except UnreachableError:
            if attempt == attempts:
                raise
            log.info("%s: retrying read-only %s after a dropped connection", endpoint.name, script.key)
        finally:
            session.close()
    raise AssertionError("unreachable")
