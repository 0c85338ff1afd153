import pytest
import torch

from textok import DiT, DiTConfig, TextEmbedding
from textok.diffusion import Condition, GaussianDiffusion, conditional_model, guided_model


def perturbed(condition="class"):
    model = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=6, token_dim=4, num_classes=3, text_dim=8, condition=condition))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def condition(kind):
    if kind == "class":
        return Condition(labels=torch.tensor([0, 2]))
    mask = torch.tensor([[True, True, False], [True, True, True]])
    return Condition(text=TextEmbedding(torch.randn(2, 3, 8) * mask[..., None], mask))


@pytest.mark.parametrize("kind", ["class", "text"])
def test_guidance_scale_one_is_the_conditional_model(kind):
    model, cond = perturbed(kind), condition(kind)
    x, t = torch.randn(2, 6, 4), torch.tensor([5, 600])
    ref = conditional_model(model, cond)(x, t)
    assert torch.equal(guided_model(model, cond, 1.0)(x, t), ref)
    # the two-half batched formula at scale 1 gives the same numbers too
    torch.testing.assert_close(guided_model(model, cond, 1.0, force_batched=True)(x, t), ref, atol=1e-5, rtol=1e-5)
    # and so do whole sampling runs
    d = GaussianDiffusion()
    run = lambda fn: d.sample(fn, (2, 6, 4), steps=10, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(run(guided_model(model, cond, 1.0, force_batched=True)), run(conditional_model(model, cond)),
                               atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["class", "text"])
def test_guidance_mixes_noise_channels_and_keeps_conditional_variance(kind):
    model, cond = perturbed(kind), condition(kind)
    x, t = torch.randn(2, 6, 4), torch.tensor([5, 600])
    c = model(x, t, labels=cond.labels, text=cond.text)
    u = model(x, t, labels=cond.labels, text=cond.text, drop=torch.tensor([True, True]))
    g = guided_model(model, cond, 4.0)(x, t)
    torch.testing.assert_close(g[..., :4], u[..., :4] + 4.0 * (c[..., :4] - u[..., :4]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g[..., 4:], c[..., 4:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(g[..., :4], c[..., :4])


def test_guidance_needs_a_conditional_model():
    model = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=6, token_dim=4, condition="none"))
    with pytest.raises(ValueError, match="conditional DiT"):
        guided_model(model, Condition(), 2.0)
    with pytest.raises(ValueError, match=">= 0"):
        guided_model(model, Condition(), -1.0)
