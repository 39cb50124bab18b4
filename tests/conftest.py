"""Shared fixtures: the lab's engine driven directly (no sockets), paths to ../shared when present, and the
session-wide check that no lab leaves a private directory or an open remote shell behind."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.lab.engine import LabEngine
from hcibenefit.lab.fleet import Lab
from hcibenefit.lab.shards import ShardError
from hcibenefit.lab.spec import FleetSpec, default_fleet, parse_fleet
from hcibenefit.lab.state import FleetState
from hcibenefit.lab.wsman import WSManServer
from hcibenefit.lab.wsman.executor import CommandSpec, PipelineCall
from hcibenefit.remoting.catalog import Script

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


class CollectingOutput:
    """A PipelineOutput that keeps what a pipeline wrote."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.output: list[Any] = []
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.verbose: list[str] = []
        self.progress: list[tuple[str, str, int]] = []
        self.information: list[str] = []

    def write_output(self, value: Any) -> None:
        self.output.append(value)

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
        self.verbose.append(message)

    def write_progress(self, activity: str, status: str, percent: int = -1) -> None:
        self.progress.append((activity, status, percent))

    def write_information(self, message: str, source: str) -> None:
        self.information.append(message)


class EngineDriver:
    """Runs our real script texts through the lab engine in-process, as the WinRM server would."""

    def __init__(self, spec: FleetSpec) -> None:
        self.state = FleetState(spec)
        self.engine = LabEngine(self.state)

    def call(self, node: str, script: Script, params: dict[str, Any] | None = None) -> CollectingOutput:
        out = CollectingOutput()
        command = CommandSpec(script.text(), True, tuple((k, v) for k, v in (params or {}).items()))
        out.output += self.engine.execute(
            PipelineCall(node, "labadmin", "Microsoft.PowerShell", (command,), ()), out
        )
        return out

    def call_text(self, node: str, text: str) -> CollectingOutput:
        """Any script text, as a hostless WinRM pool would run it."""
        out = CollectingOutput()
        command = CommandSpec(text, True, ())
        out.output += self.engine.execute(
            PipelineCall(node, "labadmin", "Microsoft.PowerShell", (command,), ()), out
        )
        return out

    def id_of(self, vm: str) -> str:
        found = self.state.vm(vm)
        assert found is not None, vm
        return found.id

    def document(self, node: str, script: Script, params: dict[str, Any] | None = None) -> Any:
        out = self.call(node, script, params)
        assert not out.errors, out.errors
        assert len(out.output) == 1
        return json.loads(out.output[0])


@pytest.fixture
def default_driver() -> EngineDriver:
    return EngineDriver(default_fleet())


@pytest.fixture
def make_driver():  # type: ignore[no-untyped-def]
    def make(yaml_text: str) -> EngineDriver:
        return EngineDriver(parse_fleet(yaml_text, "test-fleet.yaml"))

    return make


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (a user's clone has none)")
    return SHARED


_LOGGERS = ("hcibenefit", "pypsrp", "psrpcore", "spnego", "urllib3", "requests", "azure")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Each test gets the loggers as they were: a CLI run points the hcibenefit logger at the stderr of
    that test (closed afterwards) and stops it propagating, which would hide a later test's records from
    caplog and print "Logging error: I/O operation on closed file"."""
    saved = {
        name: (list(logger.handlers), logger.level, logger.propagate)
        for name in _LOGGERS
        for logger in (logging.getLogger(name),)
    }
    root_handlers = list(logging.getLogger().handlers)
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in root_handlers]:
        root.removeHandler(handler)


@pytest.fixture(scope="session", autouse=True)
def _caches_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads or writes the user's own caches (parsed YAML, VM names): each worker has its own,
    shared by its tests (a test about a cache points XDG_CACHE_HOME at a directory of its own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _no_lab_leaves_anything_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole suite: every lab was stopped with no remote shell open, every WinRM server was
    stopped, and no private directory of theirs (node TLS keys) is left in the temporary directory.
    The suite also keeps away from the user's own history and audit log.

    The suite's labs, in this process and in the ones it starts (TMPDIR), use a temporary directory of
    their own, so other test runs on the same machine cannot make this pass or fail. Shells are counted
    for `Lab`s, where hcibenefit's commands run; the WinRM transport tests drive raw servers and stop
    some with a client stuck mid-call on purpose.
    """
    private = tmp_path_factory.mktemp("lab-tmp")
    home = tmp_path_factory.mktemp("home")
    saved = (
        tempfile.tempdir,
        {k: os.environ.get(k) for k in ("TMPDIR", "XDG_DATA_HOME", "XDG_STATE_HOME", "COLUMNS", "LINES")},
    )
    # pytest-xdist's workers inherit COLUMNS=80 from execnet: tables would wrap there and not in a serial
    # run. Tests that care about the width set COLUMNS themselves.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)
    tempfile.tempdir = str(private)
    os.environ["TMPDIR"] = str(private)
    # Nor does any test write to the real user's sweep history or audit log (their default places).
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    os.environ["XDG_STATE_HOME"] = str(home / "state")
    servers: list[WSManServer] = []
    shells_left: list[str] = []
    server_start, lab_stop = WSManServer.start, Lab.stop

    def tracked_start(self: WSManServer, *args: Any, **kwargs: Any) -> None:
        servers.append(self)
        server_start(self, *args, **kwargs)

    def tracked_stop(self: Lab) -> None:
        if self.server is not None and not self.server.stopping.is_set():
            # A lab served by several processes counts its shells there (lab/shards.py).
            with contextlib.suppress(ShardError):
                self.refresh()
            shells_left.extend(
                f"{node}: {count}"
                for node in self.server.node_names()
                if (count := self.node_stats(node).open_shells)
            )
        lab_stop(self)

    WSManServer.start = tracked_start  # type: ignore[method-assign]
    Lab.stop = tracked_stop  # type: ignore[method-assign]
    try:
        yield
    finally:
        WSManServer.start, Lab.stop = server_start, lab_stop  # type: ignore[method-assign]
        tempfile.tempdir = saved[0]
        for key, value in saved[1].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    running = [s for s in servers if not s.stopping.is_set()]
    leftovers = sorted(p.name for p in private.iterdir() if p.name.startswith("hcibenefit-"))
    assert not running, f"{len(running)} WinRM server(s) of the lab were never stopped"
    assert not shells_left, f"labs stopped with remote shells open: {', '.join(shells_left)}"
    assert not leftovers, f"lab directories left behind: {', '.join(leftovers)}"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than there are cores. Most of a lab test is spent waiting on loopback
    sockets and subprocesses, so a third worker on two cores still shortens the run."""
    return min((os.cpu_count() or 1) + 1, 8)
