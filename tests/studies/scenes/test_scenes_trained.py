"""studies/scenes: the trained phase (issue 44): its runs, the plateau ladder, a record of today's driver continued,
the swaps at the final rung and the report's trained section, on a tiny model (ladder 1, 2, 4, 8 steps)."""

import json
import shutil
import math

import pytest

from tests.studies.scenes.conftest import TINY


@pytest.fixture(scope="module")
def sr(scenes_study):
    return scenes_study("run")


def _record(psnr: dict[int, float]) -> dict:
    return {"budgets": {str(b): {"steps": b, "val": {"psnr": p}} for b, p in psnr.items()}}


def test_trained_runs_cover_the_issue(sr):
    runs = sr.trained_runs()
    names = [r.name for r in runs]
    assert len(set(names)) == len(names) == 32
    by = {r.name: r for r in runs}
    for n, seeds in ((1, {0, 1, 2}), (4, {0, 1, 2}), (2, {0, 1}), (8, {0, 1})):
        for arm in ("textok", "baseline"):
            assert {r.seed for r in runs if (r.arm, r.num_tokens) == (arm, n) and r.group in ("main", "seeds")} == seeds
    # the ablation: text in the encoder only, the decoder only, cross-attention; at N = 1 and 4, seeds 0 and 1
    for n in (1, 4):
        for s in (0, 1):
            assert "model.text_in=encoder" in by[f"textok-n{n}-s{s}-text-encoder"].config_overrides()
            assert "model.text_in=decoder" in by[f"textok-n{n}-s{s}-text-decoder"].config_overrides()
            assert ("model.text_conditioning=cross-attention"
                    in by[f"textok-n{n}-s{s}-cross-attention"].config_overrides())
    assert sum(r.group == "placement" for r in runs) == 12
    # "none" is the baseline arm: no text, no caption dropout
    assert {"model.text_in=none", "data.caption_dropout=0.0"} <= set(by["baseline-n1-s0"].config_overrides())
    # the order: what the verdict needs first
    assert {r.num_tokens for r in runs[:6]} == {1} and {r.num_tokens for r in runs[6:12]} == {4}
    assert {r.group for r in runs[12:24]} == {"placement"} and {r.num_tokens for r in runs[24:]} == {2, 8}
    trained = sr.PHASES["trained"]
    assert (trained.data, trained.threads, trained.ladder, trained.config.name) == (
        "data/scenes25k", 2, True, "scenes32_fast.yaml")
    assert trained.results.parts[-3:] == ("scenes", "trained", "runs")


