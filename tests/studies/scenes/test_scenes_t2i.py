"""studies/scenes/t2i.py: text-to-image on a pair of scenes tokenizers, end to end on tiny random models (3 DiT
steps): the score files, their structure, the ceiling and floor, the report section and the grid, and the rerun
that does nothing."""

import dataclasses
import json

import pytest
from PIL import Image

from studies.scenes import t2i

TINY_CONFIG = t2i.REPO / "configs" / "dit_t2i_scenes32_tiny.yaml"


@pytest.fixture(scope="module")
def study_work(tmp_path_factory):
    """A tokenizer study's work folder: random tiny TexTok (N = 1) and no-text baseline stage models, the textok arm
    at steps 4 and 8, the baseline at 4 only (the pair's common step is 4)."""
    from textok import TexTokConfig
    from textok.models.textok import TexTok

    work = tmp_path_factory.mktemp("study")
    cfg = TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=2, num_tokens=1, max_text_tokens=40)
    for run, steps, text_in in (("textok-n1-s0", (4, 8), "both"), ("baseline-n1-s0", (4,), "none")):
        for s in steps:
            TexTok(dataclasses.replace(cfg, text_in=text_in)).save_pretrained(work / "stages" / run / f"step_{s:07d}")
    return work


def test_stages_of_the_study_at_the_common_step(study_work, tmp_path):
    stages = t2i.study_stages(study_work, 1)
    assert stages == {"textok": study_work / "stages/textok-n1-s0/step_0000004",
                      "baseline": study_work / "stages/baseline-n1-s0/step_0000004"}
    assert t2i.stage_label(stages["textok"]) == "textok-n1-s0@4"
    with pytest.raises(SystemExit, match="baseline-n1-s0: .* holds no config.json"):
        t2i.study_stages(study_work, 1, steps=8)
    with pytest.raises(SystemExit, match="no stage both reached"):
        t2i.study_stages(study_work, 4)
    with pytest.raises(SystemExit, match="give ARM=STAGE"):
        t2i.parse_tokenizers([f"vae={stages['textok']}"])
    with pytest.raises(SystemExit, match="holds no config.json"):
        t2i.parse_tokenizers([f"textok={tmp_path}"])
    assert t2i.Sampler.parse("ddim:8").key == "ddim8"
    with pytest.raises(SystemExit, match="not sampler:steps"):
        t2i.Sampler.parse("ddim")


