import dataclasses

import pytest
import torch

from textok import PRESETS, TexTok, TexTokConfig, TextEmbedding


def random_text(B=2, L=5, C=384, lengths=None):
    lengths = lengths or [L] * B
    mask = torch.zeros(B, L, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    return TextEmbedding(torch.randn(B, L, C) * mask[..., None], mask)


def images_for(config, B=2):
    return torch.rand(B, 3, config.image_size, config.image_size) * 2 - 1


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_runs_at_small_size(name):
    # every preset's architecture, shrunk in size/width so it runs fast
    config = TexTokConfig.from_preset(name, image_size=32, patch_size=8, width=64, depth=1, heads=4, num_tokens=8)
    assert config.heads == 4
    model = TexTok(config).eval()
    x = images_for(config)
    text = random_text()
    tokens = model.encode(x, text)
    assert tokens.shape == (2, 8, 8)
    assert model.decode(tokens, text).shape == x.shape


def test_preset_sizes_follow_vit():
    assert (PRESETS["textok-s"]["width"], PRESETS["textok-s"]["depth"]) == (384, 12)
    assert (PRESETS["textok-b"]["width"], PRESETS["textok-b"]["depth"]) == (768, 12)
    assert (PRESETS["textok-l"]["width"], PRESETS["textok-l"]["depth"]) == (1024, 24)


def test_textok_b_parameter_count_matches_paper_scale():
    # paper: ~176M for ViT-B tokenizer + detokenizer at 256 px, patch 8, N = 128 (T5-XL text, width 2048)
    with torch.device("meta"):
        n_minilm = TexTok(TexTokConfig.from_preset("textok-b")).num_parameters()["total"]
        n_t5xl = TexTok(TexTokConfig.from_preset("textok-b", text_dim=2048)).num_parameters()["total"]
    assert n_minilm == 173_083_600
    assert n_t5xl == 175_639_504
    assert abs(n_t5xl - 176e6) / 176e6 < 0.01


@pytest.mark.parametrize("text_in", ["both", "encoder", "decoder", "none"])
@pytest.mark.parametrize("conditioning", ["in-context", "cross-attention"])
@pytest.mark.parametrize("latent", ["kl", "deterministic"])
def test_every_text_option(tiny_config, text_in, conditioning, latent):
    config = dataclasses.replace(tiny_config, text_in=text_in, text_conditioning=conditioning, latent=latent)
    model = TexTok(config)
    x = images_for(config)
    text = None if text_in == "none" else random_text(L=7)
    out = model(x, text)
    assert out.reconstruction.shape == x.shape
    assert out.tokens.shape == (2, config.num_tokens, config.token_dim)
    kl = out.posterior.kl()
    assert kl.shape == (2,)
    if latent == "deterministic":
        assert torch.all(kl == 0)
        assert torch.equal(out.posterior.sample(), out.posterior.mode())
    else:
        assert torch.all(kl > 0)
    out.reconstruction.square().mean().backward()  # gradients flow end to end
    assert model.patch_embed.weight.grad is not None


@pytest.mark.parametrize("text_in", ["both", "encoder", "decoder", "none"])
@pytest.mark.parametrize("conditioning", ["in-context", "cross-attention"])
def test_pruning_the_last_block_changes_nothing_but_the_work(tiny_config, text_in, conditioning):
    # prune_last_block: the tokenizer's last block computes only the latent tokens, the detokenizer's only the
    # patches (every position still a key): the same tokens, images and gradients as computing every position
    config = dataclasses.replace(tiny_config, text_in=text_in, text_conditioning=conditioning, latent="deterministic")
    pruned, full = TexTok(config), TexTok(dataclasses.replace(config, prune_last_block=False))
    full.load_state_dict(pruned.state_dict())
    x = images_for(config)
    text = None if text_in == "none" else random_text(L=7)
    a, b = pruned(x, text), full(x, text)
    torch.testing.assert_close(a.tokens, b.tokens, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.reconstruction, b.reconstruction, rtol=1e-5, atol=1e-5)
    a.reconstruction.square().mean().backward()
    b.reconstruction.square().mean().backward()
    for (name, p), q in zip(pruned.named_parameters(), full.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


def test_baseline_has_no_text_parameters(tiny_config):
    model = TexTok(dataclasses.replace(tiny_config, text_in="none"))
    assert not any("text" in name for name, _ in model.named_parameters())
    only_enc = TexTok(dataclasses.replace(tiny_config, text_in="encoder"))
    names = [n for n, _ in only_enc.named_parameters() if "text" in n]
    assert names and all(n.startswith("encoder.") for n in names)


@pytest.mark.parametrize("conditioning", ["in-context", "cross-attention"])
def test_padding_does_not_change_the_output(tiny_config, conditioning):
    model = TexTok(dataclasses.replace(tiny_config, text_conditioning=conditioning)).eval()
    x = images_for(tiny_config)
    text = random_text(L=5, lengths=[3, 5])
    with torch.no_grad():
        a = model.decode(model.encode(x, text), text)
        padded = text.pad_to(16)
        padded.embeddings[:, 5:] = torch.randn(2, 11, 384)  # garbage under the mask must not matter
        b = model.decode(model.encode(x, padded), padded)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_real_caption_padding_invariance(tiny_config, minilm):
    model = TexTok(tiny_config).eval()
    x = images_for(tiny_config, B=1)
    short = minilm(["a red apple"])
    with_long = minilm(["a red apple", "a very long caption about many different things in a large scene"])[0]
    assert with_long.embeddings.shape[1] > short.embeddings.shape[1]
    with torch.no_grad():
        a = model.decode(model.encode(x, short), short)
        b = model.decode(model.encode(x, with_long), with_long)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_caption_changes_text_model_but_not_baseline(tiny_config):
    x = images_for(tiny_config)
    t1, t2 = random_text(), random_text()
    for text_in, should_change in [("both", True), ("encoder", True), ("decoder", True), ("none", False)]:
        model = TexTok(dataclasses.replace(tiny_config, text_in=text_in)).eval()
        with torch.no_grad():
            a = model.decode(model.encode(x, t1), t1)
            b = model.decode(model.encode(x, t2), t2)
        assert (not torch.allclose(a, b)) == should_change, text_in


def test_save_load_round_trip_is_bit_exact(tmp_path, tiny_config):
    model = TexTok(tiny_config).eval()
    model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"config.json", "model.safetensors"}
    loaded = TexTok.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    x, text = images_for(tiny_config), random_text()
    with torch.no_grad():
        assert torch.equal(model.decode(model.encode(x, text), text), loaded.decode(loaded.encode(x, text), text))


def test_text_norm_makes_the_text_path_blind_to_the_encoders_scale(tmp_path, tiny_config):
    """``text_norm``: a LayerNorm before the text projection (its own weights, saved and loaded), so text
    embeddings at another scale (all-mpnet-base-v2's are ~3.6x smaller than MiniLM's) give the same tokens."""
    x, text = images_for(tiny_config), random_text(lengths=[5, 3])
    small = type(text)(text.embeddings * 0.25, text.mask)
    normed = TexTok(dataclasses.replace(tiny_config, text_norm=True)).eval()
    plain = TexTok(tiny_config).eval()
    assert {"encoder.text.norm.weight", "decoder.text.norm.bias"} <= set(normed.state_dict())
    assert not any(".text.norm." in k for k in plain.state_dict())  # off by default: old checkpoints load
    with torch.no_grad():
        assert torch.allclose(normed.encode(x, text), normed.encode(x, small), atol=1e-4)
        assert not torch.allclose(plain.encode(x, text), plain.encode(x, small), atol=1e-4)
    normed.save_pretrained(tmp_path / "n")
    loaded = TexTok.from_pretrained(tmp_path / "n")
    assert loaded.config.text_norm and torch.equal(loaded.encoder.text.norm.weight, normed.encoder.text.norm.weight)


def test_from_pretrained_refuses_weights_of_another_config(tmp_path, tiny_config):
    TexTok(tiny_config).save_pretrained(tmp_path / "a")
    TexTok(dataclasses.replace(tiny_config, num_tokens=4)).save_pretrained(tmp_path / "b")
    # put b's weights under a's config
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    with pytest.raises(ValueError, match="weights do not match the config.*latent"):
        TexTok.from_pretrained(tmp_path / "a")


def test_from_pretrained_errors_are_clear(tmp_path, tiny_config):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        TexTok.from_pretrained(tmp_path)
    TexTok(tiny_config).save_pretrained(tmp_path / "c")
    (tmp_path / "c" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        TexTok.from_pretrained(tmp_path / "c")


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda c: (torch.rand(2, 1, 32, 32), random_text()), "3 channels"),
        (lambda c: (torch.rand(2, 3, 30, 30), random_text()), "not divisible by the patch size"),
        (lambda c: (torch.rand(2, 3, 64, 64), random_text()), "takes 32x32 images"),
        (lambda c: (torch.rand(3, 32, 32), random_text()), r"\[B, 3, H, W\]"),
        (lambda c: (torch.rand(2, 3, 32, 32), None), "text is missing"),
        (lambda c: (torch.rand(2, 3, 32, 32), random_text(B=3)), "batch sizes differ"),
        (lambda c: (torch.rand(2, 3, 32, 32), random_text(C=512)), "text_dim=384"),
        (lambda c: (torch.rand(2, 3, 32, 32), random_text(L=17)), "max_text_tokens=16"),
    ],
)
def test_bad_inputs_raise_value_error(tiny_config, make_input, message):
    model = TexTok(tiny_config)
    x, text = make_input(tiny_config)
    with pytest.raises(ValueError, match=message):
        model.encode(x, text)


