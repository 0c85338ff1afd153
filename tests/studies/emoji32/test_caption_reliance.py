"""studies/emoji32/caption_reliance.py on a tiny labelled data set with the shipped pair (PSNR only, no Inception)."""

import json

import numpy as np
from PIL import Image


def test_caption_reliance_records_every_split_arm_and_decoding(load_experiment, tmp_path, capsys):
    cr = load_experiment("caption_reliance")
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries = []
    for i in range(8):  # per split: class 0 holds two captions, class 1 two
        split = "val" if i < 4 else "val_unseen"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / "images" / f"{i}.png")
        entries.append({"file": f"images/{i}.png", "caption": f"emoji {i}; thing, kind {i % 4 // 2}", "split": split,
                        "label": i % 4 // 2})
    (data / "captions.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    out = tmp_path / "reliance.json"
    assert cr.main(["--data", str(data), "--out", str(out), "--no-rfid", "--threads", "1",
                    "--grid", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (6 * 34 + 2, 8 * 34 + 2)  # 6 columns, 8 rows of 32 px tiles
    lines = (tmp_path / "g.txt").read_text().splitlines()
    assert len(lines) == 9 and "  |  random: emoji" in lines[1] and "  |  cycle-chosen: emoji" in lines[1]
    saved = json.loads(out.read_text())
    assert saved["tokenizers"]["textok"] == "src/textok/pretrained/emoji32-textok-n4"
    cells = {(r["split"], r["arm"], r["decode"]): r for r in saved["records"]}
    assert sorted(cells) == sorted((s, a, d) for s in ("val", "val_unseen")
                                   for a, d in (("baseline", "own"), ("textok", "own"), ("textok", "same-class"),
                                                ("textok", "same-class-random"), ("textok", "same-class-cycle"),
                                                ("textok", "other-class")))
    assert saved["pair"] == "the shipped N = 4 pair"
    for split in ("val", "val_unseen"):
        assert cells[(split, "textok", "same-class")]["swapped"] == 4 == cells[(split, "textok", "other-class")]["swapped"]
        assert cells[(split, "textok", "own")]["swapped"] == 0 and cells[(split, "textok", "own")]["num_images"] == 4
        assert cells[(split, "textok", "same-class")]["psnr"] != cells[(split, "textok", "own")]["psnr"]
        assert cells[(split, "baseline", "own")]["rfid"] is None  # --no-rfid
    capsys.readouterr()
    assert cr.main(["--data", str(data), "--out", str(out), "--no-rfid", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "val: in " in printed and "val_unseen: in " in printed  # nothing measured again
    # a decoding added later is measured alone: the others are kept
    saved["records"] = [r for r in saved["records"] if r["decode"] != "same-class-cycle"]
    out.write_text(json.dumps(saved))
    assert cr.main(["--data", str(data), "--out", str(out), "--no-rfid", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("same-class-cycle") == 2 and "same-class-random" not in printed
    again = json.loads(out.read_text())["records"]
    assert len(again) == 12 and {(r["split"], r["arm"], r["decode"]) for r in again} == set(cells)
    assert [r["decode"] for r in again[:6]] == ["own", "own", "same-class", "same-class-random", "same-class-cycle",
                                                "other-class"]

    # --baseline none: TexTok only (its baseline measured elsewhere); the command records it
    solo = tmp_path / "solo.json"
    assert cr.main(["--data", str(data), "--out", str(solo), "--no-rfid", "--threads", "1", "--baseline", "none"]) == 0
    saved = json.loads(solo.read_text())
    assert {r["arm"] for r in saved["records"]} == {"textok"} and len(saved["records"]) == 10
    assert "--baseline none --textok src/textok/pretrained/emoji32-textok-n4" in saved["command"]
