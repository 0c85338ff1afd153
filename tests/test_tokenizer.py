"""CaptionedTokenizer: the TexTok with its captions (encode / decode / reconstruct, folders, the Hub)."""

import dataclasses
import json

import pytest
import torch

from textok import CaptionedTokenizer, TexTok
from textok.conditioning import TextConditioner
from textok.tokenizer import load_tokenizer


@pytest.fixture
def tok(tiny_config, minilm):
    return CaptionedTokenizer(TexTok(tiny_config).eval(), minilm)


def images(n=2, size=32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_encode_decode_reconstruct_follow_the_model_with_the_conditioners_text(tok, minilm):
    x = images()
    tokens = tok.encode(x, ["a red apple", "a blue fish"])
    assert tokens.shape == (2, 8, tok.config.token_dim) == (2, *tok.token_shape)
    # the same text as training builds it: the encoder cut at max_text_tokens
    text = TextConditioner(minilm, tok.config.max_text_tokens, use_cache=False)(["a red apple", "a blue fish"])
    with torch.no_grad():
        want_tokens = tok.model.encode(x, text)
        want = tok.model.decode(want_tokens, text).clamp(-1, 1)
    torch.testing.assert_close(tokens, want_tokens)
    rec = tok.decode(tokens, ["a red apple", "a blue fish"])
    assert rec.dtype == torch.float32 and rec.shape == x.shape and rec.abs().max() <= 1
    torch.testing.assert_close(rec, want)
    torch.testing.assert_close(tok.reconstruct(x, ["a red apple", "a blue fish"]), want)
    # one caption for the batch is broadcast
    torch.testing.assert_close(tok.encode(x, "a red apple"), tok.encode(x, ["a red apple"] * 2))


def test_reconstruct_with_other_decode_captions_is_a_caption_swap(tok):
    x = images()
    tokens = tok.encode(x, ["a red apple", "a blue fish"])
    swapped = tok.reconstruct(x, ["a red apple", "a blue fish"], decode_captions=["a cat", "a dog"])
    torch.testing.assert_close(swapped, tok.decode(tokens, ["a cat", "a dog"]))
    assert not torch.allclose(swapped, tok.reconstruct(x, ["a red apple", "a blue fish"]))


def test_a_text_conditioned_tokenizer_needs_captions_and_the_right_count(tok):
    with pytest.raises(ValueError, match="text-conditioned .* give --caption"):
        tok.encode(images())
    with pytest.raises(ValueError, match="give one caption, or one per image"):
        tok.encode(images(3), ["a", "b"])


def test_the_baseline_is_the_same_object_ignoring_captions(tiny_config):
    base = CaptionedTokenizer(TexTok(dataclasses.replace(tiny_config, text_in="none")).eval())
    assert not base.uses_text and base.text is None and base.condition(["anything"]) is None
    x = images()
    torch.testing.assert_close(base.reconstruct(x), base.reconstruct(x, ["a cat", "a dog"]))
    torch.testing.assert_close(base.reconstruct(x), base.model.decode(base.model.encode(x)).clamp(-1, 1))


def test_text_on_one_side_only_embeds_for_that_side(tiny_config, minilm):
    dec_only = CaptionedTokenizer(TexTok(dataclasses.replace(tiny_config, text_in="decoder")).eval(), minilm)
    x = images()
    tokens = dec_only.encode(x)  # the tokenizer sees no text: no caption needed
    with pytest.raises(ValueError, match="give --caption"):
        dec_only.decode(tokens)
    torch.testing.assert_close(dec_only.reconstruct(x, "a cat"), dec_only.decode(tokens, "a cat"))


def test_captions_are_cut_at_the_models_budget_whatever_embeds_them(tok, minilm):
    long = "a red apple on a wooden table " * 10  # far over max_text_tokens (16)
    assert minilm([long]).embeddings.shape[1] > tok.config.max_text_tokens
    text = tok.condition(long, 2)
    assert text.embeddings.shape[:2] == (2, tok.config.max_text_tokens)
    # the same as the model's own conditioner (as training embeds them) given as the tokenizer's text
    own = CaptionedTokenizer(tok.model, TextConditioner.for_tokenizer(tok.config, encoder=minilm, use_cache=False))
    torch.testing.assert_close(text.embeddings, own.condition([long, long]).embeddings)


def test_choose_captions_takes_the_lowest_cycle_error(tok, tiny_config, minilm):
    """Each token set gets the candidate under which decoding and re-encoding moves its tokens least."""
    tokens = tok.encode(images(3), ["a red apple", "a blue car", "a green frog"])
    cands = [["a red apple", "a blue car", "a green frog"], ["a small cat", "a blue car"], ["only one"]]
    chosen = tok.choose_captions(tokens, cands, batch_size=2)  # chunks across token sets
    # by hand: the model's cycle error under each candidate, embedded as training embeds captions
    embed = TextConditioner(minilm, tok.config.max_text_tokens, use_cache=False)
    for i in (0, 1):
        errors = [tok.model.cycle_error(tokens[i : i + 1], embed([c])).item() for c in cands[i]]
        assert len(set(errors)) == len(errors)  # a real choice, not a tie
        assert chosen[i] == cands[i][errors.index(min(errors))]
    assert chosen[2] == "only one"  # a single candidate is taken as is
    again = tok.cycle_error(tokens, "a red apple")  # one caption for all token sets
    assert again.shape == (3,) and (again >= 0).all()
    # a detokenizer without text: nothing to choose, the first candidate of each list
    plain = CaptionedTokenizer(TexTok(dataclasses.replace(tiny_config, text_in="none")).eval())
    assert plain.choose_captions(tokens, cands) == ["a red apple", "a small cat", "only one"]
    with pytest.raises(ValueError, match="2 candidate lists for 3 token sets"):
        tok.choose_captions(tokens, cands[:2])
    with pytest.raises(ValueError, match="token set 1 has no candidate"):
        tok.choose_captions(tokens, [["a"], [], ["b"]])


def test_save_and_from_pretrained_round_trip_one_folder(tok, tmp_path, minilm):
    folder = tok.save_pretrained(tmp_path / "tok")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["text_encoder"] == "minilm"
    again = CaptionedTokenizer.from_pretrained(folder, text=minilm)
    x = images()
    torch.testing.assert_close(again.reconstruct(x, "a cat"), tok.reconstruct(x, "a cat"))
    assert CaptionedTokenizer.load_config(folder) == tok.config
    # load_tokenizer takes a folder, a TexTok or a CaptionedTokenizer
    assert load_tokenizer(tok) is tok
    assert isinstance(load_tokenizer(tok.model, text=minilm), CaptionedTokenizer)
    with pytest.raises(FileNotFoundError, match="no config.json"):  # a path is never taken for a Hub repo id
        CaptionedTokenizer.from_pretrained(tmp_path / "missing")


def test_what_reads_as_a_hub_repo_id(tmp_path, monkeypatch):
    from textok.hub import is_repo_id

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert is_repo_id("someone/textok-tiny") and is_repo_id("org.x/name_1.0")
    assert not is_repo_id("runs/model")  # a missing folder under a folder that is here
    assert not is_repo_id("model") and not is_repo_id("a/b/c") and not is_repo_id("./a/b") and not is_repo_id("/a/b")


def _hub_cache(root, repo_id, folder, sha="0123456789abcdef0123456789abcdef01234567"):
    """Lay ``folder``'s files out as the Hub's cache holds a snapshot of ``repo_id`` at ``main``."""
    org, name = repo_id.split("/")
    repo = root / f"models--{org}--{name}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snap = repo / "snapshots" / sha
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    return snap


def test_from_pretrained_takes_a_hub_repo_id_from_the_cache_offline(tok, tmp_path, monkeypatch, minilm):
    tok.save_pretrained(tmp_path / "tok")
    home = tmp_path / "hf"
    snap = _hub_cache(home / "hub", "someone/textok-tiny", tmp_path / "tok")
    (snap / "pytorch_model.bin").write_bytes(b"not to be read")  # a pickle in the repo is never used
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # any attempt at the network fails the test
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd, "get_session", lambda: pytest.fail("the network was used"), raising=False)
    hub = CaptionedTokenizer.from_pretrained("someone/textok-tiny", text=minilm)
    x = images()
    torch.testing.assert_close(hub.reconstruct(x, "a cat"), tok.reconstruct(x, "a cat"))
    # HF_HUB_CACHE wins over HF_HOME
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set"):
        CaptionedTokenizer.from_pretrained("someone/textok-tiny")
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    with pytest.raises(FileNotFoundError, match="no snapshot of the repo 'someone/other'"):
        CaptionedTokenizer.from_pretrained("someone/other")


def test_push_to_hub_creates_the_repo_and_uploads_the_folder(tok, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls.append(("create_repo", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, allow_patterns=None, **kwargs):
            from pathlib import Path

            files = sorted(p.name for p in Path(folder_path).iterdir())
            config = json.loads((Path(folder_path) / "config.json").read_text())
            calls.append(("upload_folder", repo_id, files, allow_patterns, config["num_tokens"]))
            return "commit"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert tok.push_to_hub("me/textok-tiny", private=True, token="t") == "commit"
    assert calls == [("init", "t"), ("create_repo", "me/textok-tiny", True, True),
                     ("upload_folder", "me/textok-tiny", ["config.json", "model.safetensors"],
                      ["config.json", "*.safetensors"], tok.config.num_tokens)]
