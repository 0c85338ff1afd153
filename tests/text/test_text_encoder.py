import pytest
import torch

from textok import TextEmbedding, TextEncoder, prepare_caption


def test_minilm_loads_offline_and_gives_384_wide_embeddings(minilm):
    out = minilm(["a red apple", "woman judge, dark skin tone; people and body, person role"])
    assert isinstance(out, TextEmbedding)
    B, L, C = out.embeddings.shape
    assert (B, C) == (2, 384) and minilm.dim == 384
    assert out.mask.dtype == torch.bool and out.mask.shape == (2, L)
    assert out.mask[1].all() and not out.mask[0].all()  # the short caption is padded
    assert torch.all(out.embeddings[~out.mask] == 0)  # padding is zeroed, so caches stay exact
    assert not any(p.requires_grad for p in minilm.parameters())
    assert not minilm.train().training  # stays frozen in eval mode


def test_encoder_is_deterministic_and_batch_independent(minilm):
    captions = ["a cat", "a dog on a red sofa", "flexed biceps"]
    full = minilm(captions)
    minilm.batch_size = 1
    try:
        one_by_one = minilm(captions)
    finally:
        minilm.batch_size = 256
    L = full.embeddings.shape[1]
    torch.testing.assert_close(one_by_one.pad_to(L).embeddings, full.embeddings, atol=1e-5, rtol=1e-4)
    assert torch.equal(one_by_one.pad_to(L).mask, full.mask)


def test_caption_word_and_token_budgets(minilm):
    assert prepare_caption("  a   b\nc ", max_words=2) == "a b"
    long = " ".join(f"word{i}" for i in range(200))
    assert len(prepare_caption(long).split()) == 75
    out = minilm([long])
    assert out.embeddings.shape[1] == minilm.max_tokens == 128
    with pytest.raises(ValueError, match="caption is None"):
        prepare_caption(None)


def test_max_length_padding(minilm):
    minilm.padding = "max_length"
    try:
        out = minilm(["a cat"])
    finally:
        minilm.padding = "longest"
    assert out.embeddings.shape == (1, 128, 384)
    assert out.mask.sum() < 10


def test_unknown_encoder_name_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        TextEncoder.from_pretrained(tmp_path / "nothing-here")


def test_t5_path_with_a_small_random_model(tmp_path, minilm):
    """No T5 weights exist offline here: a randomly initialised T5 with the real T5EncoderModel code."""
    transformers = pytest.importorskip("transformers")
    tokenizer = minilm.tokenizer  # any offline tokenizer serves the code path
    config = transformers.T5Config(vocab_size=tokenizer.vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                   num_heads=4, decoder_start_token_id=0)
    transformers.T5EncoderModel(config).save_pretrained(tmp_path / "t5")
    tokenizer.save_pretrained(tmp_path / "t5")
    enc = TextEncoder.from_pretrained(tmp_path / "t5")
    assert type(enc.model).__name__ == "T5EncoderModel"
    out = enc(["a red apple", "a tabby cat on a sofa"])
    assert out.embeddings.shape[0] == 2 and out.embeddings.shape[2] == 32 == enc.dim
    assert torch.isfinite(out.embeddings).all()


def test_text_embedding_validates_shapes():
    with pytest.raises(ValueError, match=r"\[B, L, C\]"):
        TextEmbedding(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="does not match"):
        TextEmbedding(torch.zeros(2, 3, 4), torch.ones(2, 4))
    t = TextEmbedding.cat([TextEmbedding(torch.ones(1, 2, 4), torch.ones(1, 2)), TextEmbedding(torch.ones(1, 3, 4), torch.ones(1, 3))])
    assert t.embeddings.shape == (2, 3, 4) and t.mask.tolist() == [[True, True, False], [True, True, True]]