def test_ladder_status(sr, tmp_path):
    cap = 50_000
    st = sr.ladder_status({}, cap)
    assert (st["status"], st["next"], st["final"]) == ("training", 1000, None)
    st = sr.ladder_status(_record({1000: 20.0, 2000: 22.0}), cap)
    assert (st["status"], st["next"], st["gains"]) == ("training", 4000, {"2000": 2.0})
    st = sr.ladder_status(_record({1000: 20.0, 2000: 22.0, 4000: 22.1}), cap)
    assert (st["status"], st["final"], st["next"]) == ("plateau", 4000, None)
    # a drop right after a climb is a dip, not a plateau: one more rung (baseline-n8-s0: +2.39 dB, then -0.30)
    dip = _record({1000: 25.76, 2000: 28.16, 4000: 27.85})
    st = sr.ladder_status(dip, cap)
    assert (st["status"], st["next"], st["final"]) == ("training", 8000, None)
    assert sr.ladder_status(_record({1000: 25.76, 2000: 28.16, 4000: 27.85, 8000: 31.0}), cap)["status"] == "training"
    assert sr.ladder_status(_record({1000: 25.76, 2000: 28.16, 4000: 27.85, 8000: 27.9}), cap)["status"] == "plateau"
    assert sr.ladder_status(dip, 4000)["status"] == "cap"  # no rung left: the dip is where it stops
    # a drop after a flat doubling, or at the first doubling, is a plateau
    assert sr.ladder_status(_record({1000: 20.0, 2000: 20.1, 4000: 19.9}), cap)["status"] == "plateau"
    assert sr.ladder_status(_record({1000: 20.0, 2000: 19.5}), cap)["status"] == "plateau"
    # exactly the threshold is not a plateau (the gain must be below it)
    assert sr.ladder_status(_record({1000: 20.0, 2000: 20.25}), cap, threshold_db=0.25)["status"] == "training"
    # a record of today's driver (--steps 8000, the curve at 2000 and 4000) continues at 16000, never at 1000
    old = _record({2000: 26.0, 4000: 27.0, 8000: 27.5})
    st = sr.ladder_status(old, cap)
    assert (st["status"], st["next"]) == ("training", 16000)
    assert sr.ladder_status(_record({8000: 27.5}), cap)["next"] == 16000
    # the cap: the next rung would pass it
    st = sr.ladder_status(old, 15_000)
    assert (st["status"], st["final"], st["next"]) == ("cap", 8000, None)
    assert sr.ladder_status(old, 16_000)["next"] == 16000
    assert "cap at 8000 (+0.50 dB over the last doubling)" == sr.describe_status(st)
    # the status the driver recorded wins over a recomputation with the caller's cap
    assert sr.recorded_status(dict(old, plateau=sr.ladder_status(old, 15_000)), cap)["status"] == "cap"
    assert sr.recorded_status(old, cap)["status"] == "training"
    assert sr.Plan(max_steps=cap).ladder and not sr.Plan(steps=5000).ladder
    # the plan's threshold (--plateau-db): -inf climbs past a flat doubling, to the cap
    (tmp_path / "x.json").write_text(json.dumps(_record({1000: 20.0, 2000: 22.0, 4000: 22.1})))
    assert sr.Plan(max_steps=cap).status(tmp_path, "x")["status"] == "plateau"
    st = sr.Plan(max_steps=cap, plateau_db=-math.inf).status(tmp_path, "x")
    assert (st["status"], st["next"]) == ("training", 8000)
    assert sr.Plan(max_steps=4000, plateau_db=-math.inf).status(tmp_path, "x")["status"] == "cap"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sr, tiny_scenes):
    """textok-n1-s0 scored by today's driver (first phase, fast recipe, --steps 4: 1, 2, 4), then continued by the
    trained phase with a cap of 8 (never plateauing); baseline-n1-s0 on the ladder plateauing at its first
    doubling. The ladder starts at 1 step."""
    from tests.conftest import TinyFeatures

    tmp = tmp_path_factory.mktemp("trained")
    work, results = tmp / "work", tmp / "results"
    common = ["--work", str(work), "--results", str(results), "--data", str(tiny_scenes), "--threads", "1",
              *[f"--override={o}" for o in TINY]]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sr, "FEATURES", TinyFeatures())
        mp.setattr(sr, "TRAIN_PROBE", 8)
        mp.setattr(sr, "LADDER_START", 1)
        config = str(sr.PHASES["trained"].config)
        assert sr.main(["--job", "textok-n1-s0", "--steps", "4", "--config", config, *common]) == 0
        before = json.loads((results / "textok-n1-s0.json").read_text())
        mp.setattr(sr, "PLATEAU_DB", -math.inf)  # never a plateau: climbs to the cap
        assert sr.main(["--job", "textok-n1-s0", "--phase", "trained", "--max-steps", "8", *common]) == 0
        mp.setattr(sr, "PLATEAU_DB", math.inf)  # every doubling is a plateau: stops at 2
        assert sr.main(["--job", "baseline-n1-s0", "--phase", "trained", "--max-steps", "8", *common]) == 0
    return {"work": work, "results": results, "common": common, "before": before, "data": tiny_scenes}


def test_trained_phase_continues_todays_record(sr, trained):
    rec = json.loads((trained["results"] / "textok-n1-s0.json").read_text())
    assert sorted(rec["budgets"], key=int) == ["1", "2", "4", "8"]
    for b in ("1", "2", "4"):  # today's budgets are kept as they were
        assert rec["budgets"][b] == trained["before"]["budgets"][b]
    eight = rec["budgets"]["8"]
    assert eight["val"]["rfid"] >= 0 and "rfid_added" not in eight["val"]  # known final beforehand: 16 > the cap
    assert eight["train_seconds_total"] >= rec["budgets"]["4"]["train_seconds_total"]
    assert eight["effective_config"]["optim"]["optimizer"] == "muon"
    st = rec["plateau"]
    assert (st["status"], st["final"], st["max_steps"], st["next"]) == ("cap", 8, 8, None)
    assert set(st["gains"]) == {"2", "4", "8"}
    assert (trained["work"] / "stages" / "textok-n1-s0" / "step_0000008" / "model.safetensors").is_file()