def test_driver_end_to_end(study_work, tiny_scenes, tmp_path, monkeypatch, capsys):
    from tests.conftest import TinyFeatures

    monkeypatch.setattr(t2i, "FEATURES", TinyFeatures())
    work, results = tmp_path / "work", tmp_path / "results"
    args = ["--num-tokens", "1", "--study-work", str(study_work), "--data", str(tiny_scenes), "--work", str(work),
            "--results", str(results), "--config", str(TINY_CONFIG), "--samplers", "ddim:4,ddim:2", "--threads", "1",
            "--batch-size", "3", "--sweep", "--sweep-scales", "1,2"]
    assert t2i.main(args) == 0
    runs = {p.stem for p in results.glob("*.json")}
    assert runs == {"n1-textok-d0", "n1-textok-d1", "n1-baseline-d0", "n1-baseline-d1", "ceiling_floor"}
    rec = json.loads((results / "n1-textok-d1.json").read_text())
    assert rec["tokenizer"] == "textok-n1-s0@4" and rec["num_tokens"] == 1 and rec["dit"]["steps"] == 3
    assert sorted(rec["scores"]) == sorted(f"{s}/{k}/cfg3" for s in ("val", "val_compositional")
                                           for k in ("ddim4", "ddim2"))
    entry = rec["scores"]["val_compositional/ddim2/cfg3"]
    n = len([1 for line in (tiny_scenes / "captions.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "val_compositional"])
    assert entry["num"] == entry["adherence"]["num_images"] == n and entry["gfid"]["num"] == n
    assert entry["gfid"]["gfid"] >= 0 and entry["commit"] and entry["cpu"]
    assert set(entry["adherence"]["images"]) >= {"background", "colour", "shape", "exact"}
    assert rec["sweep"] == {}  # the sweep is DiT seed 0's
    zero = json.loads((results / "n1-baseline-d0.json").read_text())
    assert sorted(zero["sweep"]) == ["val/ddim4/cfg1", "val/ddim4/cfg2"] and zero["tokenizer_text_in"] == "none"
    # the ceiling: the real renders read right; the floor below it
    cf = json.loads((results / "ceiling_floor.json").read_text())
    for split in ("val", "val_compositional"):
        assert cf[split]["ceiling"]["images"]["exact"] == 1.0
        assert cf[split]["floor"]["images"]["exact"] < 1.0
        for r in (rec, zero):
            for e in r["scores"].values():
                if e["split"] == split:
                    assert e["adherence"]["images"]["exact"] <= cf[split]["ceiling"]["images"]["exact"]
    # the report: both arms, the p row, the ceiling and floor, the sweep and the grids
    text = t2i.generation_section(results, relative_to=tmp_path)
    assert "| 1 | `val` | ddim 4 | 3 | textok | 2 |" in text and "| 1 | `val` | ddim 4 | 3 | baseline | 2 |" in text
    assert text.count("p (TexTok vs baseline)") == 4
    assert "| 1 | `val_compositional` | ceiling | | | | 100.0 |" in text and "| floor |" in text
    assert text.count("| ceiling |") == text.count("| floor |") == 2  # once a split, after its samplers' rows
    assert text.index("| `val` | ddim 2 |") < text.index("| `val` | ceiling |") < text.index("| `val_compositional` |")
    # the detokenizer alone: the baseline's sees no caption; both arms' rows in the report
    assert "detokenizer_control" not in rec  # once per tokenizer: DiT seed 0's record
    textok0 = json.loads((results / "n1-textok-d0.json").read_text())
    assert set(textok0["detokenizer_control"]) == {"val", "val_compositional"}
    assert zero["detokenizer_control"]["val"]["num_images"] == n
    assert text.count("other scenes' tokens + caption | | textok textok-n1-s0@4 |") == 2
    assert text.count("other scenes' tokens + caption | | baseline baseline-n1-s0@4 |") == 2
    assert "### Guidance scale" in text and "| 1 | `val` | ddim 4 | 2 | textok |" in text
    summary = t2i.generation_summary(results)
    row = summary["rows"][0]
    assert (row["split"], row["steps"], row["arms"]["textok"]["dit_seeds"]) == ("val", 4, 2)
    assert set(row["welch_p"]) == {"exact", "gfid"} and len(row["arms"]["baseline"]["images"]["exact"]) == 2
    assert summary["grids"] == ["grid_n1_val.png", "grid_n1_val_compositional.png"]
    assert "(results/grid_n1_val.png)" in text
    grid = Image.open(results / "grid_n1_val.png")
    # a column per caption (the split's 4), 2 rows + the captions
    assert grid.size[0] > 4 * 32 * 3 and grid.size[1] > 2 * 32 * 3
    # a rerun trains, samples and scores nothing
    before = {p.name: p.read_bytes() for p in results.glob("n1-*.json")}
    capsys.readouterr()
    assert t2i.main(args) == 0
    out = capsys.readouterr().out
    assert "[t2i] train" not in out and "exact" not in out.split("## Text-to-image")[0]
    assert {p.name: p.read_bytes() for p in results.glob("n1-*.json")} == before
    # a smaller gFID count: the gFID again from the kept samples, nothing re-sampled
    assert t2i.main(args + ["--gfid-num", "2"]) == 0
    again = json.loads((results / "n1-textok-d1.json").read_text())
    for key, e in again["scores"].items():
        assert e["gfid"]["num"] == 2 and e["adherence"] == rec["scores"][key]["adherence"]
        assert e["sampling_seconds"] == rec["scores"][key]["sampling_seconds"]
    assert t2i.main(["--list", "--results", str(results)]) == 0
    assert "n1-textok-d0" in capsys.readouterr().out
    # DiT seed 1 on another tokenizer seed (--tokenizer-seed 1 --dit-seeds 1): the report names both tokenizers
    # and its detokenizer control is its own row beside seed 0's, not merged into (or overwriting) it
    again["tokenizer"] = "textok-n1-s1@4"
    again["detokenizer_control"] = {split: {**c, "images": {**c["images"], "exact": 0.123}}
                                    for split, c in textok0["detokenizer_control"].items()}
    (results / "n1-textok-d1.json").write_text(json.dumps(again))
    text = t2i.generation_section(results)
    assert "textok textok-n1-s0@4 + textok-n1-s1@4" in text
    for tok in ("textok-n1-s0@4", "textok-n1-s1@4"):
        assert text.count(f"other scenes' tokens + caption | | textok {tok} |") == 2
    assert text.count("| textok textok-n1-s1@4 | | 12.3 |") == 2
    controls = t2i.generation_summary(results)["detokenizer_control"]["1/n1/val"]
    assert controls["textok textok-n1-s0@4"] == textok0["detokenizer_control"]["val"]["images"]


def test_section_pending_without_scores(tmp_path):
    assert "Pending" in t2i.generation_section(tmp_path)


def test_meanflow_dits_apart(study_work, tiny_scenes, tmp_path):
    """--objective meanflow: its own DiTs and score files (<name>-meanflow-...), sampled with the one-step sampler
    at guidance 1 (trained in)."""
    results = tmp_path / "results"
    assert t2i.main(["--num-tokens", "1", "--study-work", str(study_work), "--data", str(tiny_scenes), "--work",
                     str(tmp_path / "work"), "--results", str(results), "--config", str(TINY_CONFIG), "--objective",
                     "meanflow", "--dit-seeds", "0", "--splits", "val", "--gfid-num", "0", "--threads", "1"]) == 0
    rec = json.loads((results / "n1-meanflow-textok-d0.json").read_text())
    assert sorted(rec["scores"]) == ["val/meanflow1/cfg1", "val/meanflow4/cfg1"]
    assert "diffusion.objective=meanflow" in rec["dit"]["overrides"]
    assert rec["scores"]["val/meanflow1/cfg1"]["gfid"] is None
    assert (tmp_path / "work" / "n1-meanflow" / "dit_textok_d0" / "model").is_dir()
