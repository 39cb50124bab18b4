"""Typed records of what the guest scripts report: the probe body, the kick body, and the per-node fan-outs.

Like facts.host: strict about shape (a wrong type is a FactsError naming the field), lenient about values
(an unknown task state stays text). The fan-out documents carry each guest's answer as JSON *text*,
because PowerShell Direct hands remote output back as strings; parsing that text is done here too, so
one guest with a broken answer is one FactsError, not a broken node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hcibenefit import jsonguard
from hcibenefit.facts.host import FactsError, ScriptProblem, _get, _list, _text, parse_time

# SoftwareLicensingProduct.LicenseStatus (docs/platform.md §7).
LICENSE_STATUS_NAMES = {
    0: "Unlicensed",
    1: "Licensed",
    2: "OOBGrace",
    3: "OOTGrace",
    4: "NonGenuineGrace",
    5: "Notification",
    6: "ExtendedGrace",
}
LICENSED = 1
# Get-ScheduledTaskInfo.LastTaskResult 0x41303: "the task has not yet run" (docs/platform.md §11).
TASK_NOT_YET_RUN = 267011
AZURE_IMDS_ADDRESS = "169.254.169.254"
HOST_IMDS_ADDRESS = "169.254.169.253"
# Task Scheduler reports 11/30/1999 as the last run time of a task that never ran.
_NEVER = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


def license_status_name(status: int | None) -> str:
    if status is None:
        return "unknown"
    return LICENSE_STATUS_NAMES.get(status, f"status {status}")


def _int(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    value = _get(obj, key, int, where)
    if isinstance(value, bool):
        raise FactsError(f"{where}.{key}: expected a number, got a boolean")
    return value if value is None else int(value)


def _bool(obj: Mapping[str, Any], key: str, where: str) -> bool:
    return bool(_get(obj, key, bool, where))


def _object(obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = _get(obj, key, dict, where)
    return value


def _objects(raw: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """The list under ``key``, each item an object (a guest may send anything: say which is not)."""
    items = _list(raw, key, where)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FactsError(f"{where}.{key}[{i}]: expected an object, got {type(item).__name__}")
    return items


def _problems(raw: Mapping[str, Any], where: str) -> tuple[ScriptProblem, ...]:
    return tuple(
        ScriptProblem(
            source=_text(p, "source", f"{where}.problems"),
            message=_text(p, "message", f"{where}.problems"),
            error_id=_text(p, "error_id", f"{where}.problems"),
        )
        for p in _objects(raw, "problems", where)
    )


@dataclass(frozen=True, slots=True)
class OSFacts:
    caption: str
    edition_id: str
    build: str
    version: str
    ubr: int | None = None
    """The update build revision (CurrentVersion UBR): 22631.3447 is build 22631, UBR 3447 (guest-probe-body/2)."""
    display_version: str = ""


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """The Azure Virtual Desktop agent's registry key, HKLM\\SOFTWARE\\Microsoft\\RDInfraAgent."""

    installed: bool
    is_registered: int | None
    """IsRegistered: 1 when the agent registered with a host pool."""


@dataclass(frozen=True, slots=True)
class TimeFacts:
    """How the guest keeps its clock: W32Time's Parameters Type (NT5DS, NTP, NoSync, AllSync)."""

    w32time_type: str | None


@dataclass(frozen=True, slots=True)
class LicenseFacts:
    name: str
    description: str
    license_status: int
    license_family: str
    product_key_channel: str
    grace_minutes: int | None

    @property
    def status_name(self) -> str:
        return license_status_name(self.license_status)


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """The LicenseImdsIntegration task. `present` False with no task problem means it does not exist."""

    present: bool
    state: str | None
    execute: tuple[str, ...]
    last_run_time: dt.datetime | None
    last_task_result: int | None
    next_run_time: dt.datetime | None
    missed_runs: int | None

    @property
    def never_ran(self) -> bool:
        if self.last_task_result == TASK_NOT_YET_RUN:
            return True
        return self.last_run_time is None or self.last_run_time < _NEVER

    @property
    def last_result_hex(self) -> str | None:
        if self.last_task_result is None:
            return None
        return f"0x{self.last_task_result & 0xFFFFFFFF:08X}"


@dataclass(frozen=True, slots=True)
class ImdsAttempt:
    address: str
    ok: bool
    status_code: int | None
    latency_ms: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AddressFacts:
    address: str
    prefix_length: int | None

    @property
    def link_local(self) -> bool:
        return self.address.startswith("169.254.")


