"""Every kind of bad sample is skipped and counted, or stops with a message naming file and reason."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from textok.cli import main
from textok.data import BadSampleError, check_dataset, open_dataset, write_shards


def _png_bytes(size=(40, 40)):
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png(side=30000):
    """A tiny file whose header claims side x side pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# name -> (file bytes or None for "do not create", captions.jsonl line (bytes), expected reason)
CASES = {
    "corrupt": (b"this is not a png at all", b'{"file": "bad.png", "caption": "x"}', "not an image file PIL can read"),
    "truncated": (_png_bytes((64, 64))[:120], b'{"file": "bad.png", "caption": "x"}', "corrupt or truncated"),
    "zero-byte": (b"", b'{"file": "bad.png", "caption": "x"}', "empty file (0 bytes)"),
    "non-image": (b"hello", b'{"file": "bad.txt", "caption": "x"}', "not an image file (extension '.txt')"),
    "bomb": (_bomb_png(), b'{"file": "bad.png", "caption": "x"}', "decompression bomb"),
    "too-small": (_png_bytes((8, 8)), b'{"file": "bad.png", "caption": "x"}', "smaller than the 32px crop"),
    "missing-caption": (_png_bytes(), b'{"file": "bad.png"}', "missing or empty caption"),
    "empty-caption": (_png_bytes(), b'{"file": "bad.png", "caption": "  "}', "missing or empty caption"),
    "non-utf8": (_png_bytes(), b'{"file": "bad.png", "caption": "caf\xe9"}', "not UTF-8"),
    "missing-file": (None, b'{"file": "bad.png", "caption": "x"}', "listed but not found"),
    "duplicate": (None, b'{"file": "good.png", "caption": "again"}', "duplicate entry for good.png"),
    "not-json": (None, b'{"file": "bad.png", caption}', "not valid JSON"),
}


def _make(root, case):
    data, line, reason = CASES[case]
    root.mkdir(parents=True, exist_ok=True)
    (root / "good.png").write_bytes(_png_bytes())
    if data is not None:
        name = "bad.txt" if case == "non-image" else "bad.png"
        (root / name).write_bytes(data)
    (root / "captions.jsonl").write_bytes(b'{"file": "good.png", "caption": "a grey square"}\n' + line + b"\n")
    return reason


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_sample_skipped_and_reported(tmp_path, case):
    reason = _make(tmp_path, case)
    ds = open_dataset(tmp_path, image_size=32)
    items = [ds[i] for i in range(len(ds))]  # decoding failures are found here and skipped (None), never replaced
    assert {it["key"] for it in items if it is not None} == {"good.png"}
    assert sum(it is not None for it in items) == 1
    assert ds.report.num_bad == 1
    name, got = ds.report.bad[0]
    assert reason in got
    assert "bad" in name or "captions.jsonl" in name
    assert reason in ds.report.summary()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_sample_error_names_file_and_reason(tmp_path, case):
    reason = _make(tmp_path, case)
    with pytest.raises(BadSampleError) as err:
        ds = open_dataset(tmp_path, image_size=32, on_bad_sample="error")
        for i in range(len(ds)):
            ds[i]
    assert reason in str(err.value)
    assert "bad." in str(err.value) or "captions.jsonl:2" in str(err.value)


def test_check_reports_every_bad_file(tmp_path, capsys):
    root = tmp_path / "d"
    root.mkdir()
    lines = []
    for case, (data, line, _) in CASES.items():
        name = f"{case}.txt" if case == "non-image" else f"{case}.png"
        if data is not None:
            (root / name).write_bytes(data)
        if case not in ("duplicate", "not-json"):
            line = line.replace(b"bad.png", name.encode()).replace(b"bad.txt", name.encode())
        lines.append(line)
    (root / "good.png").write_bytes(_png_bytes())
    (root / "captions.jsonl").write_bytes(b'{"file": "good.png", "caption": "a grey square"}\n' + b"\n".join(lines))
    reports = check_dataset(root, image_size=32)
    assert reports["train"].num_bad == len(CASES)
    assert main(["data", "check", str(root), "--image-size", "32"]) == 1
    out = capsys.readouterr().out
    for case, (_, _, reason) in CASES.items():
        assert reason in out, case
    assert f"{len(CASES)} bad sample(s)" in out


def test_check_clean_dataset_and_class_tree_bad_files(class_tree, capsys):
    assert main(["data", "check", str(class_tree), "--image-size", "32"]) == 0
    assert "OK" in capsys.readouterr().out
    (class_tree / "train" / "cat" / "notes.md").write_text("not an image")
    (class_tree / "train" / "dog" / "empty.png").write_bytes(b"")
    reports = check_dataset(class_tree, image_size=32)
    assert dict(reports["train"].bad) == {"train/cat/notes.md": "not an image file (extension '.md')",
                                         "train/dog/empty.png": "empty file (0 bytes)"}
    assert reports["test"].num_bad == 0


def test_shards_skip_or_stop_on_bad_samples(tmp_path, capsys):
    _make(tmp_path / "src", "corrupt")
    index = write_shards(tmp_path / "src", tmp_path / "out")
    assert index["splits"]["train"]["num_samples"] == 1
    assert main(["data", "shards", str(tmp_path / "src"), str(tmp_path / "out2"), "--on-bad-sample", "error"]) == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and "not an image file PIL can read" in err and len(err.strip().splitlines()) == 1


def test_not_a_dataset(tmp_path, capsys):
    with pytest.raises(ValueError, match="not a dataset"):
        open_dataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path / "nope")
    assert main(["data", "check", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
