"""Credential resolution: env, command, keyring, prompt; the secret never leaks into text."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.core
import pytest

from hcibenefit.errors import CredentialError
from hcibenefit.inventory import (
    CredentialResolver,
    CredentialSpec,
    PasswordCommand,
    PasswordEnv,
    PasswordKeyring,
    ResolvedCredential,
    Secret,
    parse_inventory,
)

SECRET = "s3cr3t-Pa55!"


def py(code: str) -> PasswordCommand:
    return PasswordCommand((sys.executable, "-c", code))


def assert_hidden(*texts: object) -> None:
    for t in texts:
        for rendering in (repr(t), str(t), f"{t}", f"{t!r}"):
            assert SECRET not in rendering, rendering


# --- Secret ----------------------------------------------------------------------------------


def test_secret_hides_its_value_everywhere() -> None:
    s = Secret(SECRET)
    assert s.reveal() == SECRET
    assert repr(s) == str(s) == f"{s}" == f"{s:>20}" == "***"
    cred = ResolvedCredential("admin", s)
    assert_hidden(s, cred, [s], {"p": s})
    assert repr(cred) == "ResolvedCredential(username='admin', password=***)"
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        json.dumps({"p": s})
    assert copy.deepcopy(cred).password == s
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


# --- environment -----------------------------------------------------------------------------


def test_env_source() -> None:
    r = CredentialResolver(env={"HCI_PASS": SECRET})
    got = r.resolve(CredentialSpec("admin", PasswordEnv("HCI_PASS")))
    assert got.username == "admin" and got.password is not None and got.password.reveal() == SECRET
    assert_hidden(got)


def test_env_unset_and_empty() -> None:
    spec = CredentialSpec("admin", PasswordEnv("HCI_PASS"), origin="inventory.yaml:3:5: defaults.credentials")
    with pytest.raises(CredentialError) as ei:
        CredentialResolver(env={}).resolve(spec)
    assert str(ei.value) == (
        "password_env HCI_PASS is not set (credentials at inventory.yaml:3:5: defaults.credentials)"
    )
    assert ei.value.hint and "--ask-pass" in ei.value.hint
    with pytest.raises(CredentialError, match="HCI_PASS is set but empty"):
        CredentialResolver(env={"HCI_PASS": ""}).resolve(spec)


def test_no_source_needs_ask_pass_and_certificate_needs_nothing() -> None:
    with pytest.raises(CredentialError, match='no password source for user "admin"'):
        CredentialResolver(env={}).resolve(CredentialSpec("admin"))
    assert CredentialResolver().resolve(CredentialSpec(None)) == ResolvedCredential(None, None)
    assert CredentialResolver().resolve(None) == ResolvedCredential(None, None)


# --- command ---------------------------------------------------------------------------------


def test_command_source_strips_one_newline_and_runs_once() -> None:
    r = CredentialResolver(env={})
    spec = CredentialSpec("admin", py(f"print({SECRET!r})"))
    got = r.resolve(spec)
    assert got.password is not None and got.password.reveal() == SECRET
    assert r.resolve(CredentialSpec("admin", py(f"print({SECRET!r})"), origin="elsewhere")) is got
    two = r.resolve(CredentialSpec("admin", py("import sys; sys.stdout.write('x\\n\\n')")))
    assert two.password is not None and two.password.reveal() == "x\n"
    crlf = r.resolve(CredentialSpec("admin", py("import sys; sys.stdout.write('y\\r\\n')")))
    assert crlf.password is not None and crlf.password.reveal() == "y"


def test_command_failure_says_failed_and_the_exit_code_and_shows_stderr_only_at_debug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The child reads the secret from its environment so that it is not in the argv we show; a careless
    # script then prints it on stderr, which must not reach the error line.
    monkeypatch.setenv("T_SECRET", SECRET)
    code = (
        "import os, sys; print(os.environ['T_SECRET']); "
        "sys.stderr.write('gpg: decryption failed for ' + os.environ['T_SECRET'] + '\\nmore\\n'); sys.exit(3)"
    )
    spec = CredentialSpec("admin", py(code))
    caplog.set_level(logging.INFO, logger="hcibenefit")
    with pytest.raises(CredentialError) as ei:
        CredentialResolver().resolve(spec)
    assert str(ei.value) == f"password_cmd {[sys.executable, '-c', code]!r} failed: it exited 3"
    assert ei.value.hint == "rerun with -vv to see what it printed on standard error"
    assert_hidden(ei.value, ei.value.hint)
    assert "decryption failed" not in caplog.text  # nothing below debug
    caplog.set_level(logging.DEBUG, logger="hcibenefit")
    with pytest.raises(CredentialError):
        CredentialResolver().resolve(spec)
    assert "gpg: decryption failed" in caplog.text and "more" in caplog.text


def test_a_failing_command_at_minus_vv_shows_its_stderr_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hcibenefit.cli.app import run

    script = tmp_path / "get-secret.py"
    script.write_text(
        "import sys; sys.stderr.write('vault: permission denied for hci/admin\\n'); sys.exit(7)\n"
    )
    inventory = tmp_path / "inventory.yaml"
    argv = json.dumps([sys.executable, str(script)])
    inventory.write_text(
        f"defaults:\n  credentials: {{username: admin, password_cmd: {argv}}}\n"
        "clusters:\n  - name: c1\n    nodes: [{name: n1, address: 127.0.0.1, port: 9}]\n"
    )
    assert run(["-i", str(inventory), "status"]) == 2
    err = capsys.readouterr().err
    assert "failed: it exited 7" in err and "permission denied" not in err
    assert run(["-vv", "-i", str(inventory), "status"]) == 2
    assert "vault: permission denied for hci/admin" in capsys.readouterr().err


def test_command_that_prints_nothing() -> None:
    with pytest.raises(CredentialError, match="printed nothing"):
        CredentialResolver().resolve(CredentialSpec("admin", py("print()")))


def test_command_timeout_does_not_carry_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SECRET", SECRET)
    spec = CredentialSpec(
        "admin", py("import os, time; print(os.environ['T_SECRET'], flush=True); time.sleep(10)")
    )
    with pytest.raises(CredentialError) as ei:
        CredentialResolver(run_cmd_timeout=0.5).resolve(spec)
    assert "did not finish within 0.5 s" in str(ei.value)
    # TimeoutExpired holds the captured stdout; it must not hang off the error as context.
    assert ei.value.__context__ is None and ei.value.__cause__ is None


def test_command_not_found() -> None:
    spec = CredentialSpec("admin", PasswordCommand(("/nonexistent/get-secret", "x")))
    with pytest.raises(CredentialError, match=r"could not be started: No such file or directory"):
        CredentialResolver().resolve(spec)


# --- keyring ---------------------------------------------------------------------------------


class FakeKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.calls = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.calls += 1
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


@pytest.fixture
def fake_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKeyring]:
    # monkeypatch remembers the current backend and puts it back after the test.
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    backend = FakeKeyring()
    keyring.set_keyring(backend)
    yield backend


def test_keyring_source(fake_keyring: FakeKeyring) -> None:
    fake_keyring.set_password("hcibenefit", "CORP\\svc", SECRET)
    r = CredentialResolver()
    spec = CredentialSpec("CORP\\svc", PasswordKeyring("hcibenefit"))
    got = r.resolve(spec)
    assert got.password is not None and got.password.reveal() == SECRET
    r.resolve(spec)
    assert fake_keyring.calls == 1


def test_keyring_missing_entry(fake_keyring: FakeKeyring) -> None:
    with pytest.raises(CredentialError) as ei:
        CredentialResolver().resolve(CredentialSpec("svc", PasswordKeyring("hcibenefit")))
    assert str(ei.value) == "keyring has no entry for service 'hcibenefit' and user \"svc\""
    assert ei.value.hint == 'store it with: keyring set hcibenefit "svc"'


def test_keyring_without_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    keyring.set_keyring(keyring.backends.fail.Keyring())
    with pytest.raises(CredentialError, match="no keyring backend is available"):
        CredentialResolver().resolve(CredentialSpec("svc", PasswordKeyring("hcibenefit")))


# --- --ask-pass ------------------------------------------------------------------------------

ASK_PASS_INVENTORY = """\
defaults:
  credentials: {username: CORP\\admin, password_env: NOT_SET_ANYWHERE}
