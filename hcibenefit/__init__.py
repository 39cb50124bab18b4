"""hcibenefit: Azure Benefits (IMDS attestation) across Azure Stack HCI / Azure Local fleets."""

__version__ = "0.1.0"
