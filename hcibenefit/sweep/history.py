"""Sweep history in SQLite: every run's metadata and results, for comparing runs and drawing trends.

- One transaction per run (BEGIN IMMEDIATE ... COMMIT): a crash leaves the whole run or none of it.
- Two sweeps may write at once: WAL journal and a busy timeout make the second wait, not fail.
- Where it lives: --history PATH, else HCIBENEFIT_HISTORY, else the user's data directory
  ($XDG_DATA_HOME or ~/.local/share/hcibenefit on Linux, %LOCALAPPDATA%\\hcibenefit on Windows).

Only what reports show is stored (ids, statuses, messages, remediations): never a secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcibenefit.checks.results import plain
from hcibenefit.errors import UsageError
from hcibenefit.statefiles import create_private
from hcibenefit.sweep.model import PROBLEM_STATUSES, TrendPoint

SCHEMA_VERSION = 2
"""1: runs and results. 2: publications (a version-1 file gains the table when opened)."""
BUSY_TIMEOUT_S = 60.0
# One encoder for every stored record: json.dumps with an option builds a new encoder per call, a fifth of
# the time of encoding a result (a sweep stores about 14 per VM).
# default=plain: a sweep's records are ResultRecords (checks.results), stored as the dicts they equal.
_RECORD_JSON = json.JSONEncoder(sort_keys=True, default=plain).encode
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    inventory TEXT,
    inventory_hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    exit_code INTEGER,
    fail INTEGER NOT NULL,
    error INTEGER NOT NULL,
    waived INTEGER NOT NULL,
    total INTEGER NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_fleet ON runs (inventory_hash, scope, started);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, id)
);
CREATE TABLE IF NOT EXISTS publications (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    published TEXT,
    rows INTEGER,
    PRIMARY KEY (run_id, target)
);
"""
PENDING = "pending"
PUBLISHED = "published"


def _row(run_id: int, record: Mapping[str, Any]) -> tuple[int, str, str, str]:
    return run_id, record["id"], record["status"], _RECORD_JSON(record)


def default_path() -> Path:
    env = os.environ.get("HCIBENEFIT_HISTORY")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "hcibenefit" / "history.sqlite"


@dataclass(frozen=True)
class RunInfo:
    id: int
    started: str
    finished: str
    inventory: str | None
    inventory_hash: str
    scope: str
    exit_code: int | None
    fail: int
    error: int
    waived: int
    total: int
    meta: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started": self.started,
            "finished": self.finished,
            "inventory": self.inventory,
            "inventory_hash": self.inventory_hash,
            "selection": json.loads(self.scope),
            "exit_code": self.exit_code,
            "FAIL": self.fail,
            "ERROR": self.error,
            "waived": self.waived,
            "results": self.total,
        }


