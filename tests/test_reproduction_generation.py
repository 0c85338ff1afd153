"""experiments/reproduction_generation.py and its report section: budgets, grids, tables (no training)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


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


def test_generation_table_puts_the_arms_side_by_side(load_experiment):
    rr = load_experiment("reproduction_report")
    assert rr.generation_table([])[0].startswith("Pending")
    rec = lambda arm, gfid: {"task": "class", "arm": arm, "num_tokens": 4, "tokenizer_steps": 8000,  # noqa: E731
                             "dit_steps": 8000, "num_samples": 2000, "reference": "emoji train 32 px",
                             "grid": f"reproduction_gen_class_{arm}_n4.png",
                             "report": {"gfid": gfid, "precision": 0.5, "recall": 0.25, "ref_num": 6228}}
    text = "\n".join(rr.generation_table([rec("baseline", 50.0), rec("textok", 40.0)]))
    assert "| class | 4 | 8000 | 8000 | 2000 | emoji train 32 px (6228 images) | 50.0 | 40.0 | 20.0% | 0.500 / 0.500 |" in text
    assert "(../img/reproduction_gen_class_textok_n4.png)" in text
