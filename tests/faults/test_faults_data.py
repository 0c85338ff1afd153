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
