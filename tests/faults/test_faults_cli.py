"""The CLI: every user error, OS error included, is one line naming the file or option, exit 2."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from textok.cli import main


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("textok ") and ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err and err.rstrip().endswith(errors[0]), err
    for needle in needles:
        assert str(needle) in errors[0], err
    return errors[0]


@pytest.mark.parametrize("kind", ["zero-byte", "npy", "nan-mu"])
def test_bad_npz_files_are_one_line_errors(tmp_path, capsys, kind):
    from textok.metrics.fid import load_stats

    ref = tmp_path / "ref.npz"
    if kind == "zero-byte":
        ref.write_bytes(b"")
    elif kind == "npy":
        np.save(tmp_path / "x.npy", np.zeros((2, 4, 4, 3), np.uint8))
        ref = tmp_path / "x.npy"
    else:
        np.savez(ref, mu=np.array([np.nan, 0.0]), sigma=np.eye(2))
    with pytest.raises(ValueError, match="non-finite" if kind == "nan-mu" else "npz"):
        load_stats(ref)
    # --samples is read with the same loader, before any model is loaded
    assert main(["eval-generation", "--samples", str(ref), "--ref", str(ref)]) == 2
    _one_line_error(capsys, ref)
