"""studies/emoji32/few_step.py: its rows, the forward counter and the report (no training: fake row files)."""

import argparse
import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def fs(load_experiment):
    return load_experiment('few_step')


def test_rows_cover_the_issues_step_counts(fs):
    rows = fs.rows()
    steps = {(r.objective, r.sampler): sorted(x.steps for x in rows if (x.objective, x.sampler) == (r.objective, r.sampler))
             for r in rows}
    assert steps[("gaussian", "ddim")] == [1, 2, 4, 8, 16, 32, 64] and steps[("gaussian", "ddpm")] == [250]
    assert steps[("flow", "euler")] == steps[("flow", "heun")] == [1, 2, 4, 8, 16, 32, 64, 250]
    assert steps[("meanflow", "meanflow")] == steps[("meanflow_w1", "meanflow")] == [1, 2, 4, 8]
    assert "diffusion.meanflow.cfg_scale=1.0" in fs.OBJECTIVES["meanflow_w1"]
    assert "diffusion.meanflow.cfg_scale=2.0" not in fs.OBJECTIVES["meanflow_w1"]
    assert len({r.name for r in rows}) == len(rows)


def test_forward_counter_counts_rows_per_call_and_detaches(fs):
    net = torch.nn.Linear(3, 3)
    counter = fs.ForwardCounter(net)
    net(torch.zeros(4, 3))
    net(torch.zeros(8, 3))  # a guided step: the batch twice
    counter.close()
    net(torch.zeros(5, 3))
    assert counter.rows == 12


def test_report_writes_the_table_between_its_markers(tmp_path, fs):
    results = tmp_path / "rows"
    results.mkdir()
    (results / "tokenizer.json").write_text(json.dumps({"run": "textok-n4-s0", "steps": 2000, "patch_size": 4}))

    def row(objective, sampler, steps, gfid, forwards, scale, **extra):
        rec = {"objective": objective, "sampler": sampler, "steps": steps, "cfg_scale": scale, "num": 2000, "seed": 0,
               "gfid": gfid, "precision": 0.5, "recall": 0.4, "dit_forwards_per_image": forwards, **extra}
        (results / f"{fs.Row(objective, sampler, steps).name}.json").write_text(json.dumps(rec))

    (results / "floor_reconstruction.json").write_text(json.dumps({"num": 2000, "gfid": 12.5, "precision": 0.7,
                                                                     "recall": 0.6}))
    row("gaussian", "ddpm", 250, 20.0, 500, 1.5, token_fd=0.05, gfid_by_seed={"0": 20.0, "2": 19.0, "3": 21.0})
    row("gaussian", "ddim", 4, 40.0, 8, 2.5)
    row("meanflow", "meanflow", 1, 30.0, 1, 1.0)
    row("meanflow", "meanflow", 4, 21.0, 4, 1.0, gfid_by_seed={"0": 21.0, "2": 20.0, "3": 22.0})
    row("meanflow", "meanflow", 2, 19.5, 2, 1.0, token_fd=0.03, token_fd_cfg1=0.02)
    (results / "floor_token_fd.json").write_text(json.dumps({"num": 2000, "token_fd": 0.01}))
    doc = tmp_path / "generation.md"
    doc.write_text("# Generation\n\nbefore\n<!-- few-step table: studies/emoji32/few_step.py --report -->\nold\n"
                   "<!-- end of the few-step table -->\nafter\n")
    args = argparse.Namespace(results=str(results), img=str(tmp_path / "img"), doc=str(doc))
    fs.report(args)
    text = doc.read_text()
    assert text.startswith("# Generation\n\nbefore\n") and text.rstrip().endswith("after") and "\nold\n" not in text
    assert "| MeanFlow (w = 2 trained in) | meanflow | 2 | 2 | 1 | 19.50 | 0.500 | 0.400 | 2000 | 0.0300 | 0.0200 |  |" in text
    assert "its floor, real training tokens against all of them, is 0.0100" in text
    assert "matches the 250-step DDPM gFID (20.00) at 2 step(s) (meanflow); its token FD at 2 step(s) (meanflow) (DDPM-250: 0.0500)" in text
    # 4 steps: mean 21 +- 1 against 20 +- 1 (n = 3 each): difference 1, standard error sqrt(2/3) = 0.816
    assert ("over seeds, meanflow at 4 step(s) scores 21.00 ± 1.00 (n = 3) against DDPM-250's 20.00 ± 1.00 (n = 3): "
            "+1.00, within twice the standard error of the difference (1.63)") in text
    assert "no row below 250 steps reaches the 250-step DDPM gFID" in text  # the gaussian objective's DDIM row
    assert "| flow matching | euler | 1 | | | pending | | | | | | |" in text
    assert "Tokenizer: `textok-n4-s0` at 2000 steps (4x4 patches)" in text
    assert "2000 training images' own tokens" in text and "score FID 12.50, precision 0.700, recall 0.600" in text
    assert (tmp_path / "img" / "few_step_gfid_vs_time.png").stat().st_size > 1000
    fs.report(args)  # idempotent: the markers are kept, the block replaced
    assert doc.read_text() == text


