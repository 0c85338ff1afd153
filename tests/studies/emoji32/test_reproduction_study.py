"""studies/emoji32/reproduction.py: the study's runs, its convergence rule and its cost estimate (no training)."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def rs(load_experiment):
    return load_experiment('reproduction')


def test_runs_cover_the_issue(rs):
    runs = {r.name: r for r in rs.study_runs()}
    for n in (1, 2, 4, 8):  # both arms at every N, seed 0
        assert runs[f"textok-n{n}-s0"].arm == "textok" and runs[f"baseline-n{n}-s0"].arm == "baseline"
    for n in (1, 2, 8):  # 3 seeds per arm at N = 2 and 8 (the issue's), and at N = 1
        assert {r.seed for r in runs.values() if r.num_tokens == n and r.ablation is None} == {0, 1, 2}
    ablations = {r.ablation for r in runs.values() if r.ablation and r.num_tokens == 2}
    assert {"class_only", "name_only", "text_encoder_only", "text_decoder_only", "cross_attention",
            "caption_dropout_0.1", "gan"} <= ablations
    base = runs["baseline-n2-s1"].config_overrides()
    assert "model.text_in=none" in base and "seed=1" in base and "model.num_tokens=2" in base
    # N = 1's seeds go after every other side run at their budget (added after the study's own)
    assert runs["textok-n1-s1"].order(8000) > max(r.order(8000) for r in runs.values()
                                                  if r.max_stage and r.num_tokens != 1)


def stage(results: Path, run: str, steps: int, psnr: float, train_seconds: float, eval_seconds: float = 100.0):
    records = [{"split": split, "psnr": psnr, "train_seconds": train_seconds, "eval_seconds": eval_seconds}
               for split in ("val", "val_unseen")]
    (results / run).mkdir(parents=True, exist_ok=True)
    (results / run / f"step_{steps:07d}.json").write_text(json.dumps({"steps": steps, "records": records}))


def test_convergence_rule_and_side_runs(tmp_path, rs):
    runs = {r.name: r for r in rs.study_runs()}
    stage(tmp_path, "textok-n2-s0", 1000, 15.0, 1000)
    stage(tmp_path, "textok-n2-s0", 2000, 16.0, 2000)
    assert rs.next_stage(runs["textok-n2-s0"], rs.done_stages(tmp_path, "textok-n2-s0"), 0.3) == 4000
    stage(tmp_path, "textok-n2-s0", 4000, 16.2, 4000)  # +0.2 dB for a doubling: converged
    assert rs.next_stage(runs["textok-n2-s0"], rs.done_stages(tmp_path, "textok-n2-s0"), 0.3) is None
    # a side run (GAN) runs to its cap even when its PSNR stalls for a doubling
    stage(tmp_path, "textok-n2-s0-gan", 1000, 15.0, 1000)
    stage(tmp_path, "textok-n2-s0-gan", 2000, 15.1, 2000)
    assert rs.next_stage(runs["textok-n2-s0-gan"], rs.done_stages(tmp_path, "textok-n2-s0-gan"), 0.3) == 4000


def test_convergence_rule_on_val_unseen(tmp_path, rs):
    run = next(r for r in rs.study_runs() if r.name == "textok-n4-s0")
    for steps, val, unseen in ((8000, 20.58, 18.86), (16000, 21.72, 19.12)):
        (tmp_path / run.name).mkdir(parents=True, exist_ok=True)
        records = [{"split": "val", "psnr": val}, {"split": "val_unseen", "psnr": unseen}]
        (tmp_path / run.name / f"step_{steps:07d}.json").write_text(json.dumps({"steps": steps, "records": records}))
    done = rs.done_stages(tmp_path, run.name)
    assert rs.next_stage(run, done, 0.3) == 32000  # val: +1.14 dB
    assert rs.next_stage(run, done, 0.3, "val_unseen") is None  # val_unseen: +0.26 dB


def test_next_stage_never_goes_below_a_budget_reached(tmp_path, rs):
    run = {r.name: r for r in rs.study_runs()}["baseline-n4-s0"]
    stage(tmp_path, run.name, 4000, 17.0, 4000)  # e.g. a run whose 1k and 2k stages were never scored
    assert rs.next_stage(run, rs.done_stages(tmp_path, run.name), 0.3) == 8000


def test_the_study_recipe_is_the_8x8_patch_model(rs):
    from textok.training import load_config

    cfg = load_config(rs.CONFIG, rs.study_runs()[0].config_overrides())
    assert (cfg.model.image_size, cfg.model.patch_size, cfg.model.width, cfg.model.depth) == (32, 8, 128, 4)
    assert cfg.schedule.decay == "constant"  # budgets are extended exactly by resuming


def test_remaining_cost_counts_steps_and_scoring(tmp_path, rs):
    runs = rs.study_runs()
    n_main = sum(r.max_stage is None for r in runs)
    assert "no stage scored yet" in rs.remaining_cost(tmp_path)
    stage(tmp_path, "textok-n2-s0", 2000, 15.0, train_seconds=4000.0, eval_seconds=50.0)  # 2 s / step, 100 s / stage
    text = rs.remaining_cost(tmp_path, targets=(2000, 4000))
    # one TexTok run measured: the baseline arm is estimated at its rate too, until a baseline run is measured
    assert "2.00 s per step (TexTok arm), 2.00 s per step (baseline arm) and 100 s per scored stage" in text
    # to 2000 steps: every main run but the one done, and the LPIPS side run (its budget is 2000)
    expected_2k = (n_main - 1 + 1) * (2000 * 2 + 100) / 3600
    assert f"main runs at   2000 steps: {expected_2k:6.1f} core-hours more" in text
    # to 4000: the main runs score two stages (the run done one more), the GAN side run joins (one stage);
    # the seeds and ablations (8000) do not count yet
    expected_4k = ((n_main - 1) * (4000 * 2 + 2 * 100) + (2000 * 2 + 100) + (2000 * 2 + 100) + (4000 * 2 + 100)) / 3600
    assert f"main runs at   4000 steps: {expected_4k:6.1f} core-hours more" in text


def test_side_runs_train_straight_to_their_budget_after_the_main_runs_reach_it(tmp_path, rs):
    runs = {r.name: r for r in rs.study_runs()}
    seed = runs["textok-n2-s1"]
    assert seed.stages == (rs.SIDE_BUDGET,) and rs.next_stage(seed, {}, 0.3) == rs.SIDE_BUDGET
    stage(tmp_path, seed.name, rs.SIDE_BUDGET, 18.0, 1000)
    assert rs.next_stage(seed, rs.done_stages(tmp_path, seed.name), 0.3) is None
    # every main stage at a budget goes before the side runs of that budget, whatever the names
    stages = [(runs[n], s) for n in ("baseline-n8-s0", "textok-n8-s0") for s in rs.STAGES]
    stages += [(runs[n], runs[n].max_stage) for n in ("baseline-n2-s1", "textok-n2-s1", "baseline-n8-s2",
                                                     "textok-n2-s0-name-only", "textok-n2-s0-gan")]
    order = sorted(stages, key=lambda rs_: (*rs_[0].order(rs_[1]), rs_[0].name))
    assert [(r.name, s) for r, s in order] == [
        ("baseline-n8-s0", 2000), ("textok-n8-s0", 2000), ("baseline-n8-s0", 4000), ("textok-n8-s0", 4000),
        ("baseline-n8-s0", 8000), ("textok-n8-s0", 8000),
        ("baseline-n2-s1", 8000), ("textok-n2-s1", 8000), ("baseline-n8-s2", 8000), ("textok-n2-s0-name-only", 8000),
        ("textok-n2-s0-gan", 4000),
        ("baseline-n8-s0", 16000), ("textok-n8-s0", 16000), ("baseline-n8-s0", 32000), ("textok-n8-s0", 32000)]


def test_remaining_cost_uses_each_arms_own_rate(tmp_path, rs):
    stage(tmp_path, "textok-n2-s0", 2000, 15.0, train_seconds=4000.0)  # 2 s / step
    stage(tmp_path, "baseline-n2-s0", 2000, 15.0, train_seconds=2000.0)  # 1 s / step
    assert "2.00 s per step (TexTok arm), 1.00 s per step (baseline arm)" in rs.remaining_cost(tmp_path)


def test_trunk_checkpoint_keeps_a_copy_of_the_stage_checkpoint(tmp_path, rs):
    run = {r.name: r for r in rs.study_runs()}["textok-n2-s0"]
    live = tmp_path / "runs" / run.name / "checkpoints" / "step_00004000"
    live.mkdir(parents=True)
    (live / "model.safetensors").write_text("weights")
    kept = rs.trunk_checkpoint(tmp_path, run, 4000)
    assert kept == tmp_path / "trunks" / run.name / "step_00004000"
    assert (kept / "model.safetensors").read_text() == "weights"
    (live / "model.safetensors").unlink()  # the run's folder prunes it later: the kept copy stays
    assert rs.trunk_checkpoint(tmp_path, run, 4000) == kept and (kept / "model.safetensors").is_file()
    with pytest.raises(FileNotFoundError, match="no training checkpoint at step 8000"):
        rs.trunk_checkpoint(tmp_path, run, 8000)


def test_probe_finished_stages_adds_the_training_set_probe_once(tmp_path, rs, tiny_config):
    import dataclasses

    import numpy as np
    from PIL import Image

    from textok import TexTok
    from textok.metrics import evaluate_tokenizer

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / "images" / f"{i}.png")
        lines.append(json.dumps({"file": f"images/{i}.png", "caption": "x", "split": "train"}) + "\n")
    (data / "captions.jsonl").write_text("".join(lines))
    work, results = tmp_path / "work", tmp_path / "results"
    model = work / "runs" / "baseline-n2-s0" / "stages" / "step_0002000"
    TexTok(dataclasses.replace(tiny_config, text_in="none")).save_pretrained(model)
    stage(results, "baseline-n2-s0", 2000, 15.0, 100.0)
    stage(results, "textok-n2-s0", 2000, 15.0, 100.0)  # no stage model kept: left as it is

    assert rs.probe_finished_stages(work, results, str(data)) == [
        "baseline-n2-s0 @ 2000: train-probe PSNR " + f"{rs.done_stages(results, 'baseline-n2-s0')[2000]['train_probe']['psnr']:.2f}"]
    probe = rs.done_stages(results, "baseline-n2-s0")[2000]["train_probe"]
    expected = evaluate_tokenizer(str(model), data, split="train", rfid=False, lpips=False, progress=False)
    assert probe["num_images"] == 3 and probe["psnr"] == pytest.approx(expected["results"][0]["psnr"])
    assert "train_probe" not in rs.done_stages(results, "textok-n2-s0")[2000]
    assert rs.probe_finished_stages(work, results, str(data)) == []  # done once


def test_a_resumed_stage_appends_to_its_log(tmp_path, rs):
    import sys

    log = tmp_path / "logs" / "textok-n2-s0_step0008000.log"
    for word in ("first", "second"):  # a stop, then the scheduler starts the same stage again
        proc = rs.launch([sys.executable, "-c", f"print('{word} part')"], log, {}, "textok-n2-s0 -> 8000")
        assert proc.wait() == 0
    text = log.read_text()
    assert text.index("first part") < text.index("second part")
    assert text.count("start textok-n2-s0 -> 8000") == 2


def test_a_stage_records_the_seconds_of_every_process_that_trained_it(tmp_path, rs, monkeypatch):
    """run_stage takes the trainer's count (it survives a stop and resume, even across sessions); a run resumed from
    a checkpoint older than the count gets only its last process's seconds, flagged incomplete."""
    import textok.metrics
    import textok.training
    from textok.training.trainer import TrainResult

    results: list[TrainResult] = []

    class FakeTrainer:  # the stage's training, without training: writes model/ and returns the next result
        def __init__(self, task, cfg, out, resume=False):
            self.out = Path(out)

        def train(self):
            (self.out / "model").mkdir(parents=True, exist_ok=True)
            (self.out / "model" / "config.json").write_text("{}")
            return results.pop(0)

    def fake_evaluate(models, data, split, **kw):
        return {"results": [{"num": 3, "rfid": 100.0, "psnr": 18.0, "ssim": 0.5, "lpips": 0.3}]}

    monkeypatch.setattr(textok.training, "Trainer", FakeTrainer)
    # the task after training: its conditioner read the data set's caption cache (a real one: the path of its file)
    cache_file = tmp_path / "data" / "text_cache" / "minilm.safetensors"
    monkeypatch.setattr(textok.training, "TokenizerTask",
                        lambda cfg: SimpleNamespace(text=SimpleNamespace(cache=SimpleNamespace(path=cache_file))))
    monkeypatch.setattr(textok.metrics, "evaluate_tokenizer", fake_evaluate)
    monkeypatch.setattr(rs, "reference_stats", lambda *a: None)
    monkeypatch.setattr(rs, "trunk_checkpoint", lambda *a: None)
    monkeypatch.setattr(rs, "train_probe", lambda *a: {"num_images": 3, "psnr": 19.0, "ssim": 0.6})
    run = next(r for r in rs.study_runs() if r.name == "baseline-n2-s0")

    def stage(steps, seconds, total, complete):
        results.append(TrainResult(steps, tmp_path, None, None, 0, seconds, 1.0, {"loss": 0.1}, total, complete))
        return rs.run_stage(run, steps, tmp_path / "work", tmp_path / "results", str(tmp_path / "data"))

    first = stage(2000, 100.0, 100.0, True)
    assert first["train_seconds"] == 100.0 and first["train_seconds_total"] == 100.0 and first["train_seconds_complete"]
    assert first["text_cache"] == str(cache_file)
    assert rs.text_cache_used(SimpleNamespace(text=None)) is None  # the baseline: no text, no cache
    # 4k: stopped at 3,000 (60 s in) and resumed in another process (90 s): the trainer's total is 250
    second = stage(4000, 90.0, 250.0, True)
    assert (second["train_seconds"], second["train_seconds_total"]) == (150.0, 250.0)
    assert all(r["train_seconds"] == 250.0 for r in second["records"])
    # 8k resumed from a checkpoint without the count: only this process's seconds, and the record says so
    third = stage(8000, 30.0, 30.0, False)
    assert (third["train_seconds"], third["train_seconds_total"], third["train_seconds_complete"]) == (30.0, 280.0, False)
    assert json.loads((tmp_path / "results" / run.name / "step_0008000.json").read_text())["train_seconds_complete"] is False


def test_training_modes_need_the_data_and_its_caption_cache(rs, tmp_path):
    with pytest.raises(SystemExit, match="no emoji data; run `textok data fetch emoji"):
        rs.check_data(str(tmp_path))
    (tmp_path / "captions.jsonl").write_text("")
    # without the cache the TexTok arm would embed every batch (slower, and not the study's float16 embeddings)
    with pytest.raises(SystemExit, match=r"no caption cache for minilm .*textok embed-text --data"):
        rs.check_data(str(tmp_path))
