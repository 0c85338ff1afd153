"""Outputs: no command replaces a file it was not told to (--overwrite), writes over its input, or
writes two of its outputs to one file; `data shards` follows the `data fetch` folder rule."""

from __future__ import annotations

import json
import os

import pytest

from textok.cli import main

from .conftest import write_image, write_jsonl
from .test_faults_cli import _one_line_error, _tiny_tokenizer


@pytest.fixture
def tok(tmp_path):
    return _tiny_tokenizer(tmp_path / "tok")


def test_reconstruct_never_replaces_its_input(tmp_path, tok, capsys):
    photo = write_image(tmp_path / "photo.png", size=(32, 32))
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):  # not even when told to: the input would be gone before it is read
        assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(photo), *extra]) == 2
        _one_line_error(capsys, "--out", str(photo), "is the input")
    # nor through another spelling of the same file
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(tmp_path / "." / "photo.png")]) == 2
    _one_line_error(capsys, "is the input")
    assert photo.read_bytes() == before


def test_reconstruct_outputs_never_collide_nor_clobber(tmp_path, tok, capsys):
    a, b, y = (write_image(tmp_path / p, size=(32, 32), seed=i) for i, p in enumerate(["a/x.png", "b/x.png", "y.png"]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "y_rec.png").write_bytes(b"the user's own file")
    # a/x.png and b/x.png would both be out/x_rec.png: refused, nothing written
    assert main(["reconstruct", str(a), str(b), str(y), "--checkpoint", str(tok), "--out", str(out)]) == 2
    _one_line_error(capsys, "x_rec.png", "same file")
    assert sorted(p.name for p in out.iterdir()) == ["y_rec.png"]
    # an existing output is the user's: refused without --overwrite
    assert main(["reconstruct", str(a), str(y), "--checkpoint", str(tok), "--out", str(out)]) == 2
    _one_line_error(capsys, "y_rec.png", "--overwrite")
    assert (out / "y_rec.png").read_bytes() == b"the user's own file" and not (out / "x_rec.png").exists()
    assert main(["reconstruct", str(a), str(y), "--checkpoint", str(tok), "--out", str(out), "--overwrite"]) == 0
    assert "reconstructed 2 image(s)" in capsys.readouterr().out
    assert (out / "y_rec.png").read_bytes()[:4] == b"\x89PNG" and (out / "x_rec.png").is_file()


@pytest.mark.parametrize("command", [
    ["sample", "--checkpoint", "{missing}", "--class", "0"],
    ["sample-fid", "--checkpoint", "{missing}", "--num", "2"],
    ["fid-stats", "--data", "{missing}"],
])
def test_existing_outputs_are_refused_before_any_work(tmp_path, capsys, command):
    out = tmp_path / ("o.npz" if command[0] != "sample" else "o.png")
    out.write_bytes(b"keep me")
    args = [a.format(missing=tmp_path / "nothing-here") for a in command]
    assert main([*args, "--out", str(out)]) == 2
    # the output is named, not the missing checkpoint / data: the check comes first
    _one_line_error(capsys, f"--out {out}", "exists", "--overwrite")
    assert out.read_bytes() == b"keep me"
    # with --overwrite the command goes on (and fails on the missing input instead)
    assert main([*args, "--out", str(out), "--overwrite"]) == 2
    assert "nothing-here" in capsys.readouterr().err and out.read_bytes() == b"keep me"


def _folder_data(root, n=6):
    entries = []
    for i in range(n):
        write_image(root / f"{i}.png", seed=i)
        entries.append({"file": f"{i}.png", "caption": f"picture {i}", "split": "val" if i >= n - 2 else "train"})
    write_jsonl(root / "captions.jsonl", entries)
    return root


def test_data_shards_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    src = _folder_data(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "val-000000.tar").write_bytes(b"the user's own tar")
    assert main(["data", "shards", str(src), str(dst)]) == 2
    _one_line_error(capsys, str(dst), "not empty", "shards.json")
    assert sorted(p.name for p in dst.iterdir()) == ["val-000000.tar"]
    assert (dst / "val-000000.tar").read_bytes() == b"the user's own tar"
    # the source itself is a non-empty folder of the user's: never a destination
    assert main(["data", "shards", str(src), str(src)]) == 2
    _one_line_error(capsys, "not empty")


def test_data_shards_rerun_leaves_no_stale_shard(tmp_path, capsys):
    from textok.data import open_dataset

    src = _folder_data(tmp_path / "src", n=10)  # train 8, val 2
    dst = tmp_path / "dst"
    assert main(["data", "shards", str(src), str(dst), "--samples-per-shard", "2"]) == 0
    assert sorted(p.name for p in dst.glob("train-*.tar")) == [f"train-00000{i}.tar" for i in range(4)]
    # a rerun into its own folder with larger shards replaces them all: no train-000002.tar left over
    assert main(["data", "shards", str(src), str(dst), "--samples-per-shard", "5"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in dst.glob("*.tar")) == ["train-000000.tar", "train-000001.tar", "val-000000.tar"]
    index = json.loads((dst / "shards.json").read_text())
    assert index["splits"]["train"]["counts"] == [5, 3]
    assert sum(1 for _ in open_dataset(dst, "train", image_size=32)) == 8
    # one split again: the other split stays as it was
    assert main(["data", "shards", str(src), str(dst), "--split", "val", "--samples-per-shard", "1"]) == 0
    index = json.loads((dst / "shards.json").read_text())
    assert index["splits"]["train"]["counts"] == [5, 3] and index["splits"]["val"]["shards"] == [
        "val-000000.tar", "val-000001.tar"]
    # the folder holds shards of src: another source is refused, not mixed in
    other = _folder_data(tmp_path / "other")
    assert main(["data", "shards", str(other), str(dst), "--split", "val"]) == 2
    _one_line_error(capsys, "another source", str(src.resolve()))


def test_stale_shard_counts_are_not_trusted(tmp_path):
    """shards.json records each shard's size with its count: a shard replaced since is counted again."""
    from textok.data.shard_writer import write_shards
    from textok.data.stream import shard_counts

    src = _folder_data(tmp_path / "src", n=6)
    dst = tmp_path / "dst"
    write_shards(src, dst, samples_per_shard=2)
    shards = sorted(dst.glob("train-*.tar"))
    assert shard_counts(shards) == [2, 2]
    import tarfile

    with tarfile.open(shards[0]) as full, tarfile.open(shards[1], "w") as one:  # another file, one sample
        for member in full.getmembers()[:3]:
            one.addfile(member, full.extractfile(member))
    assert shard_counts(shards) == [2, 1]


# ---- round three (issue 46): a route through a missing folder, full disks, two writers, a kill's leftovers -------
def test_an_output_through_a_missing_folder_is_checked_where_it_lands(tmp_path, tok, capsys):
    photo = write_image(tmp_path / "photo.png", size=(32, 32))
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's own file")
    via = tmp_path / "nothere" / ".."  # stat() of nothere/../x fails, yet a write there lands on ./x
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(via / "mine.png")]) == 2
    _one_line_error(capsys, f"--out {via / 'mine.png'}", "exists", "--overwrite")
    for extra in ([], ["--overwrite"]):  # the input: never, whatever the route
        assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(via / "photo.png"), *extra]) == 2
        _one_line_error(capsys, "is the input")
    assert main(["fid-stats", "--data", str(tmp_path / "no-data"), "--out", str(via / "mine.png")]) == 2
    _one_line_error(capsys, "exists")
    assert mine.read_bytes() == b"the user's own file" and photo.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "nothere").exists()  # no folder made for a refused output
    # a new output by that route is written where it lands, and makes no folder on the way
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(via / "new.png")]) == 0
    assert (tmp_path / "new.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "nothere").exists()
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(via / "recs")]) == 0  # a folder
    assert (tmp_path / "recs" / "photo_rec.png").is_file() and not (tmp_path / "nothere").exists()


