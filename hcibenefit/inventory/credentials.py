"""Turning the credential sources named in the inventory into secrets, at run time.

The inventory only says *where* a password comes from; nothing is read until a connection needs
it. Secrets are wrapped in `Secret` straight away so that a stray ``print``, log call, f-string or
pickle shows ``***`` (or fails) instead of the password. Error messages name the source (variable,
command, keyring entry), never the value, and never chain an exception that holds the value.
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from hcibenefit.errors import CredentialError
from hcibenefit.inventory.logon import LogonGate
from hcibenefit.inventory.model import (
    CredentialSpec,
    PasswordCommand,
    PasswordEnv,
    PasswordKeyring,
    PasswordSource,
)
from hcibenefit.logsafe import MASK, register_secret

_MASK = MASK
log = logging.getLogger(__name__)


class Secret:
    """A password. Shows as ``***`` everywhere; ``reveal()`` is the one way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        # Second line of defence: should the value ever end up in a message, logging masks it.
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return _MASK

    def __str__(self) -> str:
        return _MASK

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # only when compared (tests); keeps start-up imports small

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    # Unhashable: a hash of a password is a (weak) copy of it that could end up in a set's repr.
    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        # Pickling (multiprocessing, caches, "dump the state for the bug report") would copy the
        # value into bytes that nobody thinks of as secret.
        raise TypeError("a Secret cannot be pickled")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self  # immutable, so sharing is a correct copy

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


@dataclass(frozen=True)
class ResolvedCredential:
    """A user and password ready for pypsrp. ``password`` is None for certificate auth or when no
    credentials are configured (then negotiate/kerberos use the Kerberos ticket cache)."""

    username: str | None
    password: Secret | None
    gate: LogonGate = field(default_factory=LogonGate, compare=False, repr=False)
    """Shared by every connection using this credential in this run: a refused password is not
    tried on the other nodes (inventory/logon.py)."""


