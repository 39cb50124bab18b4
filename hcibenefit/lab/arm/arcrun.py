"""The lab's stand-in for hcibenefit's own arc-run.ps1, until the lab's PowerShell runs it itself.

arc-run.ps1 is the script of every Arc run command hcibenefit creates: it decodes the real script and its
parameters (base64, JSON) and runs the script in a runspace of its own, binding the parameters as
parameters, then answers with one framed, base64-encoded JSON document (see the script). The lab's
PowerShell evaluator does not cover what arc-run.ps1 uses (``[PowerShell]::Create()`` with
AddScript/AddParameter/Invoke/Streams, ConvertTo-SecureString, Write-Output, ConvertFrom-Json as a cmdlet,
the base64 and encoding statics), so this module does what arc-run.ps1 does, in Python, and hands the
*real* script to the same executor the WinRM server uses: host-facts, vm-benefits-enable and the others
are evaluated exactly as over WinRM. An executor that evaluates arc-run.ps1 itself says so with
``runs_arc_run = True`` and this stand-in steps aside.

Said plainly: this emulates one of our own scripts, which the lab otherwise never does. A mistake in
arc-run.ps1 would not show here; tests/arc/test_arc_pieces.py checks the script's text against this
contract (parameter names, frame, answer keys) and tests/scripts parses it and checks its commands and
members, which is less than running it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall, ScriptExecutor, TerminatingError

FRAME = "hcibenefit-arc-run/1"
LINE = 76


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    mandatory: bool = False


SIGNATURE = (
    Parameter("Script", "string", True),
    Parameter("Parameters", "string"),
    Parameter("Credentials", "string"),
)
"""arc-run.ps1's param() block, as this stand-in binds it (tests/scripts checks the two agree)."""


@dataclass(frozen=True)
class _Secure:
    value: str

    def decrypt(self) -> str:
        return self.value


@dataclass(frozen=True)
class _Credential:
    """A PSCredential as the lab's cmdlet emulations read it (UserName, Password.decrypt())."""

    UserName: str
    Password: _Secure


class _Streams:
    """The nested runspace's streams, as arc-run.ps1 collects them from $ps.Invoke() and $ps.Streams."""

    def __init__(self, stopping: Any) -> None:
        self.stopping = stopping
        self.output: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    def write_output(self, value: Any) -> None:
        self.output.append("" if value is None else str(value))

    def write_error(
        self,
        message: str,
        *,
        error_id: str,
        category: str = "NotSpecified",
        target: str | None = None,
        exception_type: str | None = None,
    ) -> None:
        self.errors.append({"message": message, "error_id": error_id, "category": category, "target": target})

    def write_warning(self, message: str) -> None:
        self.warnings.append(message)

    def write_verbose(self, message: str) -> None:
        return None

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        return None

    def write_information(self, message: str, source: str) -> None:
        return None


def _decode(text: str, name: str) -> Any:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise TerminatingError(
            f'Exception calling "FromBase64String" with "1" argument(s): "{exc}"',
            error_id="FormatException",
            category="NotSpecified",
            exception_type="System.Management.Automation.MethodInvocationException",
            target=name,
        ) from None


def run_arc_run(executor: ScriptExecutor, call: PipelineCall, console: Any) -> None:
    """arc-run.ps1 on `call.node` with the run command's string arguments; writes its frame to `console`."""
    known = {p.name.casefold(): p.name for p in SIGNATURE}
    args: dict[str, str] = {}
    for name, value in call.commands[0].parameters:
        if name is None or name.casefold() not in known:
            raise TerminatingError(
                f"A parameter cannot be found that matches parameter name '{name}'.",
                error_id="NamedParameterNotFound",
                category="InvalidArgument",
                exception_type="System.Management.Automation.ParameterBindingException",
            )
        args[known[name.casefold()]] = str(value)
    if "Script" not in args:
        raise TerminatingError(
            "Cannot process command because of one or more missing mandatory parameters: Script.",
            error_id="MissingMandatoryParameter",
            category="InvalidArgument",
            exception_type="System.Management.Automation.ParameterBindingException",
        )
    script = _decode(args["Script"], "Script")
    parameters: dict[str, Any] = {}
    if args.get("Parameters"):
        parameters.update(json.loads(_decode(args["Parameters"], "Parameters")))
    if args.get("Credentials"):
        for name, secret in json.loads(_decode(args["Credentials"], "Credentials")).items():
            parameters[name] = _Credential(str(secret["username"]), _Secure(str(secret["password"])))
    streams = _Streams(console.stopping)
    inner = PipelineCall(
        node=call.node,
        username=call.username,
        configuration_name=call.configuration_name,
        commands=(CommandSpec(script, True, tuple(parameters.items())),),
        input=(),
    )
    try:
        # The executor returns the pipeline's output, to be sent with its completion (executor.py).
        for value in executor.execute(inner, streams) or ():
            streams.write_output(value)
    except TerminatingError as exc:
        streams.errors.insert(
            0,
            {
                "message": exc.message,
                "error_id": exc.error_id,
                "category": exc.category,
                "target": exc.target,
            },
        )
    answer = {
        "schema": "arc-run/1",
        "output": streams.output,
        "errors": streams.errors,
        "warnings": streams.warnings,
    }
    encoded = base64.b64encode(json.dumps(answer, separators=(",", ":")).encode("utf-8")).decode("ascii")
    console.write_output(f"{FRAME} begin {len(encoded)}")
    for offset in range(0, len(encoded), LINE):
        console.write_output(encoded[offset : offset + LINE])
    console.write_output(f"{FRAME} end")
