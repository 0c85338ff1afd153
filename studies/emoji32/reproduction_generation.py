"""The generation half of the reproduction study: a DiT on the tokens of each converged tokenizer.

For the TexTok and the baseline tokenizer at one N (the study's runs ``textok-n{N}-s0`` and
``baseline-n{N}-s0``, their stage models at the largest budget both reached, or
``--tokenizer-steps``), with the same DiT recipe, budget and seed:

- class-conditional (``configs/dit_emoji32_class.yaml``, label = emoji subcategory): the
  detokenizer decodes with a held-out caption of the class (captions of ``val`` / ``val_unseen``
  images, never trained on; the 6 classes with no held-out image use their training captions);
  ``--num`` class-balanced samples; gFID, precision and recall (k = 3) against the Inception
  statistics of the training images;
- text-to-image (``configs/dit_emoji32_t2i.yaml``): DiT-T2I conditioned on the captions, sampled
  with the ``val`` captions (each ``--t2i-repeats`` times), FID against the ``val`` images.
  CLIP score needs CLIP weights, which do not exist offline here: not computed.

Prompts and captions are embedded from the data set's text cache, as in training
(``sample-fid --text-data``). ``--dit-steps 4000,8000,16000`` is a learning curve: one DiT run per
arm and task (constant learning rate after warm-up), sampled and scored at each budget.

Every step is a ``textok`` command (printed), skipped when its output exists, so a rerun
resumes; the work files are named by the tokenizer's budget, the DiT's and the number of samples,
so a run with other settings never picks up another's files. ``--samples-only`` trains and samples
and scores nothing (a GPU machine without the images or the Inception weights); a later run
without it scores the samples it finds.
``--sample-seed S`` re-samples the DiTs at their budgets with another seed (nothing is trained): the spread
of gFID over sampling seeds is the noise a difference between the arms must exceed.
``--dit-seed S`` trains another DiT of the same recipe with seed S (its own folder ``..._dseed<S>``), sampled
with sampling seed 0: the spread over DiT seeds is the noise of training a DiT, which a claim must exceed.
``--caption-pool train`` re-samples the class-conditional DiTs at their budgets (nothing is trained) with the
detokenizer drawing from the training captions of each class instead of the held-out ones (files and scores get
_pooltrain): how much of the class-conditional score is the small held-out pool (a median of 4 distinct
captions per class here, 13 among the training captions).
``--caption-choice cycle`` re-samples the class-conditional DiTs at their budgets (nothing is trained) with the
detokenizer's caption chosen from the class's pool as the one that best explains each sample's tokens
(``textok sample-fid --caption-choice cycle``) instead of drawn at random (files and scores get _cycle).
``--tokenizers shipped`` takes the tokenizers from the package's shipped pair (float16 weights of the same
stage models) where ``--work`` does not hold the study's stage models.
Scores: ``docs/results/reproduction/generation/<task>_<arm>_n<N>_tok<steps>_dit<steps>[_<tag>][_ditseed<S>][_seed<S>][_pooltrain][_cycle].json``; a
sample grid per arm and task (of the longest-trained DiT): ``docs/img/reproduction_gen_<task>_<arm>_n<N>.png``.

    python -m studies.emoji32.reproduction_generation --num-tokens 4 --dit-steps 4000,8000,16000
    python -m studies.emoji32.reproduction_generation --num-tokens 4 --dit-steps 20,40 --num 40 --ref-num 100 \
        --work /tmp/smoke   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
from .npz_grid import sample_grid
from .reproduction import done_stages, stage_dir, study_runs


def sh(cmd: list[str], threads: int) -> None:
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    subprocess.run(cmd, check=True, env=env)


def reference(ref: Path, cmd: list[str], threads: int) -> Path:
    """The Inception statistics at ``ref``, computed by ``cmd`` the first time a score needs them (a GPU machine
    with ``--samples-only`` never does), under a lock: two drivers (one per arm) compute them once."""
    import fcntl

    ref.parent.mkdir(parents=True, exist_ok=True)
    with open(ref.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other driver waits, then finds the file
        if not ref.is_file():
            sh(cmd, threads)
    return ref


def text_cache(data: Path, tokenizer: Path, threads: int, textok: list[str]) -> None:
    """The data set's caption embeddings by the text encoder of ``tokenizer``'s config (``textok embed-text``),
    which the tokenizer and the DiT-T2I (the tokenizer's encoder by default) read as in training; without them
    every DiT step would run the text encoder (3x slower on a CPU)."""
    from textok.data.text_cache import cache_path

    encoder = json.loads((tokenizer / "config.json").read_text()).get("text_encoder") or "minilm"
    if not cache_path(data, encoder).is_file():
        sh(textok + ["embed-text", "--data", str(data), "--encoder", encoder, "--threads", str(threads)], threads)


def stage_model(work: Path, run: str, steps: int) -> Path:
    """The EMA model the study kept for ``run`` at ``steps``."""
    path = stage_dir(work, run, steps)
    if not path.is_dir():
        sys.exit(f"{path}: stage model missing (checkpoints live in --work)")
    return path


def shipped_model(run: str, steps: int) -> Path:
    """The shipped checkpoint folder of ``run`` (``src/textok/pretrained/emoji32-<arm>-n<N>``, float16 weights of
    the study's stage model); refuses one that records another run or budget in its SOURCE.json."""
    from textok.pretrained import PRETRAINED_DIR

    arm, n = run.split("-")[0], run.split("-")[1]
    path = PRETRAINED_DIR / f"emoji32-{arm}-{n}"
    source = path / "SOURCE.json"
    if not source.is_file():
        sys.exit(f"{path}: no shipped checkpoint for {run} (--tokenizers shipped needs one)")
    info = json.loads(source.read_text())
    if info.get("run") != run or info.get("steps") != steps:
        sys.exit(f"{path}: ships {info.get('run')} at {info.get('steps')} steps, not {run} at {steps}")
    return path


def latest_stage(work: Path, results: Path, run: str) -> Path:
    done = done_stages(results, run)
    if not done:
        sys.exit(f"{run}: no finished stage in {results}; run studies/emoji32/reproduction.py first")
    return stage_model(work, run, max(done))


def pair_budget(results: Path, runs: list[str], steps: int | None = None) -> int:
    """The budget the arms are compared at: ``steps`` if given (every run must have it), else the largest
    budget every one of ``runs`` reached (the tokenizers of both arms always at equal steps)."""
    done = {run: set(done_stages(results, run)) for run in runs}
    common = set.intersection(*done.values())
    if steps is not None:
        missing = [run for run in runs if steps not in done[run]]
        if missing:
            sys.exit(f"{', '.join(missing)}: no scored stage at {steps} steps in {results}")
        return steps
    if not common:
        sys.exit(f"{' and '.join(runs)}: no budget both reached in {results}; run studies/emoji32/reproduction.py first")
    return max(common)


def finished(run: Path, steps: int) -> bool:
    """A training run in ``run`` reached ``steps`` (its model/ folder also exists after an interrupted run)."""
    summary = run / "train_summary.json"
    if not summary.is_file():
        return False
    s = json.loads(summary.read_text())
    return not s.get("interrupted") and s.get("step", 0) >= steps


def caption_pool(data: Path, out: Path, splits: tuple[str, ...] = ("val", "val_unseen")) -> Path:
    """class name -> the captions the detokenizer decodes that class with: by default those of the held-out
    splits (val, val_unseen), never seen in training. A class with no caption in ``splits`` (6 of the 99 for the
    held-out ones) gets its training captions instead: the pipeline's fallback, "a photo of a <class>", is a
    caption the tokenizer never saw."""
    from textok.io import write_text_atomic

    if out.is_file():
        return out
    manifest = json.loads((data / "manifest.json").read_text())
    rows = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines()]
    heldout = {c: sorted({r["caption"] for r in rows if r.get("class") == c and r.get("split") in splits})
               for c in manifest["classes"]}
    pool = {c: v or sorted({r["caption"] for r in rows if r.get("class") == c and r.get("split") == "train"})
            for c, v in heldout.items()}
    trained = [c for c, v in heldout.items() if not v and pool[c]]
    if trained:
        print(f"caption pool: no held-out caption for {len(trained)} class(es), their training captions stand in: "
              f"{', '.join(trained)}", flush=True)
    write_text_atomic(out, json.dumps({c: v for c, v in pool.items() if v}, indent=1, sort_keys=True))
    return out


def val_prompts(data: Path, out: Path, repeats: int) -> tuple[Path, int]:
    """The ``val`` captions, one per line (written once, atomically: several drivers may share ``out``);
    returns the file and the number of T2I samples (``repeats`` per caption)."""
    from textok.io import write_text_atomic

    rows = map(json.loads, (data / "captions.jsonl").read_text().splitlines())
    captions = [r["caption"] for r in rows if r.get("split") == "val"]
    text = "\n".join(captions) + "\n"
    if not out.is_file() or out.read_text() != text:
        write_text_atomic(out, text)
    return out, len(captions) * repeats


def dit_step(dit: Path) -> int:
    """The step a DiT run folder has trained to (0 if none)."""
    summary = dit / "train_summary.json"
    return json.loads(summary.read_text()).get("step", 0) if summary.is_file() else 0


def record_device(dit: Path, steps: int) -> dict:
    """Note where the segment of ``dit`` that ended at ``steps`` was trained (``trained_on.json``: budget ->
    device, seconds of that segment), so the score record can say it."""
    import torch

    from textok.io import write_json_atomic
    from textok.training.trainer import cpu_name

    path = dit / "trained_on.json"
    seen = json.loads(path.read_text()) if path.is_file() else {}
    summary = json.loads((dit / "train_summary.json").read_text())
    seen[str(steps)] = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name(),
                        "seconds": summary.get("seconds")}
    write_json_atomic(path, seen)
    return seen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-tokens", type=int, required=True)
    p.add_argument("--tokenizer-steps", type=int, default=None,
                   help="the tokenizers' budget (default: the largest both arms reached)")
    p.add_argument("--work", default=str(Path.home() / "textok-study"))
    p.add_argument("--results", default=str(REPO / "docs" / "results" / "reproduction"))
    p.add_argument("--data", default=str(REPO / "data" / "emoji"))
    p.add_argument("--dit-steps", default="8000",
                   help="DiT budgets, comma-separated (a learning curve: one run, sampled and scored at each)")
    p.add_argument("--num", type=int, default=2000, help="class-conditional samples per arm")
    p.add_argument("--t2i-repeats", type=int, default=3, help="samples per val caption")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tasks", default="class,t2i")
    p.add_argument("--arms", default="baseline,textok")
    p.add_argument("--sample-batch-size", type=int, default=32)
    p.add_argument("--samples-only", action="store_true",
                   help="train and sample, score nothing (a GPU machine without the data's images or Inception "
                        "weights; a later run without it scores the samples)")
    p.add_argument("--sample-seed", type=int, default=0,
                   help="the sampling seed; another than 0 re-samples the DiTs already trained to each budget (the "
                        "sampling noise of gFID; files and scores get _seed<S>) and trains nothing")
    p.add_argument("--dit-seed", type=int, default=0,
                   help="the DiT's training seed; another than 0 trains a replicate DiT in its own folder (the "
                        "training noise of gFID; files and scores get _ditseed<S>)")
    p.add_argument("--tag", default="",
                   help="a name for a replicate of the same DiTs (e.g. trained on another device, in another --work): "
                        "its score files end in _<tag> instead of replacing the untagged ones")
    p.add_argument("--caption-pool", choices=("heldout", "train"), default="heldout",
                   help="class-conditional: the captions the detokenizer draws from; train re-samples the DiTs "
                        "already trained to each budget with the training captions of each class (files and scores "
                        "get _pooltrain) and trains nothing")
    p.add_argument("--caption-choice", choices=("random", "cycle"), default="random",
                   help="class-conditional: how the detokenizer's caption is taken from the pool; cycle re-samples the "
                        "trained DiTs with the pool caption that best explains each sample (nothing is trained)")
    p.add_argument("--tokenizers", choices=("study", "shipped"), default="study",
                   help="study: the stage models kept in --work (float32); shipped: the package's pair "
                        "(src/textok/pretrained, float16 weights of the same stage models), for a machine whose --work "
                        "lacks them; the score records say which")
    p.add_argument("--ref-num", type=int, default=None, help="reference images (default: all; smaller only for smoke runs)")
    p.add_argument("--img", default=str(REPO / "docs" / "img"), help="where the sample grids go")
    args = p.parse_args()
    from textok.io import write_json_atomic

    textok = [sys.executable, "-m", "textok"]
    work, data = Path(args.work), Path(args.data)
    gen, scores = work / "generation", Path(args.results) / "generation"
    runs_dir = Path(args.results) / "runs"
    n, t = args.num_tokens, args.threads
    budgets = sorted(int(b) for b in args.dit_steps.split(","))
    arms = args.arms.split(",")
    suffix = f"_{args.tag}" if args.tag else ""
    seed_suffix = f"_seed{args.sample_seed}" if args.sample_seed else ""
    pool_train, cycle = args.caption_pool == "train", args.caption_choice == "cycle"
    # the class-conditional DiTs decoded another way: their files and scores get a suffix
    for flag, on, tag in (("--caption-pool train", pool_train, "_pooltrain"), ("--caption-choice cycle", cycle, "_cycle")):
        if on:
            seed_suffix += tag
            if "t2i" in args.tasks.split(","):
                sys.exit(f"{flag} is for the class-conditional task (--tasks class): DiT-T2I decodes with its prompt")
    resample = bool(args.sample_seed) or pool_train or cycle  # re-samples trained DiTs, trains nothing
    if args.dit_seed:
        suffix += f"_ditseed{args.dit_seed}"
    names = {r.name for r in study_runs()}
    pair = [f"{arm}-n{n}-s0" for arm in ("baseline", "textok")]
    assert all(run in names for run in pair), pair
    steps = pair_budget(runs_dir, pair, args.tokenizer_steps)
    print(f"tokenizers: {' and '.join(pair)} at {steps} steps; DiT budgets {budgets}", flush=True)
    pool = caption_pool(data, gen / "class_captions_emoji_train.json", ("train",)) if pool_train else \
        caption_pool(data, gen / "class_captions_emoji.json")
    prompts, num_t2i = val_prompts(data, gen / "val_prompts.txt", args.t2i_repeats)

    limit = f"_{args.ref_num}" if args.ref_num else ""  # a smoke run's small reference is never the real one
    refs = {split: gen / f"ref_{split}_32{limit}.npz" for split in ("train", "val")}
    ref_cmd = {split: textok + ["fid-stats", "--data", str(data), "--split", split, "--image-size", "32", "--out",
                                str(ref), "--no-progress", "--threads", str(t)]
               + (["--num", str(args.ref_num)] if args.ref_num else []) for split, ref in refs.items()}

    for arm, run in zip(("baseline", "textok"), pair):
        if arm not in arms:
            continue
        tok = stage_model(work, run, steps) if args.tokenizers == "study" else shipped_model(run, steps)
        print(f"{run}: tokenizer {tok}", flush=True)
        text_cache(data, tok, t, textok)
        tag = f"{run}_tok{steps}"  # the work files of one tokenizer budget
        cache = gen / f"lat_{tag}"
        if not (cache / "stats.json").is_file():  # written last: a finished cache
            sh(textok + ["encode-dataset", "--checkpoint", str(tok), "--data", str(data), "--split", "train",
                         "--out", str(cache), "--threads", str(t)], t)  # resumes an interrupted one
        for task in args.tasks.split(","):
            config = REPO / "configs" / f"dit_emoji32_{task}.yaml"
            # one run; its budgets are stages of it (constant LR after warm-up)
            dit = gen / (f"dit_{task}_{tag}" + (f"_dseed{args.dit_seed}" if args.dit_seed else ""))
            num = args.num if task == "class" else num_t2i
            for budget in budgets:
                out_json = scores / f"{task}_{arm}_n{n}_tok{steps}_dit{budget}{suffix}{seed_suffix}.json"
                if out_json.is_file():
                    print(f"{out_json}: done", flush=True)
                    continue
                samples = gen / f"samples_{dit.name}_{budget}steps_{num}{seed_suffix}.npz"
                if not samples.is_file():
                    at = dit_step(dit)
                    if resample and at != budget:
                        sys.exit(f"{dit} is at {at} steps, not {budget}: --sample-seed, --caption-pool train and "
                                 "--caption-choice cycle re-sample a DiT at its budget and train nothing")
                    if at > budget:
                        sys.exit(f"{dit} has trained past {budget} steps without sampling there; "
                                 "delete the folder to redo its learning curve")
                    if at < budget:
                        if at and not (dit / "checkpoints").is_dir():
                            sys.exit(f"{dit}: trained to {at} steps on another machine, whose checkpoints "
                                     "are not here; delete the folder to train it again from the start")
                        # data.tokenizer: this run's path of the tokenizer (the cache records the one it was encoded
                        # from, which may have been another worktree's)
                        overrides = [f"data.cache={cache}", f"data.tokenizer={tok}", f"model.num_tokens={n}",
                                     f"schedule.max_steps={budget}",
                                     "logging.progress=false", f"seed={args.dit_seed}"]
                        if task == "class":
                            overrides.append(f"data.caption_pool={pool}")
                        resume = ["--resume"] if (dit / "checkpoints").is_dir() else []
                        sh(textok + ["train-dit", "--config", str(config), "--out", str(dit), "--threads", str(t)]
                           + resume + overrides, t)
                        record_device(dit, budget)
                    extra = ["--prompts", str(prompts)] if task == "t2i" else []
                    if pool_train:  # the DiT's folder records the held-out pool; this replaces it for sampling only
                        extra += ["--caption-pool", str(pool)]
                    if cycle:
                        extra += ["--caption-choice", "cycle"]
                    sh(textok + ["sample-fid", "--checkpoint", str(dit / "model"), "--num", str(num), "--out",
                                 str(samples), "--seed", str(args.sample_seed), "--threads", str(t),
                                 "--batch-size", str(args.sample_batch_size), "--text-data", str(data)] + extra, t)
                if args.samples_only:
                    continue
                split = "train" if task == "class" else "val"
                ref = reference(refs[split], ref_cmd[split], t)
                ev = gen / f"eval_{samples.stem}"
                sh(textok + ["eval-generation", "--samples", str(samples), "--ref", str(ref), "--out", str(ev),
                             "--no-progress", "--threads", str(t)], t)
                report = json.loads((ev / "eval_generation.json").read_text())
                grid = Path(args.img) / f"reproduction_gen_{task}_{arm}_n{n}{suffix}.png"
                # the grid shows the longest-trained DiT of seed 0: this budget, or one scored earlier
                done = [r["dit_steps"] for r in map(json.loads, (f.read_text() for f in scores.glob(
                    f"{task}_{arm}_n{n}_tok{steps}_dit*.json")))
                    if (r.get("tag") or "") == args.tag and not r.get("dit_seed") and not r.get("sample_seed")
                    and not r.get("caption_pool") and not r.get("caption_choice")]
                latest = budget >= max(budgets + done) and not args.dit_seed and not resample
                if latest:
                    sample_grid(samples, grid, per_class=8, max_rows=8)
                trained_on = json.loads((dit / "trained_on.json").read_text()).get(str(budget), {}) \
                    if (dit / "trained_on.json").is_file() else {}
                record = {"task": task, "arm": arm, "num_tokens": n, "tokenizer": run, "tokenizer_steps": steps,
                          "tokenizer_weights": "float16 (shipped)" if args.tokenizers == "shipped" else "float32",
                          "dit_steps": budget, "num_samples": num, "grid": grid.name if latest else None,
                          "dit_device": trained_on.get("device"), "tag": args.tag or None,
                          "sample_seed": args.sample_seed, "dit_seed": args.dit_seed,
                          "caption_pool": "train" if pool_train and task == "class" else None,
                          "caption_choice": "cycle" if cycle else None,
                          "reference": f"emoji {'train' if task == 'class' else 'val'} 32 px",
                          "report": {k: v for k, v in report.items() if k != "markdown"}}
                write_json_atomic(out_json, record)
                print(f"wrote {out_json}", flush=True)


if __name__ == "__main__":
    main()
