"""Start-up cost: `hcibenefit --help` against a bare Python start, and what --help imports.

Both are run RUNS times in fresh processes of the same interpreter and environment (so a bare start
includes site-packages' own start-up); the medians of wall time and of process CPU time (user +
system, which other work on a shared machine does not inflate) are compared. Target: within 4 times.

Run: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

RUNS = 20
TARGET_RATIO = 4.0
FORBIDDEN = ("pypsrp", "azure", "psrpcore", "spnego", "cryptography", "requests", "rich")


def _measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `runs` fresh processes."""
    walls, cpus = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - started)
        cpus.append(usage.ru_utime + usage.ru_stime)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {process.returncode}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode cache
    command = [sys.executable, "-m", "hcibenefit", "--help"]
    subprocess.run(command, capture_output=True, check=True, env=env)  # write the bytecode cache once
    bare_wall, bare_cpu = _measure([sys.executable, "-c", "pass"], env, args.runs)
    help_wall, help_cpu = _measure(command, env, args.runs)
    probe = (
        "import contextlib, io, sys; from hcibenefit.cli.app import run\n"
        "with contextlib.redirect_stdout(io.StringIO()): run(['--help'])\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))))"
    )
    heavy = (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
        .stdout.strip()
        .splitlines()
    )
    wall_ratio, cpu_ratio = help_wall / bare_wall, help_cpu / max(bare_cpu, 1e-3)
    print(
        f"bare python start:  median {bare_wall * 1000:.0f} ms wall, {bare_cpu * 1000:.0f} ms CPU ({args.runs} runs)"
    )
    print(
        f"hcibenefit --help:  median {help_wall * 1000:.0f} ms wall, {help_cpu * 1000:.0f} ms CPU ({args.runs} runs)"
    )
    print(
        f"ratio: {wall_ratio:.1f}x wall, {cpu_ratio:.1f}x CPU (target within {TARGET_RATIO:g}x): "
        f"{'ok' if max(wall_ratio, cpu_ratio) <= TARGET_RATIO else 'MISS'}"
    )
    print(f"heavy modules imported by --help: {heavy[-1] if heavy and heavy[-1] else 'none'}")


if __name__ == "__main__":
    main()
