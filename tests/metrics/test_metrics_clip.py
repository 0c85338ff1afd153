"""CLIP score with a local Hugging Face CLIP folder (a tiny random model: no CLIP weights offline)."""

import numpy as np
import pytest
import torch

from textok.metrics import CLIPScorer, clip_score

CAPTIONS = ["a red cat", "the dog", "a photo of a blue dog", "the cat"]


def test_matches_torchmetrics_clip_score(tiny_clip_dir):
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update  # imported only here
    from transformers import CLIPProcessor

    scorer = CLIPScorer.from_pretrained(tiny_clip_dir)
    images = torch.randint(0, 256, (4, 3, 40, 48), dtype=torch.uint8)
    ours = scorer.cosine(images, CAPTIONS) * 100

    model = scorer.model
    # torchmetrics 1.9 expects transformers-4 style tensors from get_*_features; unwrap the v5 outputs
    unwrap = lambda out: out if isinstance(out, torch.Tensor) else out.pooler_output  # noqa: E731
    image_features, text_features = model.get_image_features, model.get_text_features
    model.get_image_features = lambda *a, **k: unwrap(image_features(*a, **k))
    model.get_text_features = lambda *a, **k: unwrap(text_features(*a, **k))
    processor = CLIPProcessor(image_processor=scorer.processor, tokenizer=scorer.tokenizer)
    theirs, n = _clip_score_update(list(images), CAPTIONS, model, processor)
    assert n == 4
    torch.testing.assert_close(ours.double(), theirs.double().cpu(), atol=1e-4, rtol=1e-4)


def test_clip_score_is_the_clamped_mean_and_accepts_every_image_form(tiny_clip_dir):
    scorer = CLIPScorer.from_pretrained(tiny_clip_dir)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    per_pair = scorer(images, CAPTIONS)
    assert per_pair.shape == (4,) and (per_pair >= 0).all() and (per_pair <= 100).all()
    torch.testing.assert_close(per_pair, (scorer.cosine(images, CAPTIONS) * 100).clamp(min=0))
    hwc = images.permute(0, 2, 3, 1).numpy()
    mean = clip_score(hwc, CAPTIONS, tiny_clip_dir, batch_size=3, progress=False)
    assert mean == pytest.approx(per_pair.double().mean().item(), abs=1e-4)
    assert clip_score(images.float() / 127.5 - 1, CAPTIONS, scorer, progress=False) == pytest.approx(mean, abs=1e-4)


def test_clip_errors(tiny_clip_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        CLIPScorer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="captions"):
        clip_score(np.zeros((2, 8, 8, 3), np.uint8), ["one"], tiny_clip_dir, progress=False)
