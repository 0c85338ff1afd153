"""studies/emoji32/reproduction_generation.py and its report section: budgets, grids, tables (no training)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studies.emoji32 import report_generation, report_tables


@pytest.fixture
def rg(load_experiment):
    return load_experiment("reproduction_generation")


def scored(results: Path, run: str, *steps: int) -> None:
    for s in steps:
        (results / run).mkdir(parents=True, exist_ok=True)
        (results / run / f"step_{s:07d}.json").write_text(json.dumps({"steps": s, "records": []}))


def test_both_arms_tokenizers_at_one_budget(tmp_path, rg):
    pair = ["baseline-n4-s0", "textok-n4-s0"]
    scored(tmp_path, pair[0], 2000, 4000, 8000, 16000)
    scored(tmp_path, pair[1], 2000, 4000, 8000)
    assert rg.pair_budget(tmp_path, pair) == 8000  # not each run's latest (16000 vs 8000)
    assert rg.pair_budget(tmp_path, pair, 4000) == 4000
    with pytest.raises(SystemExit, match="textok-n4-s0: no scored stage at 16000 steps"):
        rg.pair_budget(tmp_path, pair, 16000)
    with pytest.raises(SystemExit, match="no budget both reached"):
        rg.pair_budget(tmp_path, ["baseline-n4-s0", "textok-n1-s0"])


def test_shipped_tokenizers_only_for_the_run_and_budget_they_ship(rg):
    for arm in ("textok", "baseline"):
        path = rg.shipped_model(f"{arm}-n4-s0", 16000)
        assert (path / "config.json").is_file() and json.loads((path / "SOURCE.json").read_text())["run"] == f"{arm}-n4-s0"
    with pytest.raises(SystemExit, match="ships textok-n4-s0 at 16000 steps, not textok-n4-s0 at 8000"):
        rg.shipped_model("textok-n4-s0", 8000)
    with pytest.raises(SystemExit, match="no shipped checkpoint for textok-n2-s0"):
        rg.shipped_model("textok-n2-s0", 8000)


def test_sample_grid_rows_per_class_or_in_order(tmp_path, load_experiment):
    grid = load_experiment("npz_grid")
    images = np.zeros((30, 8, 8, 3), np.uint8)
    labels = np.repeat(np.arange(3), 10)
    np.savez(tmp_path / "class.npz", images, labels)
    assert grid.sample_grid(tmp_path / "class.npz", tmp_path / "class.png", per_class=4) == 3
    w, h = Image.open(tmp_path / "class.png").size
    assert (w, h) == (4 * 8 + 5 * 2, 3 * 8 + 4 * 2)  # 4 columns, 3 rows, 2 px padding
    np.savez(tmp_path / "t2i.npz", images)  # no labels (text-to-image): the first samples, 4 per row
    assert grid.sample_grid(tmp_path / "t2i.npz", tmp_path / "t2i.png", per_class=4, max_rows=2) == 2


def test_generation_table_puts_the_arms_side_by_side():
    assert report_generation.generation_table([])[0].startswith("Pending")
    rec = lambda arm, gfid: {"task": "class", "arm": arm, "num_tokens": 4, "tokenizer_steps": 8000,  # noqa: E731
                             "dit_steps": 8000, "num_samples": 2000, "reference": "emoji train 32 px",
                             "grid": f"reproduction_gen_class_{arm}_n4.png", "dit_device": "NVIDIA H200",
                             "report": {"gfid": gfid, "precision": 0.5, "recall": 0.25, "ref_num": 6228}}
    half = lambda arm, gfid: dict(rec(arm, gfid), dit_steps=4000, dit_device="a CPU")  # noqa: E731  (a learning-curve point, its grid overwritten)
    text = "\n".join(report_generation.generation_table([rec("baseline", 50.0), rec("textok", 40.0), half("baseline", 80.0),
                                           half("textok", 60.0)]))
    assert "| class | 4 | 8000 | 8000 | NVIDIA H200 | 2000 | emoji `train` 32 px (6228 images) | 50.0 | 40.0 | 20.0% | 0.500 / 0.500 |" in text
    assert "| class | 4 | 8000 | 4000 | a CPU | 2000 | emoji `train` 32 px (6228 images) | 80.0 | 60.0 | 25.0% |" in text
    assert text.index("| 4000 | a CPU |") < text.index("| 8000 | NVIDIA H200 |")  # the curve in order of DiT steps
    # the reference split named as the report names splits (what it measures)
    assert report_tables.reference_label("emoji val 32 px") == "emoji recall (`val`) 32 px"
    assert report_tables.reference_label("emoji val_unseen 32 px") == "emoji new emoji (`val_unseen`) 32 px"
    assert text.count("(../img/reproduction_gen_class_") == 2  # one grid per arm: the last budget's
    cpu = lambda arm, gfid: dict(rec(arm, gfid), dit_device="a CPU", tag="cpu",  # noqa: E731  (a replicate)
                                 grid=f"reproduction_gen_class_{arm}_n4_cpu.png")
    text = "\n".join(report_generation.generation_table([rec("baseline", 50.0), rec("textok", 40.0), cpu("baseline", 52.0),
                                           cpu("textok", 48.0)]))
    assert "| 8000 | NVIDIA H200 | 2000 | emoji `train` 32 px (6228 images) | 50.0 | 40.0 |" in text  # not merged
    assert "| 8000 | a CPU | 2000 | emoji `train` 32 px (6228 images) | 52.0 | 48.0 |" in text
    assert text.count("(../img/reproduction_gen_class_") == 4
    assert "shipped pair" not in text
    shipped = lambda arm, gfid: dict(cpu(arm, gfid), tokenizer_weights="float16 (shipped)", dit_device="AMD EPYC")  # noqa: E731
    text = "\n".join(report_generation.generation_table([rec("baseline", 50.0), rec("textok", 40.0), shipped("baseline", 52.0),
                                           shipped("textok", 48.0)]))
    assert "Rows trained on AMD EPYC: the tokenizers are the shipped pair" in text


def test_caption_pool_held_out_with_training_captions_where_none(tmp_path, rg, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"classes": ["cat", "dog", "owl"]}))
    rows = [("cat", "train", "cat; a"), ("cat", "val", "cat; b"), ("dog", "train", "dog; a"),
            ("dog", "train", "dog; b"), ("cat", "val_unseen", "cat; c")]
    (data / "captions.jsonl").write_text("".join(json.dumps({"class": c, "split": s, "caption": t}) + "\n"
                                                 for c, s, t in rows))
    pool = json.loads(rg.caption_pool(data, tmp_path / "gen" / "pool.json").read_text())
    assert pool == {"cat": ["cat; b", "cat; c"], "dog": ["dog; a", "dog; b"]}  # owl: no caption at all
    assert "training captions stand in: dog" in capsys.readouterr().out
    prompts, n = rg.val_prompts(data, tmp_path / "gen" / "val.txt", repeats=3)
    assert prompts.read_text() == "cat; b\n" and n == 3
    before = prompts.stat().st_mtime_ns
    rg.val_prompts(data, prompts, repeats=3)  # the same text: not rewritten (several drivers share it)
    assert prompts.stat().st_mtime_ns == before


def test_dit_step_reads_the_run_summary(tmp_path, rg):
    assert rg.dit_step(tmp_path) == 0
    (tmp_path / "train_summary.json").write_text(json.dumps({"step": 7783, "interrupted": "SIGTERM"}))
    assert rg.dit_step(tmp_path) == 7783


def test_text_cache_embeds_with_the_tokenizers_encoder_once(tmp_path, rg, monkeypatch):
    from textok.data.text_cache import cache_path

    ran = []
    monkeypatch.setattr(rg, "sh", lambda cmd, threads: ran.append(cmd))
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "config.json").write_text(json.dumps({"class": "TexTok", "text_encoder": "/models/other-encoder"}))
    rg.text_cache(tmp_path / "data", tok, 1, ["textok"])
    assert ran == [["textok", "embed-text", "--data", str(tmp_path / "data"), "--encoder", "/models/other-encoder",
                    "--threads", "1"]]
    path = cache_path(tmp_path / "data", "/models/other-encoder")  # a cache already there: nothing runs
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    rg.text_cache(tmp_path / "data", tok, 1, ["textok"])
    assert len(ran) == 1


def test_sampling_noise_table_and_seed_zero_in_the_comparison():
    rec = lambda arm, gfid, seed=0: {"task": "class", "arm": arm, "num_tokens": 4, "tokenizer_steps": 16000,  # noqa: E731
                                     "dit_steps": 4000, "num_samples": 2000, "reference": "emoji train 32 px",
                                     "grid": None, "dit_device": "a CPU", "tag": "cpu", "sample_seed": seed,
                                     "report": {"gfid": gfid, "precision": 0.5, "recall": 0.25, "ref_num": 6228}}
    text = "\n".join(report_generation.generation_table([rec("baseline", 100.0), rec("textok", 90.0), rec("baseline", 104.0, 1),
                                           rec("textok", 91.0, 1)]))
    assert "| 100.0 | 90.0 | 10.0% |" in text and "104.0" not in text.split("Sampling noise")[0]  # seed 0 compared
    assert "| class | 4 | 4000 | a CPU | baseline | 0: 100.0, 1: 104.0 | 4.0 | 3.9% |" in text
    assert "| class | 4 | 4000 | a CPU | textok | 0: 90.0, 1: 91.0 | 1.0 | 1.1% |" in text
    assert "Sampling noise" not in "\n".join(report_generation.generation_table([rec("baseline", 100.0), rec("textok", 90.0)]))


def test_training_noise_table_and_only_dit_seed_zero_in_the_comparison():
    rec = lambda arm, gfid, dit_seed=0, device="NVIDIA H100": {  # noqa: E731
        "task": "class", "arm": arm, "num_tokens": 1, "tokenizer_steps": 8000, "dit_steps": 4000,
        "num_samples": 2000, "reference": "emoji train 32 px", "grid": None, "dit_device": device, "tag": None,
        "sample_seed": 0, "dit_seed": dit_seed, "report": {"gfid": gfid, "precision": 0.5, "recall": 0.25}}
    seeds = [rec("baseline", 119.0), rec("textok", 113.0), rec("baseline", 118.0, 1, "a CPU"),
             rec("textok", 112.0, 1, "a CPU"), rec("baseline", 120.0, 2, "a CPU"), rec("textok", 114.0, 2, "a CPU")]
    text = "\n".join(report_generation.generation_table(seeds))
    table, noise = text.split("DiT-training noise")
    assert "| 119.0 | 113.0 |" in table and "118.0" not in table  # the comparison: DiT seed 0 only
    assert ("| class | 1 | 4000 | 119.0 (0, H100), 118.0 (1, a CPU), 120.0 (2, a CPU) | 119.0 ± 1.0 "
            "| 113.0 (0, H100), 112.0 (1, a CPU), 114.0 (2, a CPU) | 113.0 ± 1.0 | 5.0% | yes, TexTok better |") in noise
    close = seeds[:5] + [rec("textok", 117.5, 2, "a CPU")]  # the TexTok std grows to 2.9: 5.0 apart is < 2 std
    assert "| no |" in "\n".join(report_generation.generation_table(close))
    assert "DiT-training noise" not in "\n".join(report_generation.generation_table(seeds[:3]))  # one TexTok DiT: no row


def test_caption_pool_table_beside_the_held_out_pool_and_out_of_the_comparison():
    rec = lambda arm, gfid, pool=None: {  # noqa: E731
        "task": "class", "arm": arm, "num_tokens": 4, "tokenizer_steps": 16000, "dit_steps": 8000,
        "num_samples": 2000, "reference": "emoji train 32 px", "grid": None, "dit_device": "AMD EPYC", "tag": "epyc",
        "sample_seed": 0, "dit_seed": 0, "caption_pool": pool,
        "report": {"gfid": gfid, "precision": 0.1, "recall": 0.2 if pool else 0.3, "ref_num": 6228}}
    text = "\n".join(report_generation.generation_table([rec("baseline", 93.7), rec("textok", 94.4), rec("textok", 94.5, "train")]))
    table, pools = text.split("Caption pool:")
    assert "| 93.7 | 94.4 | -0.7% |" in table and "94.5" not in table  # the comparison: the held-out pool only
    assert "| class | 4 | 8000 | 0 | AMD EPYC | textok | 94.4 | 94.5 | 0.100 | 0.100 | 0.300 | 0.200 | 93.7 |" in pools
    assert "over DiT seeds" not in text  # one DiT per arm: no seed row
    assert "Caption pool:" not in "\n".join(report_generation.generation_table([rec("baseline", 93.7), rec("textok", 94.4)]))
    # a DiT re-sampled with the cycle-chosen caption: its own table, out of the comparison and the noise tables
    cyc = dict(rec("textok", 88.0), caption_choice="cycle")
    text = "\n".join(report_generation.generation_table([rec("baseline", 93.7), rec("textok", 94.4), cyc]))
    table, chosen = text.split("Caption choice:")
    assert "88.0" not in table and "| 93.7 | 94.4 | -0.7% |" in table
    assert "| class | 4 | 8000 | 0 | AMD EPYC | textok | 94.4 | 88.0 | 0.100 | 0.100 | 0.300 | 0.300 | 93.7 |" in chosen
    # two DiT seeds re-sampled: their mean against the baseline's DiTs, with the two-std rule
    seed1 = [dict(rec("baseline", 93.5), dit_seed=1), dict(rec("textok", 95.0), dit_seed=1),
             dict(rec("textok", 88.4), dit_seed=1, caption_choice="cycle")]
    text = "\n".join(report_generation.generation_table([rec("baseline", 93.7), rec("textok", 94.4), cyc] + seed1))
    chosen = text.split("Caption choice:")[1]
    assert "| TexTok (cycle-chosen) gFID per DiT |" in chosen
    assert "| class | 4 | 8000 | 93.7 (0, AMD EPYC), 93.5 (1, AMD EPYC) | 93.6 ± 0.1 | 88.0 (0, AMD EPYC), 88.4 (1, AMD EPYC) " \
           "| 88.2 ± 0.3 | 5.8% | yes, TexTok better |" in chosen


@pytest.mark.parametrize("flag", [["--caption-pool", "train"], ["--caption-choice", "cycle"]])
def test_class_only_decodings_refuse_text_to_image(rg, monkeypatch, tmp_path, flag):
    monkeypatch.setattr("sys.argv", ["reproduction_generation.py", "--num-tokens", "4", "--work", str(tmp_path),
                                     "--tasks", "t2i"] + flag)
    with pytest.raises(SystemExit, match=f"{' '.join(flag)} is for the class-conditional task"):
        rg.main()
