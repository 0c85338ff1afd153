"""The text-embedding cache returns what the encoder returns (rounded to float16)."""

import pytest
import torch

from textok.cli import main
from textok.data import build_text_cache, load_text_cache, open_dataset
from textok.data.text_cache import cache_path


def test_cache_matches_encoder(folder_dataset, minilm):
    assert load_text_cache(folder_dataset, "minilm") is None
    path = build_text_cache(folder_dataset, minilm)
    assert path == cache_path(folder_dataset, "minilm") and path.suffix == ".safetensors"
    cache = load_text_cache(folder_dataset, "minilm")
    assert cache.name == "minilm" and cache.dim == minilm.dim == 384 and len(cache) == 6
    captions = [f"picture number {i}" for i in (5, 0, 3, 3)]
    got, want = cache(captions), minilm(captions)
    assert got.embeddings.dtype == torch.float32 and got.embeddings.shape == want.embeddings.shape
    assert torch.equal(got.mask, want.mask)
    # fp16 storage: equal to the encoder's output rounded to fp16 (the encoder itself moves by
    # ~1e-6 with the padding of its batch, so allow one fp16 rounding step on top)
    ref = want.embeddings.half().float()
    assert torch.allclose(got.embeddings, ref, rtol=2**-10, atol=1e-6)
    assert (got.embeddings == ref).float().mean() > 0.99
    assert torch.all(got.embeddings[~got.mask] == 0)


def test_cache_float32_is_exact_and_incremental(folder_dataset, minilm):
    pair = ["a cat", "a much longer caption about a dog"]  # one batch, as the cache embedded it
    build_text_cache(folder_dataset, minilm, captions=pair, dtype="float32")
    first = load_text_cache(folder_dataset, "minilm")
    assert torch.equal(first(pair).embeddings, minilm(pair).embeddings)
    assert torch.equal(first(pair).mask, minilm(pair).mask)
    a = first(["a cat"]).embeddings.clone()
    build_text_cache(folder_dataset, minilm, captions=["a cat", "a bird"], dtype="float32")
    second = load_text_cache(folder_dataset, "minilm")
    assert len(second) == 3 and "a bird" in second and "a  cat " in second  # key = prepared caption
    assert torch.equal(second(["a cat"]).embeddings, a)  # not recomputed
    with pytest.raises(ValueError, match="not in the text cache"):
        second(["a fish"])
    from textok.conditioning import TextConditioner

    # a caption the cache lacks: the conditioner embeds the batch with the encoder instead
    mixed = TextConditioner(minilm, 128, folder_dataset)(["a fish", "a cat"])
    assert torch.allclose(mixed.embeddings, minilm(["a fish", "a cat"]).embeddings, atol=1e-5)


def test_embed_text_cli_covers_splits_pools_and_variants(class_tree, capsys):
    assert main(["embed-text", "--data", str(class_tree), "--variants", "full,class"]) == 0
    assert "text cache" in capsys.readouterr().out
    cache = load_text_cache(class_tree, "minilm")
    for caption in ["a cat", "a small cat", "a dog", "an unseen cat", "cat", "dog"]:
        assert caption in cache, caption
    ds = open_dataset(class_tree, "test", image_size=32)
    assert cache([ds[0]["caption"]]).embeddings.shape[-1] == 384


def test_corrupt_cache_is_refused(folder_dataset):
    path = cache_path(folder_dataset, "minilm")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable text cache"):
        load_text_cache(folder_dataset, "minilm")
