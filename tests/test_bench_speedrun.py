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


def _add_run(rows: list[dict], tmp_path: Path) -> tuple[dict, str]:
    """speedrun_report.py --add of these JSON lines to an empty speedrun.json: the saved JSON and the page."""
    run_file = tmp_path / "run.jsonl"
    run_file.write_text("".join(json.dumps(x) + "\n" for x in rows))
    return _report(tmp_path, {"records": []}, "--add", str(run_file))


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

    saved, page = _add_run(rows, tmp_path)
    assert saved["records"][0]["steps"] == [2, 2] and "| textok, 1 | 1.0 dB |" in page


def _report(tmp_path: Path, data: dict, *args: str) -> tuple[dict, str]:
    """Run speedrun_report.py on ``data`` (written as speedrun.json in tmp_path); return the saved JSON and the page."""
    js, page = tmp_path / "speedrun.json", tmp_path / "speedrun.md"
    js.write_text(json.dumps(data))
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speedrun_report.py"), "--json-path", str(js),
                          "--page", str(page), *args], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 0, run.stderr
    return json.loads(js.read_text()), page.read_text()


def _record(name: str, cpu: str, median: float | None, levers: tuple[str, ...] = ()) -> dict:
    return {"name": name, "commit": "abcdef0123", "cpu": cpu, "threads": 2, "machine": "idle", "arm": "textok",
            "num_tokens": 1, "target_psnr": 27.0, "seconds": [median], "best_psnr": [27.5], "steps": [100],
            "median_seconds": median, "seconds_per_step": [0.1], "val_compositional_psnr": [20.0], "tflops": 0.5,
            "matmul_fraction": {"fp32": 0.5, "bf16": 0.25}, "levers": list(levers)}


def _steps(cpu: str, **extra) -> dict:
    return {"cpu": cpu, "threads": 4, "commit": "1234567890", "date": "2027-01-01", "steps": 40, "warmup": 10,
            "rounds": 3, "rows": [{"lever": "none", "overrides": [], "seconds_per_step": 0.1, "vs_none": "1.00x"}],
            **extra}


def test_report_speedup_is_per_cpu(tmp_path):
    amd, intel = "AMD EPYC", "Intel(R) Xeon(R) Processor"
    records = [_record("r0", amd, 600.0), _record("r1", amd, 200.0, ("muon",)), _record("r2", intel, 90.0),
               _record("r3", intel, 60.0, ("muon",)), _record("r4", intel, 30.0, ("muon", "width 64"))]
    _, page = _report(tmp_path, {"records": records})
    lines = [line for line in page.splitlines() if line.startswith("Speed-up")]
    assert lines == [  # record 0 over the last on each CPU, in order of first appearance; never 600 / 30 across CPUs
        f"Speed-up of the last record over record 0 on {amd}: **3.00x** (medians, same CPU, measured back to back).",
        f"Speed-up of the last record over record 0 on {intel}: **3.00x** (medians, same CPU, measured back to back)."]
    assert "20.00x" not in page and "6.67x" not in page
    # record 0 measured again beside the last record (the machine got slower): the newer record 0 is the reference
    records += [_record("r0 again", intel, 120.0), _record("r5", intel, 24.0, ("muon", "width 64", "gelu"))]
    _, page = _report(tmp_path, {"records": records})
    assert f"record 0 on {intel}: **5.00x**" in page and "3.75x" not in page

    # one record on a CPU, or a missing median at either end: no line for that CPU
    records = [_record("r0", amd, 600.0), _record("r1", intel, 90.0), _record("r2", amd, None),
               _record("r3", "Other", None), _record("r4", "Other", 10.0)]
    _, page = _report(tmp_path, {"records": records})
    assert "Speed-up" not in page


