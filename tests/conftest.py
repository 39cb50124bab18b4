"""Shared fixtures: the lab's engine driven directly (no sockets), and paths to ../shared when present."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from hcibenefit.lab.engine import LabEngine
from hcibenefit.lab.spec import FleetSpec, default_fleet, parse_fleet
from hcibenefit.lab.state import FleetState
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

    def write_output(self, value: Any) -> None:
        self.output.append(value)

    def write_error(
        self, message: str, *, error_id: str, category: str = "NotSpecified", target: str | None = None
    ) -> None:
        self.errors.append({"message": message, "error_id": error_id, "category": category, "target": target})

    def write_warning(self, message: str) -> None:
        self.warnings.append(message)

    def write_verbose(self, message: str) -> None:
        self.verbose.append(message)


class EngineDriver:
    """Runs our real script texts through the lab engine in-process, as the WinRM server would."""

    def __init__(self, spec: FleetSpec) -> None:
        self.state = FleetState(spec)
        self.engine = LabEngine(self.state)

    def call(self, node: str, script: Script, params: dict[str, Any] | None = None) -> CollectingOutput:
        out = CollectingOutput()
        command = CommandSpec(script.text(), True, tuple((k, v) for k, v in (params or {}).items()))
        self.engine.execute(PipelineCall(node, "labadmin", "Microsoft.PowerShell", (command,), ()), out)
        return out

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