def test_plateau_stops_the_ladder_and_adds_the_rfid(sr, trained):
    rec = json.loads((trained["results"] / "baseline-n1-s0.json").read_text())
    assert sorted(rec["budgets"], key=int) == ["1", "2"]
    assert (rec["plateau"]["status"], rec["plateau"]["final"]) == ("plateau", 2)
    assert rec["budgets"]["1"]["val"]["rfid"] is None  # rFID at the final rung only ...
    for split in ("val", "val_compositional"):  # ... added from the stage model once the rung proved final
        assert rec["budgets"]["2"][split]["rfid"] >= 0 and rec["budgets"]["2"][split]["rfid_added"]["threads"] >= 1
    assert rec["budgets"]["2"]["effective_config"]["model"]["text_in"] == "none"


def test_trained_driver_is_idempotent_and_lists_status(sr, trained, monkeypatch, capsys):
    monkeypatch.setattr(sr, "LADDER_START", 1)
    results, common = trained["results"], trained["common"]
    before = {n: (results / f"{n}.json").read_bytes() for n in ("textok-n1-s0", "baseline-n1-s0")}
    for name, threshold in (("textok-n1-s0", -math.inf), ("baseline-n1-s0", math.inf)):  # the rules they ran under
        monkeypatch.setattr(sr, "PLATEAU_DB", threshold)
        assert sr.main(["--job", name, "--phase", "trained", "--max-steps", "8", *common]) == 0
        assert (results / f"{name}.json").read_bytes() == before[name]  # final: nothing trained or scored again
    capsys.readouterr()  # (PLATEAU_DB is inf here: every doubling is a plateau)
    assert sr.main(["--list", "--phase", "trained", "--max-steps", "8", "--runs", "*-n1-s0", "textok-n1-s1",
                    *common]) == 0
    out = capsys.readouterr().out
    assert "plateau at 2 (" in out and "plateau at 8 (" in out and "next rung 1 (no doubling yet)" in out
    monkeypatch.setattr(sr, "PLATEAU_DB", -math.inf)  # the ladder is judged live: a stricter rule reopens a run
    capsys.readouterr()
    assert sr.main(["--list", "--phase", "trained", "--max-steps", "8", "--runs", "*-n1-s0", *common]) == 0
    out = capsys.readouterr().out
    assert "cap at 8 (" in out and "next rung 4 (" in out
    assert "if every run climbs to the cap (8 steps: its last rung 8)" in out
    with pytest.raises(SystemExit, match="picks its budgets"):
        sr.main(["--list", "--phase", "trained", "--steps", "4", *common])
    with pytest.raises(SystemExit, match="only the trained phase"):
        sr.main(["--list", "--max-steps", "8", *common])
    monkeypatch.setattr(sr, "LADDER_START", 1000)
    with pytest.raises(SystemExit, match="below the ladder's first rung"):
        sr.main(["--list", "--phase", "trained", "--max-steps", "999", *common])
    # the default cap: CAP_SECONDS at the slower arm's s/step (measured here on this phase's thread count, else prior)
    per_step = sr.seconds_per_step(results, sr.PHASES["trained"])[0]
    assert sr.default_max_steps(results, sr.PHASES["trained"]) == int(sr.CAP_SECONDS / max(per_step.values()))


