"""Loading the text encoder prints no transformers progress bar (it cut into the training bar)."""

import transformers

from textok import TextEncoder


def test_loading_the_encoder_shows_no_weights_bar(capfd):
    assert transformers.utils.logging.is_progress_bar_enabled()
    TextEncoder.from_pretrained("minilm")
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert transformers.utils.logging.is_progress_bar_enabled()  # restored for the caller
