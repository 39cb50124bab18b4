"""Error records and the ways errors travel through a script (powershell51.md section 6).

- `ErrorRecord`: what `$_` is in a catch block and what `-ErrorVariable` collects. Its
  FullyQualifiedErrorId is `ErrorId,<command part>`: the implementing .NET type for a compiled cmdlet,
  the command name for a function, nothing for the engine and `throw` (section 6.2).
- `PSError`: a terminating error unwinding the evaluator. `kind` says how it started: `throw`
  (script-terminating), `stop` (a non-terminating error escalated by ErrorAction Stop), `statement`
  (a cmdlet's terminating error, a binding error, a .NET exception: the statement stops, and under the
  default Continue the script goes on with the next one).
- `Unsupported`: the script uses something outside the evaluator's subset; never a silent pass.
"""

from __future__ import annotations

from typing import Any

from hcibenefit.lab.powershell.values import EnumType, PSObject

ERROR_CATEGORY = EnumType(
    "System.Management.Automation.ErrorCategory",
    {
        "NotSpecified": 0,
        "OpenError": 1,
        "CloseError": 2,
        "DeviceError": 3,
        "DeadlockDetected": 4,
        "InvalidArgument": 5,
        "InvalidData": 6,
        "InvalidOperation": 7,
        "InvalidResult": 8,
        "InvalidType": 9,
        "MetadataError": 10,
        "NotImplemented": 11,
        "NotInstalled": 12,
        "ObjectNotFound": 13,
        "OperationStopped": 14,
        "OperationTimeout": 15,
        "SyntaxError": 16,
        "ParserError": 17,
        "PermissionDenied": 18,
        "ResourceBusy": 19,
        "ResourceExists": 20,
        "ResourceUnavailable": 21,
        "ReadError": 22,
        "WriteError": 23,
        "FromStdErr": 24,
        "SecurityError": 25,
        "ProtocolError": 26,
        "ConnectionError": 27,
        "AuthenticationError": 28,
        "LimitsExceeded": 29,
        "QuotaExceeded": 30,
        "NotEnabled": 31,
    },
)


def exception(type_name: str, message: str, **extra: Any) -> PSObject:
    """A .NET exception object: `Message` plus whatever else its type carries (Response, Status...)."""
    return PSObject(
        [type_name, "System.Exception", "System.Object"],
        {"Message": message, "InnerException": None, **extra},
        string=f"{type_name}: {message}" if type_name else message,
    )


class ErrorRecord:
    """System.Management.Automation.ErrorRecord (or a RemotingErrorRecord when `origin` is set)."""

    def __init__(
        self,
        message: str,
        error_id: str,
        category: str = "NotSpecified",
        *,
        exception_type: str = "System.Management.Automation.RuntimeException",
        target: Any = None,
        command: str | None = None,
        exception_object: PSObject | None = None,
        details: str | None = None,
        origin: str | None = None,
        activity: str | None = None,
    ) -> None:
        self.exception = exception_object or exception(exception_type, message)
        self.error_id = error_id
        self.command = command
        self.category = ERROR_CATEGORY(category)
        self.target = target
        self.details = details
        self.origin = origin
        self.activity = activity or ""

    @property
    def message(self) -> str:
        value = self.exception.get("Message")
        return "" if value is None else str(value)

    @property
    def exception_type(self) -> str:
        return self.exception.type_name

    @property
    def fqid(self) -> str:
        return f"{self.error_id},{self.command}" if self.command else self.error_id

    @property
    def reason(self) -> str:
        return self.exception_type.rsplit(".", 1)[-1]

    def category_info(self) -> PSObject:
        target_type = "String" if isinstance(self.target, str) else "" if self.target is None else "Object"
        target_name = "" if self.target is None else str(self.target) if isinstance(self.target, str) else ""
        text = f"{self.category.name}: ({target_name}:{target_type}) [{self.activity}], {self.reason}"
        return PSObject(
            "System.Management.Automation.ErrorCategoryInfo",
            {
                "Category": self.category,
                "Activity": self.activity,
                "Reason": self.reason,
                "TargetName": target_name,
                "TargetType": target_type,
            },
            string=text,
        )

    def member(self, name: str) -> Any:
        key = name.casefold()
        if key == "exception":
            return self.exception
        if key == "fullyqualifiederrorid":
            return self.fqid
        if key == "categoryinfo":
            return self.category_info()
        if key == "targetobject":
            return self.target
        if key == "errordetails":
            return (
                None
                if self.details is None
                else PSObject(
                    "System.Management.Automation.ErrorDetails",
                    {"Message": self.details},
                    string=self.details,
                )
            )
        if key == "origininfo":
            if self.origin is None:
                return None
            return PSObject(
                "System.Management.Automation.Remoting.OriginInfo",
                {"PSComputerName": self.origin, "RunspaceID": None, "InstanceID": None},
                string=self.origin,
            )
        if key == "invocationinfo":
            return None
        raise KeyError(name)

    def text(self) -> str:
        """`[string]$_`: ErrorDetails.Message when set, else the exception message."""
        return self.details if self.details is not None else self.message

    def __repr__(self) -> str:
        return f"ErrorRecord({self.fqid!r}, {self.message!r})"


class PSError(Exception):
    """A terminating error on its way to the nearest catch (or out of the script)."""

    def __init__(self, record: ErrorRecord, kind: str = "statement") -> None:
        super().__init__(record.message)
        self.record = record
        self.kind = kind  # throw, stop, statement


class Unsupported(Exception):
    """The script uses a construct the lab's evaluator does not implement (named, with its line)."""

    def __init__(self, construct: str, line: int | None = None) -> None:
        where = f" at line {line}" if line is not None else ""
        super().__init__(f"the lab's PowerShell does not support {construct}{where}")
        self.construct = construct
        self.line = line


class NotEmulated(Exception):
    """A documented cmdlet, parameter or member the lab has no emulation for: loud, never a guess."""


class FlowControl(Exception):
    """break, continue and return unwinding to their loop or function."""


class Break(FlowControl):
    pass


class Continue(FlowControl):
    pass


class Return(FlowControl):
    pass


class ScriptExit(FlowControl):
    """`exit`: ends the script (our scripts do not use it)."""


def method_exception(method: str, argc: int, inner: ErrorRecord) -> PSError:
    """A .NET method that throws: MethodInvocationException whose id is the inner exception's type name."""
    inner_type = inner.exception_type.rsplit(".", 1)[-1]
    message = f'Exception calling "{method}" with "{argc}" argument(s): "{inner.message}"'
    outer = exception("System.Management.Automation.MethodInvocationException", message)
    outer.set("InnerException", inner.exception)
    record = ErrorRecord(
        message,
        inner_type,
        "NotSpecified",
        exception_type="System.Management.Automation.MethodInvocationException",
        exception_object=outer,
    )
    return PSError(record)


def runtime_error(
    message: str, error_id: str, category: str = "InvalidOperation", target: Any = None
) -> PSError:
    """An engine error (no command part in the id): null method calls, bad casts, missing methods."""
    return PSError(ErrorRecord(message, error_id, category, target=target))
