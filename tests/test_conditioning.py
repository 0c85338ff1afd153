"""textok.conditioning: the one caption -> TextEmbedding path."""

import pytest
import torch

from textok.conditioning import EMPTY_CAPTION, TextConditioner, broadcast, dropout_mask, encoder_width, load_encoder


def test_broadcast_one_caption_or_one_per_image():
    assert broadcast(["a cat"], 3) == ["a cat"] * 3
    assert broadcast(["a", "b"], 2) == ["a", "b"]
    with pytest.raises(ValueError, match="give one caption, or one per image"):
        broadcast(["a", "b"], 3)


def test_dropout_mask_is_a_function_of_the_generator():
    a = dropout_mask(64, 0.5, torch.Generator().manual_seed(3))
    b = dropout_mask(64, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and 0 < int(a.sum()) < 64
    assert not dropout_mask(8, 0.0, torch.Generator().manual_seed(0)).any()


def test_load_encoder_shares_weights_through_the_pool(minilm):
    pool = {("minilm", "cpu"): minilm}
    cut = load_encoder("minilm", "cpu", 16, pool=pool)
    assert cut.max_tokens == 16 and cut.model is minilm.model
    assert load_encoder("minilm", "cpu", pool=pool) is minilm
    assert encoder_width("minilm") == minilm.dim == 384


def test_conditioner_empty_caption_and_model_rule(minilm, tiny_config):
    import dataclasses

    cond = TextConditioner.for_tokenizer(tiny_config, encoder=minilm, use_cache=False)
    assert cond.max_tokens == tiny_config.max_text_tokens == 16
    torch.testing.assert_close(cond.empty().embeddings, minilm([EMPTY_CAPTION]).embeddings)
    # a caption longer than the budget is cut at max_text_tokens encoder tokens
    long = "a red apple " * 20
    assert minilm([long]).embeddings.shape[1] > 16
    torch.testing.assert_close(cond([long]).embeddings, minilm.cut_at(16)([long]).embeddings)
    assert cond([long]).embeddings.shape[1] == 16

    assert TextConditioner.for_tokenizer(dataclasses.replace(tiny_config, text_in="none")) is None


def test_conditioner_warns_once_when_the_data_set_has_no_text_cache(minilm, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="textok.conditioning"):
        cond = TextConditioner(minilm, 16, tmp_path)
    assert cond.cache is None
    assert [r.getMessage() for r in caplog.records if "no cache for minilm" in r.getMessage()] == [
        f"text embeddings: no cache for minilm in {tmp_path}, so the encoder embeds every batch's captions; "
        f"`textok embed-text --data {tmp_path}` caches them once"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="textok.conditioning"):
        TextConditioner(minilm, 16, tmp_path, use_cache=False)  # asked not to use one: nothing to say
    assert not caplog.records

