"""`textok app` as a careless user starts it (issue 38, the page): a baseline folder given as
``--checkpoint``, and ``--host 0.0.0.0``. The page's API and outputs: tests/app/test_app_api.py."""

from __future__ import annotations

import socket

import pytest

from textok.cli import main

from .conftest import load_conftest

pytest.importorskip("gradio")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    # tests/app/conftest.py's tiny checkpoints, reused, not copied
    return load_conftest("app").write_checkpoints(tmp_path_factory.mktemp("app-faults"))


def test_a_baseline_folder_given_as_checkpoint_is_labelled_baseline(checkpoints, monkeypatch, capsys):
    import textok.app

    seen = {}
    monkeypatch.setattr(textok.app, "launch", lambda explorer, **kw: seen.update(explorer=explorer))
    assert main(["app", "--checkpoint", str(checkpoints["baseline-n2"]), "--port", "0"]) == 0
    explorer = seen["explorer"]
    assert explorer.textok == {} and explorer.pair(2)["baseline"].name == "baseline-n2"
    out = capsys.readouterr().out
    assert "baseline N=2 (baseline-n2" in out and "TexTok N=2" not in out
    assert "note: baseline-n2 was given as --checkpoint but its config has text_in='none'" in out


def test_binding_beyond_loopback_warns_and_gives_no_share_hint(checkpoints, monkeypatch, capfd):
    """The real server on all interfaces, stopped as soon as it serves (instead of blocking)."""
    import gradio as gr

    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: self.close())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["app", "--host", "0.0.0.0", "--port", str(port), "--checkpoint", str(checkpoints["textok-n2"])]) == 0
    out, err = capfd.readouterr()
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("textok app: warning: bound to 0.0.0.0, not 127.0.0.1")
    assert f":{port}" in out and "serving on" in out
    assert "share" not in (out + err).lower()  # Gradio's "set `share=True`" hint is not printed
