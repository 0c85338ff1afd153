"""studies/emoji32/reproduction_report.py and its tables, plots and README writer: what they derive from score files
(synthetic files, no training)."""

import json
from pathlib import Path

import pytest

from studies import stats
from studies.emoji32 import (report_generation, report_plots, report_readme, report_tables, reproduction,
                             reproduction_report)

def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def rec(split, psnr, rfid, **kw):
    return dict(split=split, psnr=psnr, rfid=rfid, ssim=0.5, lpips=0.3, **kw)


def test_recipe_choice_puts_the_pilots_beside_the_first_recipe(tmp_path, monkeypatch):
    monkeypatch.setattr(report_tables, "PILOTS", tmp_path)
    write(tmp_path / "patch8.json", {"name": "patch8", "records": [
        {"steps": 1000, "val_psnr": 15.74, "seconds_per_step": 0.346, "overrides": ["model.patch_size=8"]},
        {"steps": 2000, "val_psnr": 17.14, "seconds_per_step": 0.332, "overrides": ["model.patch_size=8"]}]})
    history = [dict(run="textok-n2-s0", split="val", steps=s, psnr=p, train_seconds=s * 1.1)
               for s, p in ((1000, 15.44), (2000, 16.73), (4000, 18.26))]
    table = "\n".join(report_tables.recipe_choice(history))
    assert "| first recipe: 4x4 patches" in table and "| 1.10 | 15.44 | 16.73 |" in table
    assert "| pilot `patch8`: `model.patch_size=8` | 0.34 | 15.74 | 17.14 |" in table  # median of 0.346, 0.332
    monkeypatch.setattr(report_tables, "PILOTS", tmp_path / "none")
    assert report_tables.recipe_choice(history) == []


def test_cooldown_table_shows_the_trunk_and_both_weights(tmp_path):
    run = tmp_path / "textok-n2-s0"
    write(run / "step_0004000.json", {"records": [rec("val", 18.26, 105.1), rec("val_unseen", 16.87, 136.6)]})
    write(run / "cooldown_0004000+01000.json", {"run": "textok-n2-s0", "trunk_steps": 4000, "cooldown_steps": 1000,
                                               "records": [rec(s, p, f, weights=w) for s, p, f, w in (
                                                   ("val", 18.85, 96.2, "ema"), ("val", 19.02, 96.0, "raw"),
                                                   ("val_unseen", 17.07, 129.2, "ema"), ("val_unseen", 17.08, 129.0, "raw"))]})
    lines = report_tables.cooldown_table(tmp_path)
    assert "| textok-n2-s0 | 4000 | constant lr (trunk) | ema | 18.26 | 105.1 | 16.87 | 136.6 |" in lines
    assert "| textok-n2-s0 | 4000 | +1000 linear to 0 | raw | 19.02 | 96.0 | 17.08 | 129.0 |" in lines
    assert report_tables.cooldown_table(tmp_path / "empty") == []


def test_recipe_checks_fall_back_to_the_first_recipe():
    row = dict(ssim=0.5, train_seconds=1000.0)
    history = [dict(row, run=run, split=split, steps=2000, psnr=p, lpips=0.3, rfid=f)
               for run, p, f in (("textok-n2-s0", 16.73, 136.0), ("textok-n2-s0-gan", 15.56, 136.6))
               for split in ("val", "val_unseen")]
    text = "\n".join(report_tables.recipe_check([], "gan", history))
    assert text.startswith("Measured with the first recipe") and "-1.17 dB recall PSNR" in text
    assert "+0.6 new-emoji rFID" in text  # the new-emoji split first
    assert "pending" in "\n".join(report_tables.recipe_check([], "gan"))  # nothing anywhere: pending


