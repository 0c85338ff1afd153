"""Fixtures of the scenes study's tests: its scripts imported as modules, a tiny scenes data set with caches."""

import importlib

import pytest

# A tiny TexTok for ~3-step runs: what is tested is the plumbing, not the numbers.
TINY = ("model.width=32", "model.depth=1", "model.heads=2", "optim.batch_size=4", "schedule.warmup_steps=1",
        "checkpoint.every=2", "ema.decay=0.5")


@pytest.fixture(scope="session")
def scenes_study():
    """``scenes_study(name)``: the module ``studies.scenes.<name>``."""
    return lambda name: importlib.import_module(f"studies.scenes.{name}")


@pytest.fixture(scope="session")
def tiny_scenes(tmp_path_factory, minilm):
    """40 training scenes (+ 4 + 4) with a MiniLM cache of every caption variant."""
    from textok.data import build_text_cache
    from textok.data.fetch import fetch

    root = fetch("scenes", tmp_path_factory.mktemp("scenes") / "data", count=40, seed=5)
    build_text_cache(root, minilm, variants=("full", "shapes", "shapes_colours"), progress=False)
    return root
