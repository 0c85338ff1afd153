"""The generation folder is self-contained: dit/, tokenizer/ (or a Hub repo id), caption_pool.json, generation.json
with no absolute path; it moves, goes to the Hub and comes back, and a folder of the old layout still loads."""

import json
import shutil

import pytest
import torch

from textok import CaptionedTokenizer, DiT, DiTConfig, TexTok, TexTokConfig
from textok.diffusion import DiffusionConfig
from textok.generation import GenerationConfig, Pipeline, check_compatible, sample


def tiny_pipeline(text_in="none") -> Pipeline:
    """An untrained class-conditional DiT with a tiny tokenizer and a held-out pool: fast, enough to sample."""
    torch.manual_seed(0)
    tok = TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8,
                                          max_text_tokens=16, text_in=text_in))
    dit = DiT(DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=8, num_classes=2))
    with torch.no_grad():  # not the zero-initialised output layer: samples depend on the weights
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    config = GenerationConfig(tokenizer="/somewhere/else", classes=["cat", "dog"], latent_mean=[0.1] * 8,
                              latent_std=[2.0] * 8)
    return Pipeline(dit, tok, config, {0: ["a small cat", "a grey cat"], 1: ["a big dog"]})


def draw(pipe):
    return sample(pipe, class_id=1, num=2, steps=3, sampler="ddim", seed=4)


