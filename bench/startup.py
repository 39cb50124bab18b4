"""Start-up cost: median wall time of `hcibenefit --help` over 20 runs, and what it imports.

Run: python bench/startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 20
FORBIDDEN = ("pypsrp", "azure", "psrpcore", "spnego", "cryptography", "requests")


def main() -> None:
    command = [sys.executable, "-m", "hcibenefit", "--help"]
    subprocess.run(command, capture_output=True, check=True)  # warm the bytecode cache once
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    probe = (
        "import contextlib, io, sys; from hcibenefit.cli.app import run\n"
        "with contextlib.redirect_stdout(io.StringIO()): run(['--help'])\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))))"
    )
    heavy = (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()
    )
    print(
        f"hcibenefit --help: median {statistics.median(times) * 1000:.0f} ms over {RUNS} runs "
        f"(min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms)"
    )
    print(f"heavy modules imported by --help: {heavy[-1] if heavy and heavy[-1] else 'none'}")


if __name__ == "__main__":
    main()
