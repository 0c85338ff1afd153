"""Shard streams (textok.data.stream): patterns, a deterministic split over processes and
DataLoader workers, shuffle per epoch, exact skip for resume, tails dropped, 2 gloo processes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from textok.data import write_shards
from textok.data.stream import (ShardIndex, data_home, expand_braces, expand_shards, open_indexed,
                                open_stream, reader_plan, shard_counts, spread)

REPO = Path(__file__).resolve().parents[2]


def make_shards(root: Path, n: int = 48, per_shard: int = 12, size: int = 32) -> Path:
    """``n`` random ``size`` px images (folder format) written into ``n / per_shard`` train shards."""
    src = root / "src"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(src / f"{i:03d}.png")
        lines.append(json.dumps({"file": f"{i:03d}.png", "caption": f"image number {i}", "label": i % 3,
                                 "class": f"kind{i % 3}"}))
    (src / "captions.jsonl").write_text("\n".join(lines) + "\n")
    write_shards(src, root / "shards", samples_per_shard=per_shard)
    return root / "shards"


@pytest.fixture
def shards(tmp_path):
    return make_shards(tmp_path)


def _epoch_keys(stream, micro, batches):
    it = iter(stream)
    return [k for _ in range(batches) for k in next(it)["keys"]]


def test_patterns(shards):
    assert expand_braces("a-{0..2}.tar") == ["a-0.tar", "a-1.tar", "a-2.tar"]
    assert expand_braces("a-{000008..000010}.tar") == ["a-000008.tar", "a-000009.tar", "a-000010.tar"]
    assert expand_braces("{x,y}-{1..2}") == ["x-1", "x-2", "y-1", "y-2"]
    pattern = str(shards / "train-{000000..000003}.tar")
    assert [p.name for p in expand_shards(pattern)] == [f"train-{i:06d}.tar" for i in range(4)]
    assert len(expand_shards(str(shards / "train-*.tar"))) == 4
    assert data_home(pattern) == shards
    with pytest.raises(FileNotFoundError, match="1 of the 5 shards"):
        expand_shards(str(shards / "train-{000000..000004}.tar"))
    assert shard_counts(expand_shards(pattern)) == [12] * 4  # from shards.json
    (shards / "shards.json").unlink()
    assert shard_counts(expand_shards(pattern)) == [12] * 4  # counted from the tar headers


def test_one_epoch_is_the_data_set_and_epochs_reshuffle(shards):
    stream = open_stream(str(shards / "train-{000000..000003}.tar"), image_size=32, shuffle_buffer=8, seed=3)
    stream.configure(rank=0, world=1, slots=1, micro=4)
    assert stream.batches_in_epoch(0) == 12
    keys = _epoch_keys(stream, 4, 24)
    e0, e1 = keys[:48], keys[48:]
    assert sorted(e0) == sorted(e1) == sorted(f"{i:03d}.png" for i in range(48))
    assert e0 != e1  # shard order and buffer reseeded per epoch
    again = open_stream(str(shards / "train-{000000..000003}.tar"), image_size=32, shuffle_buffer=8, seed=3)
    assert _epoch_keys(again.configure(0, 1, 1, 4), 4, 24) == keys  # a function of the seed


def test_resume_skips_exactly_with_workers(shards):
    """A stream started at micro-batch K (2 DataLoader workers) continues the uninterrupted one
    bit for bit: the same keys and the same augmented pixels."""
    def batches(start, count):
        s = open_stream(shards, "train", image_size=32, train=True, shuffle_buffer=8, seed=1)
        s.configure(rank=0, world=1, slots=2, micro=3, start_micro=start)
        loader = torch.utils.data.DataLoader(s, batch_size=None, num_workers=2)
        it = iter(loader)
        return [next(it) for _ in range(count)]

    full = batches(0, 24)  # 16 micro-batches per epoch: crosses into epoch 1
    resumed = batches(13, 11)
    for a, b in zip(full[13:], resumed):
        assert a["keys"] == b["keys"]
        assert torch.equal(a["images"], b["images"])


def test_unequal_shards_drop_the_tail_never_repeat(tmp_path):
    shards = make_shards(tmp_path, n=30, per_shard=8)  # 8, 8, 8, 6
    s = open_stream(shards, "train", image_size=32, shuffle_buffer=4)
    for rank in range(2):
        s.configure(rank=rank, world=2, slots=1, micro=4)
    # the epoch length is the same for every reader: the least-filled one decides
    b = s.batches_in_epoch(0)
    assert b == 3  # 14 samples -> 3 micro-batches of 4 on both processes
    seen = []
    for rank in range(2):
        s.configure(rank=rank, world=2, slots=1, micro=4)
        seen += _epoch_keys(s, 4, b)
    assert len(seen) == len(set(seen)) == 24


def test_fewer_shards_than_readers_split_by_sample(tmp_path):
    shards = make_shards(tmp_path, n=24, per_shard=24)  # one shard, 4 readers
    counts = [24]
    plans = [reader_plan([0], counts, r, 2, w, 2) for r in range(2) for w in range(2)]
    assert {p[1] for p in plans} == {4} and sorted(p[2] for p in plans) == [0, 1, 2, 3]
    s = open_stream(shards, "train", image_size=32, shuffle_buffer=0)
    seen = []
    for rank in range(2):
        for slot in range(2):
            s.configure(rank=rank, world=2, slots=2, micro=3)
            seen += [k for b in itertools_take(s.slot_stream(slot), 2) for k in b["keys"]]
    assert sorted(seen) == sorted(f"{i:03d}.png" for i in range(24))


def itertools_take(it, n):
    return [next(it) for _ in range(n)]


def test_index_and_spread(shards):
    ds = open_indexed(str(shards / "train-{000000..000003}.tar"), "train", 32)
    assert isinstance(ds, ShardIndex) and len(ds) == 48
    assert [ds[i]["key"] for i in (0, 13, 47)] == ["000.png", "013.png", "047.png"]
    assert spread(48, 4) == [0, 12, 24, 36] and spread(5, None) == [0, 1, 2, 3, 4]


CHILD = """
import json, os, sys, torch
import torch.distributed as dist
dist.init_process_group("gloo")
from textok.data.stream import open_stream
s = open_stream({shards!r}, "train", image_size=32, shuffle_buffer=5, seed=7)
s.configure(rank=dist.get_rank(), world=dist.get_world_size(), slots=2, micro=3)
loader = torch.utils.data.DataLoader(s, batch_size=None, num_workers=2)
it = iter(loader)
n = 2 * s.batches_in_epoch(0)  # one epoch: both workers' micro-batches
keys = [k for _ in range(n) for k in next(it)["keys"]]
out = [None, None]
dist.all_gather_object(out, keys)
if dist.get_rank() == 0:
    json.dump(out, open({out!r}, "w"))
