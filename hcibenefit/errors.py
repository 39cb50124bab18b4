"""Errors a user is expected to see. The CLI error boundary prints them as one line plus a hint.

Anything that is not a HcibenefitError is a bug and is reported as such.
"""

from __future__ import annotations

from hcibenefit.exitcodes import ExitCode


class HcibenefitError(Exception):
    """An expected failure with a message for a person and an optional hint."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(HcibenefitError):
    """The inventory, a fleet spec or another configuration file is wrong. Nothing was done."""


class UsageError(HcibenefitError):
    """The command line asks for something that cannot be done (unknown VM, bad flag combination)."""


class CredentialError(HcibenefitError):
    """A secret could not be resolved (unset variable, failing command, missing keyring entry)."""
