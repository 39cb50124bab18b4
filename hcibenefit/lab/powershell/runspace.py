"""A runspace: the global scope that persists across pipelines of one pool, the host, and the session.

How our scripts are run decides scope (powershell51.md section 10.1): pypsrp's `add_script` sends
UseLocalScope=nil, so the script is dot-sourced into the runspace's global scope. Its variables,
functions and `$ErrorActionPreference` stay in that runspace for the next pipeline of the same pool.

The host (section 7.1): pypsrp opens pools without a host, so `$Host.UI` wraps a null UI. Its
output methods return silently; everything that would prompt throws HostException
(`HostFunctionNotImplemented`), and a ShouldProcess that would ask does the same.

The session: which authentication the WinRM session used and whether it can delegate (CredSSP, or
Kerberos with delegation). A cmdlet that opens a session to another computer (Invoke-Command
-ComputerName, New-PSSession, Az.StackHCI's loopback session) needs delegation: the second hop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hcibenefit.lab.powershell.errors import ErrorRecord, PSError
from hcibenefit.lab.powershell.values import MISSING, ArrayList, PSObject

HOST_PROMPT_MESSAGE = (
    "A command that prompts the user failed because the host program or the command type does not support "
    "user interaction. The host was attempting to request confirmation with the following message: {0}"
)
HOST_READ_MESSAGE = (
    "A command that prompts the user failed because the host program or the command type does not support "
    "user interaction. Try a host program that supports user interaction, such as the Windows PowerShell "
    "Console or Windows PowerShell ISE, and remove prompt-related commands from command types that do not "
    "support user interaction, such as Windows PowerShell workflows."
)

PREFERENCES = {
    "erroractionpreference": "Continue",
    "confirmpreference": "High",
    "whatifpreference": False,
    "verbosepreference": "SilentlyContinue",
    "warningpreference": "Continue",
    "debugpreference": "SilentlyContinue",
    "informationpreference": "SilentlyContinue",
    "progresspreference": "Continue",
}
CONFIRM_LEVELS = {"none": 0, "low": 1, "medium": 2, "high": 3}


class Sink(Protocol):
    """Where a runspace's streams go: the WinRM pipeline, or a collector (Invoke-Command)."""

    def write_error_record(self, record: ErrorRecord) -> None: ...

    def write_warning(self, message: str) -> None: ...

    def write_verbose(self, message: str) -> None: ...

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None: ...

    def write_information(self, message: str, source: str) -> None: ...


@dataclass
class CollectingSink:
    """Streams kept in memory: what a nested runspace (a guest behind Invoke-Command) produced."""

    errors: list[ErrorRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)
    progress: list[tuple[str, str, int]] = field(default_factory=list)
    information: list[str] = field(default_factory=list)

    def write_error_record(self, record: ErrorRecord) -> None:
        self.errors.append(record)

    def write_warning(self, message: str) -> None:
        self.warnings.append(message)

    def write_verbose(self, message: str) -> None:
        self.verbose.append(message)

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        self.progress.append((activity, status, percent))

    def write_information(self, message: str, source: str) -> None:
        self.information.append(message)


@dataclass(frozen=True)
class SessionAuth:
    """How the client authenticated this runspace's WinRM session."""

    mechanism: str = "local"  # basic, ntlm, negotiate, kerberos, credssp; local = not remote
    can_delegate: bool = True
    user: str = ""


class Scope:
    __slots__ = ("functions", "parent", "vars")

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}
        self.functions: dict[str, Any] = {}

    def find(self, name: str) -> Any:
        key = name.casefold()
        scope: Scope | None = self
        while scope is not None:
            if key in scope.vars:
                return scope.vars[key]
            scope = scope.parent
        return MISSING

    def function(self, name: str) -> Any:
        return self.function_by_key(name.casefold())

    def function_by_key(self, key: str) -> Any:
        """`function` for a name already case-folded."""
        scope: Scope | None = self
        while scope is not None:
            if key in scope.functions:
                return scope.functions[key]
            scope = scope.parent
        return None


def host_exception(message: str, *, prompt: bool = True) -> ErrorRecord:
    return ErrorRecord(
        HOST_PROMPT_MESSAGE.format(message) if prompt else HOST_READ_MESSAGE,
        "HostFunctionNotImplemented",
        "NotImplemented",
        exception_type="System.Management.Automation.Host.HostException",
    )