@dataclass(frozen=True, slots=True)
class EventFacts:
    id: int
    time: dt.datetime | None
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class GuestProbe:
    """What guest-probe-body/1 or /2 found inside one guest."""

    computer_name: str
    collected_at: dt.datetime | None
    nonce: str
    os: OSFacts | None
    licenses: tuple[LicenseFacts, ...]
    task: TaskFacts
    imds: tuple[ImdsAttempt, ...]
    document_raw: str | None
    document_from: str | None
    addresses: tuple[AddressFacts, ...]
    spp_events: tuple[EventFacts, ...]
    clip_events: tuple[EventFacts, ...]
    problems: tuple[ScriptProblem, ...]
    started_at: dt.datetime | None = None
    """The guest's clock when the probe started (guest-probe-body/2), to compare with its node's."""
    node_clock: tuple[dt.datetime, dt.datetime] | None = None
    """The owner node's clock before and after the PowerShell Direct fan-out that asked this guest (None: the
    guest was reached straight over WinRM, or by an older fan-out)."""
    avd_agent: AgentFacts | None = None
    time: TimeFacts | None = None

    def problem(self, source: str) -> ScriptProblem | None:
        return next((p for p in self.problems if p.source == source), None)

    @property
    def license(self) -> LicenseFacts | None:
        """The Windows product that decides activation: a Licensed one if any, else the first."""
        return next((lic for lic in self.licenses if lic.license_status == LICENSED), None) or (
            self.licenses[0] if self.licenses else None
        )

    @property
    def licensed(self) -> bool | None:
        """None when the licensing query failed, so activation is unknown."""
        if not self.licenses and self.problem("license") is not None:
            return None
        return any(lic.license_status == LICENSED for lic in self.licenses)

    @property
    def task_known(self) -> bool:
        return self.task.present or self.problem("task") is None

    def attempt(self, address: str) -> ImdsAttempt | None:
        return next((a for a in self.imds if a.address == address), None)

    @property
    def imds_addresses(self) -> tuple[str, ...]:
        """The guest's 169.254.0.0/16 addresses: what it has on the IMDS NIC (V1, no DHCP there)."""
        return tuple(a.address for a in self.addresses if a.link_local)


def _event(raw: Any, where: str) -> EventFacts:
    if not isinstance(raw, dict):
        raise FactsError(f"{where}: expected an object")
    return EventFacts(
        id=_int(raw, "id", where) or 0,
        time=parse_time(raw.get("time")),
        level=_text(raw, "level", where),
        message=_text(raw, "message", where),
    )


def _task(raw: Mapping[str, Any] | None) -> TaskFacts:
    where = "probe.task"
    if raw is None:
        return TaskFacts(False, None, (), None, None, None, None)
    return TaskFacts(
        present=_bool(raw, "present", where),
        state=_get(raw, "state", str, where),
        execute=tuple(str(e) for e in _list(raw, "execute", where)),
        last_run_time=parse_time(raw.get("last_run_time")),
        last_task_result=_int(raw, "last_task_result", where),
        next_run_time=parse_time(raw.get("next_run_time")),
        missed_runs=_int(raw, "missed_runs", where),
    )


PROBE_BODY_SCHEMAS = ("guest-probe-body/1", "guest-probe-body/2")
"""/2 adds started_at, os.ubr and os.display_version, avd_agent and time; /1 (saved by an older collect.ps1)
still parses, without them."""


def _agent(raw: Mapping[str, Any] | None) -> AgentFacts | None:
    if raw is None:
        return None
    return AgentFacts(
        installed=_bool(raw, "installed", "probe.avd_agent"),
        is_registered=_int(raw, "is_registered", "probe.avd_agent"),
    )