def test_recipe_checks_name_the_machine_of_each_row():
    def rows(run, cpu):
        return [dict(run=run, split=split, steps=4000, psnr=p, lpips=0.3, rfid=f, ssim=0.5, train_seconds=2000.0,
                     cpu=cpu) for split, p, f in (("val", 18.0, 110.0), ("val_unseen", 16.5, 140.0))]
    same = report_tables.recipe_check(rows("textok-n2-s0", "Xeon") + rows("textok-n2-s0-gan", "Xeon"), "gan")
    assert any(line.endswith("| 64.0 | Xeon |") for line in same) and "not comparable" not in "\n".join(same)
    mixed = "\n".join(report_tables.recipe_check(rows("textok-n2-s0", "Xeon") + rows("textok-n2-s0-gan", "EPYC"), "gan"))
    assert "different machines (Xeon; EPYC): their images/s are not comparable" in mixed
    assert "**no conclusion**" in mixed and "no conclusion" not in "\n".join(same)
    longer = [dict(r, steps=8000, psnr=r["psnr"] + 1, rfid=r["rfid"] - 20) for r in rows("textok-n2-s0", "Xeon")]
    text = report_tables.recipe_check(rows("textok-n2-s0", "Xeon") + longer + rows("textok-n2-s0-gan", "Xeon"), "gan")
    assert "| no GAN, twice the steps | 8000 | 19.00 | 0.3000 | 90.0 | 120.0 | – | Xeon |" in text
    assert "The main run at 8000 steps is +1.00 dB recall PSNR and -20.0 recall rFID from the variant." in text[-1]
    partial = rows("textok-n2-s0-gan", "Xeon")
    for r in partial:
        r["train_seconds_complete"] = False  # resumed from a checkpoint without the seconds count: no rate
    table = report_tables.recipe_check(rows("textok-n2-s0", "Xeon") + partial, "gan")
    assert any(line.startswith("| GAN") and line.endswith("| – | Xeon |") for line in table)


def test_status_table_can_leave_out_pending_runs():
    curves = [dict(run="textok-n2-s0", split="val", steps=s, psnr=p) for s, p in ((1000, 15.0), (2000, 16.0))]
    full, short = report_tables.status_table(curves), report_tables.status_table(curves, pending=False)
    assert any("| baseline-n2-s0 | pending" in line for line in full)
    assert not any("pending" in line for line in short)
    assert "| textok-n2-s0 | 1000, 2000 | – | no (one budget) | 16.00 | +1.00 dB | no |" in short  # new emoji first


def test_status_table_applies_the_rule_to_val_unseen_too():
    curves = [dict(run="textok-n4-s0", split=split, steps=s, psnr=p) for split, s, p in (
        ("val", 8000, 20.58), ("val", 16000, 21.72), ("val_unseen", 8000, 18.86), ("val_unseen", 16000, 19.12))]
    assert "| textok-n4-s0 | 8000, 16000 | +0.26 dB | yes | 21.72 | +1.14 dB | no |" in report_tables.status_table(curves)
    assert report_tables.is_converged(curves, "textok-n4-s0", split="val_unseen") and not report_tables.is_converged(curves, "textok-n4-s0")


def test_the_setting_names_the_study_recipe():
    text = report_tables.describe_recipe()
    assert "emoji32_textok_p8.yaml" in text and "8x8 patches (16 patch tokens)" in text


