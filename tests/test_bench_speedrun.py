"""benchmarks/speedrun_scenes.py --json on a tiny scenes set: the target check, the JSON lines, the report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.width=32", "model.depth=1", "model.heads=2", "optim.batch_size=8", "schedule.max_steps=6",
        "schedule.warmup_steps=1", "data.in_memory=true", "data.group_by_length=2"]


@pytest.fixture(scope="module")
def tiny_scenes(tmp_path_factory):
    from textok.data.fetch import fetch_scenes

    root = tmp_path_factory.mktemp("speedrun") / "scenes"
    fetch_scenes(root, count=32, size=32, seed=1, eval_count=8)
    return root


def _run(root: Path, *args: str) -> list[dict]:
    cmd = [sys.executable, str(REPO / "benchmarks" / "speedrun_scenes.py"), "--data", str(root), "--json",
           "--recipe", str(REPO / "configs" / "scenes32_fast.yaml"), "--check-every", "2", *args, *TINY]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads(line) for line in run.stdout.splitlines()]  # stdout holds only JSON lines


@pytest.mark.slow
def test_speedrun_stops_at_the_target_and_reports(tiny_scenes, tmp_path):
    rows = _run(tiny_scenes, "--target-psnr", "1", "--seeds", "2")
    seeds, summary = rows[:-1], rows[-1]
    assert [r["seed"] for r in seeds] == [0, 1] and summary["summary"] is True
    for r in seeds:  # any reconstruction beats 1 dB: met at the first check, after 2 steps
        assert r["reached"] and r["steps"] == 2 and r["steps_run"] == 2 and r["curve"][0][0] == 2
        assert r["seconds"] == r["seconds_run"] > 0 and r["step_flops"] > 0 and r["images_seen"] == 16
    assert summary["seeds_reached"] == "2/2" and summary["steps"] == [2, 2]
    assert summary["median_seconds"] is not None and 0 < summary["matmul_fraction"]["fp32"]
    assert (tiny_scenes / "text_cache" / "minilm.safetensors").is_file()  # built when missing

    missed = _run(tiny_scenes, "--target-psnr", "99")
    r, summary = missed[0], missed[-1]
    assert not r["reached"] and r["seconds"] is None and r["steps_run"] == 6  # ran to schedule.max_steps
    assert r["best_psnr"] == max(c[2] for c in r["curve"]) and [c[0] for c in r["curve"]] == [2, 4, 6]
    assert summary["median_seconds"] is None and summary["seeds_reached"] == "0/1"

    run_file = tmp_path / "run.jsonl"
    run_file.write_text("".join(json.dumps(x) + "\n" for x in rows))
    out = tmp_path / "speedrun.md"
    report = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speedrun_report.py"), "--add", str(run_file),
                             "--json-path", str(tmp_path / "speedrun.json"), "--page", str(out)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert report.returncode == 0, report.stderr
    saved = json.loads((tmp_path / "speedrun.json").read_text())["records"][0]
    assert saved["steps"] == [2, 2] and "| textok, 1 | 1.0 dB |" in out.read_text()
