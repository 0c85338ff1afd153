"""benchmarks/bench_caption_choice.py: the pool it times the cycle choice over."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_caption_choice import heldout_pool  # noqa: E402


def test_heldout_pool_holds_the_distinct_held_out_captions_per_class(tmp_path):
    rows = [("a cat", "cat", "val"), ("a cat", "cat", "val_unseen"), ("a grey cat", "cat", "val"),
            ("a dog", "dog", "train"), ("a big dog", "dog", "val_unseen"), ("a bird", "bird", "val")]
    (tmp_path / "captions.jsonl").write_text(
        "".join(json.dumps({"caption": c, "class": k, "split": s}) + "\n" for c, k, s in rows))
    assert heldout_pool(tmp_path, ["cat", "dog"]) == {0: ["a cat", "a grey cat"], 1: ["a big dog"]}