def parse_probe_body(document: Mapping[str, Any]) -> GuestProbe:
    """GuestProbe from a guest-probe-body/1 or /2 document. Raises FactsError on a wrong shape."""
    if document.get("schema") not in PROBE_BODY_SCHEMAS:
        raise FactsError(f"schema: expected 'guest-probe-body/2', got {document.get('schema')!r}")
    os_raw = _object(document, "os", "probe")
    time_raw = _object(document, "time", "probe")
    doc_raw = _object(document, "document", "probe") or {}
    events = _object(document, "events", "probe") or {}
    licenses = []
    for i, raw in enumerate(_list(document, "licenses", "probe")):
        where = f"probe.licenses[{i}]"
        if not isinstance(raw, dict):
            raise FactsError(f"{where}: expected an object")
        status = _int(raw, "license_status", where)
        if status is None:
            raise FactsError(f"{where}.license_status: missing")
        licenses.append(
            LicenseFacts(
                name=_text(raw, "name", where),
                description=_text(raw, "description", where),
                license_status=status,
                license_family=_text(raw, "license_family", where),
                product_key_channel=_text(raw, "product_key_channel", where),
                grace_minutes=_int(raw, "grace_minutes", where),
            )
        )
    imds = []
    for i, raw in enumerate(_list(document, "imds", "probe")):
        where = f"probe.imds[{i}]"
        if not isinstance(raw, dict):
            raise FactsError(f"{where}: expected an object")
        imds.append(
            ImdsAttempt(
                address=_text(raw, "address", where),
                ok=_bool(raw, "ok", where),
                status_code=_int(raw, "status_code", where),
                latency_ms=_int(raw, "latency_ms", where),
                error=_get(raw, "error", str, where) or None,
            )
        )
    return GuestProbe(
        computer_name=_text(document, "computer_name", "probe"),
        collected_at=parse_time(document.get("collected_at")),
        nonce=_text(document, "nonce", "probe"),
        os=None
        if os_raw is None
        else OSFacts(
            caption=_text(os_raw, "caption", "probe.os"),
            edition_id=_text(os_raw, "edition_id", "probe.os"),
            build=_text(os_raw, "build", "probe.os"),
            version=_text(os_raw, "version", "probe.os"),
            ubr=_int(os_raw, "ubr", "probe.os"),
            display_version=_text(os_raw, "display_version", "probe.os"),
        ),
        licenses=tuple(licenses),
        task=_task(_object(document, "task", "probe")),
        imds=tuple(imds),
        document_raw=_get(doc_raw, "raw", str, "probe.document") or None,
        document_from=_get(doc_raw, "fetched_from", str, "probe.document") or None,
        addresses=tuple(
            AddressFacts(
                address=_text(a, "address", "probe.addresses"),
                prefix_length=_int(a, "prefix_length", "probe.addresses"),
            )
            for a in _objects(document, "addresses", "probe")
        ),
        spp_events=tuple(
            _event(e, f"probe.events.security_spp[{i}]")
            for i, e in enumerate(_list(events, "security_spp", "probe.events"))
        ),
        clip_events=tuple(
            _event(e, f"probe.events.clip[{i}]") for i, e in enumerate(_list(events, "clip", "probe.events"))
        ),
        problems=_problems(document, "probe"),
        started_at=parse_time(document.get("started_at")),
        avd_agent=_agent(_object(document, "avd_agent", "probe")),
        time=None
        if time_raw is None
        else TimeFacts(w32time_type=_get(time_raw, "w32time_type", str, "probe.time") or None),
    )


@dataclass(frozen=True, slots=True)
class KickRun:
    run: int
    started_at: dt.datetime | None
    finished: bool
    state_after: str
    last_run_time: dt.datetime | None
    last_task_result: int | None
    license_status: int | None

    @property
    def last_result_hex(self) -> str | None:
        if self.last_task_result is None:
            return None
        return f"0x{self.last_task_result & 0xFFFFFFFF:08X}"


@dataclass(frozen=True, slots=True)
class GuestError:
    """An error record: from PowerShell Direct for a whole VM, or from a cmdlet inside the guest."""

    message: str
    error_id: str
    category: str = ""
    vm: str | None = None
    vm_id: str | None = None
    skipped: bool = False
    """The fan-out did not send the VM to PowerShell Direct (not found by id, not running)."""


@dataclass(frozen=True, slots=True)
class KickResult:
    """What guest-kick-body/1 did inside one guest."""

    task_present: bool
    task_state_before: str | None
    enabled_task: bool
    license_before: int | None
    license_after: int | None
    runs: tuple[KickRun, ...]
    error: GuestError | None
    problems: tuple[ScriptProblem, ...]


def _error(raw: Mapping[str, Any] | None, where: str) -> GuestError | None:
    if raw is None:
        return None
    return GuestError(
        message=_text(raw, "message", where),
        error_id=_text(raw, "error_id", where),
        category=_text(raw, "category", where),
    )


def parse_kick_body(document: Mapping[str, Any]) -> KickResult:
    if document.get("schema") != "guest-kick-body/1":
        raise FactsError(f"schema: expected 'guest-kick-body/1', got {document.get('schema')!r}")
    runs = []
    for i, raw in enumerate(_list(document, "runs", "kick")):
        where = f"kick.runs[{i}]"
        if not isinstance(raw, dict):
            raise FactsError(f"{where}: expected an object")
        runs.append(
            KickRun(
                run=_int(raw, "run", where) or i + 1,
                started_at=parse_time(raw.get("started_at")),
                finished=_bool(raw, "finished", where),
                state_after=_text(raw, "state_after", where),
                last_run_time=parse_time(raw.get("last_run_time")),
                last_task_result=_int(raw, "last_task_result", where),
                license_status=_int(raw, "license_status", where),
            )
        )
    return KickResult(
        task_present=_bool(document, "task_present", "kick"),
        task_state_before=_get(document, "task_state_before", str, "kick") or None,
        enabled_task=_bool(document, "enabled_task", "kick"),
        license_before=_int(document, "license_before", "kick"),
        license_after=_int(document, "license_after", "kick"),
        runs=tuple(runs),
        error=_error(_object(document, "error", "kick"), "kick.error"),
        problems=_problems(document, "kick"),
    )


