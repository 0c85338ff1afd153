"""Evaluations print a one-line status before each phase that has no progress bar."""

import dataclasses

import torch

from textok import TexTok
from textok.data import collate, open_dataset
from textok.metrics import dataset_stats, evaluate_generation, evaluate_tokenizer


def test_tokenizer_evaluation_says_what_it_is_doing(tmp_path, tiny_config, image_folder, tiny_features, capsys):
    ckpt = TexTok(dataclasses.replace(tiny_config, text_in="none")).save_pretrained(tmp_path / "ckpt" / "plain")
    evaluate_tokenizer(ckpt, image_folder, num=4, batch_size=4, extractor=tiny_features, lpips=False, progress=True)
    err = capsys.readouterr().err
    assert "eval-tokenizer: loading ckpt/plain" in err
    assert "eval-tokenizer: ckpt/plain: rFID over 4 images (seconds)" in err
    evaluate_tokenizer(ckpt, image_folder, num=4, batch_size=4, extractor=tiny_features, lpips=False, progress=False)
    assert "eval-tokenizer" not in capsys.readouterr().err  # --no-progress: quiet


def test_generation_evaluation_says_what_it_is_doing(image_folder, tiny_features, capsys):
    stats = dataset_stats(image_folder, split="val", image_size=32, extractor=tiny_features, progress=False)
    real = collate([open_dataset(image_folder, split="val", image_size=32)[i] for i in range(6)])
    samples = ((real["images"] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    capsys.readouterr()
    evaluate_generation(samples, stats, extractor=tiny_features, progress=True)
    err = capsys.readouterr().err
    assert "eval-generation: FID of 6 samples" in err
    assert "eval-generation: precision/recall (k=3 nearest neighbours, 6 reference x 6 sample features)" in err
    evaluate_generation(samples, stats, extractor=tiny_features, progress=False)
    assert "eval-generation" not in capsys.readouterr().err
