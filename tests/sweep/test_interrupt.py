"""Ctrl-C during a sweep: exit 130, no remote shell left open, and no half run in history."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hcibenefit.lab.spec import generate_fleet
from tests.integration.conftest import start_lab

pytestmark = pytest.mark.lab


def test_ctrl_c_mid_sweep(tmp_path: Path) -> None:
    spec = generate_fleet(1, 4, 3, seed=7)
    for node in spec.clusters[0].nodes:
        node.faults.latency_ms = 400
    lab = start_lab(spec)
    history = tmp_path / "history.sqlite"
    try:
        inventory = lab.write_inventory(tmp_path / "inventory.yaml")
        env = {**os.environ, **lab.environment(), "HCIBENEFIT_HISTORY": str(history)}
        process = subprocess.Popen(
            [sys.executable, "-m", "hcibenefit", "-i", str(inventory), "sweep", "--parallel", "4"],
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
        if history.exists():
            with sqlite3.connect(history) as db:
                assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
                assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    finally:
        lab.stop()
