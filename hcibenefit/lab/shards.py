"""A lab served by several processes (`hcibenefit lab serve --processes N`), by cluster.

Real hosts each run their own PowerShell; one lab process evaluates every node's on one interpreter lock,
so forty nodes answering at once queue behind each other there, which no fleet would do. Here the lab
process builds the fleet and binds every listening socket, then forks one process per shard of clusters
(Linux only: the workers inherit the keys, sockets and fleet model as they are). A cluster's nodes stay in
one process, because what one node does to another (Enable-AzStackHCIAttestation's sessions to its
peers, Invoke-Command -ComputerName, a cluster's VMs) stays within a cluster.

- A worker serves its clusters' WinRM endpoints and owns their state: it is the only one that changes it.
- The first process keeps the control endpoint and the ARM lab. It asks the workers over a pipe: for
  their nodes' counters and for a copy of each cluster whose state changed since the last copy (the
  cluster's generation counts pipelines finished), before it answers `GET /lab/state` or builds the ARM
  view; to set a node's faults; to reset; and to run an Arc run command's script on a node.
- The lab clock is shared memory (`state.SharedClock`), so sleeping in one cluster moves time for all.
- No worker outlives the lab: they die with the process that forked them (PR_SET_PDEATHSIG) and leave
  when their pipe closes; a worker that dies is noticed at once, and the lab stops with an error.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from typing import TYPE_CHECKING, Any

from hcibenefit.lab.arm.model import cluster_world_key
from hcibenefit.lab.spec import ClusterSpec, FleetSpec
from hcibenefit.lab.wsman.executor import PipelineCall, PipelineOutput, TerminatingError

if TYPE_CHECKING:
    from hcibenefit.lab.fleet import Lab

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 120.0
STOP_WAIT_S = 5.0
_PR_SET_PDEATHSIG = 1


class ShardError(RuntimeError):
    """A worker process cannot answer: it died, or the lab is stopping."""


def can_fork() -> bool:
    """Whether this platform can serve a lab from several processes (Linux: fork, and death signals)."""
    return sys.platform == "linux" and hasattr(os, "fork")


def available_cores() -> int:
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def plan(spec: FleetSpec, processes: int) -> list[list[ClusterSpec]]:
    """Clusters shared out over at most `processes` workers, each cluster whole, the heaviest first to the
    least loaded worker (a node's PowerShell costs about the same, plus its VMs); in fleet order within one."""
    count = max(1, min(processes, len(spec.clusters)))
    shards: list[list[ClusterSpec]] = [[] for _ in range(count)]
    load = [0.0] * count
    order = {id(c): i for i, c in enumerate(spec.clusters)}
    for cluster in sorted(spec.clusters, key=lambda c: -(len(c.nodes) + len(c.vms) / 10)):
        least = min(range(count), key=lambda i: load[i])
        shards[least].append(cluster)
        load[least] += len(cluster.nodes) + len(cluster.vms) / 10
    for shard in shards:
        shard.sort(key=lambda c: order[id(c)])
    return [s for s in shards if s]


class AzureMarks:
    """Per cluster, a counter in memory the lab's processes share: the worker serving the cluster moves it
    when a pipeline changed the cluster's part of the Azure view (`arm.model.cluster_world_key`). The first
    process reads them before each ARM request, and asks a worker for a copy only when one moved: a sweep
    reads an ARM resource per VM while every node runs pipelines that change nothing Azure shows."""

    _SIZE = struct.calcsize("q")

    def __init__(self, clusters: Sequence[str]) -> None:
        self._slot = {name: i for i, name in enumerate(clusters)}
        self._cell = mmap.mmap(-1, self._SIZE * max(1, len(clusters)))

    def read(self, cluster: str) -> int:
        value: int = struct.unpack_from("q", self._cell, self._SIZE * self._slot[cluster])[0]
        return value

    def bump(self, cluster: str) -> None:
        # Only the worker serving the cluster writes its slot; an aligned 8-byte store is never torn.
        struct.pack_into("q", self._cell, self._SIZE * self._slot[cluster], self.read(cluster) + 1)


# --- the first process's side ----------------------------------------------------------------------


@dataclass
class Shard:
    """One worker process, as the first process sees it: its clusters and a pipe to ask it things."""

    index: int
    clusters: tuple[str, ...]
    nodes: frozenset[str]  # lower-case
    pid: int
    conn: Connection
    known: dict[str, int] = field(default_factory=dict)
    """The generation of each of its clusters whose state the first process holds."""
    exit_status: str | None = None
    _send_lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: dict[int, Future[Any]] = field(default_factory=dict)
    _next: int = 0
    _closing: bool = False
    _reader: threading.Thread | None = None

    def describe(self) -> str:
        shown = ", ".join(self.clusters[:3]) + (
            f" and {len(self.clusters) - 3} more" if len(self.clusters) > 3 else ""
        )
        return f"lab process {self.index + 1} (pid {self.pid}, clusters {shown})"

    def start_reader(self, on_death: Callable[[Shard], None]) -> None:
        self._reader = threading.Thread(
            target=self._read, args=(on_death,), name=f"hcibenefit-lab-shard-{self.index}", daemon=True
        )
        self._reader.start()

    def _read(self, on_death: Callable[[Shard], None]) -> None:
        while True:
            try:
                number, ok, value = self.conn.recv()
            except (EOFError, OSError):
                break
            with self._send_lock:
                future = self._pending.pop(number, None)
            if future is None:
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value if isinstance(value, BaseException) else ShardError(str(value)))
        self.exit_status = self._reap()
        with self._send_lock:
            pending, self._pending = list(self._pending.values()), {}
        error = ShardError(f"{self.describe()} {self.exit_status}")
        for future in pending:
            future.set_exception(error)
        if not self._closing:
            on_death(self)

    def _reap(self) -> str:
        """How the worker ended (waiting for it, so it leaves no zombie); it closed its pipe or died."""
        for _ in range(int(STOP_WAIT_S / 0.05)):
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return "ended"
            if pid:
                if os.WIFSIGNALED(status):
                    return f"was killed by signal {os.WTERMSIG(status)} ({signal.Signals(os.WTERMSIG(status)).name})"
                return f"exited with code {os.waitstatus_to_exitcode(status)}"
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        return "stopped answering (killed)"

    def submit(self, op: str, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._send_lock:
            if self.exit_status is not None or self._closing:
                future.set_exception(ShardError(f"{self.describe()} {self.exit_status or 'is stopping'}"))
                return future
            self._next += 1
            self._pending[self._next] = future
            try:
                self.conn.send((self._next, op, args))
            except (OSError, ValueError) as exc:
                self._pending.pop(self._next, None)
                future.set_exception(ShardError(f"{self.describe()} cannot be reached: {exc}"))
        return future

    def call(self, op: str, *args: Any) -> Any:
        return self.submit(op, *args).result(timeout=CALL_TIMEOUT_S)

    def stop(self) -> None:
        """Ask the worker to leave (the end of its pipe is the signal), then make sure it did."""
        self._closing = True
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self.conn.fileno())) as sock:
            # Shut down, not closed: closing a descriptor does not wake the reader blocked on it.
            sock.shutdown(socket.SHUT_WR)
        if self._reader is not None:
            self._reader.join(STOP_WAIT_S + 1)
        if self.exit_status is None:  # never had a reader: reap it here
            self.exit_status = self._reap()
        with contextlib.suppress(OSError):
            self.conn.close()


