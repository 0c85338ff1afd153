"""evaluate_tokenizer's settings: a dataclass, or the same fields as keyword arguments."""

import pytest

from textok import CaptionedTokenizer, TexTok
from textok.metrics import TokenizerEvalSettings, evaluate_tokenizer


def test_settings_and_keyword_fields_give_the_same_report(tiny_config, minilm, image_folder):
    tok = CaptionedTokenizer(TexTok(tiny_config).eval(), minilm)
    settings = TokenizerEvalSettings(split="val", batch_size=4, lpips=False, rfid=False, grid_images=0, progress=False)
    a = evaluate_tokenizer(tok, image_folder, settings)["results"][0]
    b = evaluate_tokenizer(tok, image_folder, split="val", batch_size=4, lpips=False, rfid=False, grid_images=0,
                           progress=False)["results"][0]
    assert a["num"] == b["num"] == 6 and a["psnr"] == b["psnr"] and a["rfid"] is None
    # keyword fields override the settings' fields
    assert evaluate_tokenizer(tok, image_folder, settings, num=2)["results"][0]["num"] == 2
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['bacth_size'\]"):
        evaluate_tokenizer(tok, image_folder, settings, bacth_size=4)
    with pytest.raises(ValueError, match="cannot change a CaptionedTokenizer's text"):
        evaluate_tokenizer(tok, image_folder, settings, encoder=minilm)