def test_report_trials_steps_columns(tmp_path):
    curve = [[250, 30.0, 20.0], [500, 60.0, 24.5], [750, 90.0, 26.9], [1000, 120.0, 27.2], [1100, 150.0, 27.8]]
    trials = [
        {"lever": "hits", "overrides": ["a=1"], "commit": "c", "cpu": "Intel(R) Xeon(R) Processor", "threads": 8,
         "target_psnr": 27.0, "seconds_per_step": 0.125, "curve": curve, "note": "AMX"},
        {"lever": "old", "overrides": [], "commit": "c", "cpu": "AMD EPYC", "seconds_per_step": 0.2,  # no target, threads
         "curve": [[400, 70.0, 22.0], [600, 110.0, 25.25], [729, 130.0, 25.75]]},
        {"lever": "higher target", "overrides": [], "commit": "c", "cpu": "AMD EPYC", "threads": 2, "target_psnr": 27.5,
         "seconds_per_step": 0.1, "curve": curve},
    ]
    _, page = _report(tmp_path, {"records": [], "trials": trials})
    lines = page.splitlines()
    head = next(line for line in lines if line.startswith("| lever | overrides |"))
    assert head == ("| lever | overrides | CPU, threads | steps to target | PSNR @ 500 steps | PSNR @ 1000 steps | s/step | "
                    "PSNR @ 60 s | PSNR @ 120 s | PSNR @ 150 s |")
    row = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ") and " | `" in line}
    # target 27 first met at step 1000 (26.9 at 750 is below); 500 steps: 24.5; 1000 steps: 27.2; 60/120/150 s read by time
    assert row["hits (AMX)"] == ("| hits (AMX) | `a=1` | Intel(R) Xeon(R) Processor, 8 | 1000 | 24.50 | 27.20 | 0.125 | "
                                 "24.50 | 27.20 | 27.80 |")
    # default target 27 never met: best shown; 500 steps -> the point at 400; ended at 729 -> no PSNR @ 1000 steps;
    # no threads stored -> just the CPU; by time: nothing scored by 60 s, 25.25 at 110 s, ended before 150 s
    assert row["old"] == "| old | `` | AMD EPYC | – (best 25.75 dB) | 22.00 | – | 0.200 | – | 25.25 | – |"
    assert row["higher target"].startswith("| higher target | `` | AMD EPYC, 2 | 1100 | 24.50 | 27.20 |")
    assert "The steps columns do not depend on the machine or its load" in page
    assert "measured on the CPU named in its row" in page


def test_report_add_trial_stores_threads_target_date_note(tmp_path):
    seed = {"seed": 0, "seconds_per_step": 0.11, "curve": [[500, 55.0, 25.0], [1000, 110.0, 27.1]]}
    summary = {"summary": True, "overrides": ["x=1"], "commit": "deadbeef", "cpu": "Intel(R) Xeon(R) Processor",
               "threads": 16, "target_psnr": 27.0, "date": "2027-02-03"}
    run = tmp_path / "trial.jsonl"
    run.write_text(json.dumps(seed) + "\n" + json.dumps(summary) + "\n")
    saved, page = _report(tmp_path, {"records": []}, "--add-trial", str(run), "--lever", "muon", "--note", "bf16")
    t = saved["trials"][0]
    assert (t["threads"], t["target_psnr"], t["date"], t["note"], t["cpu"]) == (16, 27.0, "2027-02-03", "bf16",
                                                                                  "Intel(R) Xeon(R) Processor")
    assert "| muon (bf16) | `x=1` | Intel(R) Xeon(R) Processor, 16 | 1000 | 25.00 | 27.10 | 0.110 |" in page


def test_report_add_steps_appends_to_an_existing_dict(tmp_path):
    levers = tmp_path / "levers.json"
    levers.write_text(json.dumps(_steps("Intel(R) Xeon(R) Processor", recipe="/elsewhere/configs/scenes32_fast.yaml")))
    saved, page = _report(tmp_path, {"records": [], "step_levers": _steps("AMD EPYC")}, "--add-steps", str(levers))
    assert isinstance(saved["step_levers"], list) and len(saved["step_levers"]) == 2
    assert [s["cpu"] for s in saved["step_levers"]] == ["AMD EPYC", "Intel(R) Xeon(R) Processor"]
    intros = [line for line in page.splitlines() if line.startswith("`python benchmarks/bench_levers.py --json` on")]
    assert len(intros) == 2 and page.count("| lever | overrides | s/step | vs none |") == 2
    assert intros[0].startswith("`python benchmarks/bench_levers.py --json` on AMD EPYC, 4 threads, commit `1234567`")
    assert intros[0].endswith("best of 3 interleaved rounds, on the study's recipe.")
    assert intros[1].endswith("on `configs/scenes32_fast.yaml`.") and "Intel(R) Xeon(R) Processor" in intros[1]

    saved, _ = _report(tmp_path, saved, "--add-steps", str(levers))  # a list stays a list and grows
    assert len(saved["step_levers"]) == 3
    levers.write_text(json.dumps(_steps("AMD EPYC (AVX2)", recipe="configs/scenes32_speedrun.yaml",
                                        overrides=["optim.batch_size=16"])))
    _, page = _report(tmp_path, saved, "--add-steps", str(levers))  # overrides for every variant are named
    assert "on `configs/scenes32_speedrun.yaml` with `optim.batch_size=16` for every variant." in page


@pytest.mark.slow
def test_two_processes_train_as_one(tiny_scenes, tmp_path):
    """--processes 2 splits the same global batch between two gloo ranks: the same curve as one process, and
    one report (rank 0's)."""
    one = _run(tiny_scenes, "--target-psnr", "99", "--threads", "1")
    two = _run(tiny_scenes, "--target-psnr", "99", "--threads", "1", "--processes", "2")
    assert len(two) == 2 and two[-1]["summary"] and two[-1]["processes"] == 2 and two[0]["processes"] == 2
    assert [c[0] for c in two[0]["curve"]] == [c[0] for c in one[0]["curve"]] == [2, 4, 6]
    assert [c[2] for c in two[0]["curve"]] == pytest.approx([c[2] for c in one[0]["curve"]], abs=0.01)
    assert two[0]["images_seen"] == one[0]["images_seen"] == 48  # the global batch, not per process

    # the ranks' clocks differ: --max-seconds must stop them at the same step (rank 0's), not hang one in a collective
    timed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speedrun_scenes.py"), "--data", str(tiny_scenes),
                            "--json", "--recipe", str(REPO / "configs" / "scenes32_fast.yaml"), "--check-every", "100",
                            "--target-psnr", "99", "--max-seconds", "0.001", "--processes", "2", "--threads", "1",
                            *[o for o in TINY if not o.startswith("schedule.max_steps")], "schedule.max_steps=40"],
                           capture_output=True, text=True, timeout=300, cwd=REPO,
                           env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    assert timed.returncode == 0, timed.stderr[-3000:]
    r = json.loads(timed.stdout.splitlines()[0])
    assert r["steps_run"] == 10 and not r["reached"]  # the first step at which rank 0's clock is shared

    assert "2 processes x 1" in _add_run(two, tmp_path)[1]


def test_report_drops_the_bf16_fraction_where_bf16_is_slower(tmp_path):
    # a CPU without bf16 units: its bf16 matmul rate is a fraction of fp32's, so an fp32 step reads as 2800% of it
    slow = {**_record("r0", "AMD EPYC (AVX2)", 600.0), "mixed_precision": "no",
            "matmul_tflops": {"fp32": 0.18, "bf16": 0.0013}, "matmul_fraction": {"fp32": 0.2, "bf16": 28.3}}
    fast = {**_record("r1", "Intel(R) Xeon(R) Processor (AMX)", 600.0), "mixed_precision": "no",
            "matmul_tflops": {"fp32": 0.3, "bf16": 1.2}, "matmul_fraction": {"fp32": 0.2, "bf16": 0.05}}
    _, page = _report(tmp_path, {"records": [slow, fast]})
    assert "| 20% / – (bf16 slower) |" in page and "2830%" not in page
    assert "| 20% / 5% |" in page
