"""Credential selection and what a missing login tells the user."""

from __future__ import annotations

import base64
import json
import time

import pytest

from hcibenefit.azure.credentials import (
    AccessTokenCredential,
    AzureLoginError,
    acquire,
    login_hint,
    make_credential,
    scope_for,
)
from hcibenefit.inventory.credentials import Secret
from hcibenefit.inventory.model import AzureSettings

TENANT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CLIENT = "5b6c7d8e-0000-4000-8000-000000000001"
AZURE_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
)


@pytest.fixture(autouse=True)
def no_azure_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("kind", "class_name"),
    [
        ("default", "DefaultAzureCredential"),
        ("cli", "AzureCliCredential"),
        ("environment", "EnvironmentCredential"),
        ("managed-identity", "ManagedIdentityCredential"),
    ],
)
def test_each_kind_builds_its_azure_identity_class(kind: str, class_name: str) -> None:
    credential = make_credential(AzureSettings(credential=kind, tenant_id=TENANT))  # type: ignore[arg-type]
    assert type(credential).__name__ == class_name


def test_workload_identity_reads_its_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    with pytest.raises(AzureLoginError) as caught:
        make_credential(AzureSettings(credential="workload-identity"))
    assert "AZURE_FEDERATED_TOKEN_FILE" in (caught.value.hint or "")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token")
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    credential = make_credential(AzureSettings(credential="workload-identity", client_id=CLIENT))
    assert type(credential).__name__ == "WorkloadIdentityCredential"


def test_missing_environment_login_names_the_variables() -> None:
    settings = AzureSettings(credential="environment")
    with pytest.raises(AzureLoginError) as caught:
        acquire(make_credential(settings), settings)
    assert caught.value.message.startswith("Azure login (environment):")
    assert "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET" in (caught.value.hint or "")
    assert caught.value.exit_code == 4


def test_missing_cli_login_says_az_login(monkeypatch: pytest.MonkeyPatch) -> None:
    # No az on PATH (the test machine has none; make sure): AzureCliCredential is unavailable.
    monkeypatch.setenv("PATH", "/nonexistent")
    settings = AzureSettings(credential="cli", tenant_id=TENANT)
    with pytest.raises(AzureLoginError) as caught:
        acquire(make_credential(settings), settings)
    assert caught.value.hint == f"run `az login --tenant {TENANT}` (and `az account show` to check it)"


def test_hints_for_every_kind() -> None:
    assert "az login" in login_hint(AzureSettings()) and "AZURE_CLIENT_SECRET" in login_hint(AzureSettings())
    assert "managed identity" in login_hint(AzureSettings(credential="managed-identity"))
    assert login_hint(AzureSettings(credential="access-token", token_env="AZ_TOKEN")) == (
        "export AZ_TOKEN=$(az account get-access-token --query accessToken -o tsv)"
    )


def _jwt(exp: float) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(exp), 'aud': 'https://management.azure.com'})}.c2ln"


def test_access_token_credential_knows_when_a_jwt_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    fresh = AccessTokenCredential("AZ_TOKEN", Secret(_jwt(time.time() + 600)))
    token = fresh.get_token("https://management.azure.com/.default")
    assert abs(token.expires_on - (time.time() + 600)) < 5
    stale = AccessTokenCredential("AZ_TOKEN", Secret(_jwt(time.time() - 60)))
    with pytest.raises(ClientAuthenticationError, match="AZ_TOKEN expired at"):
        stale.get_token("x")
    monkeypatch.setenv("AZ_TOKEN", _jwt(time.time() - 60))
    settings = AzureSettings(credential="access-token", token_env="AZ_TOKEN")
    with pytest.raises(AzureLoginError) as caught:
        acquire(make_credential(settings), settings)
    assert "expired" in caught.value.message and "az account get-access-token" in (caught.value.hint or "")


def test_the_token_is_never_shown(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from hcibenefit.logsafe import redact

    monkeypatch.setenv("AZ_TOKEN", "eyJ-very-secret-token-value")
    credential = make_credential(AzureSettings(credential="access-token", token_env="AZ_TOKEN"))
    assert "very-secret" not in repr(vars(credential))
    assert redact("Bearer eyJ-very-secret-token-value") == "Bearer ***"


def test_the_scope_follows_the_endpoint() -> None:
    assert scope_for(AzureSettings()) == "https://management.azure.com/.default"
    assert scope_for(AzureSettings(endpoint="https://management.usgovcloudapi.net/")) == (
        "https://management.usgovcloudapi.net/.default"
    )