class RemoteExecutor:
    """The ARM lab's Arc agent for a lab served by several processes: runs the script on the worker that
    serves the node, and replays what it wrote."""

    def __init__(self, owner: Callable[[str], Shard]) -> None:
        self.owner = owner

    def execute(self, call: PipelineCall, out: PipelineOutput) -> Sequence[Any] | None:
        try:
            records, values, error = self.owner(call.node).call(
                "execute", dataclasses.replace(call, runspace={})
            )
        except ShardError as exc:
            raise TerminatingError(
                str(exc), error_id="LabProcessGone", category="ResourceUnavailable"
            ) from None
        for method, args, kwargs in records:
            getattr(out, method)(*args, **kwargs)
        if error is not None:
            raise TerminatingError(error.pop("message"), **error)
        return values  # type: ignore[no-any-return]


def fork(lab: Lab, shards: list[list[ClusterSpec]], marks: AzureMarks) -> list[Shard]:
    """Fork one worker per shard. In the first process: the shards, every listening socket released to the
    workers. A worker never returns from here."""
    pipes = [Pipe(duplex=True) for _ in shards]
    started: list[Shard] = []
    parent = os.getpid()
    try:
        for index, clusters in enumerate(shards):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the worker, which leaves by os._exit
                code = 1
                try:
                    mine = pipes[index][1]
                    for i, (ours, theirs) in enumerate(pipes):
                        ours.close()
                        if i != index:
                            theirs.close()
                    code = _worker(lab, parent, [c.name for c in clusters], mine, marks)
                except BaseException:
                    # Also straight to stderr: whatever handles the log here may be the parent's (a test's).
                    traceback.print_exc()
                    log.exception("lab process %d failed", index + 1)
                finally:
                    os._exit(code)
            names = tuple(c.name for c in clusters)
            nodes = frozenset(n.name.lower() for c in clusters for n in c.nodes)
            started.append(Shard(index, names, nodes, pid, pipes[index][0]))
    except BaseException:
        for shard in started:
            shard.stop()
        raise
    finally:
        for _, theirs in pipes:
            theirs.close()
        for ours, _ in pipes[len(started) :]:
            ours.close()
    return started


# --- the worker's side -----------------------------------------------------------------------------


