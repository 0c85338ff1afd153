"""encode-dataset on WebDataset shards (a pattern): the cache equals the folder's, records the
sample keys, takes an evenly spread --max-images subset, and resumes after a SIGKILL."""

from pathlib import Path

import pytest
import torch

from textok.data import write_shards
from textok.latents import LatentCache, encode_dataset, shard_name


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_dataset, make_tokenizer):
    base = tmp_path_factory.mktemp("latents-shards")
    data = make_dataset(base / "data")  # 12 images, labels i % 3
    write_shards(data, base / "shards", samples_per_shard=3)
    return data, str(base / "shards" / "train-{000000..000003}.tar"), make_tokenizer(base / "tok"), base


def test_shards_cache_equals_folder_cache_and_spreads_max_images(setup):
    data, pattern, tok, base = setup
    a = LatentCache(encode_dataset(tok, pattern, base / "from-shards", shard_size=4, max_images=6, progress=False))
    b = LatentCache(encode_dataset(tok, data, base / "from-folder", shard_size=4, max_images=6, progress=False))
    assert a.keys == b.keys == [f"img{i:02d}.png" for i in (0, 2, 4, 6, 8, 10)]  # evenly spread, not the first 6
    assert sorted(a.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert torch.equal(a.tensors["tokens"], b.tensors["tokens"]) and a.captions == b.captions
    assert a.meta["shards"].endswith("train-{000000..000003}.tar") and a.meta["subset"] == "spread"
    assert Path(a.meta["data"]) == (base / "shards").resolve()  # the folder: text cache, caption pools


CHILD = """
import time
import textok.latents as L
save = L.save_state_dict
def slow_save(*args, **kwargs):
    save(*args, **kwargs)
    time.sleep(1.0)
L.save_state_dict = slow_save
L.encode_dataset({tok!r}, {pattern!r}, {out!r}, shard_size=2, batch_size=2, progress=False)
"""


@pytest.mark.slow
def test_shards_encode_resumes_after_sigkill(setup, tmp_path, kill_child_at):
    data, pattern, tok, base = setup
    out = tmp_path / "killed"
    kill_child_at(CHILD.format(tok=str(tok), pattern=pattern, out=str(out)), out / shard_name(1))
    assert not (out / shard_name(5)).exists() and not (out / "stats.json").exists()
    done = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    encode_dataset(tok, pattern, out, shard_size=2, batch_size=2, progress=False)  # the same command again
    assert all((out / name).stat().st_mtime_ns == t for name, t in done.items())  # finished shards kept
    resumed = LatentCache(out)
    straight = LatentCache(encode_dataset(tok, pattern, tmp_path / "straight", shard_size=2, batch_size=2,
                                          progress=False))
    assert resumed.keys == straight.keys == [f"img{i:02d}.png" for i in range(12)]
    assert torch.equal(resumed.tensors["tokens"], straight.tensors["tokens"])
