"""Ship a reproduction-study checkpoint inside the package, in half precision.

Takes a study stage model folder (``<work>/runs/<run>/stages/step_XXXXXXX``: the EMA model
after that many steps, ``config.json`` + ``model.safetensors``) and writes
``src/textok/pretrained/emoji32-<arm>-n<N>/`` (arm ``textok`` or ``baseline`` from the
config's ``text_in``, N its ``num_tokens``) with ``studies.shipping.ship_tokenizer`` (float16 weights,
config, ``SOURCE.json``, model card). Here: the ``SOURCE.json`` holds the run name, steps, the study's
scores of that stage (fp32, read from ``docs/results/reproduction/runs/<run>/step_XXXXXXX.json`` when
present) and whether it had converged; the ``README.md`` says what the model is and the data licences
(Noto Emoji Apache-2.0, Twemoji CC-BY 4.0 with attribution, emoji-datasource metadata MIT).

    python -m studies.emoji32.ship_checkpoints ~/textok-study/runs/textok-n4-s0/stages/step_0008000 \\
        ~/textok-study/runs/baseline-n4-s0/stages/step_0008000

``textok demo`` re-scores a shipped pair (``textok.pretrained.find_pair``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..shipping import OUT_ROOT, REPO, folder_bytes, ship_tokenizer, shipped_name, shown_path

DEFAULT_RESULTS = REPO / "docs" / "results" / "reproduction" / "runs"
FIRST_RECIPE = "emoji32_textok.yaml"  # the 4x4-patch recipe (its stage records name no config)
DEFAULT_OUT_ROOT = OUT_ROOT
PREFIX = "emoji32"

LICENCE_NOTE = """\
## Training data and licences

Trained on the emoji data set that `textok data fetch emoji` builds from the npm registry:

- Google emoji images (Noto Emoji): Apache-2.0.
- Twitter emoji images (Twemoji, (c) Twitter, Inc and other contributors): CC-BY 4.0;
  attribution is required: "Twemoji graphics by Twitter, Inc and other contributors,
  licensed under CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/)".
- emoji-datasource metadata (`emoji.json`, Cal Henderson; the names and categories used as
  captions): MIT.

The Apple and Facebook emoji styles are not licensed for this use and were not used. The
weights are distributed with the `textok` package under its licence (Apache-2.0); each
training image's licence is recorded in the data set's `captions.jsonl`.
"""


def parse_stage(stage: Path) -> tuple[str | None, int | None]:
    """``.../runs/<run>/stages/step_0008000`` -> (run name, steps); None where the path does not say."""
    m = re.fullmatch(r"step_(\d+)", stage.name)
    steps = int(m.group(1)) if m else None
    run = stage.parent.parent.name if stage.parent.name == "stages" else None
    return run, steps


def convergence(results: Path, run: str | None, steps: int | None) -> dict | None:
    """Whether the run had converged at ``steps`` by the study's rule (doubling moved val PSNR < 0.3 dB)."""
    if run is None or steps is None:
        return None
    from .reproduction import converged, done_stages  # the study's convergence rule

    psnr = {s: next((r["psnr"] for r in rec["records"] if r["split"] == "val"), None)
            for s, rec in done_stages(results, run).items() if s <= steps}
    if steps not in psnr or None in psnr.values():
        return None
    prev = steps // 2
    return {"converged": converged(psnr), "val_psnr_change_from_half_budget": (psnr[steps] - psnr[prev]) if prev in psnr else None}


def study_record(results: Path, run: str | None, steps: int | None) -> tuple[dict | None, Path | None]:
    """The study's score file of this stage (``<results>/<run>/step_XXXXXXX.json``), or (None, None)."""
    if run is None or steps is None:
        return None, None
    path = Path(results) / run / f"step_{steps:07d}.json"
    if not path.is_file():
        return None, None
    return json.loads(path.read_text(encoding="utf-8")), path


def study_scores(record: dict | None, path: Path | None) -> tuple[dict | None, str | None]:
    """The scores of a stage's score file (``study_record``) per split (``{split: {psnr, ssim, lpips, rfid,
    num_images}}``) and the file's path as shown (relative to the repository where it lies inside it)."""
    if record is None:
        return None, None
    scores = {}
    for r in record.get("records", []):
        scores[r["split"]] = {k: r.get(k) for k in ("num_images", "psnr", "ssim", "lpips", "rfid")}
    return scores, shown_path(path)


