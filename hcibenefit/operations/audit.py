"""The audit log: a write-ahead record of every change hcibenefit sends to a host or a guest.

Each mutating call is written twice, one JSON line per target each time:

* ``"phase": "intended"`` before the call is sent: who (local user and remote account), what (script
  and parameters), where (cluster, node, VM) and the state before;
* ``"phase": "done"`` when the call has returned and been verified: the result, the state after, or
  the error. A Ctrl-C, a crash or a lost connection after sending still writes a ``done`` record whose
  result is ``interrupted`` (or ``unknown``), and a killed process leaves an ``intended`` record with
  no ``done`` record for its ``change`` id: either way the log says that something was sent.

The log is opened before anything is sent to any host (`AuditLog.open`); a log that cannot be opened
for appending is a usage error (exit 2) and nothing is sent. If an ``intended`` record cannot be
written, that call is not sent. Records hold names, states and script parameters, never secrets.
"""

from __future__ import annotations

import datetime as dt
import errno
import getpass
import json
import logging
import os
import socket
import stat
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from hcibenefit.errors import HcibenefitError

log = logging.getLogger(__name__)

AUDIT_ENV = "HCIBENEFIT_AUDIT_LOG"


class AuditError(HcibenefitError):
    """The audit log cannot be written. Raised before anything is sent (exit 2)."""


def default_audit_path() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "hcibenefit" / "audit.log"


def audit_path(explicit: Path | None, configured: Path | None = None) -> Path:
    """--audit-log (or HCIBENEFIT_AUDIT_LOG), else the inventory's audit_log, else the per-user default."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(AUDIT_ENV)
    if from_env:
        return Path(from_env)
    return configured or default_audit_path()


# --- what this process has sent ----------------------------------------------------------------------
# The CLI's error boundary asks this after a failure: once a change may have reached a host, the exit
# code must not say "nothing was done" (2), whatever went wrong afterwards.

_sent_lock = threading.Lock()
_sent_to: list[Path] = []


def changes_sent() -> tuple[Path, ...]:
    """Audit logs of the changes begun in this process since the last `forget_sent_changes`."""
    with _sent_lock:
        return tuple(dict.fromkeys(_sent_to))


def forget_sent_changes() -> None:
    with _sent_lock:
        _sent_to.clear()


def _note_sent(path: Path) -> None:
    with _sent_lock:
        _sent_to.append(path)


# --- the log -----------------------------------------------------------------------------------------


class AuditLog:
    """An audit log opened for appending. Thread-safe: workers on several hosts write to one log."""

    def __init__(self, path: Path, fd: int, *, command: str) -> None:
        self.path = path
        self.command = command
        self.run = uuid.uuid4().hex[:12]
        self.who = _who()
        self.client = socket.gethostname()
        self.write_failures: list[str] = []
        self._fd: int | None = fd
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, command: str) -> AuditLog:
        """Open ``path`` for appending, creating it (and its directory, private) if needed.

        Raises `AuditError` naming the path and the reason when that is impossible: a directory, a
        path under a file, no permission.
        """
        path = Path(os.path.abspath(os.path.expanduser(path)))
        why: str | None = None
        try:
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # O_NONBLOCK: a FIFO nobody reads fails at once (ENXIO) instead of hanging the command.
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
            fd = os.open(path, flags, 0o600)
            if flags & getattr(os, "O_NONBLOCK", 0):
                os.set_blocking(fd, True)
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
                os.close(fd)
                why = "not a regular file"
        except OSError as exc:
            why = _reason(exc)
        if why is not None:
            raise AuditError(
                f"cannot write the audit log {path}: {why}; nothing was sent",
                hint="pass --audit-log FILE (or set HCIBENEFIT_AUDIT_LOG) to a file you can append to",
            )
        return cls(path, fd, command=command)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin(
        self,
        *,
        action: str,
        cluster: str | None,
        node: str | None,
        remote_user: str,
        call: Mapping[str, Any],
        targets: Mapping[str, Mapping[str, Any]],
    ) -> Change:
        """Write the ``intended`` records of one mutating call (one per target) before it is sent.

        ``targets`` maps each target's key (a VM or node name) to what is known of it before (``vm``,
        ``before``, steps...). Raises `AuditError` if the records cannot be written: do not send then.
        """
        change = uuid.uuid4().hex[:12]
        common = {
            "run": self.run,
            "change": change,
            "action": action,
            "cluster": cluster,
            "node": node,
            "remote_user": remote_user,
            "script": call.get("script"),
            "parameters": call.get("parameters"),
        }
        lines = [{**common, **fields, "phase": "intended"} for fields in targets.values()]
        try:
            self._write(lines)
        except OSError as exc:
            raise AuditError(
                f"cannot write the audit log {self.path}: {_reason(exc)}; {action} was not sent to {node}"
            ) from None
        _note_sent(self.path)
        return Change(self, {key: {**common, **fields} for key, fields in targets.items()})

    def _write(self, records: Sequence[Mapping[str, Any]]) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).isoformat()
        text = "".join(
            json.dumps(
                {
                    "time": stamp,
                    "who": self.who,
                    "local_user": self.who,
                    "client": self.client,
                    "command": self.command,
                    **record,
                },
                sort_keys=True,
                default=str,
            )
            + "\n"
            for record in records
        )
        data = text.encode("utf-8")
        # Unbuffered writes straight to the descriptor: a record is on its way to the disk when this
        # returns, and a failed write leaves nothing behind in a buffer to fail again at close.
        with self._lock:
            if self._fd is None:
                raise OSError(errno.EBADF, "the audit log is closed")
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            try:
                os.fsync(self._fd)
            except OSError as exc:  # a pipe or terminal cannot be synced; the write itself succeeded
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                    raise

    def _write_done(self, records: Sequence[Mapping[str, Any]]) -> None:
        try:
            self._write(records)
        except OSError as exc:
            # The change was sent; not being able to say so is reported, and the run is incomplete.
            message = f"cannot write the audit log {self.path} after sending: {_reason(exc)}"
            log.error("%s", message)
            with self._lock:
                self.write_failures.append(message)


class Change:
    """One mutating call in flight. `finish` each target; leaving the block finishes the rest.

    Used as a context manager around sending and verifying: an exception or Ctrl-C inside the block
    writes ``done`` records saying the outcome is unknown, then propagates.
    """

    def __init__(self, log: AuditLog, targets: Mapping[str, Mapping[str, Any]]) -> None:
        self._log = log
        self._targets = dict(targets)
        self._open = set(targets)

    @property
    def id(self) -> str:
        first = next(iter(self._targets.values()), {})
        return str(first.get("change", ""))

    def finish(self, key: str, *, result: str, error: str | None = None, **fields: Any) -> None:
        """The ``done`` record of one target: result, error, and e.g. ``after``."""
        if key not in self._open:
            return
        self._open.discard(key)
        record = {**self._targets[key], **fields, "phase": "done", "result": result, "error": error}
        self._log._write_done([record])

    def __enter__(self) -> Change:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._open:
            return
        if kind is None:
            result, error = "unknown", "the call was sent but no result was recorded"
        elif issubclass(kind, KeyboardInterrupt) or getattr(exc, "kind", None) == "cancelled":
            result, error = "interrupted", "interrupted after the call was sent: the target may have changed"
        else:
            result, error = "unknown", f"the call was sent, then {type(exc).__name__}: {exc}"
        for key in list(self._open):
            self.finish(key, result=result, error=error)


def _reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    if isinstance(exc, NotADirectoryError):
        return "a part of the path is a file, not a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers; the uid still says who
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
