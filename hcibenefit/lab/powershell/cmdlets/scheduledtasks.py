"""ScheduledTasks (CDXML functions over MSFT_ScheduledTask), inside a guest.

Sources: cmdlets.md 4.1-4.4 (Learn, GH transcripts) and powershell51.md 6.6:
Get-ScheduledTask with one filter that matches nothing gives `CmdletizationQuery_NotFound_TaskName`,
with both -TaskPath and -TaskName the complex-case `CmdletizationQuery_NotFound` and the WQL query;
Get-ScheduledTaskInfo / Start- / Enable-ScheduledTask give `HRESULT 0x80070002` ("The system cannot find
the file specified."). A task that never ran reports LastRunTime 11/30/1999 and LastTaskResult 267011.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hcibenefit.lab import guestos
from hcibenefit.lab.machines import GuestMachine, is_guest
from hcibenefit.lab.powershell import convert as cv
from hcibenefit.lab.powershell.cmdlets.base import Call, P, cmdlet
from hcibenefit.lab.powershell.values import EnumType, PSDateTime, PSObject

TASK_STATE = EnumType(
    "Microsoft.PowerShell.Cmdletization.GeneratedTypes.ScheduledTask.StateEnum",
    {"Unknown": 0, "Disabled": 1, "Queued": 2, "Ready": 3, "Running": 4},
)
CLIP_PATH = "\\Microsoft\\Windows\\Clip\\"
IMDS_TASK = "LicenseImdsIntegration"
NEVER_RAN = dt.datetime(1999, 11, 30)
SCHED_S_TASK_RUNNING = 267009  # 0x41301
CIM = "Microsoft.Management.Infrastructure.CimException"
SOURCE = "https://learn.microsoft.com/powershell/module/scheduledtasks/{}?view=windowsserver2022-ps"
NAMESPACE = "Root/Microsoft/Windows/TaskScheduler"


@dataclass
class Task:
    path: str
    name: str
    state: str
    execute: str
    arguments: str | None
    imds: bool = False


def _tasks(machine: GuestMachine) -> list[Task]:
    vm = machine.vm
    machine.state.advance_guest(vm)
    tasks = [
        Task(CLIP_PATH, "License Validation", "Disabled", "%SystemRoot%\\system32\\ClipUp.exe", "-p -s -o"),
        Task(
            "\\Microsoft\\Windows\\Time Synchronization\\",
            "SynchronizeTime",
            "Ready",
            "%windir%\\system32\\sc.exe",
            "start w32time task_started",
        ),
    ]
    if vm.guest.task != "Missing":
        tasks.insert(0, Task(CLIP_PATH, IMDS_TASK, vm.guest.task, guestos.FCLIP, None, imds=True))
    return tasks


def _task_object(task: Task) -> PSObject:
    action = PSObject(
        [
            "Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_TaskExecAction"
        ],
        {"Id": None, "Execute": task.execute, "Arguments": task.arguments, "WorkingDirectory": None},
        string="MSFT_TaskExecAction",
    )
    return PSObject(
        [
            f"Microsoft.Management.Infrastructure.CimInstance#{NAMESPACE}/MSFT_ScheduledTask",
            "Microsoft.Management.Infrastructure.CimInstance",
        ],
        {
            "TaskName": task.name,
            "TaskPath": task.path,
            "State": TASK_STATE(task.state),
            "Actions": [action],
            "Triggers": [],
            "Description": "",
            "Author": "Microsoft Corporation",
            "URI": task.path + task.name,
        },
        string=f'MSFT_ScheduledTask (TaskName = "{task.name}", TaskPath = "{task.path}")',
    )


def _wql(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


@cmdlet(
    "Get-ScheduledTask",
    module="ScheduledTasks",
    source=SOURCE.format("get-scheduledtask", "1"),
    available=is_guest,
    params=[P("TaskName", "string[]", 0), P("TaskPath", "string[]", 1)],
)
def get_scheduled_task(call: Call) -> None:
    machine = call.machine
    assert isinstance(machine, GuestMachine)
    names, paths = call.params["TaskName"], call.params["TaskPath"]
    with call.state.lock:
        tasks = _tasks(machine)
    found = [
        t
        for t in tasks
        if (names is None or any(cv.wildcard_match(n, t.name) for n in names))
        and (paths is None or any(cv.wildcard_match(p, t.path) for p in paths))
    ]
    if not found:
        if names is not None and paths is not None:
            where = " AND ".join(
                [
                    "(" + " OR ".join(f"(TaskName LIKE '{_wql(n)}')" for n in names) + ")",
                    "(" + " OR ".join(f"(TaskPath LIKE '{_wql(p)}')" for p in paths) + ")",
                ]
            )
            call.error(
                f"No matching MSFT_ScheduledTask objects found by CIM query for instances of the {NAMESPACE}/MSFT_ScheduledTask "
                f"class on the  CIM server: SELECT * FROM MSFT_ScheduledTask  WHERE {where}. Verify query parameters and retry.",
                "CmdletizationQuery_NotFound",
                "ObjectNotFound",
                exception_type=CIM,
                target="MSFT_ScheduledTask",
            )
        elif names is not None or paths is not None:
            prop, values = ("TaskName", names) if names is not None else ("TaskPath", paths)
            for value in values or []:
                if not cv.has_wildcards(value):
                    call.error(
                        f"No MSFT_ScheduledTask objects found with property '{prop}' equal to '{value}'.  Verify the value of "
                        "the property and retry.",
                        f"CmdletizationQuery_NotFound_{prop}",
                        "ObjectNotFound",
                        exception_type=CIM,
                        target=value,
                    )
    for task in found:
        call.emit(_task_object(task))


def _one_task(call: Call) -> Task | None:
    """-TaskName/-TaskPath of the single-task cmdlets: the root folder when no path is given (4.2)."""
    machine = call.machine
    assert isinstance(machine, GuestMachine)
    name = call.params["TaskName"]
    path = call.params["TaskPath"] or "\\"
    with call.state.lock:
        tasks = _tasks(machine)
    for task in tasks:
        if task.name.casefold() == name.casefold() and cv.wildcard_match(path, task.path):
            return task
    call.error(
        "The system cannot find the file specified.",
        "HRESULT 0x80070002",
        "ObjectNotFound",
        exception_type=CIM,
        target="PS_ScheduledTask",
    )
    return None


def _next_daily_run(at: dt.datetime) -> dt.datetime:
    # The task's daily trigger at 08:00 (SEED); the lab's clock is UTC.
    today = at.replace(hour=8, minute=0, second=0, microsecond=0)
    return today if today > at else today + dt.timedelta(days=1)


@cmdlet(
    "Get-ScheduledTaskInfo",
    module="ScheduledTasks",
    source=SOURCE.format("get-scheduledtaskinfo", "2"),
    available=is_guest,
    sets=("Name",),
    params=[P("TaskName", "string", 0, mandatory=("*",)), P("TaskPath", "string", 1)],
)
def get_scheduled_task_info(call: Call) -> None:
    task = _one_task(call)
    if task is None:
        return
    machine = call.machine
    assert isinstance(machine, GuestMachine)
    with call.state.lock:
        guest = machine.vm.guest
        if task.imds:
            last_run = guest.last_run.replace(tzinfo=None) if guest.last_run else NEVER_RAN
            result = SCHED_S_TASK_RUNNING if task.state == "Running" else guest.last_result
        else:
            last_run, result = NEVER_RAN, 267011
        now = machine.clock.now_datetime()
        next_run = _next_daily_run(now) if task.state in ("Ready", "Running") and task.imds else None
    call.emit(
        PSObject(
            [
                f"Microsoft.Management.Infrastructure.CimInstance#{NAMESPACE}/MSFT_TaskDynamicInfo",
                "Microsoft.Management.Infrastructure.CimInstance",
            ],
            {
                "LastRunTime": PSDateTime(last_run, "Local"),
                "LastTaskResult": result,
                "NextRunTime": PSDateTime(next_run, "Local") if next_run else None,
                "NumberOfMissedRuns": 0,
                "TaskName": task.name,
                "TaskPath": task.path,
            },
            string="MSFT_TaskDynamicInfo",
        )
    )


@cmdlet(
    "Start-ScheduledTask",
    module="ScheduledTasks",
    source=SOURCE.format("start-scheduledtask", "3"),
    available=is_guest,
    sets=("Path",),
    params=[P("TaskName", "string", 0, mandatory=("*",)), P("TaskPath", "string", 1)],
)
def start_scheduled_task(call: Call) -> None:
    task = _one_task(call)
    if task is None:
        return
    machine = call.machine
    assert isinstance(machine, GuestMachine)
    if task.state == "Disabled":
        # Assumption (cmdlets.md 4.3: unverified): SCHED_E_TASK_DISABLED.
        call.error(
            "The task is disabled.",
            "HRESULT 0x80041326",
            "InvalidOperation",
            exception_type=CIM,
            target="PS_ScheduledTask",
        )
        return
    if task.imds:
        with call.state.lock:
            machine.state.start_task(machine.vm)


@cmdlet(
    "Enable-ScheduledTask",
    module="ScheduledTasks",
    source=SOURCE.format("enable-scheduledtask", "4"),
    available=is_guest,
    sets=("Name",),
    params=[P("TaskName", "string", 0, mandatory=("*",)), P("TaskPath", "string", 1)],
)
def enable_scheduled_task(call: Call) -> None:
    task = _one_task(call)
    if task is None:
        return
    machine = call.machine
    assert isinstance(machine, GuestMachine)
    if task.imds:
        with call.state.lock:
            if machine.vm.guest.task == "Disabled":
                machine.vm.guest.task = "Ready"
            task.state = machine.vm.guest.task
    call.emit(_task_object(task))