def test_swaps_at_the_final_rung(scenes_study, trained, tmp_path, capsys):
    swaps = scenes_study("swaps")
    out = tmp_path / "swaps"
    assert swaps.main(["--phase", "trained", "--runs", "textok-n1-s0", "baseline-n1-s0", "textok-n4-s0",
                       "--num", "4", "--data", str(trained["data"]), "--work", str(trained["work"]),
                       "--results", str(trained["results"]), "--out", str(out)]) == 0
    sw = json.loads((out / "swaps.json").read_text())
    assert {n: r["steps"] for n, r in sw["runs"].items()} == {"textok-n1-s0": 8, "baseline-n1-s0": 2}
    assert sw["phase"] == "trained" and sw["commit"] and sw["cpu"] and (out / "swaps.png").stat().st_size > 0
    assert "textok-n4-s0: no stage model" in capsys.readouterr().out
    assert all(r["cpu"] and r["commit"] and r["threads"] for r in sw["runs"].values())
    # a later call keeps the runs it does not measure (stage models do not survive a new machine) and its picture
    first = {n: (out / "swaps" / f"{n}.png").read_bytes() for n in sw["runs"]}
    sw["runs"]["baseline-n1-s0"]["cpu"] = "another host"
    (out / "swaps.json").write_text(json.dumps(sw))
    args = ["--phase", "trained", "--runs", "textok-n1-s0", "--num", "4", "--data", str(trained["data"]),
            "--work", str(trained["work"]), "--results", str(trained["results"]), "--out", str(out)]
    assert swaps.main(args) == 0
    again = json.loads((out / "swaps.json").read_text())
    assert list(again["runs"]) == ["baseline-n1-s0", "textok-n1-s0"]
    assert again["runs"]["baseline-n1-s0"]["cpu"] == "another host"
    assert again["runs"]["textok-n1-s0"]["rates"] == sw["runs"]["textok-n1-s0"]["rates"]  # same model, same rates
    assert (out / "swaps" / "baseline-n1-s0.png").read_bytes() == first["baseline-n1-s0"]
    from PIL import Image

    assert Image.open(out / "swaps.png").height > Image.open(out / "swaps" / "textok-n1-s0.png").height
    assert swaps.main([*args, "--replace"]) == 0
    assert list(json.loads((out / "swaps.json").read_text())["runs"]) == ["textok-n1-s0"]
    with pytest.raises(SystemExit, match="phase's swaps"):
        swaps.main(["--phase", "first", *args[2:]])


def test_split_overlap_counts(scenes_study, tmp_path):
    rt = scenes_study("report_trained")
    obj = {"colour": "red", "shape": "circle", "size": "small", "position": "center", "cell": 4, "dx": 0, "dy": 0}
    cap = "a small red circle at center, on a grey background"

    def entry(split, i, dx, caption=cap):
        return {"file": f"images/{split}/{i:06d}.png", "split": split, "caption": caption, "background": "grey",
                "objects": [dict(obj, dx=dx)]}

    entries = [entry("train", 0, 0), entry("train", 1, 1, "a small red circle at center, on a navy background"),
               entry("val", 0, 0), entry("val", 1, 2), entry("val", 2, 0, "other"),
               entry("val_compositional", 0, 3, "new")]
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    ov = rt.split_overlap(tmp_path, scored=2)
    # val 0: the same scene and caption as train 0; val 1: the same caption, another offset (another scene); val 2:
    # train 0's scene under another caption (the key alone decides the scene)
    assert ov["train_images"] == 2
    assert ov["splits"]["val"] == {"images": 3, "same_caption": 2, "same_scene": 2, "scored": 2,
                                   "scored_same_caption": 2, "scored_same_scene": 1}
    assert ov["splits"]["val_compositional"]["same_caption"] == ov["splits"]["val_compositional"]["same_scene"] == 0
    assert rt.split_overlap(tmp_path / "none") is None