def test_ablations_are_compared_with_the_main_runs_at_the_side_budget():
    side = reproduction.SIDE_BUDGET
    row = lambda run, steps, split, psnr, cpu="Xeon": dict(run=run, steps=steps, split=split, psnr=psnr,  # noqa: E731
                                                           rfid=100.0, lpips=0.2, cpu=cpu)
    curves = [row(run, s, split, 20.0 + s / 1e4) for run in ("textok-n2-s0", "baseline-n2-s0")
              for s in (side, 2 * side) for split in ("val", "val_unseen")]
    curves += [row("textok-n2-s0-name-only", side, split, 19.0) for split in ("val", "val_unseen")]
    text = "\n".join(report_tables.ablation_table(curves))
    # the main runs at the side budget, not at their latest (2 x side) stage; new emoji first, then recall
    assert f"| baseline (no text) | {side} | Xeon | 100.0 | – | {20 + side / 1e4:.2f} | – |" in text
    assert f"| name_only | {side} | Xeon | 100.0 | – | 19.00 | – | 100.0 | – | 19.00 | – | – |" in text  # no spread
    assert "| class_only | pending |" in text
    # with TexTok's seeds: PSNR minus their mean, * beyond two of their standard deviations
    curves += [row(f"textok-n2-s{k}", side, split, p) for k, p in ((1, 20.9), (2, 20.7)) for split in ("val", "val_unseen")]
    # an ablation trained on another machine kind than the seeds: no difference, no conclusion
    curves += [row("textok-n2-s0-text-decoder-only", side, split, 25.0, cpu="EPYC") for split in ("val", "val_unseen")]
    text = "\n".join(report_tables.ablation_table(curves))  # seeds 20.8, 20.9, 20.7: mean 20.8, std 0.1
    # (every rFID is 100.0: std 0, so no rFID difference is marked)
    assert f"| name_only | {side} | Xeon | 100.0 | +0.0 | 19.00 | -1.80* | 100.0 | +0.0 | 19.00 | -1.80* | beyond 2 std " \
           "of TexTok's seeds on new emoji (`val_unseen`) PSNR, recall (`val`) PSNR |" in text
    assert f"| text_decoder_only | {side} | EPYC | 100.0 | – | 25.00 | – | 100.0 | – | 25.00 | – | trained on EPYC, " \
           "TexTok's seeds on Xeon: no conclusion |" in text
    assert "| TexTok: both, in-context, full caption, dropout 0 | 8000 | Xeon | 100.0 | +0.0 | 20.80 | +0.00 |" in text
    assert "recall (`val`) PSNR 20.80 ± 0.10" in text
    summary = "\n".join(report_tables.ablation_summary(curves))
    assert "against TexTok's 3 seeds on Xeon: 1 on that machine, beyond 2 std: name_only" in summary
    assert "text_decoder_only trained on another machine: no conclusion" in summary


def test_doublings_left_extrapolates_the_last_ratio():
    assert report_tables.doublings_left([1.0, 0.25]) == 0  # the last doubling already gained < 0.3 dB
    assert report_tables.doublings_left([1.2]) is None  # one gain: no ratio
    assert report_tables.doublings_left([1.0, 1.1]) is None  # not shrinking
    assert report_tables.doublings_left([1.2, 0.6]) == 2  # 0.6 -> 0.3 (not below) -> 0.15


def test_convergence_table_puts_the_train_probe_beside_both_splits():
    psnr = {"val": (17.0, 18.5, 19.8), "val_unseen": (16.8, 17.6, 18.0)}
    curves = [dict(run="baseline-n4-s0", steps=s, split=split, psnr=psnr[split][i], ablation=None, seed=0)
              for i, s in enumerate((2000, 4000, 8000)) for split in psnr]
    probes = {("baseline-n4-s0", 4000): {"psnr": 18.4}, ("baseline-n4-s0", 8000): {"psnr": 19.9}}
    text = "\n".join(report_tables.convergence_table(curves, probes))
    assert "| baseline-n4-s0 | 8000 | 19.90 | +1.50 | 19.80 | +1.30 | 18.00 | +0.40 |" in text
    assert "| baseline-n4-s0 | 2000 | – |  | 17.00 |  | 16.80 |  |" in text
    # val: 1.5 then 1.3 -> at ratio 0.867, 11 more doublings; val_unseen: 0.8 then 0.4 -> 0.2 after one more
    assert "recall (`val`): +1.50 then +1.30 dB per doubling; at that ratio below 0.3 dB after 11 more doublings" in text
    assert "new emoji (`val_unseen`): +0.80 then +0.40 dB per doubling; at that ratio below 0.3 dB after 1 more " \
           "doubling (~16,000" in text
    assert text.index("new emoji (`val_unseen`): +0.80") < text.index("recall (`val`): +1.50")
    assert "val PSNR minus train-probe PSNR -0.10 dB on average; the last doubling gained +1.50 dB on the train probe" in text


