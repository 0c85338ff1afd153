"""Text conditions in training: cache vs encoder, and caption dropout to the empty caption
(``textok.conditioning.TextConditioner``, which training, encode-dataset and evaluation share)."""

import torch

from textok.conditioning import TextConditioner


def test_caption_dropout_uses_the_empty_caption(emoji_root, minilm):
    captions = ["grinning face", "red apple", "flexed biceps", "man cook"]
    # no cache: the data set's (float16) cache may hold these captions (e.g. as the "name" variant);
    # reading it is tested below, this test is about dropout
    source = TextConditioner(minilm, 32, str(emoji_root), use_cache=False)  # the session's encoder
    kept = source(captions, dropout=0.0)
    ref = minilm(captions)
    torch.testing.assert_close(kept.embeddings, ref.embeddings)
    g = torch.Generator().manual_seed(0)
    all_dropped = source(captions, dropout=1.0, rng=g)
    empty = minilm([""])
    assert all_dropped.mask.sum(1).tolist() == [int(empty.mask.sum())] * 4
    torch.testing.assert_close(all_dropped.embeddings[:, : empty.embeddings.shape[1]],
                               empty.embeddings.expand(4, -1, -1))
    # p = 0.5 with a seeded generator: a reproducible mix, same draw for the same seed
    a = source(captions, dropout=0.5, rng=torch.Generator().manual_seed(1))
    b = source(captions, dropout=0.5, rng=torch.Generator().manual_seed(1))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.embeddings, b.embeddings)


def test_cache_is_used_when_it_holds_the_captions(emoji_root, minilm, tmp_path):
    import shutil

    from textok.data import build_text_cache, load_text_cache, open_dataset

    captions = [open_dataset(emoji_root, "val")[i]["caption"] for i in range(3)]
    # a small data set of our own, so the test never depends on (or writes to) data/emoji's cache
    root = tmp_path / "ds"
    root.mkdir()
    shutil.copy(emoji_root / "captions.jsonl", root / "captions.jsonl")
    build_text_cache(root, minilm, captions=captions, max_tokens=32)
    cache = load_text_cache(root, "minilm")
    assert cache is not None
    source = TextConditioner("minilm", 32, str(root), use_cache=True)
    out = source(captions)
    assert source._encoder is None  # served from the cache, the encoder was never loaded
    torch.testing.assert_close(out.embeddings, cache(captions).embeddings)


def test_cache_with_another_token_budget_is_only_used_where_exact(minilm, tmp_path):
    import json

    from textok.conditioning import cached_embedding
    from textok.data import build_text_cache
    from textok.text import TextEncoder

    short, long = "red apple", " ".join(["word"] * 40)
    root = tmp_path / "ds"
    root.mkdir()
    (root / "captions.jsonl").write_text(json.dumps({"file": "a.png", "caption": short}) + "\n")
    build_text_cache(root, minilm, captions=[short, long], max_tokens=16)  # cache cut at 16 tokens
    source = TextConditioner(TextEncoder(minilm.model, minilm.tokenizer, "minilm"), 32, str(root),
                             use_cache=True)  # the model takes 32
    out = source([long])
    assert out.mask.sum() == 32  # the encoder at 32 tokens, not the cache's 16-token cut
    assert source.cache.max_tokens == 16
    assert cached_embedding(source.cache, [long], 32) is None and cached_embedding(source.cache, [short], 32) is not None
    ok = source([short])
    torch.testing.assert_close(ok.embeddings, minilm([short]).embeddings, atol=1e-2, rtol=1e-2)  # fp16 cache
