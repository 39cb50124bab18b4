"""What arc-run.ps1 (the script of every Azure Arc run command) uses to host hcibenefit's other scripts:
Write-Output, ConvertFrom-Json, ConvertTo-SecureString, and an in-process ``[PowerShell]::Create()``.

``[PowerShell]::Create()`` (System.Management.Automation.PowerShell, 5.1): AddScript(text) and
AddParameter(name, value) return the instance; Invoke() runs the script in a runspace of its own on the
same machine and returns its output; a terminating error makes Invoke() throw a
MethodInvocationException whose InnerException carries the script's ErrorRecord; non-terminating errors
and warnings are in Streams.Error and Streams.Warning. Sources: the PowerShell class reference
(https://learn.microsoft.com/dotnet/api/system.management.automation.powershell) and the cmdlet pages
below. Guess, said: the new runspace starts with the caller's language mode and modules, as a default
InitialSessionState would on the same machine.
"""

from __future__ import annotations

from typing import Any

from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.errors import ErrorRecord, PSError, exception
from hcibenefit.lab.powershell.values import ArrayList, PSObject, SecureString

UTILITY = "https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/{}?view=powershell-5.1"
SECURITY = (
    "https://learn.microsoft.com/powershell/module/microsoft.powershell.security/{}?view=powershell-5.1"
)
CMD = "Microsoft.PowerShell.Commands."


@cmdlet(
    "Write-Output",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("write-output"),
    type_name=f"{CMD}WriteOutputCommand",
    params=[P("InputObject", "object", 0, mandatory=("*",), pipeline=True), P("NoEnumerate", "switch")],
)
def write_output(call: Call) -> None:
    items = list(call.input) if call.input is not None else [call.params["InputObject"]]
    for item in items:
        call.emit(item)


@cmdlet(
    "ConvertFrom-Json",
    module="Microsoft.PowerShell.Utility",
    source=UTILITY.format("convertfrom-json") + " (5.1: JavaScriptSerializer, objects as PSCustomObjects)",
    type_name=f"{CMD}ConvertFromJsonCommand",
    collects_input=True,
    params=[P("InputObject", "string", 0, mandatory=("*",), pipeline=True)],
)
def convert_from_json(call: Call) -> None:
    import json

    from hcibenefit.lab.powershell.cmdlets.web import from_json

    texts = [str(i) for i in call.input] if call.input is not None else [str(call.params["InputObject"])]
    try:
        value = from_json("\n".join(texts))
    except json.JSONDecodeError as exc:
        call.fail(
            f"Invalid JSON primitive: {exc.msg}.",
            "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
            "NotSpecified",
            exception_type="System.ArgumentException",
        )
    call.emit(value)


@cmdlet(
    "ConvertTo-SecureString",
    module="Microsoft.PowerShell.Security",
    source=SECURITY.format("convertto-securestring"),
    type_name="Microsoft.PowerShell.Commands.ConvertToSecureStringCommand",
    params=[
        P("String", "string", 0, mandatory=("*",), pipeline=True),
        P("AsPlainText", "switch"),
        P("Force", "switch"),
    ],
)
def convert_to_secure_string(call: Call) -> None:
    if not (call.params["AsPlainText"] and call.params["Force"]):
        # Without -AsPlainText the text must be an encrypted standard string (DPAPI): not emulated.
        call.fail(
            "The lab emulates ConvertTo-SecureString -AsPlainText -Force only.",
            "LabNotEmulated",
            "NotImplemented",
        )
    call.emit(SecureString(str(call.params["String"])))


class _Collect:
    """The nested runspace's error and warning streams."""

    def __init__(self, errors: ArrayList, warnings: ArrayList) -> None:
        self.errors, self.warnings = errors, warnings

    def write_error_record(self, record: ErrorRecord) -> None:
        self.errors.append(record)

    def write_warning(self, message: str) -> None:
        self.warnings.append(
            PSObject("System.Management.Automation.WarningRecord", {"Message": message}, string=message)
        )

    def write_verbose(self, message: str) -> None:
        return None

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        return None

    def write_information(self, message: str, source: str) -> None:
        return None


def powershell_instance(interpreter: Any) -> PSObject:
    """``[PowerShell]::Create()`` on the interpreter's machine."""
    from hcibenefit.lab.powershell import syntax
    from hcibenefit.lab.powershell.binding import Arg
    from hcibenefit.lab.powershell.evaluator import Interpreter
    from hcibenefit.lab.powershell.runspace import Runspace

    scripts: list[str] = []
    arguments: list[tuple[str, Any]] = []
    errors, warnings = ArrayList(), ArrayList()
    streams = PSObject("System.Management.Automation.PSDataStreams", {"Error": errors, "Warning": warnings})
    instance: PSObject

    def add_script(text: Any) -> PSObject:
        scripts.append(str(text))
        return instance

    def add_parameter(name: Any, value: Any = None) -> PSObject:
        arguments.append((str(name), value))
        return instance

    def invoke() -> list[Any]:
        caller = interpreter.runspace
        runspace = Runspace(
            caller.machine, host_ui=False, auth=caller.auth, computer_name=caller.computer_name
        )
        nested = Interpreter(runspace, _Collect(errors, warnings))
        try:
            block = syntax.parse(scripts[-1] if scripts else "")
            return list(nested.run_script(block, [Arg(name, value) for name, value in arguments]))
        except PSError as exc:
            inner = exception(exc.record.exception_type, exc.record.message, ErrorRecord=exc.record)
            message = f'Exception calling "Invoke" with "0" argument(s): "{exc.record.message}"'
            raise PSError(
                ErrorRecord(
                    message,
                    exc.record.exception_type.rsplit(".", 1)[-1],
                    "NotSpecified",
                    exception_object=exception(
                        "System.Management.Automation.MethodInvocationException",
                        message,
                        InnerException=inner,
                    ),
                )
            ) from None

    instance = PSObject(
        "System.Management.Automation.PowerShell",
        {"Streams": streams, "HadErrors": False},
        methods={
            "AddScript": add_script,
            "AddParameter": add_parameter,
            "Invoke": invoke,
            "Dispose": lambda: None,
        },
        string="System.Management.Automation.PowerShell",
    )
    return instance