def test_bad_tokens_raise_value_error(tiny_config):
    model = TexTok(tiny_config)
    with pytest.raises(ValueError, match=r"tokens must be \[B, 8, 8\]"):
        model.decode(torch.randn(2, 9, 8), random_text())


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(image_size=30), "image_size"),
        (dict(width=65), "width"),
        (dict(text_in="sometimes"), "text_in"),
        (dict(latent="vq"), "latent"),
        (dict(num_tokens=0), "num_tokens"),
        (dict(text_conditioning="film"), "text_conditioning"),
        (dict(text_norm="yes"), "text_norm"),
        (dict(zero_init_residual=1), "zero_init_residual"),
        (dict(mlp_act="relu"), "mlp_act"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"TexTokConfig.{field}="):
        TexTokConfig.from_preset("textok-mini-32", **overrides)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown TexTok preset"):
        TexTokConfig.from_preset("textok-xxl")


def test_kl_posterior_sampling_is_seeded(tiny_config):
    model = TexTok(tiny_config)
    x, text = images_for(tiny_config), random_text()
    a = model.encode(x, text, sample=True, generator=torch.Generator().manual_seed(1))
    b = model.encode(x, text, sample=True, generator=torch.Generator().manual_seed(1))
    c = model.encode(x, text)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_initialisation_is_unchanged_for_a_fixed_seed():
    """``initialize_weights`` names its embeddings explicitly; for a fixed seed it gives the weights
    the former rule (truncated normal for every parameter ending in _pos/_token/_tokens/.pos) gave,
    saved in tests/fixtures/textok_init_seed1234.safetensors before the change."""
    from pathlib import Path

    from safetensors.torch import load_file

    reference = load_file(str(Path(__file__).parents[1] / "fixtures" / "textok_init_seed1234.safetensors"))
    cases = {"both_in_context": dict(text_in="both", text_conditioning="in-context"),
             "decoder_cross": dict(text_in="decoder", text_conditioning="cross-attention"),
             "none": dict(text_in="none")}
    for name, kw in cases.items():
        torch.manual_seed(1234)
        cfg = TexTokConfig.from_preset("textok-mini-32", width=16, depth=1, heads=2, num_tokens=4, max_text_tokens=4,
                                       text_dim=8, **kw)
        state = TexTok(cfg).state_dict()
        ref = {k.split("/", 1)[1]: v for k, v in reference.items() if k.startswith(name + "/")}
        assert set(state) == set(ref), name
        for k, v in state.items():
            assert torch.equal(v, ref[k]), f"{name}: {k}"
    assert set(TexTok.EMBEDDINGS) == {n for n, _ in TexTok(TexTokConfig.from_preset(
        "textok-mini-32", width=16, depth=1, heads=2, num_tokens=4)).named_parameters()
        if n.endswith(("_pos", "_token", "_tokens", ".pos"))}


