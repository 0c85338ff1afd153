"""studies/scenes/encoder_scale.py: the scale of each cached encoder's features, over real tokens only."""

import json

import pytest


def test_encoder_scale_reads_each_cache(tiny_scenes, scenes_study, tmp_path, capsys):
    from textok.data import open_dataset
    from textok.data.text_cache import load_text_cache

    es = scenes_study("encoder_scale")
    ds = open_dataset(tiny_scenes, "val")
    text = load_text_cache(tiny_scenes, "minilm")([ds.eval_caption(i) for i in range(3)])
    real = text.embeddings[text.mask].float()
    scales = es.encoder_scale(tiny_scenes, "val", 3)
    assert list(scales) == ["minilm"] and scales["minilm"]["width"] == 384 and scales["minilm"]["captions"] == 3
    assert scales["minilm"]["tokens"] == int(text.mask.sum()) < text.mask.numel()  # padding left out
    assert scales["minilm"]["channel_std"] == pytest.approx(float(real.std(0).mean()), abs=1e-4)
    assert scales["minilm"]["norm"] == pytest.approx(float(real.norm(dim=1).mean()), abs=1e-4)
    out = tmp_path / "scale.json"
    assert es.main(["--data", str(tiny_scenes), "--num", "3", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["encoders"] == scales and "| minilm | 384 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no text cache"):
        es.main(["--data", str(tmp_path)])
