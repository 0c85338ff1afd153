"""Tiny randomly initialised checkpoints for the `textok app` tests (32 px, N = 2 and 4)."""

import pytest
import torch

from textok import TexTok, TexTokConfig


def tiny_tokenizer(num_tokens: int, text_in: str = "both") -> TexTok:
    return TexTok(TexTokConfig(image_size=32, patch_size=8, num_tokens=num_tokens, width=32, depth=1, heads=2,
                               text_dim=384, max_text_tokens=16, text_in=text_in))


def write_checkpoints(root):
    """TexTok at N = 2 and 4, the no-text baseline at N = 2."""
    torch.manual_seed(0)
    paths = {"textok-n2": tiny_tokenizer(2), "textok-n4": tiny_tokenizer(4), "baseline-n2": tiny_tokenizer(2, "none")}
    for name, model in paths.items():
        model.save_pretrained(root / name)
    return {k: root / k for k in paths}


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    return write_checkpoints(tmp_path_factory.mktemp("app-checkpoints"))


@pytest.fixture(scope="session")
def lpips_once():
    from textok.explore import LazyLPIPS

    return LazyLPIPS()


@pytest.fixture(scope="session")
def explorer(tiny_checkpoints, minilm, lpips_once):
    from textok.explore import Explorer

    c = tiny_checkpoints
    return Explorer([c["textok-n2"], c["textok-n4"]], [c["baseline-n2"]], encoders={("minilm", "cpu"): minilm},
                    lpips=lpips_once)


@pytest.fixture(scope="session")
def scene_explorer(tiny_checkpoints, minilm, lpips_once):
    """Stand-ins for the shipped scenes pair: the tiny random TexTok and baseline at N = 2 (32 px)."""
    from textok.explore import SceneExplorer

    c = tiny_checkpoints
    return SceneExplorer([c["textok-n2"], c["baseline-n2"]], encoders={("minilm", "cpu"): minilm}, lpips=lpips_once)
