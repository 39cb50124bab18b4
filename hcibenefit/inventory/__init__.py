"""The fleet inventory: which clusters and nodes exist, and how to reach them.

``load_inventory(path)`` reads and validates a YAML inventory (format: ``inventory.example.yaml``)
into frozen values; ``CredentialResolver`` turns the credential *sources* it names into secrets at
run time. Importing this package loads neither ruamel.yaml nor keyring; they are imported when a
file is parsed or a keyring entry is read.
"""

from __future__ import annotations

from hcibenefit.inventory.credentials import CredentialResolver, ResolvedCredential, Secret
from hcibenefit.inventory.loader import InventoryError, InventoryIssue, load_inventory, parse_inventory
from hcibenefit.inventory.model import (
    AttestationSettings,
    AuthKind,
    AzureCredentialKind,
    AzureSettings,
    Cluster,
    ClusterAzure,
    CredentialSpec,
    Encryption,
    GuestAccess,
    GuestAccessMode,
    GuestVM,
    Inventory,
    Node,
    PasswordCommand,
    PasswordEnv,
    PasswordKeyring,
    PasswordSource,
    Policy,
    RequireBenefits,
    Transport,
    UnknownTargetError,
    WinRMSettings,
)

__all__ = [
    "AttestationSettings",
    "AuthKind",
    "AzureCredentialKind",
    "AzureSettings",
    "Cluster",
    "ClusterAzure",
    "CredentialResolver",
    "CredentialSpec",
    "Encryption",
    "GuestAccess",
    "GuestAccessMode",
    "GuestVM",
    "Inventory",
    "InventoryError",
    "InventoryIssue",
    "Node",
    "PasswordCommand",
    "PasswordEnv",
    "PasswordKeyring",
    "PasswordSource",
    "Policy",
    "RequireBenefits",
    "ResolvedCredential",
    "Secret",
    "Transport",
    "UnknownTargetError",
    "WinRMSettings",
    "load_inventory",
    "parse_inventory",
]