def test_report_trained_section(scenes_study, trained, tmp_path):
    report = scenes_study("report")
    results, out, page = trained["results"], tmp_path / "out", tmp_path / "scenes.md"
    assert report.main(["--results", str(tmp_path / "first"), "--out", str(out), "--trained-results", str(results),
                        "--trained-data", str(trained["data"]), "--page", str(page)]) == 0
    summary = json.loads((out / "trained" / "summary.json").read_text())
    text = page.read_text()
    assert summary["runs_final"] == ["baseline-n1-s0", "textok-n1-s0"]
    tex, base = (json.loads((results / f"{n}.json").read_text()) for n in ("textok-n1-s0", "baseline-n1-s0"))
    row = next(r for r in summary["table1"] if (r["num_tokens"], r["split"], r["metric"]) == (1, "val", "psnr"))
    assert row["textok"] == tex["budgets"]["8"]["val"]["psnr"]
    assert row["baseline"] == base["budgets"]["2"]["val"]["psnr"]
    status = {r["run"]: r for r in summary["plateau"]}
    assert (status["textok-n1-s0"]["status"], status["textok-n1-s0"]["final"]) == ("cap", 8)
    assert status["textok-n1-s0"]["val_psnr"] == [tex["budgets"][b]["val"]["psnr"] for b in ("1", "2", "4", "8")]
    assert status["textok-n4-s0"]["status"] == "not started" and status["textok-n4-s0"]["pending"]
    place = {(r["num_tokens"], r["text"]): r for r in summary["placement"]}
    both, none = place[(1, "encoder and decoder, in-context (TexTok)")], place[(1, "none (the baseline)")]
    assert both["seeds"] == none["seeds"] == 1 and place[(1, "encoder only")]["seeds"] == 0
    assert none["val_psnr_vs_both"] == pytest.approx(row["baseline"] - row["textok"])
    assert [c["steps"] for c in summary["curves"]] == [[1, 2], [1, 2, 4, 8]]
    assert summary["split_overlap"]["scored_per_split"] == tex["budgets"]["8"]["eval_num"]
    assert summary["split_overlap"] == scenes_study("report_trained").split_overlap(trained["data"],
                                                                                    tex["budgets"]["8"]["eval_num"])
    assert (out / "trained" / "curves.png").stat().st_size > 0
    # the page: the trained section, pending runs with the command that resumes them, then the first phase's
    assert text.startswith("# Scenes, trained tokenizers (issue 44)")
    assert "| textok-n1-s0 | 1: " in text and "cap at 8" in text and "plateau at 2" in text
    assert "python -m studies.scenes.run --phase trained --runs textok-n1-s1 baseline-n1-s1" in text
    assert "Pending: `python -m studies.scenes.swaps --phase trained`." in text and "## Text-to-image" in text
    assert f"Machine: {tex['budgets']['8']['cpu']}" in text
    assert text.index("# Scenes, trained") < text.index("# Scenes: does the caption free the tokens? (issue 36)")
    # side runs past the cap: no folder, no section; a score file there gets a row (rungs, gain, rFID, CPU)
    assert summary["side_runs"]["beyond_cap"]["rows"] == [] and "beyond the cap" not in text
    (out / "trained" / "beyond_cap").mkdir()
    (out / "trained" / "beyond_cap" / "textok-n1-s0.json").write_text(json.dumps(tex))
    # the baseline's rung 8 (a copy of its rung 2): the seed-means table compares the arms at the newest rung, 8
    base8 = dict(base, budgets={**base["budgets"], "8": dict(base["budgets"]["2"], steps=8)})
    (out / "trained" / "beyond_cap" / "baseline-n1-s0.json").write_text(json.dumps(base8))
    (out / "trained" / "beyond_cap" / "baseline-n2-s0.json").write_text(json.dumps(dict(base8, num_tokens=2,
                                                                                       run="baseline-n2-s0")))
    assert report.main(["--results", str(tmp_path / "first"), "--out", str(out), "--trained-results", str(results),
                        "--trained-data", str(trained["data"]), "--page", str(page)]) == 0
    side = json.loads((out / "trained" / "summary.json").read_text())["side_runs"]["beyond_cap"]["rows"]
    assert [(r["run"], r["budgets"]) for r in side] == [("baseline-n1-s0", [1, 2, 8]), ("baseline-n2-s0", [1, 2, 8]),
                                                        ("textok-n1-s0", [1, 2, 4, 8])]
    side = side[2:]
    tables = json.loads((out / "trained" / "summary.json").read_text())["side_runs"]["beyond_cap"]["tables"]
    assert tables["steps"] == 8 and {(r["metric"], r["split"]) for r in tables["table1"]} == {("psnr", "val"),
                                                                                            ("rfid", "val")}
    psnr8 = next(r for r in tables["table1"] if r["metric"] == "psnr")
    assert (psnr8["textok"], psnr8["baseline"]) == (tex["budgets"]["8"]["val"]["psnr"],
                                                    base["budgets"]["2"]["val"]["psnr"])
    assert tables["compression"][0]["num_tokens"] == 1
    # TexTok at N = 1 against the baseline at N' = 2 (one seed each: no p)
    assert [(c["textok_n"], c["baseline_n"], c["seeds"], c["p"]) for c in tables["cross"]] == [(1, 2, [1, 1], None)]
    assert tables["cross"][0]["difference"] == pytest.approx(psnr8["textok"] - psnr8["baseline"])
    p8, p4 = (tex["budgets"][b]["val"]["psnr"] for b in ("8", "4"))
    assert side[0]["last_gain"] == pytest.approx(p8 - p4) and side[0]["val_rfid"] == tex["budgets"]["8"]["val"]["rfid"]
    text = page.read_text()
    assert "## Trained: beyond the cap (side runs)" in text
    assert "| textok-n1-s0 | 1: " in text.split("beyond the cap")[1]
    assert "The side runs' seed means (val), at 8 steps:" in text and "| TexTok N | TexTok PSNR |" in text
    assert "| TexTok N | baseline N' | seeds |" in text and "| 1 | 2 | 1 vs 1 |" in text
    # another recipe's side runs (record5/): compared at each run's final rung; a run still climbing is a row only
    shutil.rmtree(out / "trained" / "beyond_cap")
    (out / "trained" / "record5").mkdir()
    (out / "trained" / "record5" / "textok-n1-s0.json").write_text(json.dumps(tex))
    (out / "trained" / "record5" / "baseline-n1-s0.json").write_text(json.dumps(base))
    # rungs 1-4 and no recorded status: judged under --max-steps, whose next rung (LADDER_START) fits: still training
    climbing = {k: v for k, v in tex.items() if k != "plateau"}
    climbing = dict(climbing, run="textok-n1-s1", seed=1, budgets={b: tex["budgets"][b] for b in ("1", "2", "4")})
    (out / "trained" / "record5" / "textok-n1-s1.json").write_text(json.dumps(climbing))
    assert report.main(["--results", str(tmp_path / "first"), "--out", str(out), "--trained-results", str(results),
                        "--trained-data", str(trained["data"]), "--page", str(page), "--max-steps", "1000"]) == 0
    side = json.loads((out / "trained" / "summary.json").read_text())["side_runs"]
    assert side["beyond_cap"]["rows"] == [] and side["beyond_cap"]["tables"] is None
    rows = {r["run"]: r for r in side["record5"]["rows"]}
    assert {n: r["status"] for n, r in rows.items()} == {"baseline-n1-s0": "plateau", "textok-n1-s0": "cap",
                                                          "textok-n1-s1": "training"}
    psnr = next(r for r in side["record5"]["tables"]["table1"] if r["metric"] == "psnr")
    assert side["record5"]["tables"]["steps"] == "final" and psnr["seeds"] == [1, 1]
    assert (psnr["textok"], psnr["baseline"]) == (p8, base["budgets"]["2"]["val"]["psnr"])
    text = page.read_text()
    assert "beyond the cap" not in text and "## Trained: the speedrun's record 5 up the ladder" in text
    assert "The side runs' seed means (val), each run at its final rung:" in text
    # a side folder with one arm only (record5_past_plateau: a baseline climbed on): its rows, no seed means
    (out / "trained" / "record5_past_plateau").mkdir()
    (out / "trained" / "record5_past_plateau" / "baseline-n1-s0.json").write_text(json.dumps(base))
    assert report.main(["--results", str(tmp_path / "first"), "--out", str(out), "--trained-results", str(results),
                        "--trained-data", str(trained["data"]), "--page", str(page), "--max-steps", "1000"]) == 0
    section = page.read_text().split("## Trained: the speedrun's record 5 past a plateau")[1].split("\n## ")[0]
    assert "| baseline-n1-s0 | 1: " in section and "seed means" not in section