def test_a_full_disk_and_a_read_only_folder_name_the_users_file(tmp_path, tok, capsys, monkeypatch):
    import errno
    import tempfile

    from PIL import Image

    import textok.io

    photo = write_image(tmp_path / "photo.png", size=(32, 32))
    out = tmp_path / "out" / "grid.png"

    def full(self, fp, *a, **k):  # what a full disk raises inside a writer: an errno, no file name
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(Image.Image, "save", full)
        assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(out)]) == 2
    _one_line_error(capsys, f"{out}: No space left on device")
    assert not out.exists() and not list(out.parent.glob(".*.tmp"))

    def read_only(prefix, suffix, dir):  # what a read-only folder raises: the temporary's name
        raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}abcdefgh{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(out)]) == 2
    line = _one_line_error(capsys, f"{out}: Permission denied")
    assert ".tmp" not in line


def test_a_second_writer_of_one_new_output_is_refused(tmp_path, tok, capsys, monkeypatch):
    """Two `reconstruct` runs to the same new --out: both pass the check; the later must not replace the earlier."""
    import textok.inference

    photo = write_image(tmp_path / "photo.png", size=(32, 32))
    out = tmp_path / "grid.png"
    real = textok.inference.make_grid

    def meanwhile(*a, **k):  # the other run finishes first, while this one computes
        out.write_bytes(b"the other run's grid")
        return real(*a, **k)

    monkeypatch.setattr(textok.inference, "make_grid", meanwhile)
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(out)]) == 2
    _one_line_error(capsys, str(out), "created by another process", "--overwrite")
    assert out.read_bytes() == b"the other run's grid" and not list(tmp_path.glob(".grid.png.*"))
    # told to replace, it does
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