def test_plots_draw_the_convergence_figure_from_the_deepest_runs(tmp_path):
    curves = [dict(run=run, arm=run.split("-")[0], num_tokens=4, steps=s, split=split, psnr=17.0 + s / 4000,
                   rfid=100.0, ablation=None, seed=0)
              for run, budgets in (("textok-n4-s0", (2000, 4000)), ("baseline-n4-s0", (2000, 4000)),
                                   ("textok-n2-s0", (2000,)))
              for s in budgets for split in ("val", "val_unseen")]
    written = report_plots.plots(curves, curves, tmp_path, {("textok-n4-s0", 4000): {"psnr": 19.0}})
    assert tmp_path / "reproduction_convergence.png" in written
    assert (tmp_path / "reproduction_convergence.png").stat().st_size > 0


def test_category_table_shows_the_gain_and_the_wrong_caption_cost():
    cell = lambda n, b, t, w: {"count": n, "baseline": b, "textok": t, "swapped": w}  # noqa: E731
    split = {"Flags": cell(3, 15.0, 16.0, 12.0), "all": cell(5, 16.0, 16.5, 13.0)}
    text = "\n".join(report_tables.category_table({"pairs": [{"num_tokens": 2, "steps": 4000,
                                                   "splits": {"val": split, "val_unseen": split}}]}))
    assert "| category | images | N = 2 (4000) |" in text
    assert "| Flags | 3 | +1.00 |" in text and "| **all** | 5 | +0.50 |" in text
    assert "| *wrong caption* (all) | 5 | -3.50 |" in text
    assert report_tables.category_table({})[0].startswith("Pending")


def test_gain_over_training_compares_the_arms_at_each_common_budget():
    row = lambda run, s, split, psnr, rfid: dict(run=run, steps=s, split=split, psnr=psnr, rfid=rfid)  # noqa: E731
    curves = [row("baseline-n2-s0", s, split, 17.0, 100.0) for s in (2000, 4000, 8000) for split in ("val", "val_unseen")]
    curves += [row("textok-n2-s0", s, split, 17.5, 90.0) for s in (2000, 4000) for split in ("val", "val_unseen")]
    text = "\n".join(report_tables.gain_over_training(curves))
    assert "| 2 | 2000 | +0.50 | 10.0% | +0.50 | 10.0% |" in text and "| 2 | 4000 |" in text
    assert "| 2 | 8000 |" not in text  # TexTok has no 8k stage: arms are compared at equal budgets only
    assert report_tables.gain_over_training([])[0].startswith("Pending")


def test_generation_pending_names_the_missing_n_and_single_budgets():
    curves = [dict(run=f"{arm}-n{n}-s0", arm=arm, num_tokens=n, steps=8000, split="val", rfid=rfid, psnr=20.0)
              for n, base, text in ((1, 100.0, 80.0), (4, 90.0, 85.0))
              for arm, rfid in (("baseline", base), ("textok", text))]
    assert report_tables.gain_by_n(curves) == pytest.approx({1: 0.2, 4: 1 / 18})
    gen = lambda n, task, steps: {"num_tokens": n, "task": task, "dit_steps": steps}  # noqa: E731
    text = "\n".join(report_generation.generation_pending(curves, [gen(4, "class", 4000), gen(4, "class", 8000), gen(4, "t2i", 8000)]))
    assert "the DiTs at N = 1." in text  # the largest gain (20%) has no DiT yet
    assert "learning curve) for t2i at N = 4;" in text and "class at N = 4" not in text
    one_each = [dict(gen(4, "t2i", 8000), tag="cpu"), gen(4, "t2i", 4000)]  # two runs of one budget each: no curve
    assert "learning curve) for t2i at N = 4;" in "\n".join(report_generation.generation_pending(curves, one_each))
    both = [gen(n, task, s) for n in (1, 4) for task in ("class", "t2i") for s in (4000, 8000)]
    assert report_generation.generation_pending(curves, both) == []