def test_scheduler_starts_trained_workers(sr, tiny_scenes, tmp_path, monkeypatch, capsys):
    """The scheduler hands each worker the phase, the cap and the threads (a stand-in process: nothing trains)."""
    started = []

    class Done:
        returncode = 0

        def __init__(self, cmd, **kwargs):
            started.append((cmd, kwargs["env"]["OMP_NUM_THREADS"]))

        def poll(self):
            return 0

    monkeypatch.setattr(sr.subprocess, "Popen", Done)
    assert sr.main(["--phase", "trained", "--runs", "textok-n4-s1", "baseline-n8-s0", "--max-steps", "4000",
                    "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results"),
                    "--data", str(tiny_scenes), "--poll", "0"]) == 0
    assert [cmd[cmd.index("--job") + 1] for cmd, _ in started] == ["textok-n4-s1", "baseline-n8-s0"]
    cmd, threads = started[0]
    assert cmd[cmd.index("--phase") + 1] == "trained" and cmd[cmd.index("--max-steps") + 1] == "4000"
    assert cmd[cmd.index("--threads") + 1] == threads == "2" and "--steps" not in cmd
    assert cmd[cmd.index("--config") + 1].endswith("scenes32_fast.yaml")
    assert "if every run climbs to the cap (4000 steps: its last rung 4000)" in capsys.readouterr().out
    # the rule's threshold reaches the workers (as one argument: argparse reads a lone "-inf" as an option)
    started.clear()
    assert sr.main(["--phase", "trained", "--runs", "baseline-n8-s0", "--max-steps", "4000", "--plateau-db=-inf",
                    "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results"),
                    "--data", str(tiny_scenes), "--poll", "0"]) == 0
    assert "--plateau-db=-inf" in started[0][0]
    with pytest.raises(SystemExit, match="--plateau-db"):
        sr.main(["--plateau-db", "0.1", "--list"])


