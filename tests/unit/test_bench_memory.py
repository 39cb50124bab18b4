"""bench/sweep_scale.py measures a client's peak memory, not the benchmark's own.

Linux starts a forked child's peak resident set (ru_maxrss) at its parent's: the benchmark, holding every
earlier run's report, once made an 86 MB `status` read as 264 MB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

# The benchmark grown to 300 MB, then a client that stays small, and one that grows to about 100 MB.
PROBE = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import sweep_scale
grown = bytearray(300 * 1024 * 1024)
for at in range(0, len(grown), 4096):
    grown[at] = 1
workdir = Path(sys.argv[2])
small = sweep_scale.run_client([sys.executable, "-c", "print('hello')"], dict(os.environ), workdir)
large = sweep_scale.run_client(
    [sys.executable, "-c", "kept = bytearray(100 * 1024 * 1024); kept[::4096] = b'x' * len(kept[::4096])"],
    dict(os.environ),
    workdir,
)
print(json.dumps({
    "small": [small.peak_rss_kb // 1024, small.peak_tree_kb // 1024, small.exit_code, small.stdout],
    "large": [large.peak_rss_kb // 1024, large.exit_code],
}))
"""


def test_a_client_s_peak_memory_is_its_own_not_the_benchmark_s(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(BENCH), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    small_peak, small_tree, small_exit, small_out = seen["small"]
    assert small_exit == 0 and small_out == "hello\n"
    assert small_peak < 50 and small_tree < 50, seen  # a bare Python: about 10 MB, not the bench's 300
    large_peak, large_exit = seen["large"]
    assert large_exit == 0 and 100 <= large_peak < 150, seen
