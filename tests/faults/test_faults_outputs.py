"""Outputs: no command replaces a file it was not told to (--overwrite), writes over its input, or
writes two of its outputs to one file; `data shards` follows the `data fetch` folder rule."""

from __future__ import annotations

import json

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