clusters:
  - name: c1
    nodes: [n1, n2]
  - name: c2
    credentials: {username: CORP\\admin, keyring: other}
    guest_credentials: {username: guest}
    nodes: [n3]
"""


def test_ask_pass_prompts_once_per_username() -> None:
    inv = parse_inventory(textwrap.dedent(ASK_PASS_INVENTORY), "inventory.yaml")
    prompts: list[str] = []

    def prompt(text: str) -> str:
        prompts.append(text)
        return SECRET if "admin" in text else "guest-pw"

    r = CredentialResolver(ask_pass=True, prompt=prompt, env={})
    got = [r.resolve(n.credentials) for n in inv.all_nodes()]
    guest = r.resolve(inv.node("n3").guest_credentials)
    assert prompts == ["Password for CORP\\admin: ", "Password for guest: "]
    assert all(g.password is not None and g.password.reveal() == SECRET for g in got)
    assert guest.password is not None and guest.password.reveal() == "guest-pw"
    assert_hidden(got, guest, r.__dict__, inv.to_public_dict(), json.dumps(inv.to_public_dict()))


def test_ask_pass_without_terminal() -> None:
    def no_tty(_: str) -> str:
        raise EOFError

    with pytest.raises(CredentialError, match="no terminal"):
        CredentialResolver(ask_pass=True, prompt=no_tty).resolve(CredentialSpec("admin", PasswordEnv("X")))
    with pytest.raises(CredentialError, match="no password entered"):
        CredentialResolver(ask_pass=True, prompt=lambda _: "").resolve(CredentialSpec("admin"))
