import dataclasses

import pytest
import torch

from textok import DIT_PRESETS, DiT, DiTConfig, TextEmbedding
from textok.models.dit import sincos_1d
from textok.models.modules.transformer import Block, ReLUSquared


def tiny(**kw) -> DiTConfig:
    return DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=4, num_classes=5, text_dim=16, **kw)


def text(B=3, L=6, C=16, lengths=None):
    lengths = lengths or [L] * B
    mask = torch.zeros(B, L, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    return TextEmbedding(torch.randn(B, L, C) * mask[..., None], mask)


def perturb(model: torch.nn.Module, std=0.05):
    """Move every zero-initialised layer off zero so the whole network is exercised."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * std)
    return model


def test_presets_follow_the_dit_paper():
    sizes = {k: (v["depth"], v["width"], v["heads"]) for k, v in DIT_PRESETS.items()}
    assert sizes["dit-s"] == (12, 384, 6)
    assert sizes["dit-b"] == (12, 768, 12)
    assert sizes["dit-l"] == (24, 1024, 16)
    assert sizes["dit-xl"] == (28, 1152, 16)


def test_dit_xl_has_the_papers_parameter_count_and_flops():
    with torch.device("meta"):
        xl = DiT(DiTConfig.from_preset("dit-xl", num_tokens=32, token_dim=8))
        xl2 = DiT(DiTConfig.from_preset("dit-xl", num_tokens=256, token_dim=16))  # DiT-XL/2 at 256 px
    assert abs(xl.num_parameters() - 675e6) / 675e6 < 0.005  # the DiT paper: 675M
    # the DiT paper reports 118.6 GFLOPs (multiply-adds) for DiT-XL/2 at 256 px; ours counts 2 per MAC
    assert abs(xl2.flops_per_forward() / 2 / 1e9 - 118.6) / 118.6 < 0.01


@pytest.mark.parametrize("condition", ["class", "text", "none"])
@pytest.mark.parametrize("learn_sigma", [True, False])
@pytest.mark.parametrize("pos_embed", ["sincos", "learned"])
def test_shapes(condition, learn_sigma, pos_embed):
    model = DiT(tiny(condition=condition, learn_sigma=learn_sigma, pos_embed=pos_embed))
    x, t = torch.randn(3, 8, 4), torch.tensor([0, 500, 999])
    out = model(x, t, labels=torch.tensor([0, 1, 4]) if condition == "class" else None,
                text=text() if condition == "text" else None)
    assert out.shape == (3, 8, 8 if learn_sigma else 4)
    assert model.pos_embed.requires_grad == (pos_embed == "learned")


def test_position_embeddings_are_the_fixed_sincos_table():
    model = DiT(tiny())
    assert torch.equal(model.pos_embed[0], sincos_1d(8, 64))
    assert sincos_1d(8, 64)[0, :32].abs().max() == 0  # sin(0) = 0 on the first half


@pytest.mark.parametrize("condition", ["class", "text"])
def test_adaln_zero_blocks_are_the_identity_at_initialisation(condition):
    model = DiT(tiny(condition=condition)).eval()
    B = 3
    x = torch.randn(B, 8, 64)
    c = torch.randn(B, 64)
    ctx = text()
    for block in model.transformer.blocks:
        assert isinstance(block, Block)  # the project's one block, not a copy
        y = block(x, context=ctx.embeddings if condition == "text" else None,
                  context_mask=ctx.mask if condition == "text" else None, c=c)
        torch.testing.assert_close(y, x, rtol=0, atol=0)
    # and the whole network outputs zero (zero final layer)
    out = model(torch.randn(B, 8, 4), torch.tensor([3, 50, 700]), labels=torch.tensor([0, 1, 2]) if condition == "class" else None,
                text=ctx if condition == "text" else None)
    assert out.abs().max() == 0


def test_label_dropout_uses_the_null_class():
    model = perturb(DiT(tiny(class_dropout=0.1))).eval()
    x, t = torch.randn(2, 8, 4), torch.tensor([10, 10])
    dropped = model(x, t, labels=torch.tensor([1, 3]), drop=torch.tensor([True, True]))
    null = model(x, t, labels=torch.tensor([5, 5]))  # index num_classes = the null class
    torch.testing.assert_close(dropped, null)
    kept = model(x, t, labels=torch.tensor([1, 3]), drop=torch.tensor([False, False]))
    assert not torch.allclose(kept, dropped)
    with pytest.raises(ValueError, match="labels must lie"):
        model(x, t, labels=torch.tensor([0, 6]))
    # in training, labels are dropped at the configured rate
    model.train()
    y = torch.zeros(4000, dtype=torch.long)
    emb = model.embed_labels(y)
    frac = (emb - model.y_embed.weight[5]).abs().sum(-1).eq(0).float().mean().item()
    assert 0.08 < frac < 0.12


def test_caption_dropout_replaces_text_by_the_learned_null_embedding():
    model = perturb(DiT(tiny(condition="text"))).eval()
    x, t = torch.randn(3, 8, 4), torch.tensor([10, 20, 30])
    drop = torch.tensor([True, True, True])
    a = model(x, t, text=text(), drop=drop)
    b = model(x, t, text=text(L=9), drop=drop)  # other captions, other lengths: same output when dropped
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, model(x, t, text=text(), drop=~drop))


def test_dit_t2i_ignores_caption_padding():
    model = perturb(DiT(tiny(condition="text"))).eval()
    x, t = torch.randn(2, 8, 4), torch.tensor([100, 200])
    short = text(B=2, L=4, lengths=[4, 2])
    padded = short.pad_to(11)
    torch.testing.assert_close(model(x, t, text=short), model(x, t, text=padded), atol=1e-5, rtol=1e-5)


def test_save_and_from_pretrained_round_trip(tmp_path):
    model = perturb(DiT(tiny(condition="text")))
    model.save_pretrained(tmp_path)
    loaded = DiT.from_pretrained(tmp_path)
    assert loaded.config == model.config
    x, t, txt = torch.randn(2, 8, 4), torch.tensor([1, 2]), text(B=2)
    torch.testing.assert_close(loaded(x, t, text=txt), model.eval()(x, t, text=txt))


def test_mlp_act_reaches_every_block():
    acts = {b.mlp.act.approximate for b in DiT(tiny(mlp_act="gelu")).transformer.blocks}
    assert acts == {"none"} and {b.mlp.act.approximate for b in DiT(tiny()).transformer.blocks} == {"tanh"}
    assert all(isinstance(b.mlp.act, ReLUSquared) for b in DiT(tiny(mlp_act="relu2")).transformer.blocks)


@pytest.mark.parametrize("field,value,match", [
    ("width", 66, "divisible by heads"),
    ("condition", "image", "'class', 'text' or 'none'"),
    ("class_dropout", 1.0, r"\[0, 1\)"),
    ("num_tokens", 0, "positive integer"),
    ("pos_embed", "rope", "sincos"),
    ("mlp_act", "relu", r"one of \['gelu', 'gelu_tanh', 'relu2'\]"),
])
def test_config_validation_names_the_field(field, value, match):
    with pytest.raises(ValueError, match=f"DiTConfig.{field}") as e:
        dataclasses.replace(tiny(), **{field: value})
    assert e.match(match)


def test_bad_inputs_are_explained():
    model = DiT(tiny())
    with pytest.raises(ValueError, match=r"x must be \[B, 8, 4\]"):
        model(torch.randn(2, 8, 3), torch.tensor([1, 2]), labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels are missing"):
        model(torch.randn(2, 8, 4), torch.tensor([1, 2]))
    t2i = DiT(tiny(condition="text"))
    with pytest.raises(ValueError, match="text_dim=16"):
        t2i(torch.randn(2, 8, 4), torch.tensor([1, 2]), text=text(B=2, C=8))
    with pytest.raises(ValueError, match="unknown DiT preset"):
        DiTConfig.from_preset("dit-xxl")


@pytest.mark.parametrize("condition", ["class", "text"])
def test_flops_formula_matches_torch_flop_counter(condition):
    from torch.utils.flop_counter import FlopCounterMode

    cfg = DiTConfig.from_preset("dit-xl", num_tokens=256, token_dim=16, condition=condition, text_dim=384)
    with torch.device("meta"):
        model = DiT(cfg)
        txt = TextEmbedding(torch.randn(1, 20, 384), torch.ones(1, 20, dtype=torch.bool))
        with FlopCounterMode(display=False) as counter:
            model(torch.randn(1, 256, 16), torch.zeros(1), labels=torch.zeros(1, dtype=torch.long), text=txt)
    assert counter.get_total_flops() == model.flops_per_forward(text_tokens=20)