def test_a_moved_folder_samples_bit_identically(tmp_path):
    pipe = tiny_pipeline()
    want = draw(pipe)
    folder = pipe.save_pretrained(tmp_path / "run" / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["caption_pool.json", "dit", "generation.json", "tokenizer"]
    stored = json.loads((folder / "generation.json").read_text())
    assert stored["tokenizer"] == "tokenizer" and stored["caption_pool"] == "caption_pool.json"
    assert str(tmp_path) not in (folder / "generation.json").read_text()  # no absolute path
    assert json.loads((folder / "caption_pool.json").read_text()) == {"cat": ["a small cat", "a grey cat"],
                                                                      "dog": ["a big dog"]}
    shutil.move(tmp_path / "run", tmp_path / "elsewhere")  # the run folder leaves; nothing points back at it
    moved = tmp_path / "elsewhere" / "model"
    assert torch.equal(draw(Pipeline.from_pretrained(moved)), want)
    assert torch.equal(draw(moved), want)  # sample() with the folder: the `textok sample` path
    again = Pipeline.from_pretrained(moved)
    assert again.pool == pipe.pool and again.fingerprint() == pipe.fingerprint()
    # re-saved from where it is now: the same folder, byte for byte
    again.save_pretrained(tmp_path / "copy")
    for name in ("generation.json", "caption_pool.json", "dit/model.safetensors", "tokenizer/model.safetensors"):
        assert (tmp_path / "copy" / name).read_bytes() == (moved / name).read_bytes(), name


def hub_cache(root, repo_id, folder, sha="0123456789abcdef0123456789abcdef01234567"):
    """Lay ``folder`` out as the Hub's cache holds a snapshot of ``repo_id`` at ``main``."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    shutil.copytree(folder, repo / "snapshots" / sha)


def test_a_captioned_tokenizer_from_the_hub_is_recorded_by_its_id(tmp_path, monkeypatch):
    """A tokenizer named by Hub repo id stays a name: the folder holds no copy, and loading fetches it (here from
    the Hub's cache, offline)."""
    pipe = tiny_pipeline()
    pipe.tokenizer.save_pretrained(tmp_path / "tok")
    hub_cache(tmp_path / "hub", "someone/tiny-tok", tmp_path / "tok")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # "someone/tiny-tok" is no folder here

    hub_tok = CaptionedTokenizer.from_pretrained("someone/tiny-tok")
    assert hub_tok.name_or_path == "someone/tiny-tok"
    config = GenerationConfig(tokenizer="someone/tiny-tok", classes=pipe.config.classes, latent_mean=[0.1] * 8,
                              latent_std=[2.0] * 8)
    hub_pipe = Pipeline(pipe.dit, hub_tok.model, config, pipe.pool)
    folder = hub_pipe.save_pretrained(tmp_path / "model")
    assert not (folder / "tokenizer").exists()
    assert json.loads((folder / "generation.json").read_text())["tokenizer"] == "someone/tiny-tok"
    assert torch.equal(draw(Pipeline.from_pretrained(folder)), draw(pipe))


def test_push_to_hub_uploads_the_whole_folder(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls.append(("create_repo", repo_id))

        def upload_folder(self, repo_id, folder_path, allow_patterns=None, **kwargs):
            from fnmatch import fnmatch
            from pathlib import Path

            files = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
            calls.append(("upload", repo_id, [f for f in files if any(fnmatch(f, a) for a in allow_patterns)]))
            shutil.copytree(folder_path, tmp_path / "uploaded")
            return "commit"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    pipe = tiny_pipeline()
    assert pipe.push_to_hub("me/tiny-pipe") == "commit"
    assert calls == [("create_repo", "me/tiny-pipe"),
                     ("upload", "me/tiny-pipe", ["caption_pool.json", "dit/config.json", "dit/model.safetensors",
                                                 "generation.json", "tokenizer/config.json",
                                                 "tokenizer/model.safetensors"])]
    # and back from the Hub (its cache, offline): from_pretrained("me/tiny-pipe")
    hub_cache(tmp_path / "hub", "me/tiny-pipe", tmp_path / "uploaded")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    assert torch.equal(draw(Pipeline.from_pretrained("me/tiny-pipe")), draw(pipe))


def test_an_old_folder_with_paths_still_loads_and_says_how_to_convert_it(tmp_path, caplog):
    """The layout before self-contained folders: the DiT at the top, the tokenizer and pool by a relative path with
    the absolute one as a fallback."""
    pipe = tiny_pipeline()
    want = draw(pipe)
    old = tmp_path / "run" / "model"
    pipe.dit.save_pretrained(old)
    pipe.tokenizer.save_pretrained(tmp_path / "run" / "tok")
    (tmp_path / "pool.json").write_text(json.dumps({"cat": ["a small cat", "a grey cat"], "dog": ["a big dog"]}))
    config = {"tokenizer": "../tok", "tokenizer_absolute": str(tmp_path / "run" / "tok"),
              "caption_pool": "../../pool.json", "caption_pool_absolute": str(tmp_path / "pool.json"),
              "latent_mean": [0.1] * 8, "latent_std": [2.0] * 8, "classes": ["cat", "dog"]}
    (old / "generation.json").write_text(json.dumps(config))
    with caplog.at_level("WARNING"):
        loaded = Pipeline.from_pretrained(old)
    notes = [r.getMessage() for r in caplog.records if "old generation folder" in r.getMessage()]
    assert len(notes) == 1 and "save_pretrained(NEW)" in notes[0] and "\n" not in notes[0]
    assert torch.equal(draw(loaded), want)
    # moved without its tokenizer: the absolute path recorded at save time still finds it
    shutil.move(old, tmp_path / "moved")
    assert torch.equal(draw(Pipeline.from_pretrained(tmp_path / "moved")), want)
    # converted: a self-contained folder that samples the same
    Pipeline.from_pretrained(tmp_path / "moved").save_pretrained(tmp_path / "new")
    shutil.rmtree(tmp_path / "run")
    (tmp_path / "pool.json").unlink()
    assert torch.equal(draw(Pipeline.from_pretrained(tmp_path / "new")), want)
    with pytest.raises(FileNotFoundError, match="the tokenizer is not at .* put it back or edit 'tokenizer'"):
        Pipeline.from_pretrained(tmp_path / "moved")


def test_a_damaged_folder_is_explained(tmp_path):
    folder = tiny_pipeline().save_pretrained(tmp_path / "model")
    shutil.rmtree(folder / "tokenizer")
    with pytest.raises(FileNotFoundError, match="tokenizer: no config.json"):
        Pipeline.from_pretrained(folder)
    (folder / "generation.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a generation config"):
        Pipeline.from_pretrained(folder)


def test_one_compatibility_check_for_dit_tokenizer_and_sampler():
    dit = DiTConfig.from_preset("dit-tiny", num_tokens=8, token_dim=8)
    check_compatible(dit, DiffusionConfig(), (8, 8), latent_stats=([0.0] * 8, [1.0] * 8))
    with pytest.raises(ValueError, match=r"model.num_tokens/token_dim = 8/8, but the tokenizer decodes \[4, 8\] tokens"):
        check_compatible(dit, tokens=(4, 8))
    with pytest.raises(ValueError, match="learned_variance=False must equal model.learn_sigma=True"):
        check_compatible(dit, DiffusionConfig(learned_variance=False))
    with pytest.raises(ValueError, match="model.time_inputs=2"):
        check_compatible(DiTConfig.from_preset("dit-tiny", learn_sigma=False),
                         DiffusionConfig(objective="meanflow", learned_variance=False))
    with pytest.raises(ValueError, match="latent statistics must have 8 channels"):
        check_compatible(dit, latent_stats=([0.0] * 4, [1.0] * 4))
    # the pipeline refuses the same
    tok = TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=4, text_in="none"))
    with pytest.raises(ValueError, match=r"the tokenizer decodes \[4, "):
        Pipeline(DiT(dit), tok, GenerationConfig(tokenizer=".", latent_mean=[0.0] * 8, latent_std=[1.0] * 8))