class HostUI:
    """$Host.UI: with no UI (what pypsrp gives) writes vanish and prompts throw HostException."""

    type_name = "System.Management.Automation.Internal.Host.InternalHostUserInterface"
    _WRITES = frozenset(
        {
            "write",
            "writeline",
            "writeerrorline",
            "writewarningline",
            "writeverboseline",
            "writedebugline",
            "writeprogress",
            "writeinformation",
        }
    )
    _PROMPTS = frozenset({"promptforchoice", "prompt", "promptforcredential"})
    _READS = frozenset({"readline", "readlineassecurestring"})

    def __init__(self, has_ui: bool) -> None:
        self.has_ui = has_ui
        self.written: list[str] = []

    def ps_member(self, name: str) -> Any:
        if name.casefold() == "rawui":
            return None
        return MISSING

    def ps_call(self, name: str, args: list[Any]) -> Any:
        from hcibenefit.lab.powershell.errors import method_exception

        key = name.casefold()
        if key in self._WRITES:
            if self.has_ui:
                self.written.append(" ".join(str(a) for a in args))
            return None
        if key in self._PROMPTS:
            message = str(args[1]) if len(args) > 1 else ""
            raise method_exception(name, len(args), host_exception(message))
        if key in self._READS:
            raise method_exception(name, len(args), host_exception("", prompt=False))
        return MISSING

    def ps_string(self) -> str:
        return self.type_name


class Host:
    """$Host in a remote runspace: ServerRemoteHost (SD:SRH), whose UI may be null."""

    type_name = "System.Management.Automation.Internal.Host.InternalHost"

    def __init__(self, has_ui: bool) -> None:
        self.ui = HostUI(has_ui)

    def ps_member(self, name: str) -> Any:
        key = name.casefold()
        if key == "ui":
            return self.ui
        if key == "name":
            return "ServerRemoteHost"
        if key == "version":
            return "1.0.0.0"
        return MISSING

    def ps_call(self, name: str, args: list[Any]) -> Any:
        return MISSING

    def ps_string(self) -> str:
        return "System.Management.Automation.Internal.Host.InternalHost"


class Runspace:
    """One pool's runspace on one machine: global scope, $Error, host, session and the .NET statics."""

    def __init__(
        self,
        machine: Any,
        *,
        host_ui: bool = False,
        auth: SessionAuth | None = None,
        computer_name: str = "",
    ) -> None:
        self.machine = machine
        self.host = Host(host_ui)
        self.auth = auth or SessionAuth()
        self.computer_name = computer_name
        self.global_scope = Scope()
        self.errors: ArrayList = ArrayList()
        self.default_web_proxy: str | None = "system"
        """[System.Net.WebRequest]::DefaultWebProxy: "system" until a script sets it to $null."""
        self.lock = threading.RLock()
        """One pipeline at a time per runspace, as PowerShell runs them."""
        self.extras: dict[str, Any] = {}
        for name, value in PREFERENCES.items():
            self.global_scope.vars[name] = value

    def add_error(self, record: ErrorRecord) -> None:
        self.errors.insert(0, record)
        del self.errors[256:]

    def env(self, name: str) -> Any:
        key = name.casefold()
        if key == "computername":
            return self.computer_name
        if key == "username":
            return self.auth.user.split("\\")[-1] if self.auth.user else "SYSTEM"
        if key in ("systemroot", "windir"):
            return "C:\\Windows"
        return None


Effect = Callable[[], None]


def confirm_level(value: Any) -> int:
    from hcibenefit.lab.powershell.convert import to_string

    text = to_string(value).casefold()
    if text not in CONFIRM_LEVELS:
        raise PSError(
            ErrorRecord(
                f'Cannot convert value "{to_string(value)}" to type "System.Management.Automation.ConfirmImpact".',
                "RuntimeException",
                "InvalidArgument",
            )
        )
    return CONFIRM_LEVELS[text]


def stopwatch(clock: Callable[[], float]) -> PSObject:
    """[System.Diagnostics.Stopwatch]::StartNew(): elapsed time on the lab's clock."""
    from hcibenefit.lab.powershell.values import Computed, PSTimeSpan

    start = clock()
    state: dict[str, float | None] = {"stopped": None}

    def elapsed() -> PSTimeSpan:
        stopped = state["stopped"]
        return PSTimeSpan((stopped if stopped is not None else clock()) - start)

    def stop() -> None:
        if state["stopped"] is None:
            state["stopped"] = clock()

    return PSObject(
        "System.Diagnostics.Stopwatch",
        {
            "Elapsed": Computed(elapsed),
            "ElapsedMilliseconds": Computed(lambda: int(elapsed().seconds * 1000)),
            "IsRunning": Computed(lambda: state["stopped"] is None),
        },
        methods={"Stop": stop},
        string="System.Diagnostics.Stopwatch",
    )


__all__ = [
    "CONFIRM_LEVELS",
    "CollectingSink",
    "Host",
    "HostUI",
    "Runspace",
    "Scope",
    "SessionAuth",
    "Sink",
    "host_exception",
    "stopwatch",
]
