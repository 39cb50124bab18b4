"""What the guest scripts would print on a real node and inside real guests, computed from the FleetState.

Host side: guest-probe/1 and guest-kick/1 emulate `Invoke-Command -VMName ... -Credential ...` on the
owner node: per VM either the body's JSON text or the error record PowerShell Direct gives. Guest side:
the bodies (guest-probe-body/1, guest-kick-body/1) answer from the VM's GuestState and the host model, so
a host change shows in the guest (a VM that gets its NIC through `hcibenefit enable` reaches IMDS and
activates after a kick).

ASSUMPTIONS (none of these texts or ids is in docs/platform.md; each is marked where used):
- PowerShell Direct error texts and ids for a VM that is not running, does not exist, refuses the
  credential, or has no PowerShell for us;
- what a guest sees when its path to 169.254.169.253 is broken (refused at once) versus blocked inside
  the guest (times out), and that 169.254.169.254 always times out on HCI;
- LastTaskResult / Security-SPP 8198 hr codes per cause, and the Client-License-Flexible-Platform event
  ids and texts (docs/platform.md: IMDS-specific ids are undocumented);
- the licensing product's channel and grace period for an IMDS-activated guest.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from hcibenefit.lab.binding import Param, bind
from hcibenefit.lab.emulation import NOT_RECOGNIZED, Emulation, Invocation, _guest_addresses
from hcibenefit.lab.state import HOST_IMDS_ADDRESS, VM, FleetState, GuestState, now
from hcibenefit.lab.wsman.executor import PipelineCall, PipelineOutput, TerminatingError
from hcibenefit.remoting.catalog import parse_header

if TYPE_CHECKING:
    from hcibenefit.lab.signing import LabSigningChain

AZURE_IMDS_ADDRESS = "169.254.169.254"
SPP_PROVIDER = "Microsoft-Windows-Security-SPP"
CLIP_LOG = "Microsoft-Client-License-Flexible-Platform/Admin"
FCLIP = "%SystemRoot%\\system32\\fclip.exe"
MAX_EVENTS = 10
# Task Scheduler's LastRunTime for a task that never ran.
NEVER_RAN = "1999-11-30T00:00:00.0000000Z"
NONCE_PATTERN = re.compile(r"^[0-9]{0,32}$")

# ASSUMPTION: PowerShell Direct's messages and ids (RemotingErrorIdStrings), for Invoke-Command -VMName.
VM_NOT_SINGLE = "The input VMName {0} does not resolve to a single virtual machine."
VM_NOT_SINGLE_ID = "InvalidVMNameNotSingle,Microsoft.PowerShell.Commands.InvokeCommandCommand"
VM_NOT_RUNNING = "The virtual machine {0} is not in running state."
VM_NOT_RUNNING_ID = "InvalidVMState,Microsoft.PowerShell.Commands.InvokeCommandCommand"
CREDENTIAL_INVALID = "The credential is invalid."
CREDENTIAL_INVALID_ID = "InvalidCredential,Microsoft.PowerShell.Commands.InvokeCommandCommand"
DIRECT_BROKEN = (
    "An error has occurred which Windows PowerShell cannot handle. A remote session might have ended."
)
DIRECT_BROKEN_ID = "PSSessionStateBroken"
# ASSUMPTION: the CIM cmdlets' "not found" text for Get-ScheduledTask.
TASK_NOT_FOUND = (
    "No MSFT_ScheduledTask objects found with property 'TaskName' equal to 'LicenseImdsIntegration'.  "
    "Verify the value of the property and retry."
)
TASK_NOT_FOUND_ID = "CmdletizationQuery_NotFound_TaskName,Get-ScheduledTask"
# What guest-kick-body.ps1 throws for a disabled task (a thrown string is its own error id).
TASK_DISABLED = "The LicenseImdsIntegration task is disabled; it was not started."
# ASSUMPTION: the .NET WebException texts Invoke-RestMethod shows for a timeout and a refused connection.
TIMED_OUT = "The operation has timed out."
CANNOT_CONNECT = "Unable to connect to the remote server"
# ASSUMPTION: HRESULTs fclip/slui report per cause (LastTaskResult and the hr= of Security-SPP 8198).
HR_CANNOT_CONNECT = 0x80072EFD  # ERROR_INTERNET_CANNOT_CONNECT
HR_TIMEOUT = 0x80072EE2  # ERROR_INTERNET_TIMEOUT
HR_BY_DOCUMENT = {
    "expired": 0x800B0101,  # CERT_E_EXPIRED
    "tampered": 0x80096010,  # TRUST_E_BAD_DIGEST
    "missing-intermediate": 0x800B010A,  # CERT_E_CHAINING
    "wrong-nonce": 0x8007000D,  # ERROR_INVALID_DATA
}
# ASSUMPTION: ids and texts in the Client-License-Flexible-Platform log (undocumented).
CLIP_FETCHED = (100, "LicenseImdsIntegration: received the attested document from {0}.")
CLIP_FAILED = (101, "LicenseImdsIntegration: could not get a usable attested document, hr=0x{0:08X}.")
# ASSUMPTION: an IMDS-activated guest's licensing product (channel text and grace period are not public).
PRODUCT_CHANNEL = "Volume:GVLK"
LICENSED_GRACE_MINUTES = 43200


class GuestSecrets(Protocol):
    """What the guest emulation needs from the engine: the lab's signer and the guests' password."""

    signing: LabSigningChain | None
    guest_password: str | None


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def _emit(out: PipelineOutput, document: dict[str, Any]) -> None:
    out.write_output(json.dumps(document, separators=(",", ":")))


def _build(os_name: str) -> str:
    if "Windows 11" in os_name:
        return "22631"
    if "Windows 10" in os_name:
        return "19045"
    return "20348"


def _next_daily_run(at: dt.datetime) -> dt.datetime:
    # The task's daily trigger at 08:00 (SEED); the lab's clock is UTC.
    today = at.replace(hour=8, minute=0, second=0, microsecond=0)
    return today if today > at else today + dt.timedelta(days=1)


def _event(guest: GuestState, event_id: int, provider: str, text: str, at: dt.datetime) -> None:
    guest.events.append((event_id, at, provider, text))


def _events(guest: GuestState, provider: str) -> list[dict[str, Any]]:
    mine = [e for e in guest.events if e[2] == provider]
    newest = sorted(mine, key=lambda e: e[1], reverse=True)[:MAX_EVENTS]
    return [
        {
            "id": event_id,
            "time": _iso(at),
            "level": "Error" if event_id in (8198, CLIP_FAILED[0]) else "Information",
            "message": text.split("\n", 1)[0].strip(),
        }
        for event_id, at, _, text in newest
    ]


# --- inside the guest: the probe body ------------------------------------------------------------


def _imds_attempts(state: FleetState, vm: VM, timeout_s: int) -> tuple[list[dict[str, Any]], bool]:
    """Both IMDS addresses as the guest sees them; True when .253 answers."""
    # ASSUMPTION: nothing routes 169.254.169.254 on HCI, so the guest's request to it times out.
    attempts: list[dict[str, Any]] = [
        {
            "address": AZURE_IMDS_ADDRESS,
            "ok": False,
            "status_code": None,
            "latency_ms": timeout_s * 1000,
            "error": TIMED_OUT,
        }
    ]
    reaches = state.guest_reaches_imds(vm, HOST_IMDS_ADDRESS)
    entry: dict[str, Any] = {"address": HOST_IMDS_ADDRESS, "ok": reaches, "status_code": None, "error": None}
    if reaches:
        entry["status_code"] = 200
        entry["latency_ms"] = 2 + int(vm.id[:2], 16) % 10
    elif vm.guest.imds == "unreachable" and state.v1_path_works(vm):
        # Blocked inside the guest (firewall, proxy): the request goes nowhere until the timeout.
        entry["latency_ms"] = timeout_s * 1000
        entry["error"] = TIMED_OUT
    else:
        # ASSUMPTION: no NIC on the IMDS switch, a broken host side, or a node whose HciSvc does not serve
        # (state.node_serves_imds) all refuse the connection at once rather than time out.
        entry["latency_ms"] = 1
        entry["error"] = CANNOT_CONNECT
    attempts.append(entry)
    return attempts, reaches


def probe_body(
    state: FleetState, vm: VM, signing: LabSigningChain | None, *, nonce: str, timeout_s: int
) -> dict[str, Any]:
    """The guest-probe-body/1 document for one running VM."""
    with state.lock:
        guest = vm.guest
        at = now()
        attempts, reaches = _imds_attempts(state, vm, timeout_s)
        raw: str | None = None
        if reaches:
            if signing is None:
                raise RuntimeError("the lab engine has no signing chain (Lab.start sets it)")
            document = signing.make_document(
                vm_id=vm.id,
                subscription_id=state.subscription_id,
                nonce=nonce or None,
                fault=vm.guest.document,  # type: ignore[arg-type]
                shape="hci",
            )
            raw = json.dumps(document, separators=(",", ":"))
        present = guest.task != "Missing"
        task: dict[str, Any] = {
            "present": present,
            "state": guest.task if present else None,
            "execute": [FCLIP] if present else [],
            "last_run_time": (_iso(guest.last_run) or NEVER_RAN) if present else None,
            "last_task_result": guest.last_result if present else None,
            "next_run_time": _iso(_next_daily_run(at)) if present and guest.task == "Ready" else None,
            "missed_runs": 0 if present else None,
        }
        addresses = [
            {"address": address, "prefix_length": 16 if address.startswith("169.254.") else 24}
            for nic in vm.nics
            for address in _guest_addresses(vm, nic)
        ]
        licensed = guest.license_status == 1
        return {
            "schema": "guest-probe-body/1",
            "computer_name": vm.name.upper()[:15],
            "collected_at": _iso(at),
            "nonce": nonce,
            "os": {
                "caption": f"Microsoft {vm.os}",
                "edition_id": vm.edition,
                "build": _build(vm.os),
                "version": f"10.0.{_build(vm.os)}",
            },
            "licenses": [
                {
                    "name": f"Windows(R), {vm.edition} edition",
                    "description": "Windows(R) Operating System, VOLUME_KMSCLIENT channel",
                    "license_status": guest.license_status,
                    "license_family": vm.edition,
                    "product_key_channel": PRODUCT_CHANNEL,
                    "grace_minutes": LICENSED_GRACE_MINUTES if licensed else 0,
                }
            ],
            "task": task,
            "imds": attempts,
            "document": {"fetched_from": HOST_IMDS_ADDRESS if raw else None, "raw": raw},
            "addresses": addresses,
            "events": {"security_spp": _events(guest, SPP_PROVIDER), "clip": _events(guest, CLIP_LOG)},
            "problems": [],
        }


# --- inside the guest: running the task -----------------------------------------------------------


def _failure_hr(state: FleetState, vm: VM) -> int:
    if vm.guest.imds == "unreachable" and state.v1_path_works(vm):
        return HR_TIMEOUT
    if not (state.v1_path_works(vm) or state.v2_path_works(vm)) or vm.guest.imds != "reachable":
        return HR_CANNOT_CONNECT
    return HR_BY_DOCUMENT.get(vm.guest.document, HR_CANNOT_CONNECT)


def run_task(state: FleetState, vm: VM) -> None:
    """One run of LicenseImdsIntegration: fclip fetches the document, slui activates (or fails)."""
    guest = vm.guest
    at = now()
    guest.runs += 1
    guest.last_run = at
    if state.activation_path_works(vm):
        guest.last_result = 0
        source = HOST_IMDS_ADDRESS if state.v1_path_works(vm) else "VMBus"
        _event(guest, CLIP_FETCHED[0], CLIP_LOG, CLIP_FETCHED[1].format(source), at)
        if guest.runs >= guest.runs_needed:
            guest.license_status = 1
        return
    hr = _failure_hr(state, vm)
    guest.last_result = hr
    _event(guest, CLIP_FAILED[0], CLIP_LOG, CLIP_FAILED[1].format(hr), at)
    # docs/platform.md §7: Security-SPP 8198, activation failed with hr=...
    _event(
        guest,
        8198,
        SPP_PROVIDER,
        f"License Activation (slui.exe) failed with the following error code:\nhr=0x{hr:08X}\n"
        "Command-line arguments:\nRuleId=...",
        at,
    )


def kick_body(state: FleetState, vm: VM, *, enable_task: bool, max_runs: int) -> dict[str, Any]:
    """The guest-kick-body/1 document for one running VM, changing its GuestState as the task would."""
    with state.lock:
        guest = vm.guest
        present = guest.task != "Missing"
        outcome: dict[str, Any] = {
            "schema": "guest-kick-body/1",
            "computer_name": vm.name.upper()[:15],
            "task_present": present,
            "task_state_before": guest.task if present else None,
            "enabled_task": False,
            "license_before": guest.license_status,
            "license_after": guest.license_status,
            "runs": [],
            "error": None,
            "problems": [],
        }
        if not present:
            outcome["error"] = {
                "message": TASK_NOT_FOUND,
                "error_id": TASK_NOT_FOUND_ID,
                "category": "ObjectNotFound",
            }
            return outcome
        if guest.task == "Disabled":
            if not enable_task:
                outcome["error"] = {
                    "message": TASK_DISABLED,
                    "error_id": TASK_DISABLED,
                    "category": "OperationStopped",
                }
                return outcome
            guest.task = "Ready"
            outcome["enabled_task"] = True
        runs = []
        for run in range(1, max_runs + 1):
            if guest.license_status == 1:
                break
            started = now()
            run_task(state, vm)
            runs.append(
                {
                    "run": run,
                    "started_at": _iso(started),
                    "finished": True,
                    "state_after": guest.task,
                    "last_run_time": _iso(guest.last_run),
                    "last_task_result": guest.last_result,
                    "license_status": guest.license_status,
                }
            )
        outcome["runs"] = runs
        outcome["license_after"] = guest.license_status
        return outcome


# --- on the owner node: Invoke-Command -VMName fan-out ---------------------------------------------


def _password_of(credential: Any) -> str | None:
    decrypt = getattr(getattr(credential, "Password", None), "decrypt", None)
    return str(decrypt()) if callable(decrypt) else None


def _credential_ok(secrets: GuestSecrets, credential: Any) -> bool:
    expected, given = secrets.guest_password, _password_of(credential)
    if expected is None or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def _failure(vm: str, message: str, error_id: str, category: str) -> dict[str, Any]:
    return {"vm": vm, "message": message, "error_id": error_id, "category": category}


def _fan_out(
    inv: Invocation,
    secrets: GuestSecrets,
    schema: str,
    body_text: str,
    body_id: str,
    body: Callable[[VM], dict[str, Any]],
) -> None:
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    header = parse_header(body_text)
    for name in inv.params["VMName"]:
        vm = inv.state.vm(name)
        if vm is None or vm.node.lower() != inv.node.name.lower():
            failures.append(_failure(name, VM_NOT_SINGLE.format(name), VM_NOT_SINGLE_ID, "InvalidArgument"))
        elif vm.state != "Running":
            failures.append(
                _failure(name, VM_NOT_RUNNING.format(name), VM_NOT_RUNNING_ID, "InvalidOperation")
            )
        elif vm.guest.powershell_direct == "fail":
            failures.append(_failure(name, DIRECT_BROKEN, DIRECT_BROKEN_ID, "OpenError"))
        elif vm.guest.powershell_direct == "bad-credentials" or not _credential_ok(
            secrets, inv.params["Credential"]
        ):
            failures.append(_failure(name, CREDENTIAL_INVALID, CREDENTIAL_INVALID_ID, "InvalidArgument"))
        elif header is None or f"{header[0]}/{header[1]}" != body_id:
            # The lab only knows hcibenefit's own bodies; anything else is a command it does not have.
            first = body_text.strip().splitlines()[0][:40] if body_text.strip() else "<empty>"
            failures.append(
                _failure(name, NOT_RECOGNIZED.format(first), "CommandNotFoundException", "ObjectNotFound")
            )
        else:
            try:
                document = body(vm)
            except TerminatingError as exc:
                failures.append(_failure(vm.name, exc.message, exc.error_id, exc.category))
                continue
            results.append({"vm": vm.name, "output": json.dumps(document, separators=(",", ":"))})
    _emit(
        inv.out,
        {"schema": schema, "computer_name": inv.node.name.upper(), "results": results, "failures": failures},
    )


def _check_nonce(nonce: str) -> None:
    if not NONCE_PATTERN.match(nonce):
        raise TerminatingError(
            f"Cannot validate argument on parameter 'Nonce'. The argument \"{nonce}\" does not match the "
            '"^[0-9]{0,32}$" pattern. Supply an argument that matches "^[0-9]{0,32}$" and try the command again.',
            error_id="ParameterArgumentValidationError",
            category="InvalidData",
        )


PROBE_BODY_SIGNATURE = (Param("Nonce", "string", default=""), Param("TimeoutSec", "int", default=5))
KICK_BODY_SIGNATURE = (
    Param("EnableTask", "bool", default=False),
    Param("MaxRuns", "int", default=2),
    Param("WaitSec", "int", default=120),
    Param("SettleSec", "int", default=15),
)
_FAN_OUT_COMMON = (
    Param("VMName", "string[]", mandatory=True),
    Param("Credential", "pscredential", mandatory=True),
)


def guest_emulations(secrets: GuestSecrets) -> dict[str, Emulation]:
    """The host-side guest scripts, bound to the engine that holds the lab's signer and guest password."""

    def guest_probe(inv: Invocation) -> None:
        nonce, timeout_s = inv.params["Nonce"], inv.params["TimeoutSec"]

        def body(vm: VM) -> dict[str, Any]:
            _check_nonce(nonce)
            return probe_body(inv.state, vm, secrets.signing, nonce=nonce, timeout_s=timeout_s)

        _fan_out(inv, secrets, "guest-probe/1", inv.params["ProbeScript"], "guest-probe-body/1", body)

    def guest_kick(inv: Invocation) -> None:
        def body(vm: VM) -> dict[str, Any]:
            return kick_body(
                inv.state, vm, enable_task=bool(inv.params["EnableTask"]), max_runs=inv.params["MaxRuns"]
            )

        _fan_out(inv, secrets, "guest-kick/1", inv.params["KickScript"], "guest-kick-body/1", body)

    return {
        "guest-probe/1": Emulation(
            (
                *_FAN_OUT_COMMON,
                Param("ProbeScript", "string", mandatory=True),
                Param("Nonce", "string", default=""),
                Param("TimeoutSec", "int", default=5),
                Param("ThrottleLimit", "int", default=32),
            ),
            guest_probe,
        ),
        "guest-kick/1": Emulation(
            (
                *_FAN_OUT_COMMON,
                Param("KickScript", "string", mandatory=True),
                Param("EnableTask", "bool", default=False),
                Param("MaxRuns", "int", default=2),
                Param("WaitSec", "int", default=120),
                Param("ThrottleLimit", "int", default=32),
            ),
            guest_kick,
        ),
    }


