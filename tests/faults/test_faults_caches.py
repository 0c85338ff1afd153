"""Caches and resumable outputs record a fingerprint of what made them and refuse to be extended
by anything else; the text cache has one writer at a time."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from textok import TexTok, TexTokConfig
from textok.cli import main

from .conftest import write_image, write_jsonl
from .test_faults_cli import _one_line_error


def _tokenizer(path, seed):
    torch.manual_seed(seed)
    TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8, max_text_tokens=16,
                                    text_in="none")).save_pretrained(path)
    return path


def _data(root, n=6):
    for i in range(n):
        write_image(root / f"{i}.png", size=(32, 32), seed=i)
    write_jsonl(root / "captions.jsonl", [{"file": f"{i}.png", "caption": f"picture {i}"} for i in range(n)])
    return root


def test_encode_dataset_refuses_to_extend_a_cache_of_other_weights_or_data(tmp_path, capsys):
    tok, data, out = _tokenizer(tmp_path / "tok", 0), _data(tmp_path / "data"), tmp_path / "cache"
    args = ["encode-dataset", "--checkpoint", str(tok), "--data", str(data), "--out", str(out), "--shard-size", "2"]
    assert main(args) == 0
    capsys.readouterr()
    (out / "shard-00002.safetensors").unlink()  # an interrupted run
    _tokenizer(tok, 1)  # another model saved at the same path
    assert main(args) == 2
    _one_line_error(capsys, str(out), "another encoding", "tokenizer_weights")
    assert not (out / "shard-00002.safetensors").exists()
    _tokenizer(tok, 0)  # the same weights again
    (data / "captions.jsonl").write_text((data / "captions.jsonl").read_text().replace("picture 5", "changed"))
    assert main(args) == 2
    _one_line_error(capsys, "data_fingerprint")
    (data / "captions.jsonl").write_text((data / "captions.jsonl").read_text().replace("changed", "picture 5"))
    assert main(args) == 0  # the same encoding: resumed and finished
    assert "cached 6 images" in capsys.readouterr().out


def test_embed_text_max_tokens_must_be_positive(tmp_path, capsys):
    data = _data(tmp_path / "data", 2)
    for bad in ("-5", "0"):
        assert main(["embed-text", "--data", str(data), "--max-tokens", bad]) == 2
        _one_line_error(capsys, "--max-tokens", bad)


def test_embed_text_refuses_a_cache_of_other_encoder_weights(tmp_path, minilm):
    from safetensors import safe_open

    from textok.data.text_cache import build_text_cache
    from textok.io import load_state_dict, save_state_dict

    path = build_text_cache(tmp_path, minilm, captions=["a cat"], progress=False)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert len(meta["encoder_weights"]) == 16
    save_state_dict(load_state_dict(path), path, metadata={**meta, "encoder_weights": "0" * 16})
    with pytest.raises(ValueError, match="other weights of the encoder 'minilm'"):
        build_text_cache(tmp_path, minilm, captions=["a dog"], progress=False)


def test_two_embed_text_runs_lose_no_caption(tmp_path, minilm, monkeypatch):
    """Each run reads the cache, adds its captions and writes it back: without one writer at a time the
    slower run would write over the faster one's captions."""
    from textok.data import text_cache
    from textok.data.text_cache import build_text_cache, load_text_cache

    real = text_cache._extend_cache

    def slow(*args, **kwargs):  # both runs start before either finishes
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(text_cache, "_extend_cache", slow)
    errors = []

    def run(captions):
        try:
            build_text_cache(tmp_path, minilm, captions=captions, progress=False)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in (["a cat", "a dog"], ["a bird", "a fish"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(load_text_cache(tmp_path, "minilm").index) == ["a bird", "a cat", "a dog", "a fish"]