@dataclass
class _Worker:
    lab: Lab
    served: set[str]
    owned: set[str]
    marks: AzureMarks
    azure_keys: dict[str, Any] = field(default_factory=dict)
    """Per cluster, its part of the Azure view when its mark last moved."""

    def watch(self) -> None:
        """Move a cluster's mark whenever a pipeline changed its part of the Azure view."""
        for name in self.served:
            self.azure_keys[name] = cluster_world_key(self.lab.state, name)
        self.lab.engine.on_change = self._changed

    def _changed(self, cluster: str) -> None:
        key = cluster_world_key(self.lab.state, cluster)
        if key != self.azure_keys.get(cluster):
            self.azure_keys[cluster] = key
            self.marks.bump(cluster)


class _Recording:
    """A PipelineOutput that keeps the calls made on it, to replay them in the first process."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.records: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Callable[..., None]:
        if not method.startswith("write_"):
            raise AttributeError(method)
        return lambda *args, **kwargs: self.records.append((method, args, kwargs))


def _die_with(parent: int) -> None:
    """SIGKILL this process when the one that forked it ends, however it ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):  # the program's own symbols hold libc's prctl
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it ended before the signal was armed
        os._exit(0)


def _worker(lab: Lab, parent: int, clusters: list[str], conn: Connection, marks: AzureMarks) -> int:
    # Ctrl-C reaches the whole process group: the first process stops the lab, and with it this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(parent)
    lab.close_inherited()
    served = {c.name for c in lab.spec.clusters if c.name in clusters}
    owned = {n.name.lower() for c in lab.spec.clusters if c.name in served for n in c.nodes}
    lab.state.served_clusters = frozenset(served)
    assert lab.server is not None
    server = lab.server
    server.start(only=owned)
    worker = _Worker(lab, served, owned, marks)
    worker.watch()
    send_lock = threading.Lock()

    def reply(number: int, ok: bool, value: Any) -> None:
        with send_lock, contextlib.suppress(OSError, ValueError):
            conn.send((number, ok, value))

    def answer(number: int, op: str, args: tuple[Any, ...]) -> None:
        try:
            reply(number, True, _OPS[op](worker, *args))
        except Exception as exc:  # the first process shows it (a 500 from the control endpoint)
            log.exception("lab process: %s failed", op)
            reply(number, False, ShardError(f"{type(exc).__name__}: {exc}"))

    try:
        while True:
            try:
                number, op, args = conn.recv()
            except (EOFError, OSError):
                return 0  # the first process closed the pipe (stopping) or died
            if op == "execute":  # may take long: the others are answered meanwhile
                threading.Thread(target=answer, args=(number, op, args), daemon=True).start()
            else:
                answer(number, op, args)
    finally:
        server.stop(keep_files=True)


def _pull(worker: _Worker, known: dict[str, int], counters: bool) -> dict[str, Any]:
    """The nodes' counters (if asked), and a copy of each cluster whose generation is not the caller's."""
    lab = worker.lab
    assert lab.server is not None
    nodes = {}
    for name in worker.owned if counters else ():
        stats = lab.server.stats(name)
        fields = dataclasses.asdict(dataclasses.replace(stats, actions={}))
        nodes[name] = {**fields, "actions": dict(stats.actions), "invocations": lab.engine.counts(name)}
    changed = [name for name in worker.served if known.get(name) != lab.engine.generations[name]]
    return {"nodes": nodes, "clusters": _export(worker, changed)}


def _export(worker: _Worker, names: list[str]) -> dict[str, tuple[int, bytes]]:
    """A copy of each named cluster, with its generation (read first: a later change is copied next time)."""
    lab = worker.lab
    return {name: (lab.engine.generations[name], lab.state.export_cluster(name)) for name in names}


def _faults(worker: _Worker, node: str, changes: dict[str, Any]) -> None:
    assert worker.lab.server is not None
    worker.lab.server.set_faults(node, **changes)


def _reset(worker: _Worker) -> None:
    lab = worker.lab
    assert lab.server is not None
    lab.state.reset()
    lab.engine.reset_counters()
    for cluster in lab.spec.clusters:
        if cluster.name in worker.served:
            lab.engine.changed(cluster.name)
            for node in cluster.nodes:
                lab.server.set_faults(node.name, **dataclasses.asdict(node.faults))


def _execute(worker: _Worker, call: PipelineCall) -> tuple[Any, Any, Any]:
    out = _Recording()
    try:
        values = worker.lab.engine.execute(call, out)
    except TerminatingError as exc:
        error = {
            "message": exc.message,
            "error_id": exc.error_id,
            "category": exc.category,
            "exception_type": exc.exception_type,
            "target": exc.target,
        }
        return out.records, None, error
    return out.records, values, None


_OPS: dict[str, Callable[..., Any]] = {
    "pull": _pull,
    "export": _export,
    "faults": _faults,
    "reset": _reset,
    "execute": _execute,
}
