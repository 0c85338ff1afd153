"""The CLI's choices come from the library's registries: a new sampler, data set, latent store,
cache dtype or bad-sample policy is one entry there."""

import argparse

import pytest

from textok.cli import build_parser
from textok.data.captions import CAPTION_VARIANTS
from textok.data.fetch import FETCHERS, fetch
from textok.data.formats import ON_BAD_SAMPLE
from textok.data.text_cache import DTYPES
from textok.diffusion import SAMPLERS
from textok.latents import STORES


def _choices(parser: argparse.ArgumentParser, *path: str, option: str):
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    action = next(a for a in parser._actions if option in a.option_strings or a.dest == option)
    return list(action.choices)


def test_cli_choices_are_the_registries():
    p = build_parser()
    assert _choices(p, "data", "fetch", option="name") == list(FETCHERS)
    assert _choices(p, "data", "shards", option="--on-bad-sample") == list(ON_BAD_SAMPLE)
    assert _choices(p, "caption", option="--on-bad-sample") == list(ON_BAD_SAMPLE)
    assert _choices(p, "embed-text", option="--dtype") == list(DTYPES)
    assert _choices(p, "encode-dataset", option="--store") == list(STORES)
    assert _choices(p, "sample", option="--sampler") == list(SAMPLERS)
    assert _choices(p, "sample-fid", option="--sampler") == list(SAMPLERS)
    # --caption-variant has no fixed choices since a data set's caption_<variant> fields are variants too (scenes):
    # its help names every built-in one from the registry, and a field variant parses
    ev = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices["eval-tokenizer"]
    action = next(a for a in ev._actions if "--caption-variant" in a.option_strings)
    assert action.choices is None and all(v in action.help for v in CAPTION_VARIANTS)
    for variant in (*CAPTION_VARIANTS, "shapes"):
        args = p.parse_args(["eval-tokenizer", "--checkpoint", "m", "--data", "d", "--caption-variant", variant])
        assert args.caption_variant == variant


def test_fetch_refuses_an_option_the_data_set_does_not_take(tmp_path):
    with pytest.raises(ValueError, match="--limit applies to fashion-mnist only"):
        fetch("emoji", tmp_path / "x", limit=3)
    with pytest.raises(ValueError, match="--seed applies to emoji, scenes only"):  # every data set taking it
        fetch("photos", tmp_path / "x", seed=1)
