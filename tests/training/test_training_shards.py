"""Training from WebDataset shards named by a pattern (textok.data.stream): the CLI trains; a run
killed with SIGKILL and resumed ends bit-equal to an uninterrupted one (2 DataLoader workers, the
resumed part crossing an epoch); 2 gloo processes train; another layout on resume is refused
(or restarts at the next epoch when asked); the text cache works for shards."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from textok.config import to_dict
from textok.data import write_shards
from textok.io import load_state_dict
from textok.training import TokenizerTask


def make_shards(root: Path, n: int = 24, per_shard: int = 6) -> Path:
    """``n`` 32 px images (folder format) written into ``n / per_shard`` train shards + a val shard."""
    src = root / "src"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n + 2):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(src / f"{i:03d}.png")
        lines.append(json.dumps({"file": f"{i:03d}.png", "caption": f"a picture of thing {i % 5}",
                                 "split": "val" if i >= n else "train"}))
    (src / "captions.jsonl").write_text("\n".join(lines) + "\n")
    write_shards(src, root / "shards", samples_per_shard=per_shard)
    return root / "shards"


@pytest.fixture
def pattern(tmp_path):
    return str(make_shards(tmp_path / "data") / "train-{000000..000003}.tar")


# 4 shards of 6, 2 loader workers (slots) of 12 samples, micro-batch 4: 3 + 3 micro-batches = 6 steps an epoch
STREAM = ["data.max_images=null", "data.num_workers=2", "data.shuffle_buffer=5", "data.augment=true",
          "data.caption_dropout=0.5", "model.text_in=none", "schedule.max_steps=8", "checkpoint.every=4"]

@pytest.mark.slow
def test_shards_kill_and_resume_is_bit_exact(pattern, tmp_path, make_config, train_and_kill, train_in_process):
    cfg = make_config(pattern, *STREAM)
    killed = tmp_path / "killed"
    marker = train_and_kill(pattern, STREAM, killed, step=4) / "trainer_state.json"
    assert not (killed / "checkpoints" / "step_00000008").exists()
    state = json.loads(marker.read_text())["stream"]
    assert state["processes"] == 1 and state["slots"] == 2 and state["micro_batch"] == 4
    assert state["slot_positions"] == [[0, 2], [0, 2]]  # 4 micro-batches: 2 from each worker

    assert train_in_process(cfg, killed, resume=True).step == 8  # steps 6, 7 are in epoch 1
    straight = tmp_path / "straight"
    train_in_process(cfg, straight)
    for name in ("model", "ema"):
        a = load_state_dict(killed / "checkpoints" / "step_00000008" / f"{name}.safetensors")
        b = load_state_dict(straight / "checkpoints" / "step_00000008" / f"{name}.safetensors")
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"
    assert json.loads((straight / "checkpoints" / "step_00000008" / "trainer_state.json").read_text())["epoch"] == 1


def test_cli_trains_on_a_pattern_and_refuses_another_layout(pattern, tmp_path, make_config, capsys):
    from textok.cli import main

    cfg = make_config(pattern, "data.max_images=null", "model.text_in=none", "schedule.max_steps=2",
                      "checkpoint.every=1", "logging.num_preview=2")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(to_dict(cfg)))
    out = tmp_path / "run"
    assert main(["train-tokenizer", "--config", str(config), "--out", str(out)]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert (out / "model" / "model.safetensors").is_file()
    # another number of loader workers (or processes) changes the stream: refused with a message ...
    more = ["schedule.max_steps=4", "data.num_workers=2"]
    assert main(["train-tokenizer", "--config", str(config), "--out", str(out), "--resume", *more]) == 2
    err = capsys.readouterr().err
    assert "slots: 1 != 2" in err and "cannot continue exactly" in err and "reshard_on_resume" in err
    # ... unless the stream may restart at the next epoch under the new layout
    assert main(["train-tokenizer", "--config", str(config), "--out", str(out), "--resume", *more,
                 "data.reshard_on_resume=true"]) == 0
    state = json.loads((out / "checkpoints" / "step_00000004" / "trainer_state.json").read_text())["stream"]
    assert state["step_base"] == 2 and state["epoch_base"] == 1 and state["slots"] == 2
    # max_images has no meaning for a stream
    with pytest.raises(ValueError, match="max_images"):
        TokenizerTask(make_config(pattern, "model.text_in=none")).train_dataset()


def test_text_cache_for_shards(pattern, minilm, make_config):
    from textok.conditioning import cached_embedding
    from textok.data import build_text_cache, load_text_cache

    path = build_text_cache(pattern, minilm, max_tokens=32, progress=False)
    assert path.parent.parent == Path(pattern).parent  # in the shards' folder
    cache = load_text_cache(pattern, "minilm")
    assert {f"a picture of thing {i}" for i in range(5)} <= set(cache.index)
    task = TokenizerTask(make_config(pattern, "data.max_images=null"))
    task.build_critic()
    task.setup(torch.device("cpu"))
    assert task.text.cache is not None  # training reads it as for folders
    assert cached_embedding(task.text.cache, ["a picture of thing 3"], task.text.max_tokens) is not None


@pytest.mark.slow
def test_two_processes_train_on_shards(pattern, tmp_path, train_two_processes):
    overrides = ["data.max_images=null", "data.num_workers=1", "model.text_in=none", "schedule.max_steps=2",
                 "checkpoint.every=2"]
    out = tmp_path / "two"
    train_two_processes(pattern, overrides, out)
    state = json.loads((out / "checkpoints" / "step_00000002" / "trainer_state.json").read_text())
    assert state["processes"] == 2 and state["stream"]["processes"] == 2 and state["stream"]["micro_batch"] == 2
    assert json.loads((out / "train_summary.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_folder_run_resumes_on_another_number_of_processes(emoji_root, tmp_path, make_config,
                                                          train_two_processes, train_in_process):
    """Image folders: the data order does not depend on the process count, so a run saved by 2
    processes continues on 1 (processes without saved RNG state are reseeded, with a warning)."""
    overrides = ["data.max_images=8", "model.text_in=none", "schedule.max_steps=2", "checkpoint.every=2"]
    out = tmp_path / "run"
    train_two_processes(emoji_root, overrides, out)
    cfg = make_config(emoji_root, *overrides[:-2], "schedule.max_steps=3", "checkpoint.every=2")
    assert train_in_process(cfg, out, resume=True).step == 3
    state = json.loads((out / "checkpoints" / "step_00000003" / "trainer_state.json").read_text())
    assert state["processes"] == 1 and "stream" not in state
