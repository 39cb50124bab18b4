"""Ctrl-C during a sweep: exit 130 and no remote shell left open on any node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hcibenefit.lab.spec import generate_fleet
from tests.integration.conftest import start_lab


def test_ctrl_c_closes_every_shell_and_exits_130(tmp_path: Path) -> None:
    spec = generate_fleet(1, 6, 2, seed=5)
    for node in spec.clusters[0].nodes:
        node.faults.latency_ms = 400  # every response slow: the sweep is mid-flight when interrupted
    lab = start_lab(spec)
    try:
        inventory = lab.write_inventory(tmp_path / "inventory.yaml")
        env = {**os.environ, **lab.environment(), "HCIBENEFIT_AUDIT_LOG": str(tmp_path / "audit.log")}
        process = subprocess.Popen(
            [sys.executable, "-m", "hcibenefit", "-i", str(inventory), "status", "--parallel", "6"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while lab.open_shells() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lab.open_shells() > 0, "the sweep never opened a shell"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        assert lab.open_shells() == 0
    finally:
        lab.stop()