def status_line(conv: dict | None) -> str:
    if conv is None:
        return "- status: unknown (no study score files for this run)"
    if conv["converged"]:
        return "- status: converged by the study's rule (doubling the budget moved val PSNR by less than 0.3 dB)"
    change = conv["val_psnr_change_from_half_budget"]
    moved = "" if change is None else f" (the last doubling moved val PSNR by {change:+.2f} dB)"
    return (f"- status: **provisional, not converged**{moved}: the study's rule asks for less than 0.3 dB; this "
            "folder is replaced when the run converges")


def readme(name: str, source: dict) -> str:
    c = source["config"]
    lines = [f"# {name}", "",
             f"A TexTok {'tokenizer' if source['arm'] == 'textok' else 'no-text baseline tokenizer'} "
             f"({c['image_size']} px, ViT width {c['width']} x depth {c['depth']} per side, {c['num_tokens']} tokens x "
             f"{c['token_dim']} channels, text_in={c['text_in']}) from the reproduction study "
             f"(`studies/emoji32/reproduction.py`, `configs/{source.get('recipe') or FIRST_RECIPE}`).", "",
             f"- run: `{source['run']}`, {source['steps']} steps" if source["steps"] is not None
             else f"- run: `{source['run']}`",
             status_line(source.get("convergence")),
             "- weights: float16 (`model.safetensors`); `TexTok.from_pretrained` loads them as float32",
             "- where it came from and its scores: `SOURCE.json`", "", LICENCE_NOTE]
    return "\n".join(lines)


def ship_checkpoint(stage: str | Path, out_root: str | Path = DEFAULT_OUT_ROOT, results: str | Path = DEFAULT_RESULTS,
                    run: str | None = None, steps: int | None = None, prefix: str = PREFIX,
                    out: str | Path | None = None) -> Path:
    """Write the shipped folder for stage model folder ``stage``; returns its path.

    ``run`` / ``steps``: override what the stage path says (``.../runs/<run>/stages/step_N``).
    ``out``: the folder to write (default ``<out_root>/<prefix>-<arm>-n<N>``), replaced atomically.
    """
    from textok import CaptionedTokenizer

    stage = Path(stage)
    c = CaptionedTokenizer.load_config(stage)
    path_run, path_steps = parse_stage(stage)
    run = run or path_run or stage.name
    steps = steps if steps is not None else path_steps
    name = shipped_name(prefix, c)
    out = Path(out) if out is not None else Path(out_root) / name
    record, record_path = study_record(Path(results), run, steps)
    scores, scores_file = study_scores(record, record_path)
    source = {
        "run": run, "steps": steps, "study_scores": scores, "study_scores_file": scores_file,
        "study_scores_note": ("the study's scores of this stage in float32 (evaluate_tokenizer: every image of the "
                              "split, rFID against the same originals)") if scores else
                             "no score file of this stage was found",
        "convergence": convergence(Path(results), run, steps),
        # the study's recipe file this run extends; records before the field existed are the first recipe's
        "recipe": (record or {}).get("config", FIRST_RECIPE),
    }
    return ship_tokenizer(stage, out, source, lambda s: readme(s["name"], s))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stages", nargs="+", help="study stage model folders (<work>/runs/<run>/stages/step_XXXXXXX)")
    p.add_argument("--out-root", default=str(DEFAULT_OUT_ROOT), help="where the shipped folders go")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), help="the study's score files (<run>/step_XXXXXXX.json)")
    p.add_argument("--run", default=None, help="run name (default: from the stage path)")
    p.add_argument("--steps", type=int, default=None, help="steps (default: from the stage path)")
    args = p.parse_args(argv)
    shipped = []
    for stage in args.stages:
        out = ship_checkpoint(stage, args.out_root, args.results, args.run, args.steps)
        source = json.loads((out / "SOURCE.json").read_text())
        gap = source["float16_vs_float32"]
        print(f"{stage} -> {out} ({folder_bytes(out) / 1e6:.2f} MB; float16 vs float32 "
              f"reconstructions: max |diff| {gap['max_abs_difference']:.2e}, {gap['psnr_db']:.1f} dB; "
              f"study scores: {'yes' if source['study_scores'] else 'none found'})")
        shipped.append(source)
    ns = {s["num_tokens"] for s in shipped}
    steps = {s["steps"] for s in shipped}
    if len(shipped) > 1 and (len(ns) > 1 or len(steps) > 1):
        print(f"note: the folders shipped differ in N ({sorted(ns)}) or steps ({sorted(steps, key=str)}); the demo "
              f"compares a TexTok and a baseline at the same N", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