def test_caption_reliance_table():
    rows = [dict(split="val", arm="baseline", decode="own", num_images=10, swapped=0, rfid=50.0, psnr=21.0, lpips=0.2),
            dict(split="val", arm="textok", decode="own", num_images=10, swapped=0, rfid=45.0, psnr=21.5, lpips=0.18),
            dict(split="val", arm="textok", decode="same-class", num_images=10, swapped=7, rfid=60.0, psnr=18.5,
                 lpips=0.25),
            dict(split="val", arm="textok", decode="other-class", num_images=10, swapped=10, rfid=90.0, psnr=16.6,
                 lpips=0.36)]
    table = "\n".join(report_generation.caption_reliance_table({"records": rows, "cpu": "AMD EPYC", "threads": 2}))
    assert "| recall (`val`) | rFID | 50.0 | 45.0 | 60.0 | 90.0 |" in table
    assert "| recall (`val`) | PSNR (dB) | 21.00 | 21.50 | 18.50 | 16.60 |" in table
    assert "| recall (`val`) | images swapped | – | 0 of 10 | 7 of 10 | 10 of 10 |" in table and "AMD EPYC, 2 threads" in table
    # the splits named for what they measure, new emoji first whatever the records' order
    unseen = [dict(r, split="val_unseen", rfid=r["rfid"] + 30) for r in rows]
    table = "\n".join(report_generation.caption_reliance_table({"records": rows + unseen}))
    assert "| new emoji (`val_unseen`) | rFID | 80.0 | 75.0 | 90.0 | 120.0 |" in table
    assert table.index("| new emoji (`val_unseen`) | rFID") < table.index("| recall (`val`) | rFID")
    # the random draw and the cycle choice get their columns where measured, in a fixed order
    rows += [dict(split="val", arm="textok", decode="same-class-cycle", num_images=10, swapped=7, rfid=52.0, psnr=20.0,
                  lpips=0.2), dict(split="val", arm="textok", decode="same-class-random", num_images=10, swapped=7,
                                   rfid=70.0, psnr=18.0, lpips=0.3)]
    table = "\n".join(report_generation.caption_reliance_table({"records": rows, "pair": "the N = 1 pair"}))
    assert "| recall (`val`) | rFID | 50.0 | 45.0 | 60.0 | 70.0 | 52.0 | 90.0 |" in table and "the N = 1 pair" in table
    assert "| TexTok, a random caption of the class | TexTok, the caption of the class chosen by cycle error |" in table
    # measured without the baseline (--baseline none): Table 1's baseline of that N fills its column
    solo = [dict(r, num_tokens=1) for r in rows if r["arm"] == "textok"]
    curves = [dict(run="baseline-n1-s0", split="val", steps=s, rfid=r, psnr=20.0, lpips=0.3, cpu="Xeon")
              for s, r in ((4000, 70.0), (8000, 66.0))]
    table = "\n".join(report_generation.caption_reliance_table({"records": solo, "pair": "N = 1", "command": "cmd"}, curves, first=False))
    assert "| recall (`val`) | rFID | 66.0 | 45.0 |" in table and "Table 1's `baseline-n1-s0` at 8000 steps (Xeon)." in table
    assert table.lstrip().startswith("The same at N = 1 (N = 1; `cmd`") and "What decoding" not in table
    curves.append(dict(run="textok-n1-s0", split="val", steps=8000, rfid=44.0, psnr=21.0, lpips=0.2))
    table = "\n".join(report_generation.caption_reliance_table({"records": solo}, curves, first=False))
    assert "Table 1's TexTok of that budget, for comparison with the retrained one: recall (`val`) rFID 44.0, PSNR 21.00 dB." in table
    assert report_generation.caption_reliance_table({}) == []
    # a baseline trained again on the file's machine to the TexTok's budget fills the column instead
    replicas = [dict(run="baseline-n1-s0", replicate="epyc", cpu="AMD EPYC", steps=8000, split="val", rfid=61.0,
                     psnr=20.5, lpips=0.25)]
    data = {"records": solo, "cpu": "AMD EPYC", "tokenizers": {"textok": "/w/runs/textok-n1-s0/stages/step_0008000"}}
    table = "\n".join(report_generation.caption_reliance_table(data, curves, first=False, replicas=replicas))
    assert "| recall (`val`) | rFID | 61.0 | 45.0 |" in table and "own score file at that budget (`epyc`)" in table
    assert "Table 1's" not in table
    other_budget = dict(data, tokenizers={"textok": "/w/stages/step_0004000"})  # no replicate there: Table 1's
    assert "| recall (`val`) | rFID | 66.0 | 45.0 |" in "\n".join(report_generation.caption_reliance_table(other_budget, curves, replicas=replicas))


