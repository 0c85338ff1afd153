import pytest
import torch

from textok.io import atomic_path, copy_dir_atomic, load_state_dict, save_state_dict


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary left behind


def test_state_dict_round_trip(tmp_path):
    state = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_state_dict(state, tmp_path / "w.safetensors")
    loaded = load_state_dict(tmp_path / "w.safetensors")
    assert all(torch.equal(state[k], loaded[k]) for k in state)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_state_dict(tmp_path / "nope.safetensors")


def test_atomic_write_uses_normal_permissions(tmp_path):
    import os

    with atomic_path(tmp_path / "g.txt") as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "g.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_empty_state_dict_round_trips(tmp_path):
    # e.g. a discriminator optimiser before the discriminator starts: no state yet
    save_state_dict({}, tmp_path / "empty.safetensors")
    assert load_state_dict(tmp_path / "empty.safetensors") == {}


def test_copy_dir_atomic_replaces_the_folder_and_discards_a_stale_copy(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("new")
    dst.mkdir()
    (dst / "old.txt").write_text("old")
    stale = tmp_path / ".dst.tmp"  # left by a copy that was killed
    stale.mkdir()
    (stale / "half.txt").write_text("half")
    assert copy_dir_atomic(src, dst) == dst
    assert sorted(p.name for p in dst.rglob("*")) == ["a.txt", "sub"]
    assert (dst / "sub" / "a.txt").read_text() == "new" and (src / "sub" / "a.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src"]
