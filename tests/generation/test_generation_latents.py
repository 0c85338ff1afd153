import os

import pytest
import torch

from textok import TexTok
from textok.data import collate, open_dataset
from textok.latents import LatentCache, encode_dataset, shard_name


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_dataset, make_tokenizer):
    base = tmp_path_factory.mktemp("latents")
    return make_dataset(base / "data"), make_tokenizer(base / "tok"), base


def test_latent_cache_round_trips(setup):
    data, tok, base = setup
    out = encode_dataset(tok, data, base / "cache", shard_size=5, batch_size=4, progress=False)
    cache = LatentCache(out)
    assert len(cache) == 12 and cache.meta["num_shards"] == 3
    assert sorted(p.name for p in out.glob("shard-*")) == [shard_name(i) for i in range(3)]
    ds = open_dataset(data, image_size=32)
    batch = collate([ds[i] for i in range(12)])
    model = TexTok.from_pretrained(tok)
    with torch.no_grad():
        expected = model.encode(batch["images"])
    torch.testing.assert_close(torch.stack([cache[i]["tokens"] for i in range(12)]), expected, atol=1e-5, rtol=1e-5)
    assert [cache[i]["caption"] for i in range(12)] == batch["captions"]
    assert [cache[i]["key"] for i in range(12)] == batch["keys"]
    assert cache.labels.tolist() == batch["labels"].tolist()
    assert cache.classes == ["kind0", "kind1", "kind2"] and cache.num_classes == 3
    flat = expected.reshape(-1, 8).double()
    torch.testing.assert_close(cache.mean.double(), flat.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache.std.double(), flat.std(0, unbiased=False), atol=1e-5, rtol=1e-5)
    z = cache.normalize(expected)
    assert z.reshape(-1, 8).mean(0).abs().max() < 1e-4


def test_encode_dataset_resumes_and_refuses_another_encoding(setup):
    data, tok, base = setup
    out = base / "cache-resume"
    encode_dataset(tok, data, out, shard_size=5, progress=False)
    first = LatentCache(out)[7]["tokens"]
    os.utime(out / shard_name(0), (1, 1))
    (out / shard_name(1)).unlink()
    with pytest.raises(ValueError, match="incomplete"):
        LatentCache(out)
    encode_dataset(tok, data, out, shard_size=5, progress=False)
    assert os.stat(out / shard_name(0)).st_mtime == 1  # finished shards are not redone
    assert torch.equal(LatentCache(out)[7]["tokens"], first)
    with pytest.raises(ValueError, match="another encoding"):
        encode_dataset(tok, data, out, shard_size=4, progress=False)


def test_moments_cache_stores_the_posterior(setup):
    data, tok, base = setup
    cache = LatentCache(encode_dataset(tok, data, base / "cache-moments", store="moments", max_images=5, progress=False))
    item = cache[0]
    assert set(item) >= {"mean", "logvar"} and "tokens" not in item
    assert item["mean"].shape == item["logvar"].shape == (8, 8)
    with pytest.raises(ValueError, match="store must be one of"):
        encode_dataset(tok, data, base / "x", store="sample")


def test_missing_cache_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="encode-dataset"):
        LatentCache(tmp_path)


def test_shard_progress_counts_skipped_images(tmp_path):
    """The encode bar's total counts every picked image, so skipped (bad) ones advance it too."""
    from textok.latents import _ShardEncoder
    from textok.models import TexTokConfig
    from textok.tokenizer import CaptionedTokenizer

    model = TexTok(TexTokConfig(image_size=32, patch_size=4, num_tokens=4, token_dim=8, width=32, depth=1, heads=2,
                                max_text_tokens=32, text_in="none")).eval()

    class Items(torch.utils.data.Dataset):  # items 1 and 2 are bad (None)
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i in (1, 2):
                return None
            return {"image": torch.zeros(3, 32, 32), "caption": f"c{i}", "label": 0, "key": f"k{i}"}

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    bar = Bar()
    _ShardEncoder(CaptionedTokenizer(model), "mode", batch_size=2, num_workers=0).write_shard(
        Items(), list(range(6)), tmp_path / "shard.safetensors", bar, where=(tmp_path, "all bad"))
    assert bar.n == 6