def _head(data: bytes, limit: int = 2000) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def terminal_prompt(prompt: str) -> str:
    """getpass on the controlling terminal. Never reads a password from redirected standard input:
    without a terminal it raises EOFError (where getpass would warn and read stdin, echoing)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except getpass.GetPassWarning:
            raise EOFError("no terminal") from None


def _strip_one_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


class CredentialResolver:
    """Resolves `CredentialSpec`s, once each per run.

    With ``ask_pass`` every credential's password is prompted for instead of read from its
    source, once per distinct username. Thread-safe: worker threads connecting to several nodes
    share one resolver, and the lock also keeps two prompts from interleaving on the terminal.
    """

    def __init__(
        self,
        *,
        ask_pass: bool = False,
        prompt: Callable[[str], str] = terminal_prompt,
        env: Mapping[str, str] | None = None,
        run_cmd_timeout: float = 30,
    ) -> None:
        self._ask_pass = ask_pass
        self._prompt = prompt
        self._env: Mapping[str, str] = env if env is not None else os.environ
        self._timeout = run_cmd_timeout
        # Keyed by (username, source), not by spec: `origin` differs between identical specs
        # written in two places, and those should share one lookup (one command run).
        self._cache: dict[tuple[str | None, PasswordSource | None], ResolvedCredential] = {}
        self._prompted: dict[str, Secret] = {}
        self._lock = threading.RLock()

    def resolve(self, spec: CredentialSpec | None) -> ResolvedCredential:
        """The user and password for ``spec``; None gives an empty credential (ticket cache)."""
        if spec is None:
            return ResolvedCredential(None, None)
        key = (spec.username, spec.source)
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                hit = ResolvedCredential(spec.username, self._password(spec))
                self._cache[key] = hit
            return hit

    def _password(self, spec: CredentialSpec) -> Secret | None:
        if self._ask_pass and spec.username is not None:
            return self._ask(spec)
        match spec.source:
            case None:
                if spec.username is None:
                    return None  # certificate auth: nothing to resolve
                _fail(
                    spec,
                    f'no password source for user "{spec.username}"',
                    "add password_env, password_cmd or keyring to these credentials, or run with --ask-pass",
                )
            case PasswordEnv(name):
                return self._from_env(spec, name)
            case PasswordCommand(argv):
                return self._from_command(spec, argv)
            case PasswordKeyring(service):
                return self._from_keyring(spec, service)

    def _ask(self, spec: CredentialSpec) -> Secret:
        assert spec.username is not None
        known = self._prompted.get(spec.username)
        if known is not None:
            return known
        failure = None
        try:
            value = self._prompt(f"Password for {spec.username}: ")
        except (EOFError, OSError):
            failure = (
                f'--ask-pass cannot ask for the password of "{spec.username}": no terminal to read it from '
                "(a password is never read from redirected standard input)"
            )
        if failure is not None:
            _fail(spec, failure, "use password_env, password_cmd or keyring in non-interactive runs")
        if not value:
            _fail(spec, f'no password entered for "{spec.username}"', None)
        secret = Secret(value)
        self._prompted[spec.username] = secret
        return secret

    def _from_env(self, spec: CredentialSpec, name: str) -> Secret:
        value = self._env.get(name)
        if value is None:
            _fail(spec, f"password_env {name} is not set", f"export {name} before running, or use --ask-pass")
        if value == "":
            _fail(spec, f"password_env {name} is set but empty", f"export {name} with the password")
        return Secret(value)

    def _from_command(self, spec: CredentialSpec, argv: tuple[str, ...]) -> Secret:
        import subprocess  # only when a command source is used

        desc = f"password_cmd {list(argv)!r}"
        # Failures are described inside the except blocks but raised after them: the exceptions
        # (TimeoutExpired.output, UnicodeDecodeError.object) hold what the command printed, and
        # must not ride along as __context__ into a traceback or bug report.
        failure: str | None = None
        try:
            proc = subprocess.run(
                list(argv),
                # No shell: the argv list is the whole command, nothing is re-parsed.
                # stdin closed: a command must not eat our stdin (or hang waiting on it).
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            failure = f"{desc} did not finish within {self._timeout:g} s"
        except OSError as e:
            failure = f"{desc} could not be started: {e.strerror or type(e).__name__}"
        if failure is not None:
            _fail(spec, failure, None)
        if proc.returncode != 0:
            how = (
                f"was killed by signal {-proc.returncode}"
                if proc.returncode < 0
                else f"exited {proc.returncode}"
            )
            # What it printed on stderr may quote the secret store's paths or, from a careless script,
            # the secret itself: it is shown only at -vv (debug), never in the error line.
            err = _head(proc.stderr)
            if err:
                log.debug("%s %s; its standard error:\n%s", desc, how, err)
            _fail(
                spec,
                f"{desc} failed: it {how}",
                "rerun with -vv to see what it printed on standard error" if err else None,
            )
        try:
            text = proc.stdout.decode("utf-8")
        except UnicodeDecodeError:
            failure = f"{desc} printed something that is not UTF-8 text"
        if failure is not None:
            _fail(spec, failure, None)
        value = _strip_one_newline(text)
        if not value:
            _fail(spec, f"{desc} printed nothing", "the command must print the password on stdout")
        return Secret(value)

    def _from_keyring(self, spec: CredentialSpec, service: str) -> Secret:
        if spec.username is None:  # the loader requires a username with any source; belt and braces
            _fail(spec, f"keyring {service!r} needs a username to look up", None)
        failure: str | None = None
        hint: str | None = None
        try:
            # Imported here: keyring discovers its backends at import time (slow, and it may touch
            # D-Bus); runs that never read a keyring entry should not pay for that.
            import keyring
            import keyring.errors
        except ImportError:
            failure = f"keyring {service!r}: the keyring package is not installed"
        if failure is not None:
            _fail(spec, failure, "pip install keyring, or use password_env or password_cmd")
        value: str | None = None
        try:
            value = keyring.get_password(service, spec.username)
        except keyring.errors.NoKeyringError:
            failure = f"keyring {service!r}: no keyring backend is available"
            hint = "install and unlock a keyring backend, or use password_env or password_cmd"
        except Exception as e:  # backends raise their own types (D-Bus, Secret Service, Windows)
            failure = f"keyring {service!r}: lookup failed: {type(e).__name__}: {e}"
        if failure is not None:
            _fail(spec, failure, hint)
        if value is None:
            _fail(
                spec,
                f'keyring has no entry for service {service!r} and user "{spec.username}"',
                f'store it with: keyring set {service} "{spec.username}"',
            )
        return Secret(value)


def _fail(spec: CredentialSpec, message: str, hint: str | None) -> NoReturn:
    where = f" (credentials at {spec.origin})" if spec.origin else ""
    raise CredentialError(message + where, hint=hint)
