"""Errors for inputs we could not even read.

A document that was read but is wrong is a report, not an error.
"""

from __future__ import annotations

from pathlib import Path

from hcibenefit.errors import HcibenefitError


class AttestationFileError(HcibenefitError):
    """A document file could not be read. Nothing was verified."""

    def __init__(self, path: str | Path, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = Path(path)


class CAFileError(AttestationFileError):
    """A CA file (from the inventory or ``--ca``) is unreadable or holds no certificate we can use."""
