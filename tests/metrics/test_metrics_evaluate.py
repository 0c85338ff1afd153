"""The tokenizer and generation protocols end to end on a tiny folder and tiny checkpoints.

The Inception network is replaced by a small stand-in here (``TinyFeatures`` in tests/conftest.py);
the real one is covered in test_metrics_inception.py and test_metrics_cli.py.
"""

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from textok import CaptionedTokenizer, TexTok
from textok.data import collate, open_dataset
from textok.metrics import (InceptionLogits, Stats, dataset_stats, decode_caption_map, evaluate_generation,
                            evaluate_tokenizer, fid_from_features, image_fingerprint, load_stats, psnr, save_stats, ssim)


@pytest.fixture
def checkpoints(tmp_path, tiny_config):
    text = TexTok(tiny_config).save_pretrained(tmp_path / "ckpt" / "textok")
    plain = TexTok(dataclasses.replace(tiny_config, text_in="none")).save_pretrained(tmp_path / "ckpt" / "baseline")
    return [text, plain]


def test_evaluate_tokenizer_side_by_side(checkpoints, image_folder, tiny_features, minilm, tmp_path):
    head = InceptionLogits(torch.randn(1008, 64))
    out = tmp_path / "eval"
    report = evaluate_tokenizer(checkpoints, image_folder, num=4, batch_size=3, out=out, extractor=tiny_features,
                                inception_logits=head, encoder=minilm, progress=False)
    assert report["num"] == 4 and report["split"] == "val"
    assert [r["name"] for r in report["results"]] == ["ckpt/textok", "ckpt/baseline"]

    # recompute the first checkpoint's numbers by hand from the same images
    model = TexTok.from_pretrained(checkpoints[0])
    dataset = open_dataset(image_folder, split="val", image_size=32)
    from textok.metrics.reference import subset_indices

    batch = collate([dataset[i] for i in subset_indices(len(dataset), 4)])
    with torch.no_grad():
        text = minilm(batch["captions"])
        rec = model.decode(model.encode(batch["images"], text), text)
    r = report["results"][0]
    assert r["psnr"] == pytest.approx(psnr(batch["images"], rec).mean().item(), rel=1e-6)
    assert r["ssim"] == pytest.approx(ssim(batch["images"], rec).mean().item(), rel=1e-6)
    expected_fid = fid_from_features(tiny_features(batch["images"]).double().numpy(),
                                     tiny_features(rec.clamp(-1, 1)).double().numpy())
    assert r["rfid"] == pytest.approx(expected_fid, rel=1e-4, abs=1e-6)
    for r in report["results"]:
        assert r["rfid"] > 0 and np.isfinite(r["psnr"]) and -1 <= r["ssim"] <= 1
        assert 0 < r["lpips"] < 2 and r["ris"] >= 1.0 and r["tokens"] == 8

    saved = json.loads((out / "eval_tokenizer.json").read_text())
    assert saved["results"][1]["rfid"] == pytest.approx(report["results"][1]["rfid"])
    md = (out / "eval_tokenizer.md").read_text()
    assert "4 images" in md and "ckpt/baseline" in md and "rIS" in md and "ADM centre crop" in md
    grid = Image.open(out / "reconstructions.png")
    assert grid.size == (4 * 34 + 2, 3 * 34 + 2)  # originals + one row per checkpoint


def test_evaluate_tokenizer_without_rfid_never_builds_inception(checkpoints, image_folder, minilm, monkeypatch):
    import textok.metrics.tokenizer_eval as tokenizer_eval

    def no_inception(*args, **kwargs):
        raise AssertionError("rfid=False must not load the Inception network")

    monkeypatch.setattr(tokenizer_eval, "InceptionFeatures", no_inception)
    report = evaluate_tokenizer(checkpoints, image_folder, num=1, batch_size=3, encoder=minilm, lpips=False,
                                rfid=False, progress=False)
    assert report["num"] == 1 and report["features"] is None  # one image: no FID needed, so none asked for
    for r in report["results"]:
        assert r["rfid"] is None and r["ris"] is None and np.isfinite(r["psnr"])
    assert "rFID not computed" in report["markdown"] and "| ckpt/textok | 32 | 8 | - |" in report["markdown"]