def test_replicates_are_loaded_and_compared_with_the_study_run(tmp_path):
    for run, steps, val, unseen in (("textok-n1-s0", 8000, (19.2, 101.0), (16.7, 134.0)),
                                    ("textok-n1-s0", 16000, (20.5, 90.0), (16.9, 130.0)),
                                    ("baseline-n1-s0", 16000, (19.6, 99.0), (16.8, 135.0))):
        write(tmp_path / f"{run}-epyc" / f"step_{steps:07d}.json",
              {"cpu": "AMD EPYC", "steps": steps, "train_probe": {"psnr": val[0] + 1},
               "records": [dict(rec(split, p, f, steps=steps), arm=run.split("-")[0], num_tokens=1, seed=0,
                                num_images=10, train_seconds=100.0) for split, (p, f) in (("val", val), ("val_unseen", unseen))]})
    (tmp_path / "not-a-run-epyc").mkdir()  # ignored
    replicas = reproduction_report.load_replicates(tmp_path)
    assert len(replicas) == 6 and {r["replicate"] for r in replicas} == {"epyc"}
    assert reproduction_report.load_replicates(tmp_path / "missing") == []
    curves = [dict(run="textok-n1-s0", steps=8000, split=s, psnr=p, rfid=f, cpu="Xeon")
              for s, p, f in (("val", 19.25, 99.8), ("val_unseen", 16.74, 136.9))]
    text = "\n".join(report_tables.replicates_section(replicas, curves))
    assert "| textok-n1-s0 | 8000 | 20.20 | 19.20 |  | 101.0 | 16.70 |  | 134.0 | 100 | 19.25 / 99.8, 16.74 / 136.9 (Xeon) |" \
        in text
    assert "| textok-n1-s0 | 16000 | 21.50 | 20.50 | +1.30 | 90.0 | 16.90 | +0.20 | 130.0 | 100 | – |" in text
    # the rule per split, and the text gain at the budget both arms reached
    assert "- textok-n1-s0: new emoji (`val_unseen`) +0.20 dB from 8000 to 16000 steps: converged by the 0.3 dB rule; " \
           "recall (`val`) +1.30 dB from 8000 to 16000 steps: not converged by the 0.3 dB rule." in text
    assert "- baseline-n1-s0: new emoji (`val_unseen`): no doubled budget yet" in text
    assert "at 16000 steps on this machine: new emoji (`val_unseen`) rFID 135.0 -> 130.0 (3.7%), PSNR +0.10 dB; " \
           "recall (`val`) rFID 99.0 -> 90.0 (9.1%), PSNR +0.90 dB." in text


def test_table1_puts_a_pair_trained_again_beside_its_row():
    curves = [dict(run=f"{arm}-n1-s0", arm=arm, num_tokens=1, seed=0, ablation=None, split="val", steps=8000, rfid=f,
                   psnr=p, ssim=0.5, lpips=0.3, num_images=10, cpu="Xeon")
              for arm, f, p in (("baseline", 110.0, 18.0), ("textok", 99.0, 19.0))]
    replicas = [dict(r, replicate="epyc", cpu="AMD EPYC", rfid=f, psnr=p) for r, f, p in
                zip(curves, (100.0, 95.0), (18.1, 19.2))]
    text = "\n".join(report_tables.table1(curves, replicas))
    assert "| recall (`val`) | 1 | 384x | 8000 | 1 (seed 0) | 110.0 | 99.0 | +10.0% | 1 seed: no test |" in text
    assert "- The seed-0 pair of N = 1 trained again on AMD EPYC (`epyc`, same recipe, seed and budget, straight), " \
           "recall (`val`): rFID 100.0 -> 95.0, a 5.0% gain (seed 0 on Xeon: 110.0 -> 99.0, 10.0%), PSNR +1.10 dB " \
           "(+1.00): the spread of one run." in text
    # another budget: nothing to put beside
    assert "trained again" not in "\n".join(report_tables.table1(curves, [dict(r, steps=4000) for r in replicas]))


