"""What `inventory validate` checks beyond the file's shape, without connecting to anything.

- every file the inventory names exists and holds what it should: CA bundles (attestation.ca_files,
  winrm and azure cert_validation paths) parse as certificates, client certificate and key files exist;
- every credential source can be resolved: the environment variable is set, the password command's
  program is found (it is not run: `inventory test` does that), the keyring has the entry.

Secrets are never read into a message: a check says whether a source answers, never what.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hcibenefit.inventory import (
    CredentialSpec,
    Inventory,
    PasswordCommand,
    PasswordEnv,
    PasswordKeyring,
    WinRMSettings,
)


@dataclass(frozen=True)
class Problem:
    where: str
    """Where the inventory names the thing (file:line:col: field), or the setting's path."""
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _ca_problem(path: Path) -> str | None:
    if not path.exists():
        return f"CA file {path} does not exist"
    from hcibenefit.attestation.errors import CAFileError
    from hcibenefit.attestation.trust import load_ca_file

    try:
        load_ca_file(path)
    except CAFileError as exc:
        return exc.message
    return None


def _winrm_files(where: str, settings: WinRMSettings) -> Iterator[tuple[str, Path, str]]:
    if isinstance(settings.cert_validation, Path):
        yield where + ".winrm.cert_validation", settings.cert_validation, "ca"
    for key in ("certificate_pem", "certificate_key_pem"):
        value = getattr(settings, key)
        if value is not None:
            yield f"{where}.winrm.{key}", value, "file"


def file_problems(inventory: Inventory) -> list[Problem]:
    checks: dict[Path, tuple[str, str]] = {}
    for path in inventory.attestation.ca_files:
        checks.setdefault(path, ("attestation.ca_files", "ca"))
    if isinstance(inventory.azure.cert_validation, Path):
        checks.setdefault(inventory.azure.cert_validation, ("azure.cert_validation", "ca"))
    for cluster in inventory.clusters:
        for node in cluster.nodes:
            for where, path, kind in _winrm_files(f"{cluster.name}/{node.name}", node.winrm):
                checks.setdefault(path, (where, kind))
        for vm in cluster.guests.vms:
            for where, path, kind in _winrm_files(f"{cluster.name}/guests.vms.{vm.name}", vm.winrm):
                checks.setdefault(path, (where, kind))
    problems = []
    for path, (where, kind) in checks.items():
        message = (
            _ca_problem(path) if kind == "ca" else (None if path.is_file() else f"{path} does not exist")
        )
        if message:
            problems.append(Problem(where, message))
    return problems


def credential_specs(inventory: Inventory) -> dict[tuple[object, ...], CredentialSpec]:
    """Every distinct credential the inventory names (hosts and guests)."""
    specs: dict[tuple[object, ...], CredentialSpec] = {}
    for cluster in inventory.clusters:
        for spec in [
            *(n.credentials for n in cluster.nodes),
            *(n.guest_credentials for n in cluster.nodes),
            cluster.guest_credentials,
        ]:
            if spec is not None:
                specs.setdefault((spec.username, spec.source), spec)
    return specs


def source_problem(spec: CredentialSpec, env: Mapping[str, str], *, ask_pass: bool) -> str | None:
    """Why this credential's password cannot be had, or None. Never runs a password command."""
    match spec.source:
        case None:
            if spec.username is None or ask_pass:
                return None
            return f'user "{spec.username}" has no password source (add one, or run with --ask-pass)'
        case PasswordEnv(name):
            if not env.get(name):
                return f"password_env {name} is {'empty' if name in env else 'not set'}"
        case PasswordCommand(argv):
            program = argv[0] if argv else ""
            if not program or not (
                shutil.which(program) or (os.sep in program and os.access(program, os.X_OK))
            ):
                return f"password_cmd: program {program!r} is not found on PATH"
        case PasswordKeyring(service):
            try:
                import keyring

                value = keyring.get_password(service, spec.username or "")
            except Exception as exc:  # any backend's own error type
                return f"keyring {service!r}: {type(exc).__name__}: {exc}"
            if value is None:
                return f'keyring has no entry for service {service!r} and user "{spec.username}"'
    return None


def credential_problems(
    inventory: Inventory, env: Mapping[str, str] | None = None, *, ask_pass: bool = False
) -> list[Problem]:
    env = os.environ if env is None else env
    problems = []
    for spec in credential_specs(inventory).values():
        message = source_problem(spec, env, ask_pass=ask_pass)
        if message:
            problems.append(Problem(spec.origin or "credentials", message))
    return problems


def offline_problems(inventory: Inventory, *, ask_pass: bool = False) -> list[Problem]:
    return file_problems(inventory) + credential_problems(inventory, ask_pass=ask_pass)