def test_evaluate_tokenizer_with_reference_statistics(checkpoints, image_folder, tiny_features, minilm, tmp_path):
    """Statistics from ``dataset_stats`` (also as a features-only file) replace the originals' pass
    with the same rFID, and are refused when they come from other images or another network."""
    from textok.metrics.reference import subset_indices

    kw = dict(num=4, batch_size=3, extractor=tiny_features, encoder=minilm, lpips=False, progress=False, grid_images=0)
    plain = evaluate_tokenizer(checkpoints, image_folder, **kw)
    stats = dataset_stats(image_folder, num=4, split="val", image_size=32, batch_size=2, extractor=tiny_features,
                          progress=False)
    # the fingerprint is of the uint8 images in order, whatever the batch size
    assert stats.info["pixels_sha256"] == image_fingerprint(image_folder, "val", 32, num=4, batch_size=3)
    assert stats.info["inception_sha256"] == tiny_features.sha256
    path = save_stats(tmp_path / "ref.npz", stats, moments=False, features_dtype=np.float32)
    for reference in (stats, path, str(path)):
        report = evaluate_tokenizer(checkpoints, image_folder, reference=reference, **kw)
        for a, b in zip(report["results"], plain["results"]):
            assert a["rfid"] == pytest.approx(b["rfid"], rel=1e-6, abs=1e-9) and a["psnr"] == b["psnr"]
    # a file that records no image size (ADM's own) serves the checkpoints' size instead of being ignored
    sizeless = {k: v for k, v in stats.info.items() if k != "image_size"}
    report = evaluate_tokenizer(checkpoints, image_folder, reference=Stats(stats.mu, stats.sigma, None, sizeless), **kw)
    assert [r["rfid"] for r in report["results"]] == pytest.approx([r["rfid"] for r in plain["results"]], rel=1e-6)
    shifted = evaluate_tokenizer(checkpoints, image_folder, reference=Stats(stats.mu + 1, stats.sigma, None, sizeless),
                                 **kw)  # used, not recomputed: the rFIDs move with it
    assert all(a["rfid"] > b["rfid"] + 1 for a, b in zip(shifted["results"], plain["results"]))

    with pytest.raises(ValueError, match="hold 4 images, this evaluation 3"):
        evaluate_tokenizer(checkpoints, image_folder, reference=stats, **(kw | {"num": 3}))
    foreign = Stats(stats.mu, stats.sigma, None, stats.info | {"inception_sha256": "f" * 64})
    with pytest.raises(ValueError, match="another Inception network"):
        evaluate_tokenizer(checkpoints, image_folder, reference=foreign, **kw)
    # another version of the data: one image of the subset changed on disk
    assert 0 in subset_indices(6, 4)
    Image.new("RGB", (40, 40), (200, 10, 10)).save(image_folder / "images" / "00.png")
    with pytest.raises(ValueError, match="other images than these 4"):
        evaluate_tokenizer(checkpoints, image_folder, reference=path, **kw)