@pytest.mark.parametrize("conditioning", ["in-context", "cross-attention"])
def test_zero_init_residual_starts_every_block_as_the_identity(tiny_config, conditioning):
    cfg = dataclasses.replace(tiny_config, zero_init_residual=True, text_conditioning=conditioning)
    model = TexTok(cfg)
    blocks = [b for t in (model.encoder.transformer, model.decoder.transformer) for b in t.blocks]
    assert blocks
    for b in blocks:
        outs = [b.attn.proj, b.mlp.fc2] + ([b.cross_attn.proj] if b.cross_attn is not None else [])
        assert all(torch.count_nonzero(layer.weight) == 0 for layer in outs)
        assert torch.count_nonzero(b.mlp.fc1.weight) > 0  # only the output projections
        x = torch.randn(2, 5, cfg.width)
        ctx = torch.randn(2, 3, cfg.width) if b.cross_attn is not None else None
        torch.testing.assert_close(b(x, context=ctx), x)  # the identity at init
    torch.manual_seed(0)
    default = TexTok(dataclasses.replace(cfg, zero_init_residual=False))
    assert torch.count_nonzero(default.encoder.transformer.blocks[0].attn.proj.weight) > 0


def test_mlp_act_picks_the_exact_gelu_and_keeps_the_weights(tiny_config):
    """The default is the tanh GELU every shipped model was trained with; "gelu" (exact) has the same parameters, so
    weights load across, and its outputs differ only by the approximation."""
    torch.manual_seed(0)
    tanh = TexTok(tiny_config)
    exact = TexTok(dataclasses.replace(tiny_config, mlp_act="gelu"))
    exact.load_state_dict(tanh.state_dict())
    acts = {b.mlp.act.approximate for m in (tanh, exact) for t in (m.encoder, m.decoder) for b in t.transformer.blocks}
    assert acts == {"tanh", "none"}
    assert tanh.config.mlp_act == "gelu_tanh"
    images = images_for(tiny_config)
    text = None if tiny_config.text_in == "none" else random_text(C=tiny_config.text_dim)
    a, b = tanh(images, text).reconstruction, exact(images, text).reconstruction
    assert not torch.equal(a, b)
    x = torch.randn(1000) * 3
    tb = tanh.encoder.transformer.blocks[0].mlp.act(x) - exact.encoder.transformer.blocks[0].mlp.act(x)
    assert 0 < tb.abs().max() < 1e-3  # the approximation's error
    relu2 = TexTok(dataclasses.replace(tiny_config, mlp_act="relu2"))
    relu2.load_state_dict(tanh.state_dict())  # no weights in an activation: every choice loads every model
    assert torch.equal(relu2.decoder.transformer.blocks[0].mlp.act(x), torch.relu(x) ** 2)