def seeded_rows(arm, n, seed, split, rfid, psnr=None):
    return dict(run=f"{arm}-n{n}-s{seed}", arm=arm, num_tokens=n, seed=seed, ablation=None, steps=8000, split=split,
                rfid=rfid, psnr=19.0 + (arm == "textok") + seed / 10 if psnr is None else psnr, lpips=0.2, ssim=0.5,
                num_images=10, cpu="Xeon", train_seconds=800.0 * (1 + (arm == "textok")),
                train_seconds_complete=seed > 0)


def test_table1_takes_the_seed_means_with_welch_p_new_emoji_first():
    """Where N has 3 seeds per arm, Table 1 is the mean ± std over them with the Welch p-value (scipy) and the
    2-std rule, on the new-emoji split first; the average gain is over those N; the summary says the same."""
    curves = [seeded_rows(arm, 1, s, "val", 100.0 - 10 * (arm == "textok") + s) for arm in ("baseline", "textok")
              for s in (0, 1, 2)]
    curves += [seeded_rows(arm, 1, s, "val_unseen", 130.0 + (s if arm == "baseline" else -s))
               for arm in ("baseline", "textok") for s in (0, 1, 2)]
    text = "\n".join(report_tables.table1(curves))
    from scipy.stats import ttest_ind

    p = ttest_ind([100.0, 101.0, 102.0], [90.0, 91.0, 92.0], equal_var=False).pvalue
    pu = ttest_ind([130.0, 131.0, 132.0], [130.0, 129.0, 128.0], equal_var=False).pvalue  # 0.07: no significance
    assert f"| recall (`val`) | 1 | 384x | 8000 | 3 | 101.0 ± 1.0 | 91.0 ± 1.0 | +9.9% | p = {p:.2g}, beyond 2 std |" in text
    assert f"| new emoji (`val_unseen`) | 1 | 384x | 8000 | 3 | 131.0 ± 1.0 | 129.0 ± 1.0 | +1.5% | p = {pu:.2g}, within " \
           "2 std |" in text
    assert text.index("new emoji (`val_unseen`) | 1") < text.index("recall (`val`) | 1")
    assert "Average relative rFID gain on new emoji (`val_unseen`) over the N with at least 3 seeds per arm (N = 1, at " \
           "8000 steps): **+1.5%**" in text
    summary = report_tables.summary_lines(curves)
    assert summary[0].startswith("- new emoji (`val_unseen`), 3 seeds per arm at 8000 steps, TexTok's rFID gain")
    assert f"N = 1: +1.5% (p = {pu:.2g}); no gain is significant (p < 0.05) or beyond 2 std." in summary[0]
    assert "significant at p < 0.05 for N = 1; beyond 2 std for N = 1." in summary[3]  # recall rFID
    data = report_tables.summary_data(curves)
    u = data["splits"]["val_unseen"]
    assert u["measures"] == "new" and data["splits"]["val"]["measures"] == "recall"
    assert u["by_num_tokens"]["1"]["seeds"] == {"baseline": 3, "textok": 3}
    assert u["by_num_tokens"]["1"]["rfid"]["textok_mean"] == 129.0
    assert u["by_num_tokens"]["1"]["rfid"]["p"] == pytest.approx(pu)
    # seed 0: its rank among the seeds, and the seconds per step (≥ where the count predates the flag)
    assert report_tables.seed0_ranks(curves, "val") == [(1, "baseline", 1, 3), (1, "textok", 1, 3)]
    seed0 = "\n".join(report_tables.seed0_table(curves))
    assert "| recall (`val`) | 1 | textok | 8000 | 90.0 | 91.0, 92.0 | 1 of 3 | ≥0.20 | 0.20, 0.20 |" in seed0