def test_whole_split_features_serve_any_num(checkpoints, image_folder, tiny_features, minilm, tmp_path):
    """A whole split's features (``textok fid-stats`` without --num) serve ``evaluate_tokenizer(num=n)``: the
    rows of the n images it scores, checked against the whole split first; same rFID as computing them."""
    from textok.metrics import reference_subset
    from textok.metrics.reference import subset_indices

    kw = dict(batch_size=3, extractor=tiny_features, encoder=minilm, lpips=False, progress=False, grid_images=0)
    whole = dataset_stats(image_folder, split="val", image_size=32, extractor=tiny_features, progress=False)
    assert whole.num == 6 and whole.features is not None
    for n in (3, 4):
        plain = evaluate_tokenizer(checkpoints, image_folder, num=n, **kw)
        narrowed = evaluate_tokenizer(checkpoints, image_folder, num=n, reference=whole, **kw)
        assert [r["rfid"] for r in narrowed["results"]] == pytest.approx([r["rfid"] for r in plain["results"]],
                                                                         rel=1e-6, abs=1e-9)
        sub = reference_subset(whole, image_folder, "val", 32, n, tiny_features, "here")
        assert sub.num == n and sub.info["pixels_sha256"] == image_fingerprint(image_folder, "val", 32, num=n)
    path = save_stats(tmp_path / "whole.npz", whole)
    with pytest.raises(ValueError, match="no per-image features"):  # moments only: nothing to narrow
        evaluate_tokenizer(checkpoints, image_folder, num=3, reference=Stats(whole.mu, whole.sigma, None, whole.info),
                           **kw)
    other = dataset_stats(image_folder, num=5, split="val", image_size=32, extractor=tiny_features, progress=False)
    with pytest.raises(ValueError, match="hold 5 images, this evaluation 3, and only the whole split's 6"):
        evaluate_tokenizer(checkpoints, image_folder, num=3, reference=other, **kw)
    # another version of the split (an image outside the 3 scored changed): refused, the whole split is checked
    Image.new("RGB", (40, 40), (200, 10, 10)).save(image_folder / "images" / "01.png")
    assert 1 not in subset_indices(6, 3)
    with pytest.raises(ValueError, match="other images than these 6"):
        evaluate_tokenizer(checkpoints, image_folder, num=3, reference=path, **kw)


def _label(folder, labels):
    """Give the val images of the ``image_folder`` fixture class labels (in file order)."""
    path = folder / "captions.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    for e, y in zip(entries, labels):
        e["label"] = y
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return [e["caption"] for e in entries[: len(labels)]]