_KILLED_WRITER = """
import os, signal, sys
from textok.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    import torch

    from textok.io import FolderLock, save_state_dict

    target = tmp_path / "model" / "model.safetensors"
    target.parent.mkdir()
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], capture_output=True)
    assert proc.returncode == -9
    left = list(target.parent.glob(".model.safetensors.*.tmp"))
    assert len(left) == 1 and not target.exists()  # what a SIGKILL leaves
    live = target.parent / f".model.safetensors.textok{os.getppid()}.abcdefgh.tmp"  # a running writer's: kept
    live.write_bytes(b"in progress")
    save_state_dict({"w": torch.zeros(2)}, target)
    assert target.is_file() and not left[0].exists() and live.exists()
    # the run folder's owner removes them at the start (model/, checkpoints/step_N/), not only on the same write
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path / "model" / "config.json")])
    assert len(list(target.parent.glob(".config.json.*.tmp"))) == 1
    with FolderLock(tmp_path):
        assert not list(target.parent.glob(".config.json.*.tmp")) and live.exists()


_KILLED_FETCH = """
import importlib, os, signal, sys
fetch = importlib.import_module("textok.data.fetch")  # the module (textok.data.fetch is also a function's name)
def killed(out, recipe):
    (out / "half.png").write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
fetch.write_scenes = killed
fetch.fetch("scenes", sys.argv[1], count=4, size=12)
"""


def test_a_killed_fetchs_temporary_folder_is_removed_by_the_next_fetch(tmp_path):
    import subprocess
    import sys

    from textok.data import fetch

    root = tmp_path / "scenes"
    proc = subprocess.run([sys.executable, "-c", _KILLED_FETCH, str(root)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert [p.name.startswith(".scenes.") for p in tmp_path.iterdir()] == [True]  # the 41 MB leftover, in small
    fetch("scenes", root, count=4, size=12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenes"]
    assert (root / "manifest.json").is_file()


def test_a_full_disk_during_a_fetch_names_the_root(tmp_path, capsys, monkeypatch):
    import errno
    import importlib

    fetch_module = importlib.import_module("textok.data.fetch")
    root = tmp_path / "scenes"

    def full(out, recipe):
        (out / "images").mkdir()
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "images" / "000001.png"))

    monkeypatch.setattr(fetch_module, "write_scenes", full)
    assert main(["data", "fetch", "scenes", "--root", str(root), "--count", "4", "--size", "12"]) == 2
    _one_line_error(capsys, f"{root / 'images' / '000001.png'}: No space left on device")
    monkeypatch.setattr(fetch_module, "write_scenes", lambda out, recipe: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))  # a write with no file name: the root is named
    assert main(["data", "fetch", "scenes", "--root", str(root), "--count", "4", "--size", "12"]) == 2
    _one_line_error(capsys, f"{root}: No space left on device")
    assert list(tmp_path.iterdir()) == []  # nothing half-built left beside it
