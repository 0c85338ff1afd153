"""textok.conditioning: the one caption -> TextEmbedding path."""

import pytest
import torch

from textok.conditioning import (EMPTY_CAPTION, TextConditioner, broadcast, choose_captions, class_condition,
                                 dropout_mask, encoder_width, load_encoder, text_condition)
from textok.text import ClassEmbedding


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
    from textok import TexTok

    cond = TextConditioner.for_tokenizer(tiny_config, encoder=minilm, use_cache=False)
    assert cond.max_tokens == tiny_config.max_text_tokens == 16
    torch.testing.assert_close(cond.empty().embeddings, minilm([EMPTY_CAPTION]).embeddings)
    model = TexTok(tiny_config).eval()
    a = text_condition(model, ["a red apple"], 2, minilm)
    b = text_condition(model, ["a red apple"], 2, cond)
    assert torch.equal(a.embeddings, b.embeddings) and len(a) == 2
    import dataclasses

    assert TextConditioner.for_tokenizer(dataclasses.replace(tiny_config, text_in="none")) is None


def test_class_labels_as_one_token_captions():
    text = class_condition(ClassEmbedding(5, 8), [0, 4])
    assert text.embeddings.shape == (2, 1, 8) and text.mask.all()


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


def test_choose_captions_takes_the_lowest_cycle_error(minilm, tiny_config):
    """Each token set gets the candidate under which decoding and re-encoding moves its tokens least."""
    import dataclasses

    from textok import TexTok

    torch.manual_seed(0)
    model = TexTok(tiny_config).eval()
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        tokens = model.encode(images, minilm.cut_at(16)(["a red apple", "a blue car", "a green frog"]))
    candidates = [["a red apple", "a blue car", "a green frog"], ["a small cat", "a blue car"], ["only one"]]
    chosen = choose_captions(model, tokens, candidates, minilm, batch_size=2)  # chunks across token sets
    for i, cands in enumerate(candidates[:2]):  # by hand
        errors = [model.cycle_error(tokens[i : i + 1], text_condition(model, [c], 1, minilm)).item() for c in cands]
        assert chosen[i] == cands[min(range(len(cands)), key=errors.__getitem__)]
    assert chosen[2] == "only one"  # a single candidate is taken as is
    again = model.cycle_error(tokens, text_condition(model, ["a red apple"], 3, minilm))
    assert again.shape == (3,) and (again >= 0).all()
    # a detokenizer without text: nothing to choose, the first candidate
    plain = TexTok(dataclasses.replace(tiny_config, text_in="none")).eval()
    assert choose_captions(plain, tokens, candidates) == ["a red apple", "a small cat", "only one"]
    with pytest.raises(ValueError, match="2 candidate lists for 3 token sets"):
        choose_captions(model, tokens, candidates[:2], minilm)
    with pytest.raises(ValueError, match="token set 1 has no candidate"):
        choose_captions(model, tokens, [["a"], [], ["b"]], minilm)