def test_decode_with_other_captions(checkpoints, image_folder, minilm, tmp_path):
    caps = _label(image_folder, [0, 0, 0, 1, 1, 2])  # red green blue | yellow purple | orange
    dataset = open_dataset(image_folder, split="val", image_size=32)
    same = decode_caption_map(dataset, rule="same-class")
    assert same == {"a blue wavy pattern": "a green wavy pattern", "a green wavy pattern": "a red wavy pattern",
                    "a red wavy pattern": "a blue wavy pattern", "a purple wavy pattern": "a yellow wavy pattern",
                    "a yellow wavy pattern": "a purple wavy pattern",
                    "a orange wavy pattern": "a orange wavy pattern"}  # a class of one caption keeps it
    other = decode_caption_map(dataset, rule="other-class")  # the class half-way round: 0 -> 1 -> 2 -> 0
    assert other["a red wavy pattern"] == "a purple wavy pattern" and other["a blue wavy pattern"] == "a purple wavy pattern"
    assert other["a yellow wavy pattern"] == "a orange wavy pattern" and other["a orange wavy pattern"] == "a blue wavy pattern"

    report = evaluate_tokenizer(checkpoints, image_folder, batch_size=4, encoder=minilm, lpips=False, rfid=False,
                                progress=False, decode_captions="same-class")
    text, plain = report["results"]
    assert text["decode_swapped"] == 5 and plain["decode_swapped"] == 0  # the baseline has no caption to swap
    assert report["decode_captions"] == "same-class" and "textok 5 of 6 images" in report["markdown"]
    model = TexTok.from_pretrained(checkpoints[0])  # by hand: encode with its own caption, decode with the swapped one
    batch = collate([dataset[i] for i in range(6)])
    assert batch["captions"] == caps
    with torch.no_grad():
        rec = model.decode(model.encode(batch["images"], minilm(caps)), minilm([same[c] for c in caps]))
    assert text["psnr"] == pytest.approx(psnr(batch["images"], rec).mean().item(), rel=1e-6)
    own = evaluate_tokenizer(checkpoints, image_folder, batch_size=4, encoder=minilm, lpips=False, rfid=False,
                             progress=False)
    assert own["results"][1]["psnr"] == plain["psnr"] and own["results"][0]["psnr"] != text["psnr"]
    assert own["decode_captions"] is None and own["results"][0]["decode_swapped"] == 0

    # a JSON file caption -> caption; captions missing from it keep their own
    mapping = tmp_path / "swap.json"
    mapping.write_text(json.dumps({"a red wavy pattern": "a blue wavy pattern"}))
    report = evaluate_tokenizer(checkpoints[:1], image_folder, batch_size=4, encoder=minilm, lpips=False, rfid=False,
                                progress=False, decode_captions=mapping)
    assert report["results"][0]["decode_swapped"] == 1
    with pytest.raises(ValueError, match="neither a rule"):
        evaluate_tokenizer(checkpoints[:1], image_folder, encoder=minilm, rfid=False, decode_captions="same-kind")
    mapping.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must map captions to a caption or a non-empty list"):
        evaluate_tokenizer(checkpoints[:1], image_folder, encoder=minilm, rfid=False, decode_captions=mapping)
    # a random draw of another caption of the class, reproducible by seed
    drawn = decode_caption_map(dataset, rule="same-class-random", seed=1)
    assert drawn == decode_caption_map(dataset, rule="same-class-random", seed=1)
    assert all(drawn[c] != c and drawn[c] in caps[:3] for c in caps[:3]) and drawn[caps[5]] == caps[5]
    # cycle choice: the candidates are the other captions of the class; each image gets the best explaining one
    cands = decode_caption_map(dataset, rule="same-class-cycle")
    assert sorted(cands[caps[0]]) == sorted(caps[1:3]) and cands[caps[3]] == [caps[4]] and cands[caps[5]] == [caps[5]]
    report = evaluate_tokenizer(checkpoints[:1], image_folder, batch_size=4, encoder=minilm, lpips=False, rfid=False,
                                progress=False, decode_captions="same-class-cycle")
    assert report["results"][0]["decode_swapped"] == 5
    with torch.no_grad():
        tokens = model.encode(batch["images"], minilm(caps))
    picked = CaptionedTokenizer(model, minilm).choose_captions(tokens, [cands[c] for c in caps])
    with torch.no_grad():
        rec = model.decode(tokens, minilm(picked))
    assert all(p in cands[c] for p, c in zip(picked, caps))
    assert report["results"][0]["psnr"] == pytest.approx(psnr(batch["images"], rec).mean().item(), rel=1e-6)
    mapping.write_text(json.dumps({caps[0]: caps[1:3]}))  # a JSON file may give candidate lists too
    report = evaluate_tokenizer(checkpoints[:1], image_folder, batch_size=4, encoder=minilm, lpips=False, rfid=False,
                                progress=False, decode_captions=mapping)
    assert report["results"][0]["decode_swapped"] == 1
    mapping.write_text(json.dumps({caps[0]: []}))
    with pytest.raises(ValueError, match="non-empty list"):
        evaluate_tokenizer(checkpoints[:1], image_folder, encoder=minilm, rfid=False, decode_captions=mapping)
    # a dataset of item dicts without records: the captions are read from its items
    items = [dataset[i] for i in range(6)]
    assert decode_caption_map(items, rule="same-class") == same
    _label(image_folder, [-1] * 6)
    with pytest.raises(ValueError, match="at least two classes"):
        decode_caption_map(open_dataset(image_folder, split="val", image_size=32), rule="other-class")


def test_evaluate_tokenizer_errors(checkpoints, image_folder, tiny_features):
    with pytest.raises(ValueError, match="no checkpoint"):
        evaluate_tokenizer([], image_folder, extractor=tiny_features)
    with pytest.raises(ValueError, match="names"):
        evaluate_tokenizer(checkpoints, image_folder, names=["one"], extractor=tiny_features)
    with pytest.raises(FileNotFoundError):
        evaluate_tokenizer(image_folder / "nope", image_folder, extractor=tiny_features, lpips=False)


