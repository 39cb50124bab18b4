"""WinRM shells as psrpcore runspace pools, and their pipelines run by the executor on worker threads.

All psrpcore state of a shell is guarded by the shell's condition; executors write through
`Pipeline`, which takes it, so HTTP handlers never wait on an executor except in Receive.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psrpcore
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInvocationState,
)

from hcibenefit.lab.wsman import soap
from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall, ScriptExecutor, TerminatingError
from hcibenefit.lab.wsman.inflight import REQUESTS

log = logging.getLogger(__name__)

_FRAGMENT = struct.Struct(">QQBI")  # MS-PSRP 2.2.4: object id, fragment id, start/end flags, length
_START, _END = 1, 2


RECEIVE_LINGER_S = 0.1


class _CategoryInfo(ErrorCategoryInfo):
    # Windows renders ErrorCategory_Message (what pypsrp calls record.message) as
    # "Category: (TargetName:TargetType) [Activity], Reason"; psrpcore leaves out the colon.
    def __str__(self) -> str:
        return (
            f"{self.Category.name}: ({self.TargetName or ''}:{self.TargetType or ''}) "
            f"[{self.Activity or ''}], {self.Reason or ''}"
        )


def _category_info(category: str, exception_type: str, target: str | None) -> ErrorCategoryInfo:
    try:
        value = ErrorCategory[category]
    except KeyError:
        raise ValueError(f"unknown ErrorCategory {category!r}") from None
    return _CategoryInfo(
        Category=value,
        Reason=exception_type.rsplit(".", 1)[-1],
        TargetName=target or "",
        TargetType="String" if target is not None else "",
    )


def _exception(message: str, exception_type: str) -> NETException:
    exc = NETException(Message=message)
    exc.PSObject.type_names = [exception_type, "System.Exception", "System.Object"]
    return exc


@dataclass
class _Outgoing:
    """A complete PSRP message still (partly) to be sent; fragmented only when a Receive takes it."""

    object_id: int
    data: bytes
    next_fragment: int = 0


class Shell:
    def __init__(
        self,
        shell_id: str,
        *,
        node: str,
        owner: str,
        client_ip: str,
        configuration_name: str,
        resource_uri: str,
        idle_timeout_s: float,
        executor: ScriptExecutor,
        max_commands: int,
        auth: str = "basic",
        can_delegate: bool = False,
    ) -> None:
        self.id = shell_id
        self.node = node
        self.owner = owner
        self.client_ip = client_ip
        self.configuration_name = configuration_name
        self.resource_uri = resource_uri
        self.idle_timeout_s = idle_timeout_s
        self.executor = executor
        self.max_commands = max_commands
        self.pool = psrpcore.ServerRunspacePool()
        self.auth = auth
        self.can_delegate = can_delegate
        self.runspace_state: dict[str, Any] = {}  # the executor's per-pool state (a runspace's globals)
        self.cond = threading.Condition()
        self.closed = False
        self.last_used = time.monotonic()
        self.pipelines: dict[uuid.UUID, Pipeline] = {}
        self._outbox: defaultdict[uuid.UUID | None, deque[_Outgoing]] = defaultdict(deque)

    def idle(self, now: float) -> bool:
        return now - self.last_used > self.idle_timeout_s

    def _check_open(self) -> None:
        if self.closed:
            raise soap.invalid_selectors()
        self.last_used = time.monotonic()

    def _pipeline(self, command_id: str) -> Pipeline:
        try:
            return self.pipelines[uuid.UUID(command_id)]
        except (ValueError, KeyError):
            raise soap.unknown_command() from None

    def feed(self, data: bytes, command_id: str | None = None) -> None:
        with self.cond:
            self._check_open()
            if command_id:
                self._pipeline(command_id)
            self.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, None))
            self._process()

    def create_pipeline(self, command_id: str, data: bytes) -> None:
        with self.cond:
            self._check_open()
            if len(self.pipelines) >= self.max_commands:
                raise soap.quota_commands()
            pipeline_id = uuid.UUID(command_id)
            # psrpcore needs the pipeline to exist before its CreatePipeline message arrives.
            self.pipelines[pipeline_id] = Pipeline(self, psrpcore.ServerPipeline(self.pool, pipeline_id))
            self.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id))
            self._process()

    def _process(self) -> None:
        while (event := self.pool.next_event()) is not None:
            pipeline = self.pipelines.get(event.pipeline_id) if event.pipeline_id else None
            if isinstance(event, psrpcore.CreatePipelineEvent) and pipeline and event.pipeline.no_input:
                pipeline.start(event.pipeline)
            elif isinstance(event, psrpcore.PipelineInputEvent) and pipeline:
                pipeline.input.append(event.data)
            elif isinstance(event, psrpcore.EndOfPipelineInputEvent) and pipeline and pipeline.ps.metadata:
                pipeline.start(pipeline.ps.metadata)
            elif isinstance(
                event,
                psrpcore.SetMaxRunspacesEvent
                | psrpcore.SetMinRunspacesEvent
                | psrpcore.ResetRunspaceStateEvent,
            ):
                self.pool.runspace_availability_response(event.ci, True)
            elif isinstance(event, psrpcore.GetAvailableRunspacesEvent):
                self.pool.runspace_availability_response(event.ci, 1)
        self.flush()

    def flush(self) -> None:
        """Move psrpcore's outgoing messages into per-target queues (the pool's and each pipeline's)."""
        # psrpcore hands out one target at a time in queue order; a Receive asks for one target, so
        # queueing per target keeps one pipeline's output from blocking another's or the pool's.
        # Asked without a size, psrpcore emits every message whole, as a single fragment; Receive
        # re-fragments them to the envelope size of the request at hand.
        while (payload := self.pool.data_to_send()) is not None:
            data, offset = payload.data, 0
            while offset < len(data):
                object_id, _, _, length = _FRAGMENT.unpack_from(data, offset)
                start = offset + _FRAGMENT.size
                self._outbox[payload.pipeline_id].append(_Outgoing(object_id, data[start : start + length]))
                offset = start + length
        self.cond.notify_all()

    def receive(
        self, command_id: str | None, room: int, stream_overhead: int, timeout_s: float
    ) -> tuple[list[bytes], bool]:
        """Fragments filling up to `room` bytes of envelope, and whether the command is done.

        Waits up to `timeout_s` for the first; each fragment costs `stream_overhead` plus its base64.
        """
        deadline = time.monotonic() + timeout_s
        with self.cond:
            self._check_open()
            pipeline = self._pipeline(command_id) if command_id else None
            target = pipeline.id if pipeline else None
            while not self._outbox[target] and not (pipeline and pipeline.finished):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise soap.timed_out()
                with REQUESTS.waiting():
                    self.cond.wait(remaining)
                self._check_open()
            # Output usually comes with the pipeline's end a moment later; lingering briefly sends both
            # in one answer, so the number of Receives does not depend on thread timing. Assumption:
            # WinRM also batches what its plugin has buffered; the exact window is not documented.
            linger_until = min(deadline, time.monotonic() + RECEIVE_LINGER_S)
            while pipeline and not pipeline.finished and (remaining := linger_until - time.monotonic()) > 0:
                with REQUESTS.waiting():
                    self.cond.wait(remaining)
                self._check_open()
            fragments = self._take(self._outbox[target], room, stream_overhead)
            return fragments, bool(pipeline and pipeline.finished and not self._outbox[target])

    @staticmethod
    def _take(queue: deque[_Outgoing], room: int, stream_overhead: int) -> list[bytes]:
        fragments: list[bytes] = []
        while queue:
            capacity = (room - stream_overhead) // 4 * 3 - _FRAGMENT.size
            if capacity <= 0:
                if fragments:
                    break
                capacity = 1  # an absurdly small MaxEnvelopeSize must still make progress
            message = queue[0]
            chunk, message.data = message.data[:capacity], message.data[capacity:]
            flags = (_START if message.next_fragment == 0 else 0) | (0 if message.data else _END)
            fragment = _FRAGMENT.pack(message.object_id, message.next_fragment, flags, len(chunk)) + chunk
            message.next_fragment += 1
            if not message.data:
                queue.popleft()
            fragments.append(fragment)
            room -= stream_overhead + 4 * math.ceil(len(fragment) / 3)
        return fragments

    def signal(self, command_id: str, code: str) -> None:
        with self.cond:
            self._check_open()
            pipeline = self._pipeline(command_id)
            pipeline.stop()  # powershell/signal/ctrl_c, and Terminate of a command still running
            if code == soap.SIGNAL_TERMINATE:
                pipeline.ps.close()
                del self.pipelines[pipeline.id]
                self._outbox.pop(pipeline.id, None)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            for pipeline in self.pipelines.values():
                pipeline.stop()
            self.pipelines.clear()
            self._outbox.clear()
            self.cond.notify_all()