def test_readme_table_from_table1_and_generation(tmp_path):
    """The README's scenes table: reconstruction rows per N from Table 1, text-to-image rows (exact, gFID) per split
    from the generation summary, written only between its markers."""
    from studies.scenes import report

    def row(n, split, metric, base, tex):
        return {"num_tokens": n, "split": split, "metric": metric, "baseline": base, "baseline_std": 0.1,
                "textok": tex, "textok_std": 0.2, "seeds": [2, 2], "gain": None, "p": 0.001}

    t1 = [row(1, "val", "psnr", 25.8, 32.6), row(1, "val", "rfid", 124.5, 79.7),
          row(1, "val_compositional", "psnr", 25.9, 32.4), row(1, "val", "ssim", 0.8, 0.9)]
    arm = lambda exact, gfid: {"dit_seeds": 1, "gfid": [gfid, None], "images": {"exact": [exact, None]}}  # noqa: E731
    gen = {"rows": [{"num_tokens": 1, "split": "val", "sampler": "ddim", "steps": 50, "cfg_scale": 3.0,
                     "arms": {"textok": arm(0.9, 40.0), "baseline": arm(0.2, 60.0)},
                     "welch_p": {"exact": None, "gfid": None}},
                    {"num_tokens": 1, "split": "val", "sampler": "ddim", "steps": 8, "cfg_scale": 3.0,
                     "arms": {"textok": arm(0.5, 90.0), "baseline": arm(0.1, 95.0)},
                     "welch_p": {"exact": None, "gfid": None}}]}
    lines = report.readme_rows(t1, gen)
    assert len(lines) == 2 + 3 + 2  # header, PSNR / rFID / held-out PSNR, exact + gFID of the many-step sampler
    assert "| 25.80 ± 0.10 | 32.60 ± 0.20 | 0.001 |" in lines[2]
    assert "whole scene right" in lines[5] and "| 20.0% | 90.0% |" in lines[5]
    assert "| 60.0 | 40.0 |" in lines[6]
    readme = tmp_path / "README.md"
    start, end = report.README_MARKERS
    readme.write_text(f"top\n{start}\nold\n{end}\nbottom\n")
    assert report.readme_table(readme, t1, gen, {"train_scenes": 25000, "cpu": "AMD EPYC"})
    text = readme.read_text()
    assert text.startswith("top\n") and text.endswith(f"{end}\nbottom\n") and "old" not in text
    assert "| reconstruction, new scenes | 1 | PSNR (dB) ↑ | 2 |" in text
    readme.write_text("no markers\n")
    assert not report.readme_table(readme, t1, gen, {}) and readme.read_text() == "no markers\n"

    # a larger N adds one text-to-image row: the whole scene on val captions (no gFID, no held-out split)
    more = [dict(r, num_tokens=4) for r in gen["rows"][:1]]
    more.append(dict(more[0], split="val_compositional"))
    lines = report.readme_rows(t1, {"rows": gen["rows"] + more})
    assert len(lines) == 2 + 3 + 2 + 1
    assert lines[-1].startswith("| text-to-image, captions of new scenes | 4 | whole scene right ↑ |")