class History:
    """A history file, opened for the length of a command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Created 0600 in a 0700 directory before SQLite opens it (its -wal and -shm files take the
            # database's mode): the history is the fleet's findings, for its owner only.
            create_private(path)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(
                f"cannot open the history file {path}: {exc}",
                hint="pass --history PATH to put it elsewhere, or --no-history",
            ) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UsageError(
                    f"{path} was written by a newer hcibenefit (history format {version})",
                    hint="upgrade hcibenefit, or pass --history PATH for a new file",
                )
            with self._transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise UsageError(
                f"{path} is not a usable hcibenefit history file: {exc}",
                hint="pass --history PATH for a new file, or move this one away",
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock at BEGIN, so a second writer waits (busy timeout) right there
        # instead of failing half-way when it tries to upgrade a read lock.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- writing ---------------------------------------------------------------------------------

    def record(
        self,
        run: Mapping[str, Any],
        records: Sequence[Mapping[str, Any]],
        *,
        inventory_hash: str,
        scope: str,
        waivers: Sequence[Mapping[str, Any]] = (),
        publish_to: Sequence[str] = (),
    ) -> int:
        """Store one run with all its results, all or nothing. Returns the run's id.

        `publish_to` names destinations the run is to be sent to: it is pending for each in the same
        transaction, so a run is never stored without the promise to send it (see publish/)."""
        fail = error = waived = 0
        for r in records:
            if r.get("waived"):
                waived += 1
            elif r["status"] == "FAIL":
                fail += 1
            elif r["status"] == "ERROR":
                error += 1
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (started, finished, inventory, inventory_hash, scope, exit_code,"
                " fail, error, waived, total, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run["started"],
                    run["finished"],
                    run.get("inventory"),
                    inventory_hash,
                    scope,
                    run.get("exit_code"),
                    fail,
                    error,
                    waived,
                    len(records),
                    json.dumps({"run": run, "waivers": list(waivers)}, sort_keys=True),
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            # A generator, not a list: sqlite takes the rows one by one, so a 10,000-VM sweep never holds
            # all ~140,000 results as JSON text at once (about 75 MB at its peak).
            self._db.executemany(
                "INSERT INTO results (run_id, id, status, record) VALUES (?, ?, ?, ?)",
                (_row(run_id, plain(r)) for r in records),
            )
            self._db.executemany(
                "INSERT INTO publications (run_id, target, state) VALUES (?, ?, ?)",
                [(run_id, target, PENDING) for target in publish_to],
            )
        return run_id

    # --- publishing ------------------------------------------------------------------------------

    def unpublished(self, target: str) -> list[int]:
        """Ids of the runs still to be sent to `target`, oldest first."""
        rows = self._db.execute(
            "SELECT run_id FROM publications WHERE target = ? AND state = ? ORDER BY run_id",
            (target, PENDING),
        )
        return [int(r[0]) for r in rows]

    def publication(self, run_id: int, target: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT state, attempts, last_error, published, rows FROM publications"
            " WHERE run_id = ? AND target = ?",
            (run_id, target),
        ).fetchone()
        if row is None:
            return None
        return {
            "state": row[0],
            "attempts": row[1],
            "last_error": row[2],
            "published": row[3],
            "rows": row[4],
        }

    def mark_published(self, run_id: int, target: str, *, rows: int, at: str) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE publications SET state = ?, attempts = attempts + 1, last_error = NULL,"
                " published = ?, rows = ? WHERE run_id = ? AND target = ?",
                (PUBLISHED, at, rows, run_id, target),
            )

    def mark_failed(self, run_id: int, target: str, error: str) -> None:
        """A failed attempt: the run stays pending, with why (never a secret: errors are redacted text)."""
        with self._transaction():
            self._db.execute(
                "UPDATE publications SET attempts = attempts + 1, last_error = ? WHERE run_id = ? AND target = ?",
                (error[:2000], run_id, target),
            )

    def prune(self, keep_days: int, now: dt.datetime | None = None) -> int:
        """Delete runs that started more than keep_days ago. Returns how many."""
        cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=keep_days)
        with self._transaction():
            ids = [
                row[0]
                for row in self._db.execute("SELECT id FROM runs WHERE started < ?", (cutoff.isoformat(),))
            ]
            self._db.executemany("DELETE FROM results WHERE run_id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM publications WHERE run_id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM runs WHERE id = ?", [(i,) for i in ids])
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(ids)

    # --- reading ---------------------------------------------------------------------------------

    def runs(
        self, *, inventory_hash: str | None = None, scope: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        """Newest first."""
        where, args = _filter(inventory_hash, scope)
        sql = f"SELECT * FROM runs{where} ORDER BY started DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_info(row) for row in self._db.execute(sql, args)]

    def run(self, ref: str | int, *, inventory_hash: str | None = None) -> RunInfo:
        """A run by id, or `latest`/`previous` (of the inventory when given)."""
        text = str(ref).strip().lower()
        if text in ("latest", "last", "previous", "prev"):
            runs = self.runs(inventory_hash=inventory_hash, limit=2)
            index = 0 if text in ("latest", "last") else 1
            if len(runs) <= index:
                raise UsageError(
                    f"the history in {self.path} has no {text} run"
                    + (" of this inventory" if inventory_hash else "")
                )
            return runs[index]
        try:
            run_id = int(text)
        except ValueError:
            raise UsageError(
                f"not a run: {ref!r}",
                hint="give a run id (see `hcibenefit history list`), latest or previous",
            ) from None
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(
                f"no run {run_id} in {self.path}", hint="`hcibenefit history list` shows the runs"
            )
        return _info(row)

    def previous(self, *, inventory_hash: str, scope: str, before_id: int | None = None) -> RunInfo | None:
        where, args = _filter(inventory_hash, scope)
        if before_id is not None:
            where += " AND id < ?"
            args.append(before_id)
        row = self._db.execute(
            f"SELECT * FROM runs{where} ORDER BY started DESC, id DESC LIMIT 1", args
        ).fetchone()
        return _info(row) if row else None

    def records(self, run_id: int) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT record FROM results WHERE run_id = ? ORDER BY id", (run_id,))
        return [json.loads(row[0]) for row in rows]

    def problems(self, run_id: int) -> list[dict[str, Any]]:
        """The run's FAIL and ERROR results (waived or not), which is all ``compare`` reads of the earlier
        run: a result that was no problem then is new now whether it was PASS, N/A or absent. In a healthy
        fleet almost every result is a PASS, so this reads a fraction of ``records``."""
        statuses = sorted(PROBLEM_STATUSES)
        marks = ", ".join("?" * len(statuses))
        rows = self._db.execute(
            f"SELECT record FROM results WHERE run_id = ? AND status IN ({marks}) ORDER BY id",
            (run_id, *statuses),
        )
        return [json.loads(row[0]) for row in rows]

    def trend(
        self, *, inventory_hash: str, scope: str, limit: int = 30, until_id: int | None = None
    ) -> list[TrendPoint]:
        """Unwaived FAIL and ERROR counts of the latest runs of this fleet and selection, oldest first."""
        where, args = _filter(inventory_hash, scope)
        if until_id is not None:
            where += " AND id <= ?"
            args.append(until_id)
        rows = self._db.execute(
            f"SELECT id, started, fail, error FROM runs{where} ORDER BY started DESC, id DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
        return [TrendPoint(r[0], r[1], r[2], r[3]) for r in reversed(rows)]


def _filter(inventory_hash: str | None, scope: str | None) -> tuple[str, list[Any]]:
    clauses, args = ["1 = 1"], []
    if inventory_hash is not None:
        clauses.append("inventory_hash = ?")
        args.append(inventory_hash)
    if scope is not None:
        clauses.append("scope = ?")
        args.append(scope)
    return " WHERE " + " AND ".join(clauses), args


def _info(row: Sequence[Any]) -> RunInfo:
    return RunInfo(
        id=row[0],
        started=row[1],
        finished=row[2],
        inventory=row[3],
        inventory_hash=row[4],
        scope=row[5],
        exit_code=row[6],
        fail=row[7],
        error=row[8],
        waived=row[9],
        total=row[10],
        meta=json.loads(row[11]),
    )
