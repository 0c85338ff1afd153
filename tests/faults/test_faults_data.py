"""Data commands: never delete what they did not create; skip, never substitute; one-line errors."""

from __future__ import annotations

import json

import pytest

from textok.cli import main
from textok.data import fetch


def test_fetch_refuses_a_folder_it_did_not_create(tmp_path, capsys):
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="manifest.json"):
        fetch("photos", root)
    assert main(["data", "fetch", "photos", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(root) in err
    assert (root / "notes.txt").read_text() == "mine" and sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_fetch_replaces_its_own_folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"recipe": {"dataset": "photos", "files": []}}))
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    fetch("photos", root)
    assert json.loads((root / "manifest.json").read_text())["num_images"] == 18


class _FakeCaptioner:
    """``load_captioner``'s (model, image_processor, tokenizer), captioning every image "a test image"."""

    def generate(self, pixel_values, max_new_tokens):
        return [[0]] * len(pixel_values)

    def __call__(self, images, return_tensors):
        import torch

        return {"pixel_values": torch.zeros(len(images), 3, 8, 8)}

    def batch_decode(self, ids, skip_special_tokens):
        return ["a test image"] * len(ids)


def test_caption_keeps_lines_it_cannot_read(tmp_path, monkeypatch):
    from textok.data import captioning

    from .conftest import write_image

    fake = _FakeCaptioner()
    monkeypatch.setattr(captioning, "load_captioner", lambda path, device: (fake, fake, fake))
    for i in range(3):
        write_image(tmp_path / f"{i}.png", seed=i)
    original = [b'{"file": "0.png", "caption": "by hand", "split": "val"}', b"{not json",
                b'\xff\xfe broken bytes', b'{"file": "1.png", "split": "val"}']
    (tmp_path / "captions.jsonl").write_bytes(b"\n".join(original) + b"\n")
    report = captioning.caption_folder(tmp_path, "unused")
    assert report.total == 2 and report.num_bad == 0
    lines = (tmp_path / "captions.jsonl").read_bytes().split(b"\n")
    assert lines[:3] == original[:3]  # unreadable lines kept verbatim, in place
    assert json.loads(lines[3]) == {"file": "1.png", "split": "val", "caption": "a test image"}  # filled in
    assert json.loads(lines[4]) == {"file": "2.png", "caption": "a test image"} and lines[5:] == [b""]


def _with_bad_images(folder, bad=(2, 5)):
    for i in bad:
        (folder / "img" / f"{i}.png").write_bytes(b"not a png")
    return folder


def test_bad_image_is_skipped_not_replaced(folder):
    from textok.data import collate, open_dataset

    ds = open_dataset(_with_bad_images(folder), "train", image_size=32)
    items = [ds[i] for i in range(len(ds))]
    assert [it is None for it in items] == [False, False, True, False, False, True]
    batch = collate(items)
    assert batch["keys"] == ["img/0.png", "img/1.png", "img/3.png", "img/4.png"]  # no duplicates
    assert ds.report.num_bad == 2 and collate([None, None]) is None


def test_a_bad_file_is_reported_once(folder, caplog):
    """Training, its preview batch and evaluation open the same split: each bad file is warned
    about once per process, not once per reader (the counts stay per data set)."""
    from textok.data import open_dataset

    root = _with_bad_images(folder)
    with caplog.at_level("WARNING", logger="textok.data.datasets"):
        for _ in range(2):
            ds = open_dataset(root, "train", image_size=32)
            [ds[i] for i in range(len(ds))]
            assert ds.report.num_bad == 2
    assert sum("skipping bad sample" in r.getMessage() for r in caplog.records) == 2


def test_fid_stats_and_eval_batches_skip_bad_images(folder):
    from textok.data import open_dataset
    from textok.metrics import iterate_batches

    ds = open_dataset(_with_bad_images(folder), "train", image_size=32)
    keys = [k for b in iterate_batches(ds, None, 2) for k in b["keys"]]
    assert keys == ["img/0.png", "img/1.png", "img/3.png", "img/4.png"]