# --- a guest reached over WinRM ---------------------------------------------------------------------


class GuestEndpointExecutor:
    """A ScriptExecutor for guests reached straight over WinRM: the endpoint name is the VM name.

    The lab's own server speaks for nodes; serve this one from a second WSManServer whose user and
    password are the guests' (authentication is the server's job there, as on a real guest).
    """

    def __init__(self, state: FleetState, secrets: GuestSecrets) -> None:
        self.state = state
        self.secrets = secrets
        self.invocations: Counter[str] = Counter()

    def execute(self, call: PipelineCall, out: PipelineOutput) -> None:
        command = call.commands[0] if len(call.commands) == 1 else None
        header = parse_header(command.text) if command is not None and command.is_script else None
        key = f"{header[0]}/{header[1]}" if header else None
        vm = self.state.vm(call.node)
        if command is None or vm is None or key not in ("guest-probe-body/1", "guest-kick-body/1"):
            raise TerminatingError(
                NOT_RECOGNIZED.format(call.commands[0].text[:40] if call.commands else "<empty>"),
                error_id="CommandNotFoundException",
                category="ObjectNotFound",
                exception_type="System.Management.Automation.CommandNotFoundException",
            )
        self.invocations[f"{vm.name}:{key}"] += 1
        if vm.state != "Running":
            # A stopped guest has no WinRM; the test server stays up, so say it the way a dead session would.
            raise TerminatingError(DIRECT_BROKEN, error_id=DIRECT_BROKEN_ID, category="OpenError")
        if key == "guest-probe-body/1":
            params = bind(PROBE_BODY_SIGNATURE, command.parameters)
            _check_nonce(params["Nonce"])
            _emit(
                out,
                probe_body(
                    self.state,
                    vm,
                    self.secrets.signing,
                    nonce=params["Nonce"],
                    timeout_s=params["TimeoutSec"],
                ),
            )
        else:
            params = bind(KICK_BODY_SIGNATURE, command.parameters)
            _emit(
                out,
                kick_body(self.state, vm, enable_task=bool(params["EnableTask"]), max_runs=params["MaxRuns"]),
            )
