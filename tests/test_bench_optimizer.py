"""benchmarks/bench_optimizer.py --json on a tiny model: one JSON object with a time for Muon and every AdamW
implementation, over one process and over two."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.width=32", "model.depth=1", "model.heads=2"]


@pytest.mark.parametrize("processes", [1, 2])
def test_bench_optimizer_json(processes):
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_optimizer.py"), "--json", "--processes", str(processes),
           "--threads", "1", "--warmup", "1", "--steps", "2", "--rounds", "1", *TINY]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1  # rank 0 reports; the other rank's stdout is dropped
    out = lines[0]
    assert out["processes"] == processes and out["overrides"] == TINY
    assert set(out["ms"]) == {"muon", "adamw_for-loop", "adamw_foreach", "adamw_fused"}
    assert all(ms > 0 for ms in out["ms"].values())
    assert out["muon_matrices"] > 0 and out["adamw_tensors"] > 0