@dataclass(frozen=True, slots=True)
class FanOut:
    """One guest-probe/2 or guest-kick/2 document: each guest's answer text, or its error."""

    computer_name: str
    outputs: Mapping[str, tuple[str, ...]]
    """VM name (casefolded) → the output strings that came back from it."""
    failures: tuple[GuestError, ...]
    outputs_by_id: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """VM id (lower case) → its output strings, where the fan-out could tell (guest-probe/2 and later)."""
    node_clock: tuple[dt.datetime, dt.datetime] | None = None
    """The node's clock before and after the fan-out (guest-probe/3): its guests' clocks are judged by it."""

    def output_of(self, vm: str, vm_id: str | None = None) -> tuple[str, ...]:
        if vm_id is not None and vm_id.lower() in self.outputs_by_id:
            return self.outputs_by_id[vm_id.lower()]
        return self.outputs.get(vm.casefold(), ())

    def failures_of(self, vm: str, vm_id: str | None = None) -> tuple[GuestError, ...]:
        """By id where both sides know it (two VMs may share a name), else by name."""
        key = vm.casefold()
        if vm_id is not None:
            wanted = vm_id.lower()
            by_id = tuple(f for f in self.failures if f.vm_id is not None and f.vm_id.lower() == wanted)
            if by_id:
                return by_id
            return tuple(
                f for f in self.failures if f.vm_id is None and f.vm is not None and f.vm.casefold() == key
            )
        return tuple(f for f in self.failures if f.vm is not None and f.vm.casefold() == key)

    @property
    def unattributed(self) -> tuple[GuestError, ...]:
        """Errors that name no VM we can match (PowerShell did not say which guest they came from)."""
        return tuple(f for f in self.failures if not f.vm)


def parse_fan_out(document: Mapping[str, Any], *, schema: str | tuple[str, ...]) -> FanOut:
    schemas = (schema,) if isinstance(schema, str) else schema
    if document.get("schema") not in schemas:
        raise FactsError(f"schema: expected {schemas[-1]!r}, got {document.get('schema')!r}")
    outputs: dict[str, list[str]] = {}
    by_id: dict[str, list[str]] = {}
    for i, raw in enumerate(_list(document, "results", "fan-out")):
        where = f"fan-out.results[{i}]"
        if not isinstance(raw, dict):
            raise FactsError(f"{where}: expected an object")
        text = _text(raw, "output", where)
        outputs.setdefault(_text(raw, "vm", where).casefold(), []).append(text)
        vm_id = _get(raw, "vm_id", str, where)
        if vm_id:
            by_id.setdefault(vm_id.lower(), []).append(text)
    failures = []
    for i, raw in enumerate(_list(document, "failures", "fan-out")):
        where = f"fan-out.failures[{i}]"
        if not isinstance(raw, dict):
            raise FactsError(f"{where}: expected an object")
        failures.append(
            GuestError(
                message=_text(raw, "message", where),
                error_id=_text(raw, "error_id", where),
                category=_text(raw, "category", where),
                vm=_get(raw, "vm", str, where) or None,
                vm_id=(_get(raw, "vm_id", str, where) or "").lower() or None,
                skipped=bool(_get(raw, "skipped", bool, where)),
            )
        )
    started, finished = (
        parse_time(document.get("node_started_at")),
        parse_time(document.get("node_finished_at")),
    )
    return FanOut(
        computer_name=_text(document, "computer_name", "fan-out"),
        outputs_by_id={k: tuple(v) for k, v in by_id.items()},
        outputs={k: tuple(v) for k, v in outputs.items()},
        failures=tuple(failures),
        node_clock=(started, finished) if started is not None and finished is not None else None,
    )


def body_document(outputs: tuple[str, ...], *, schema: str | tuple[str, ...]) -> dict[str, Any]:
    """The one JSON document with `schema` (or one of several versions) among a guest's output strings.

    Anything else a guest printed (a profile, a stray Write-Output) is ignored, but a guest that sent
    no such document, or two, is a FactsError.
    """
    schemas = (schema,) if isinstance(schema, str) else schema
    found: list[dict[str, Any]] = []
    refused: list[str] = []
    for text in outputs:
        try:
            # The guest is untrusted: a 5,000-digit number or deep nesting is refused, not a crash.
            value = jsonguard.loads(text)
        except jsonguard.UntrustedJSONError as exc:
            if not str(exc).startswith("not valid JSON"):  # plain text output is ignored, abuse is not
                refused.append(str(exc))
            continue
        if isinstance(value, dict) and value.get("schema") in schemas:
            found.append(value)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        why = f" (an output is {refused[0]})" if refused and not found else ""
        raise FactsError(
            f"the guest returned {what} {schemas[-1]} documents among {len(outputs)} outputs{why}"
        )
    return found[0]