def test_generation_protocol(image_folder, tiny_features, tiny_clip_dir, tmp_path):
    stats = dataset_stats(image_folder, split="val", image_size=32, extractor=tiny_features, progress=False)
    assert stats.num == 6 and stats.features.shape == (6, 64)
    save_stats(tmp_path / "ref.npz", stats)

    dataset = open_dataset(image_folder, split="val", image_size=32)
    real = collate([dataset[i] for i in range(6)])
    samples = ((real["images"].flip(-1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    captions = np.array(real["captions"])  # a unicode array: no pickle needed
    np.savez(tmp_path / "samples.npz", arr_0=samples, captions=captions)

    head = InceptionLogits(torch.randn(1008, 64))
    report = evaluate_generation(tmp_path / "samples.npz", tmp_path / "ref.npz", clip_model=tiny_clip_dir,
                                 inception_logits=head, extractor=tiny_features, out=tmp_path / "gen", progress=False)
    ref = load_stats(tmp_path / "ref.npz")
    expected = fid_from_features(tiny_features(torch.from_numpy(samples).permute(0, 3, 1, 2)).double().numpy(),
                                 ref.features.astype(np.float64))
    # the reference stats were kept in float64, the features in float32
    assert report["gfid"] == pytest.approx(expected, rel=1e-3)
    assert report["num"] == 6 and report["ref_num"] == 6 and report["image_size"] == 32
    assert 0 <= report["precision"] <= 1 and 0 <= report["recall"] <= 1
    assert report["is"] >= 1.0 and 0 <= report["clip_score"] <= 100
    md = (tmp_path / "gen" / "eval_generation.md").read_text()
    assert "6 samples" in md and "CLIP score" in md

    # the same images as the reference: FID ~ 0, precision = recall = 1
    same = ((real["images"] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    report = evaluate_generation(same, stats, extractor=tiny_features, progress=False)
    assert abs(report["gfid"]) < 1e-4 and report["precision"] == 1.0 and report["recall"] == 1.0
    assert report["is"] is None and report["clip_score"] is None


def test_generation_errors(tiny_features, tiny_clip_dir, tmp_path):
    np.savez(tmp_path / "s.npz", arr_0=np.zeros((4, 8, 8, 3), np.uint8))
    np.savez(tmp_path / "bad.npz", arr_0=np.zeros((4, 8, 8, 3), np.float32))
    np.savez(tmp_path / "ref.npz", mu=np.zeros(64), sigma=np.eye(64))
    with pytest.raises(ValueError, match="uint8"):
        evaluate_generation(tmp_path / "bad.npz", tmp_path / "ref.npz", extractor=tiny_features, progress=False)
    with pytest.raises(ValueError, match="needs captions"):
        evaluate_generation(tmp_path / "s.npz", tmp_path / "ref.npz", clip_model=tiny_clip_dir,
                            extractor=tiny_features, progress=False)
    with pytest.raises(FileNotFoundError):
        evaluate_generation(tmp_path / "s.npz", tmp_path / "missing.npz", extractor=tiny_features, progress=False)
    report = evaluate_generation(tmp_path / "s.npz", tmp_path / "ref.npz", extractor=tiny_features, progress=False)
    assert report["precision"] is None  # the reference keeps no features


def test_subset_is_spread_over_a_class_ordered_dataset():
    from textok.metrics.reference import subset_indices

    # 10 classes listed class by class, 100 images each: 50 images must cover every class
    idx = subset_indices(1000, 50)
    assert len(idx) == len(set(idx)) == 50
    assert {i // 100 for i in idx} == set(range(10))
    assert subset_indices(7, None) == subset_indices(7, 10) == list(range(7))