def test_encode_dataset_counts_only_usable_images(folder, tmp_path, capsys):
    from textok import TexTok, TexTokConfig
    from textok.latents import LatentCache

    tok = tmp_path / "tok"
    TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8, max_text_tokens=16,
                                    text_in="none")).save_pretrained(tok)
    _with_bad_images(folder)
    out = tmp_path / "cache"
    assert main(["encode-dataset", "--checkpoint", str(tok), "--data", str(folder), "--out", str(out),
                 "--batch-size", "4", "--shard-size", "4"]) == 0
    out_text = capsys.readouterr().out
    assert "cached 4 images" in out_text and "2 bad image(s) skipped" in out_text
    cache = LatentCache(out)
    assert len(cache) == 4 and cache.keys == ["img/0.png", "img/1.png", "img/3.png", "img/4.png"]


# ---- round two (issue 38): what training would trip on is caught by the data layer ----------------------------
def _entries(root, n=4, **extra):
    from .conftest import write_image

    out = []
    for i in range(n):
        write_image(root / f"{i}.png", seed=i)
        out.append({"file": f"{i}.png", "caption": f"picture {i}", **extra})
    return out


def _write_lines(root, lines):
    (root / "captions.jsonl").write_bytes(b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n"
                                                   for x in lines))


def test_a_lone_surrogate_caption_is_a_bad_entry(tmp_path, capsys):
    """Valid JSON ("\\ud800") that no encoder can take: a bad entry, not a crash of embed-text or training."""
    from textok.data import open_dataset
    from textok.data.text_cache import dataset_captions

    lines = _entries(tmp_path)
    _write_lines(tmp_path, [json.dumps(e).encode() for e in lines[:3]]
                 + [b'{"file": "3.png", "caption": "bad \\ud800 text"}'])
    ds = open_dataset(tmp_path, "train", image_size=32)
    assert len(ds) == 3 and ds.report.bad == [("captions.jsonl:4", ds.report.bad[0][1])]
    assert "not valid Unicode" in ds.report.bad[0][1]
    assert sorted(dataset_captions(tmp_path)) == [f"picture {i}" for i in range(3)]  # what embed-text embeds
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 1
    assert "captions.jsonl:4: text is not valid Unicode" in capsys.readouterr().out


def test_the_same_file_in_two_splits_is_caught(tmp_path):
    from textok.data import open_dataset

    lines = _entries(tmp_path, 4)
    lines[3]["split"] = "val"
    _write_lines(tmp_path, lines + [{"file": "0.png", "caption": "again", "split": "val"}])
    train, val = open_dataset(tmp_path, "train", image_size=32), open_dataset(tmp_path, "val", image_size=32)
    assert len(train) == 3 and train.report.num_bad == 0  # the first listing stands
    assert [r.key for r in val.records] == ["3.png"]
    assert val.report.bad == [("captions.jsonl:5", "0.png is also in split 'train' (line 1): an image in two splits")]


def test_paths_that_leave_the_root_by_a_link_are_refused(tmp_path):
    from textok.data import open_dataset

    from .conftest import write_image

    outside = write_image(tmp_path / "outside" / "secret.png")
    root = tmp_path / "data"
    lines = _entries(root, 3)
    (root / "link.png").symlink_to(outside)
    (root / "dir").symlink_to(outside.parent, target_is_directory=True)
    write_image(root / "inner" / "ok.png")
    (root / "inner_link.png").symlink_to(root / "inner" / "ok.png")  # a link that stays inside is fine
    _write_lines(root, lines + [{"file": "link.png", "caption": "x"}, {"file": "dir/secret.png", "caption": "x"},
                                {"file": "inner_link.png", "caption": "x"}])
    ds = open_dataset(root, "train", image_size=32)
    assert sorted(r.key for r in ds.records) == ["0.png", "1.png", "2.png", "inner_link.png"]
    assert sorted(ds.report.bad) == [("dir/secret.png", "path leaves the dataset folder"),
                                     ("link.png", "path leaves the dataset folder")]
    # a class tree too
    tree = tmp_path / "tree"
    write_image(tree / "cat" / "a.png")
    (tree / "cat" / "b.png").symlink_to(outside)
    ds = open_dataset(tree, "train", image_size=32)
    assert [r.key for r in ds.records] == ["cat/a.png"] and ds.report.bad[0][0] == "cat/b.png"