class Pipeline:
    """One PowerShell pipeline; also the `PipelineOutput` its executor writes to."""

    def __init__(self, shell: Shell, ps: psrpcore.ServerPipeline) -> None:
        self.shell = shell
        self.ps = ps
        self.id: uuid.UUID = ps.pipeline_id
        self.input: list[Any] = []
        self.stopping = threading.Event()
        self.finished = False

    def start(self, metadata: Any) -> None:
        """Run the executor for the pipeline psrpcore decoded (`metadata`, a psrpcore PowerShell)."""
        shell = self.shell
        call = PipelineCall(
            node=shell.node,
            username=shell.owner,
            configuration_name=shell.configuration_name,
            commands=tuple(
                CommandSpec(text=c.command_text, is_script=c.is_script, parameters=tuple(c.parameters))
                for c in metadata.commands
            ),
            input=tuple(self.input),
            auth=shell.auth,
            can_delegate=shell.can_delegate,
            host_ui=_has_host_ui(shell.pool),
            runspace=shell.runspace_state,
        )
        # Windows reports a pipeline's state when it ends (Completed, Failed, Stopped); psrpcore's start()
        # would also queue a Running state, which would answer the first Receive early and make the
        # number of Receives depend on how long the script runs.
        self.ps._change_state(PSInvocationState.Running, emit=False)
        threading.Thread(
            target=self._run, args=(call,), name=f"wsman-{shell.node}-pipeline", daemon=True
        ).start()

    def _run(self, call: PipelineCall) -> None:
        shell = self.shell
        error: TerminatingError | None = None
        last: Sequence[Any] = ()
        if not self.stopping.is_set():
            REQUESTS.wait_until_quiet()  # the answers in flight first (inflight.py)
        try:
            last = shell.executor.execute(call, self) or ()
        except TerminatingError as exc:
            error = exc
        except Exception as exc:
            # A broken executor fails its pipeline, like an unhandled .NET exception in a cmdlet.
            log.exception("%s: executor failed", shell.node)
            error = TerminatingError(f"{type(exc).__name__}: {exc}", error_id=type(exc).__name__)
        with shell.cond:
            if self.ps.state == PSInvocationState.Running:
                if error is None:
                    for value in last:
                        self.ps.write_output(value)
                    self.ps.complete()
                else:
                    record = ErrorRecord(
                        Exception=_exception(error.message, error.exception_type),
                        CategoryInfo=_category_info(error.category, error.exception_type, error.target),
                        TargetObject=error.target,
                        FullyQualifiedErrorId=error.error_id,
                    )
                    # psrpcore has no public way to fail a pipeline; this is the message a terminating
                    # error produces (PipelineState Failed with the ErrorRecord).
                    self.ps._change_state(PSInvocationState.Failed, record)
            self.finished = True
            shell.flush()

    def stop(self) -> None:
        """ctrl_c: the client no longer waits, so the pipeline reports Stopped without waiting for the executor."""
        self.stopping.set()
        if self.ps.state == PSInvocationState.Running:
            self.ps.stop()
            self.shell.flush()
        self.finished = True

    def _emit(self, write: Callable[[psrpcore.ServerPipeline], None]) -> None:
        with self.shell.cond:
            # Writes after a stop are dropped, as PowerShell discards output of a stopped pipeline.
            if self.ps.state == PSInvocationState.Running:
                write(self.ps)
                self.shell.flush()

    def write_output(self, value: Any) -> None:
        self._emit(lambda ps: ps.write_output(value))

    def write_error(
        self,
        message: str,
        *,
        error_id: str,
        category: str = "NotSpecified",
        target: str | None = None,
        exception_type: str | None = None,
    ) -> None:
        # Limitation: records carry no InvocationInfo even when the client asks for it (pypsrp does by
        # default); PowerShell would name the command and script position.
        kind = exception_type or "Microsoft.PowerShell.Commands.WriteErrorException"  # Write-Error's default
        info = _category_info(category, kind, target)
        self._emit(
            lambda ps: ps.write_error(
                _exception(message, kind), info, target_object=target, fully_qualified_error_id=error_id
            )
        )

    def write_warning(self, message: str) -> None:
        self._emit(lambda ps: ps.write_warning(message))

    def write_verbose(self, message: str) -> None:
        self._emit(lambda ps: ps.write_verbose(message))

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        self._emit(lambda ps: ps.write_progress(activity, 1, status, percent_complete=percent))

    def write_information(self, message: str, source: str) -> None:
        self._emit(lambda ps: ps.write_information(message, source))


def _has_host_ui(pool: Any) -> bool:
    """Whether the client sent a HostInfo with a UI (pypsrp without `host=` sends IsHostUINull = true)."""
    host = getattr(pool, "host", None)
    if host is None:
        return False
    return not (getattr(host, "IsHostNull", True) or getattr(host, "IsHostUINull", True))