def test_gfid_spread_needs_two_seeds(fs):
    assert fs.gfid_spread({"gfid": 3.0}) is None
    assert fs.gfid_spread({"gfid_by_seed": {"0": 3.0}}) is None
    mean, std, n = fs.gfid_spread({"gfid_by_seed": {"0": 1.0, "2": 3.0}})
    assert (mean, n) == (2.0, 2) and std == pytest.approx(2 ** 0.5)


def test_a_run_is_finished_only_when_its_summary_says_so(tmp_path, fs):
    """An interrupted train-dit also leaves a model/ folder: the drivers read train_summary.json instead."""
    from studies.emoji32.reproduction_generation import finished

    run = tmp_path / "dit"
    assert not finished(run, 100)
    run.mkdir()
    (run / "model").mkdir()
    (run / "train_summary.json").write_text(json.dumps({"step": 60, "interrupted": "SIGTERM"}))
    assert not finished(run, 100)
    (run / "train_summary.json").write_text(json.dumps({"step": 100, "interrupted": None}))
    assert finished(run, 100) and not finished(run, 200)


def test_seed_spread_rescoring_adds_seeds_and_resumes(tmp_path, fs, monkeypatch):
    import textok.generation
    import textok.metrics

    results = tmp_path / "rows"
    results.mkdir()
    name = fs.Row("meanflow", "meanflow", 1).name
    (results / f"{name}.json").write_text(json.dumps({"objective": "meanflow", "sampler": "meanflow", "steps": 1,
                                                      "cfg_scale": 1.0, "seed": 0, "gfid": 30.0}))
    calls = []

    def fake_score(pipe, row, scale, num, seed, ref, extractor, tmp):
        calls.append(seed)
        return {"gfid": 30.0 + seed}

    monkeypatch.setattr(fs, "sample_and_score", fake_score)
    monkeypatch.setattr(textok.generation.Pipeline, "from_pretrained", staticmethod(lambda path: None))
    monkeypatch.setattr(textok.metrics, "load_stats", lambda path: None)
    monkeypatch.setattr(textok.metrics, "InceptionFeatures", lambda: None)
    args = argparse.Namespace(threads=1, work=str(tmp_path), results=str(results), study_work=str(tmp_path),
                              spread=[name], spread_seeds=[2, 3], num=10, commit=False)
    fs.seed_spread(args)
    record = json.loads((results / f"{name}.json").read_text())
    assert record["gfid_by_seed"] == {"0": 30.0, "2": 32.0, "3": 33.0} and calls == [2, 3]
    fs.seed_spread(args)  # resumes: nothing left to score
    assert calls == [2, 3]
    args.spread_seeds = [1]
    with pytest.raises(SystemExit, match="tuning seed"):
        fs.seed_spread(args)


def test_scored_rows_reads_finished_rows_of_only(tmp_path, fs):
    for name in ("gaussian_ddpm_250", "flow_euler_001"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"gfid": 1.0}))
    assert [r.name for r, _, _ in fs.scored_rows(tmp_path)] == ["gaussian_ddpm_250", "flow_euler_001"]
    assert [r.name for r, _, _ in fs.scored_rows(tmp_path, ["flow_euler_001", "flow_heun_002"])] == ["flow_euler_001"]