def test_a_bom_keeps_the_first_entry_and_a_bad_line_counts_once(tmp_path, capsys):
    from textok.data import check_dataset

    lines = _entries(tmp_path, 4)
    lines[2]["split"] = lines[3]["split"] = "val"
    body = b"".join(json.dumps(e).encode() + b"\n" for e in lines)
    (tmp_path / "captions.jsonl").write_bytes(b"\xef\xbb\xbf" + body + b"{not json\n")
    reports = check_dataset(tmp_path, image_size=32)
    assert reports["train"].total - reports["train"].num_bad == 2 and reports["val"].total == 2
    assert [r.num_bad for r in reports.values()] == [1, 0]  # the unreadable line once, with train
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 1
    assert "1 bad sample(s): 5 entries checked" in capsys.readouterr().out


def test_an_overlong_file_name_is_skipped(tmp_path, capsys):
    from textok.data import open_dataset

    lines = _entries(tmp_path, 3)
    _write_lines(tmp_path, lines + [{"file": "x" * 300 + ".png", "caption": "long"}])
    ds = open_dataset(tmp_path, "train", image_size=32)
    assert len(ds) == 3 and "cannot be read (File name too long)" in ds.report.bad[0][1]
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 1
    assert "1 bad sample(s)" in capsys.readouterr().out


def _truncated_shards(tmp_path, n=8, per_shard=4):
    from textok.data.shard_writer import write_shards

    src = tmp_path / "src"
    _write_lines(src, _entries(src, n))
    dst = tmp_path / "shards"
    write_shards(src, dst, samples_per_shard=per_shard)
    shard = dst / "train-000001.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 3])  # a download cut short
    return dst


def test_data_check_reports_a_truncated_shard(tmp_path, capsys):
    dst = _truncated_shards(tmp_path)
    assert main(["data", "check", str(dst), "--image-size", "32"]) == 1
    out = capsys.readouterr().out
    assert "train-000001.tar: truncated or corrupt shard (unexpected end of data)" in out and "Traceback" not in out
    assert "1 bad sample(s)" in out


def test_a_truncated_shard_is_skipped_and_counted_by_every_reader(tmp_path):
    from textok.data.stream import open_indexed, open_stream, shard_captions, shard_counts

    dst = _truncated_shards(tmp_path)
    shards = sorted(dst.glob("train-*.tar"))
    # the stream plans with the recorded count and pads the lost samples as skipped (None) items: positions
    # stay the plan's (exact resume), and a short batch counts them
    assert shard_counts(shards) == [4, 4]
    stream = open_stream(dst, "train", image_size=32, train=False)
    stream.configure(0, 1, 1, 4, collate_fn=lambda items: items)
    batches = stream.slot_stream(0)
    first, second = next(batches), next(batches)
    assert sum(x is not None for x in first) == 4
    assert 3 <= sum(x is None for x in second) <= 4
    assert [name for name, _ in stream.report.bad] == ["train-000001.tar"]
    # encode-dataset's reader: indexed up to the damage, the shard reported once
    index = open_indexed(dst, "train", 32)
    assert 4 <= len(index) < 8 and [name for name, _ in index.report.bad] == ["train-000001.tar"]
    # embed-text: the readable captions
    assert 4 <= len(set(shard_captions(shards))) < 8
    # a shard replaced by an intact file of another size is counted again, not trusted
    shards[1].write_bytes(shards[0].read_bytes())
    assert shard_counts(shards) == [4, 4]