dist.barrier()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_two_workers_see_every_sample_once(shards, tmp_path):
    out = tmp_path / "keys.json"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(shards=str(shards), out=str(out)))
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
               "RANK": str(rank), "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(script)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    for p in procs:
        log, _ = p.communicate(timeout=300)
        assert p.returncode == 0, log[-3000:]
    per_rank = json.loads(out.read_text())
    keys = per_rank[0] + per_rank[1]
    assert len(keys) == len(set(keys)) == 48  # no duplicates ...
    assert set(keys) == {f"{i:03d}.png" for i in range(48)}  # ... and the whole data set
    assert not set(per_rank[0]) & set(per_rank[1])


def test_resume_with_other_processes_is_refused_or_resharded(shards):
    from textok.data.stream import stream_loader

    def loader(world, saved, reshard=False, step=5):
        s = open_stream(shards, "train", image_size=32, shuffle_buffer=4)
        return stream_loader(s, global_batch=8, accum=1, world=world, rank=0, seed=0, step=step, num_workers=0,
                             collate_fn=None, pin_memory=False, saved=saved, reshard=reshard, resumed=True)

    sampler, _ = loader(2, None, step=0)
    saved = sampler.state(5)  # written by 2 processes at step 5: 5 of 12 micro-batches of epoch 0
    assert saved["slot_positions"] == [[0, 5]] and saved["processes"] == 2
    assert loader(2, saved)[0].micro_batches(5) == 5  # same layout: continues exactly
    with pytest.raises(ValueError, match=r"processes: 2 != 1.*micro_batch: 4 != 8.*reshard_on_resume"):
        loader(1, saved)
    resharded, _ = loader(1, saved, reshard=True)
    assert (resharded.epoch_base, resharded.step_base) == (1, 5) and resharded.position(5) == (1, 0)
