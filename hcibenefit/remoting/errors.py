"""What can go wrong talking to a host, in words an admin acts on.

Every pypsrp/requests failure is mapped to one of these; callers never see a bare transport exception.
Each error names the host and carries a hint. `kind` is a stable one-word label for JSON reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hcibenefit.errors import HcibenefitError
from hcibenefit.exitcodes import ExitCode


@dataclass(frozen=True)
class ErrorRecordInfo:
    """The parts of a PowerShell ErrorRecord a person needs."""

    message: str
    error_id: str
    category: str = ""
    target: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "message": self.message,
            "error_id": self.error_id,
            "category": self.category,
            "target": self.target,
        }


class RemotingError(HcibenefitError):
    exit_code = ExitCode.INCOMPLETE
    kind = "remoting"

    def __init__(self, host: str, message: str, *, hint: str | None = None, transient: bool = False) -> None:
        super().__init__(f"{host}: {message}", hint=hint)
        self.host = host
        self.detail = message
        self.transient = transient
        """A dropped connection or an HTTP error without a WS-Management fault: worth one more try
        when repeating is safe (a read-only script)."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take different arguments; rebuild from the instance's state (worker processes
        # send errors back to the parent).
        return (_rebuild, (type(self), self.args, self.__dict__))

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "host": self.host, "message": self.detail, "hint": self.hint}


class Cancelled(RemotingError):
    """Ctrl-C, a deadline or the caller stopped the work before it was done."""

    kind = "cancelled"


class UnreachableError(RemotingError):
    kind = "unreachable"


class TLSError(UnreachableError):
    kind = "tls"


class AuthenticationFailed(RemotingError):
    kind = "authentication"


class CredentialSkipped(RemotingError):
    """Not tried: the same credential was refused on another node in this run (lockout)."""

    kind = "skipped"


class RemoteTimeout(RemotingError):
    kind = "timeout"


class QuotaExceeded(RemotingError):
    kind = "quota"


class WSManFault(RemotingError):
    kind = "wsman-fault"

    def __init__(
        self, host: str, code: int | None, reason: str, *, hint: str | None = None, transient: bool = False
    ) -> None:
        text = (
            f"WS-Management fault {code}: {reason}" if code is not None else f"WS-Management fault: {reason}"
        )
        super().__init__(host, text, hint=hint, transient=transient)
        self.code = code
        self.reason = reason


class ScriptError(RemotingError):
    """The script ran and PowerShell reported errors (terminating or not)."""

    kind = "script-error"

    def __init__(
        self, host: str, script: str, records: list[ErrorRecordInfo], *, hint: str | None = None
    ) -> None:
        first = records[0] if records else ErrorRecordInfo("the script failed without an error record", "")
        more = f" (+{len(records) - 1} more)" if len(records) > 1 else ""
        super().__init__(host, f"{script}: {first.message} [{first.error_id}]{more}", hint=hint)
        self.script = script
        self.records = records


class ModuleMissingError(RemotingError):
    kind = "module-missing"


class MalformedOutputError(RemotingError):
    kind = "malformed-output"


def _rebuild(cls: type[RemotingError], args: tuple[Any, ...], state: dict[str, Any]) -> RemotingError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error