def test_a_lone_surrogate_in_a_shard_caption_is_a_bad_sample(tmp_path):
    import io
    import tarfile

    from textok.data.shards import ShardDataset
    from textok.data.stream import shard_captions

    from .conftest import write_image

    png = write_image(tmp_path / "a.png").read_bytes()
    with tarfile.open(tmp_path / "train-000000.tar", "w") as tar:
        for key, meta in (("0", b'{"caption": "fine"}'), ("1", b'{"caption": "bad \\ud800"}')):
            for ext, data in (("png", png), ("json", meta)):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    ds = ShardDataset(tmp_path, "train", image_size=32)
    assert [item["caption"] for item in ds] == ["fine"]
    assert ds.report.num_bad == 1 and "not valid Unicode" in ds.report.bad[0][1]
    assert list(shard_captions([tmp_path / "train-000000.tar"])) == ["fine"]  # what embed-text embeds


# ---- round three (issue 46) ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dangling link", "folder"])
def test_a_captions_file_that_is_not_a_regular_file_is_refused(tmp_path, capsys, kind):
    """Read as a class tree instead, the folder "checked OK"."""
    from textok.data import open_dataset

    from .test_faults_cli import _one_line_error as one_line_error

    _entries(tmp_path)
    (tmp_path / "sub").mkdir()  # what a class tree would take for a class
    captions = tmp_path / "captions.jsonl"
    captions.symlink_to(tmp_path / "moved.jsonl") if kind == "dangling link" else captions.mkdir()
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 2
    one_line_error(capsys, str(captions), "not a regular file", "link to nothing" if kind == "dangling link" else "folder")
    with pytest.raises(ValueError, match="not a regular file"):
        open_dataset(tmp_path, "train", image_size=32)


def test_a_repeated_key_makes_a_bad_entry(tmp_path, capsys):
    from textok.data import open_dataset

    lines = _entries(tmp_path, 3)
    _write_lines(tmp_path, lines[:2] + [b'{"file": "2.png", "caption": "two", "file": "0.png"}'])
    ds = open_dataset(tmp_path, "train", image_size=32)
    assert [r.key for r in ds.records] == ["0.png", "1.png"]  # not 0.png twice, not 2.png under another's name
    assert ds.report.bad == [("captions.jsonl:3", 'the key "file" is given twice (which one is meant?)')]
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 1
    assert "captions.jsonl:3: the key \"file\" is given twice" in capsys.readouterr().out


_KILLED_SHARDS = """
import os, signal, sys
import textok.data.shard_writer as w
real, seen = w.load_image, []
def load(path):
    seen.append(path)
    if len(seen) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path)
w.load_image = load
w.write_shards(sys.argv[1], sys.argv[2], samples_per_shard=2)
"""


