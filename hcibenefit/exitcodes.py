"""The one set of process exit codes. Bits compose: 1 (findings) | 4 (incomplete) = 5."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Everything was assessed (or changed) and is compliant."""
    FINDINGS = 1
    """Findings at or above --fail-on."""
    USAGE = 2
    """Usage or configuration error; nothing was done."""
    INCOMPLETE = 4
    """Some targets could not be assessed or changed."""
    FINDINGS_AND_INCOMPLETE = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    """The reader of stdout went away (``| head``): what a Unix tool killed by SIGPIPE exits with."""

    @classmethod
    def combine(cls, *, findings: bool, incomplete: bool) -> ExitCode:
        return cls((cls.FINDINGS if findings else 0) | (cls.INCOMPLETE if incomplete else 0))
