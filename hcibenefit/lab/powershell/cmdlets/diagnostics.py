"""Microsoft.PowerShell.Diagnostics: Get-WinEvent over a guest's event logs.

Source: cmdlets.md 6.1 (Learn 5.1; GetEventCommand.cs): -FilterHashtable keys
LogName/ProviderName/Id/StartTime..., newest first unless -Oldest; no matching event is the
non-terminating `NoMatchingEventsFound`, a log that does not exist `NoMatchingLogsFound` (TargetObject =
the log name), an unknown provider `NoMatchingProvidersFound`. The Message note property is the
rendered text.
"""

from __future__ import annotations

from typing import Any

from hcibenefit.lab import guestos
from hcibenefit.lab.machines import GuestMachine, NodeMachine
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.values import PSDateTime, PSDict, PSObject

COMMAND = "Microsoft.PowerShell.Commands.GetWinEventCommand"
LOGS = (guestos.APPLICATION_LOG, "System", "Security", "Setup")
ERROR_EVENT_IDS = {8198, guestos.CLIP_FAILED[0]}


def _events(call: Call) -> list[tuple[int, Any, str, str, str]]:
    """(id, time, provider, log, text) of every event the machine has."""
    machine = call.machine
    if isinstance(machine, GuestMachine):
        machine.state.advance_guest(machine.vm)
        return [(i, t, p, guestos.log_of(p), text) for i, t, p, text in machine.vm.guest.events]
    return []


def _logs(call: Call) -> list[str]:
    machine = call.machine
    logs = list(LOGS)
    if isinstance(machine, GuestMachine) and machine.vm.guest.clip_log:
        logs.append(guestos.CLIP_LOG)
    if isinstance(machine, NodeMachine):
        logs += ["Microsoft-AzureStack-HCI/Admin", "Microsoft-AzureStack-HCI/Debug"]
    return logs


def _record(event_id: int, time: Any, provider: str, log: str, text: str, record_id: int) -> PSObject:
    error = event_id in ERROR_EVENT_IDS
    return PSObject(
        [
            "System.Diagnostics.Eventing.Reader.EventLogRecord",
            "System.Diagnostics.Eventing.Reader.EventRecord",
        ],
        {
            "Id": event_id,
            "TimeCreated": PSDateTime(time, "Local"),
            "LevelDisplayName": "Error" if error else "Information",
            "Level": 2 if error else 4,
            "ProviderName": provider,
            "LogName": log,
            "RecordId": record_id,
            "Message": text,
        },
        string="System.Diagnostics.Eventing.Reader.EventLogRecord",
    )


def _values(table: PSDict, key: str) -> list[Any] | None:
    value = table[key]
    if value is None:
        return None
    return list(value) if isinstance(value, list) else [value]


@cmdlet(
    "Get-WinEvent",
    module="Microsoft.PowerShell.Diagnostics",
    source="https://learn.microsoft.com/powershell/module/microsoft.powershell.diagnostics/get-winevent?view=powershell-5.1",
    type_name=COMMAND,
    sets=("GetLogSet", "HashQuerySet"),
    params=[
        P("LogName", "string[]", 0, sets=("GetLogSet",)),
        P("FilterHashtable", "hashtable[]", 0, sets=("HashQuerySet",), mandatory=("*",)),
        P("MaxEvents", "int64"),
        P("Oldest", "switch"),
    ],
)
def get_win_event(call: Call) -> None:
    with call.state.lock:
        events = _events(call)
        logs = _logs(call)
    if call.set_name == "GetLogSet":
        filters = [PSDict([("LogName", call.params["LogName"] or [guestos.APPLICATION_LOG])])]
    else:
        filters = call.params["FilterHashtable"]
    matched: list[tuple[int, Any, str, str, str, int]] = []
    for table in filters:
        log_patterns = _values(table, "LogName")
        providers = _values(table, "ProviderName")
        ids = _values(table, "Id")
        start = table["StartTime"]
        wanted_logs = logs
        if log_patterns is not None:
            wanted_logs = [
                log for log in logs if any(cv.wildcard_match(cv.to_string(p), log) for p in log_patterns)
            ]
            missing = [
                p for p in log_patterns if not any(cv.wildcard_match(cv.to_string(p), log) for log in logs)
            ]
            for pattern in missing:
                call.error(
                    f'There is not an event log on the localhost computer that matches "{pattern}".',
                    "NoMatchingLogsFound",
                    "ObjectNotFound",
                    exception_type="System.Exception",
                    target=pattern,
                )
            if missing and not wanted_logs:
                return
        for position, (event_id, time, provider, log, text) in enumerate(events):
            if log not in wanted_logs:
                continue
            if providers is not None and not any(
                cv.wildcard_match(cv.to_string(p), provider) for p in providers
            ):
                continue
            if ids is not None and not any(cv.equals(event_id, i) for i in ids):
                continue
            if start is not None and time.replace(tzinfo=None) < cv.cast(start, "datetime").value:
                continue
            matched.append((event_id, time, provider, log, text, position + 1))
    matched.sort(key=lambda e: (e[1], e[5]), reverse=not call.params["Oldest"])
    limit = call.params["MaxEvents"]
    if limit is not None:
        matched = matched[:limit]
    if not matched:
        call.error(
            "No events were found that match the specified selection criteria.",
            "NoMatchingEventsFound",
            "ObjectNotFound",
            exception_type="System.Exception",
        )
        return
    for event_id, time, provider, log, text, record_id in matched:
        call.emit(_record(event_id, time.replace(tzinfo=None), provider, log, text, record_id))
