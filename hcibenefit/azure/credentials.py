"""Which Azure credential a run uses, and what to tell a person when it has none.

``credential:`` in the inventory's ``azure:`` section picks the azure-identity class; ``default``
is ``DefaultAzureCredential`` (environment, workload identity, managed identity, Azure CLI, ...
in that library's order). ``access-token`` takes a bearer token from an environment variable (a
token from ``az account get-access-token``, a pipeline's OIDC step, or the lab), so a jump host
needs neither az nor a secret in a file.

azure-identity is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import TYPE_CHECKING, Any

from hcibenefit.errors import HcibenefitError
from hcibenefit.exitcodes import ExitCode
from hcibenefit.inventory.credentials import Secret
from hcibenefit.inventory.model import AzureSettings

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

ENVIRONMENT_VARIABLES = (
    "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) for a "
    "service principal"
)
WORKLOAD_VARIABLES = "AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID"


class AzureLoginError(HcibenefitError):
    """No usable Azure credential. Reported per subscription; the run continues without Azure."""

    exit_code = ExitCode.INCOMPLETE


def login_hint(settings: AzureSettings) -> str:
    """The command (or variables) that give this inventory's credential kind a login."""
    tenant = f" --tenant {settings.tenant_id}" if settings.tenant_id else ""
    kind = settings.credential
    if kind == "cli":
        return f"run `az login{tenant}` (and `az account show` to check it)"
    if kind == "environment":
        return f"set {ENVIRONMENT_VARIABLES}"
    if kind == "workload-identity":
        return f"set {WORKLOAD_VARIABLES} (a federated identity, e.g. in a Kubernetes pod or CI job)"
    if kind == "managed-identity":
        return "run on an Azure VM or Arc-enabled server whose managed identity may read the subscriptions"
    if kind == "access-token":
        name = settings.token_env or "the token_env variable"
        return f"export {name}=$(az account get-access-token --query accessToken -o tsv)"
    return f"run `az login{tenant}`, or set {ENVIRONMENT_VARIABLES}"


def _jwt_expiry(token: str) -> int | None:
    """The ``exp`` claim of a JWT, read without verifying it (only to say when it runs out)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return int(exp) if isinstance(exp, int | float) else None


class AccessTokenCredential:
    """A bearer token from an environment variable; ``get_token`` hands it out until it expires."""

    def __init__(self, variable: str, token: Secret) -> None:
        self.variable = variable
        self._token = token
        self._expires_on = _jwt_expiry(token.reveal()) or int(time.time()) + 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken
        from azure.core.exceptions import ClientAuthenticationError

        if self._expires_on <= time.time():
            raise ClientAuthenticationError(
                f"the access token in {self.variable} expired at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self._expires_on))}"
            )
        return AccessToken(self._token.reveal(), self._expires_on)

    def close(self) -> None:
        return None


def make_credential(settings: AzureSettings) -> TokenCredential:
    """The credential the inventory names. Builds objects only; nothing is sent yet."""
    kind = settings.credential
    tenant = settings.tenant_id
    if kind == "access-token":
        variable = settings.token_env or ""
        value = os.environ.get(variable, "").strip()
        if not value:
            raise AzureLoginError(
                f"no Azure access token: environment variable {variable} is not set",
                hint=login_hint(settings),
            )
        return AccessTokenCredential(variable, Secret(value))
    import azure.identity as identity

    if kind == "cli":
        return identity.AzureCliCredential(tenant_id=tenant or "")
    if kind == "environment":
        return identity.EnvironmentCredential()
    if kind == "managed-identity":
        return identity.ManagedIdentityCredential(client_id=settings.client_id)
    if kind == "workload-identity":
        options: dict[str, Any] = {"tenant_id": tenant} if tenant else {}
        if settings.client_id:
            options["client_id"] = settings.client_id
        try:
            return identity.WorkloadIdentityCredential(**options)
        except ValueError as exc:
            # Raised at construction when the variables it reads are missing.
            raise AzureLoginError(f"no workload identity: {exc}", hint=login_hint(settings)) from None
    options = {}
    if tenant:
        options["interactive_browser_tenant_id"] = tenant
        options["shared_cache_tenant_id"] = tenant
    if settings.client_id:
        options["managed_identity_client_id"] = settings.client_id
    # Never a browser prompt in the middle of a fleet run.
    return identity.DefaultAzureCredential(exclude_interactive_browser_credential=True, **options)


def scope_for(settings: AzureSettings) -> str:
    """The token scope for ARM at this endpoint (management.azure.com, the sovereign clouds alike)."""
    return settings.endpoint.rstrip("/") + "/.default"


def acquire(credential: TokenCredential, settings: AzureSettings) -> None:
    """Get one token before the first request, so a missing login is one clear error, not one per call."""
    from azure.core.exceptions import ClientAuthenticationError

    try:
        credential.get_token(scope_for(settings))
    except ClientAuthenticationError as exc:
        # CredentialUnavailableError is a ClientAuthenticationError: no login at all.
        import logging

        text = str(exc).strip()
        logging.getLogger(__name__).info("Azure credential %s: %s", settings.credential, text)
        detail = text.splitlines()[0] if text else type(exc).__name__
        raise AzureLoginError(
            f"Azure login ({settings.credential}): {detail}", hint=login_hint(settings)
        ) from None
