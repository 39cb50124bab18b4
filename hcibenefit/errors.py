"""Errors a user is expected to see. The CLI error boundary prints them as one line plus a hint.

Anything that is not a HcibenefitError is a bug and is reported as such.
"""

from __future__ import annotations

from hcibenefit.exitcodes import ExitCode


class HcibenefitError(Exception):
    """An expected failure with a message for a person and an optional hint."""

    exit_code: ExitCode = ExitCode.USAGE
    label = "error"
    """How the CLI's error boundary introduces the message."""

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


class OutputClosed(HcibenefitError):
    """Whoever read our standard output stopped reading (a broken pipe). Not printed: exit 141."""

    exit_code = ExitCode.BROKEN_PIPE

    def __init__(self) -> None:
        super().__init__("standard output was closed by its reader")


class Interrupted(HcibenefitError):
    """Ctrl-C during remote work: the message says what was done, stopped and left behind."""

    exit_code = ExitCode.INTERRUPTED
    label = "interrupted"