def test_welch_p_needs_two_values_and_some_variance():
    assert stats.welch_p([1.0], [2.0, 3.0]) is None
    assert stats.welch_p([1.0, 1.0], [2.0, 2.0]) is None
    assert stats.welch_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_readme_results_block_fills_its_markers_or_says_why_not(tmp_path):
    readme = tmp_path / "README.md"
    assert "no such file" in report_readme.fill_readme(readme, ["x"])
    readme.write_text("intro\n")
    assert "markers" in report_readme.fill_readme(readme, ["x"]) and readme.read_text() == "intro\n"
    readme.write_text(f"intro\n{report_readme.RESULTS_BEGIN}\nold\n{report_readme.RESULTS_END}\nrest\n")
    assert report_readme.fill_readme(readme, ["| new |"]).startswith("wrote")
    assert readme.read_text() == f"intro\n{report_readme.RESULTS_BEGIN}\n| new |\n{report_readme.RESULTS_END}\nrest\n"
    assert "unchanged" in report_readme.fill_readme(readme, ["| new |"])


def test_seeds_table_covers_every_n_with_two_seeds_per_arm():
    def row(arm, n, seed, split, rfid):
        return dict(run=f"{arm}-n{n}-s{seed}", arm=arm, num_tokens=n, seed=seed, ablation=None, steps=8000,
                    split=split, rfid=rfid, psnr=19.0 + (arm == "textok"), lpips=0.2)
    curves = [row(arm, n, s, split, 100.0 - 10 * (arm == "textok") + s) for arm in ("baseline", "textok")
              for n in (1, 2) for s in (0, 1, 2) for split in ("val", "val_unseen")]
    curves += [row(arm, 4, 0, "val", 90.0) for arm in ("baseline", "textok")]  # one seed: no row
    text = "\n".join(report_tables.seeds_table(curves))
    assert "| recall (`val`) | 1 | 8000 | rfid | 101.0 ± 1.0 | 91.0 ± 1.0 | 3/3 | +10.0 | yes, TexTok better | 0.00026 |" \
        in text
    assert "| recall (`val`) | 2 | 8000 | rfid |" in text and "| recall (`val`) | 4 |" not in text
    assert text.index("new emoji (`val_unseen`) | 1") < text.index("recall (`val`) | 1")
    assert report_tables.seeded_tokens(curves) == "N = 1 and 2"
    assert report_tables.seeded_tokens(curves + [row("textok", 8, 1, "val", 80.0)]) == "N = 1, 2 and 8"
    assert report_tables.seeded_tokens([]) == "none yet"


def test_compression_names_the_smaller_n_or_says_none_reaches_it():
    def curves(rfid4):
        rfid = {("baseline", 8): 90.0, ("textok", 1): 120.0, ("textok", 2): 100.0, ("textok", 4): rfid4,
                ("textok", 8): 85.0}
        return [dict(run=f"{arm}-n{n}-s0", arm=arm, num_tokens=n, seed=0, ablation=None, steps=8000, split=split,
                     rfid=r) for (arm, n), r in rfid.items() for split in ("val", "val_unseen")]
    text = "\n".join(report_tables.compression(curves(88.0)))
    assert "the baseline's N = 8 rFID 90.0 (1 seed): TexTok matches it with N = 4 (2x fewer tokens; its rFID 88.0 " \
           "(1 seed))" in text
    assert text.index("new emoji") < text.index("recall")
    text = "\n".join(report_tables.compression(curves(93.0)))  # only N = 8 itself reaches it: no "1x fewer tokens"
    assert "no smaller TexTok N reaches it: TexTok N = 4 has 93.0 (1 seed)" in text
    assert "1x fewer" not in text