def test_trained_verdict_reads_table1_compression_and_generation():
    from studies.scenes import report_trained

    def row(n, split, base, tex):
        return {"num_tokens": n, "split": split, "metric": "psnr", "baseline": base, "textok": tex, "seeds": [2, 2],
                "p": 0.01}

    arm = lambda exact, gfid: {"dit_seeds": 2, "gfid": [gfid, 1.0], "images": {"exact": [exact, 0.01]}}  # noqa: E731
    summary = {"table1": [row(1, "val", 25.8, 32.3), row(1, "val_compositional", 25.9, 32.1), row(8, "val", 31.0, None)],
               "compression": [{"num_tokens": 1, "psnr_baseline_n": 8, "psnr_factor": 8.0, "psnr_at_least": True}],
               "generation": {"rows": [{"num_tokens": 1, "split": "val", "sampler": "ddim", "steps": 50,
                                        "arms": {"textok": arm(0.929, 74.9), "baseline": arm(0.092, 114.5)},
                                        "welch_p": {"exact": 7.3349e-06, "gfid": 0.0033228}}]}}
    v = report_trained.verdict(summary)
    assert v.startswith("**Verdict:** at N = 1 (2 vs 2 seeds)") and "N = 8" not in v
    assert "32.30 dB PSNR against the baseline's 25.80" in v and "32.10 against 25.90" in v
    assert "N' = 8 tokens or more" in v and "≥ 8x" in v
    assert "92.9% of TexTok's samples against 9.2% (p = 7.3e-06), gFID 74.9 against 114.5 (p = 0.0033)" in v
    summary["table1"][0]["p"] = 0.00017  # a small p keeps its digits
    assert "(p = 0.00017)" in report_trained.verdict(summary)
    assert report_trained.verdict({"table1": [], "compression": []}) is None


def test_setting_names_every_cpu_the_final_rungs_ran_on():
    from studies.scenes import report_trained

    def final(cpu):
        return {"effective_config": {"optim": {"batch_size": 32, "optimizer": "muon"}}, "eval_num": 300, "cpu": cpu,
                "data": {"recipe": {"count": 25000}}}

    st = report_trained.setting([final("AMD EPYC"), final("Intel Xeon"), final("AMD EPYC")])
    assert st["cpu"] == "AMD EPYC and Intel Xeon"
    assert (st["train_scenes"], st["batch_size"], st["optimizer"]) == (25000, 32, "muon")
    assert report_trained.setting([final("AMD EPYC")])["cpu"] == "AMD EPYC"
    three = report_trained.setting([final("AMD EPYC"), final("Intel Xeon (AMX)"), final("Intel Xeon")])
    assert three["cpu"] == "AMD EPYC, Intel Xeon (AMX) and Intel Xeon"


def test_swap_ranges_span_the_seeds_of_each_arm_and_n(scenes_study):
    rt = scenes_study("report_trained")

    def run(arm, n, colour, background):
        rates = {"colour": {"followed": colour}, "position": {"followed": 0.8}, "background": {"followed": background}}
        return {"arm": arm, "num_tokens": n, "rates": rates}

    sw = {"factors": ["colour", "position", "background"],
          "runs": {"textok-n1-s0": run("textok", 1, 1.0, 1.0), "textok-n1-s1": run("textok", 1, 0.99, 0.0),
                   "baseline-n1-s0": run("baseline", 1, 0.01, 0.0), "textok-n4-s0": run("textok", 4, 0.98, 1.0)}}
    assert rt.swap_ranges(sw) == [
        "TexTok N = 1 (2 tokenizer(s)): colour 99-100%, position 80%, background 0-100%",
        "TexTok N = 4 (1 tokenizer(s)): colour 98%, position 80%, background 100%",
        "baseline N = 1 (1 tokenizer(s)): colour 1%, position 80%, background 0%"]


def test_table1_prints_small_p_values_with_their_digits(scenes_study):
    report = scenes_study("report")
    row = {"num_tokens": 1, "split": "val", "metric": "psnr", "textok": 32.33, "textok_std": 0.24, "baseline": 25.8,
           "baseline_std": 0.07, "gain": 6.53, "p": 0.00017}
    assert report.table1_lines([row])[-1] == "| 1 | val | psnr | 32.33 ± 0.24 | 25.80 ± 0.07 | +6.53 | 0.00017 |"
