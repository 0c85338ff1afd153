"""benchmarks/bench_train.py --json: one JSON object with the documented keys (tiniest settings)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KEYS = {"images_per_s", "step_s", "step_gflop", "step_tflops", "matmul_tflops", "matmul_tflops_fp32",
        "matmul_tflops_bf16", "fraction", "data_s", "tokenizer_fwd_s", "tokenizer_bwd_s", "lpips_s",
        "discriminator_s", "optimizer_ema_s", "other_s", "parts_gflop", "threads", "precision"}


@pytest.mark.slow
def test_bench_train_json_has_the_keys():
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_train.py"), "--preset", "textok-mini-32", "--batch", "2",
           "--steps", "1", "--warmup", "0", "--threads", "1", "--matmul-seconds", "0.01",
           "--matmul-sizes", "128",
           "--perceptual-fraction", "0.5", "--profile", "1", "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)  # stdout is exactly one JSON object (one preset)
    assert KEYS <= set(report), KEYS - set(report)
    assert report["images_per_s"] > 0 and report["step_gflop"] > 0 and report["matmul_tflops"] > 0
    assert report["lpips_images"] == 1 and report["threads"] == 1
    assert 0 < report["fraction"] == pytest.approx(report["step_tflops"] / report["matmul_tflops"])
    assert "| textok-mini-32 |" in run.stderr  # the table goes to stderr
    # --profile: the op table (matmuls are in it) and both GELU variants timed alone
    assert "aten::" in run.stderr and "GELU(approximate='none')" in run.stderr and "GELU(approximate='tanh')" in run.stderr