def test_a_shards_folder_killed_mid_write_is_unfinished_until_rerun(tmp_path, capsys, make_config):
    import subprocess
    import sys

    from textok.data.shard_writer import write_shards
    from textok.data.stream import open_split

    from .test_faults_cli import _one_line_error as one_line_error

    src = tmp_path / "src"
    src.mkdir()
    _write_lines(src, _entries(src, 6))
    dst = tmp_path / "shards"
    proc = subprocess.run([sys.executable, "-c", _KILLED_SHARDS, str(src), str(dst)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert (dst / "train-000000.tar").is_file() and list(dst.glob(".train-000001.tar.*.tmp"))
    # data check no longer says "OK: 0 entries checked": the unfinished split is a bad one
    assert main(["data", "check", str(dst), "--image-size", "32"]) == 1
    out = capsys.readouterr().out
    assert "split 'train' is unfinished" in out and "run it again" in out and "OK" not in out
    with pytest.raises(ValueError, match="unfinished"):  # training refuses it the same way
        open_split(dst, "train", 32, False, False, 0, "skip")
    write_shards(src, dst, samples_per_shard=2)  # the rerun finishes it and removes the killed run's temporary
    assert not list(dst.glob(".*.tmp"))
    assert main(["data", "check", str(dst), "--image-size", "32"]) == 0
    assert "OK: 6 entries checked" in capsys.readouterr().out
    # a folder with no split at all is not "OK: 0 entries" either
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "shards.json").write_text('{"format": "webdataset", "splits": {}}')
    (empty / "x.tar").write_bytes(b"")
    assert main(["data", "check", str(empty)]) == 2
    one_line_error(capsys, str(empty), "no split")


def test_data_check_stays_linear_in_bad_entries(tmp_path, capsys):
    """100,000 lines naming missing files took 114 s (a list scan per bad entry); 10,000 took 1.5 s."""
    import time

    from textok.data.formats import BadSampleReport

    lines = [{"file": f"missing/{i}.png", "caption": "gone"} for i in range(100_000)]
    _write_lines(tmp_path, _entries(tmp_path, 1) + lines)
    t = time.process_time()  # CPU time: the machine may be shared, and the wall clock says little then
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 1
    seconds = time.process_time() - t
    assert "100000 bad sample(s): 100001 entries checked" in capsys.readouterr().out
    assert seconds < 40, seconds
    report = BadSampleReport()  # counted once however often it is added, in constant time
    for _ in range(3):
        report.add("a.png", "listed but not found")
    report.bad.append(("b.png", "edited directly"))
    report.add("b.png", "edited directly")
    assert report.num_bad == 2


def test_control_characters_in_names_are_printed_escaped(tmp_path, capsys, caplog):
    from textok.data import open_dataset

    name = "evil\x1b[2J\x07name.png"
    _write_lines(tmp_path, _entries(tmp_path, 2) + [{"file": name, "caption": "x"}])
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "evil\\x1b[2J\\x07name.png: listed but not found" in out
    with pytest.raises(ValueError) as err:
        open_dataset(tmp_path, "train", image_size=32, on_bad_sample="error")
    assert "\x1b" not in str(err.value) and "evil\\x1b" in str(err.value)


def test_a_data_root_in_use_is_not_rebuilt_under_a_training(tmp_path, capsys, make_config):
    """`data fetch` rebuilding a root a training read: the training went on with the new images under the old
    captions. Now the fetch is refused while the training holds the root, and a training does not start on a
    root being rebuilt."""
    from textok.data.formats import DataRootLock
    from textok.training import TokenizerTask

    from .test_faults_cli import _one_line_error as one_line_error

    root = tmp_path / "scenes"
    fetch("scenes", root, count=16, size=12)
    before = (root / "captions.jsonl").read_bytes()
    dataset = TokenizerTask(make_config(root, "model.text_in=none", "model.image_size=12")).train_dataset()
    for rebuild in (["--count", "20"], ["--seed", "1"]):
        assert main(["data", "fetch", "scenes", "--root", str(root), "--size", "12", *rebuild]) == 2
        one_line_error(capsys, f"--root {root}", "in use by another textok process")
    assert (root / "captions.jsonl").read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["scenes"]
    # the same recipe only checks the files: not a rebuild, not refused
    assert main(["data", "fetch", "scenes", "--root", str(root), "--count", "16", "--size", "12"]) == 0
    capsys.readouterr()
    del dataset  # the training ends: its lock goes with its data set
    assert main(["data", "fetch", "scenes", "--root", str(root), "--count", "20", "--size", "12"]) == 0
    assert json.loads((root / "manifest.json").read_text())["recipe"]["count"] == 20
    with DataRootLock(root, exclusive=True):  # a fetch rebuilding it: a training refuses to start
        with pytest.raises(ValueError, match="being rebuilt by `textok data fetch`"):
            TokenizerTask(make_config(root, "model.text_in=none", "model.image_size=12")).train_dataset()


@pytest.mark.parametrize("option, value, needle", [("--size", "100000", "--size must lie in [12, 1024]"),
                                                   ("--seed", "-1", "--seed must be an integer in [0,"),
                                                   ("--count", "0", "--count must lie in [1,")])
def test_scene_options_are_checked_before_any_work(tmp_path, capsys, option, value, needle):
    """--size 100000 grew to several GB in seconds and left a temporary folder."""
    import time

    from .test_faults_cli import _one_line_error as one_line_error

    args = {"--size": "32", "--count": "1", option: value}
    t = time.process_time()
    assert main(["data", "fetch", "scenes", "--root", str(tmp_path / "s"), *[x for kv in args.items() for x in kv]]) == 2
    one_line_error(capsys, needle)
    assert time.process_time() - t < 5 and list(tmp_path.iterdir()) == []
