"""The reproduction study's tables, generation half: gFID of DiTs on both arms' tokens, the resampled and
retrained controls (sampling and training noise), caption reliance, and what is still pending."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from typing import Sequence

from ..stats import fmt, split_label
from .reproduction import REPO
from .report_tables import gain, gain_by_n, one, reference_label, report_order, two_std_verdict


def generation_table(records: list[dict]) -> list[str]:
    """Both arms side by side per task, N, tokenizer budget and DiT budget (a DiT learning curve: one row
    per budget); the gFID gain as the paper states it."""
    if not records:
        return ["Pending: it runs on converged tokenizers (`python -m studies.emoji32.reproduction_generation "
                "--num-tokens 4`; its scores go to docs/results/reproduction/generation/)."]
    pools = resampled_table(records, "pool") + resampled_table(records, "cycle")
    # the held-out pool and a random draw from it everywhere else
    records = [r for r in records if not r.get("caption_pool") and not r.get("caption_choice")]
    noise = sampling_noise([r for r in records if not r.get("dit_seed")])
    trained = training_noise([r for r in records if not r.get("sample_seed")])
    records = [r for r in records if not r.get("sample_seed") and not r.get("dit_seed")]  # the comparison: seeds 0
    out = ["| task | N | tokenizer steps | DiT steps | DiTs trained on | samples | reference | gFID baseline | gFID TexTok "
           "| gFID gain | precision baseline / TexTok | recall baseline / TexTok |",
           "|---|---:|---:|---:|---|---:|---|" + "---:|" * 5]
    key = lambda r: (r["task"], r["num_tokens"], r["tokenizer_steps"], r.get("tag") or "", r["dit_steps"])  # noqa: E731
    for k in sorted({key(r) for r in records}):
        by = {r["arm"]: r for r in records if key(r) == k}
        b, t = (by.get(arm, {}).get("report", {}) for arm in ("baseline", "textok"))
        any_ = next(iter(by.values()))
        g = gain(b.get("gfid"), t.get("gfid"))
        ref = f"{reference_label(any_['reference'])} ({any_['report'].get('ref_num', '?')} images)"
        task, n, steps, _, dit_steps = k
        device = " / ".join(sorted({r.get("dit_device") or "?" for r in by.values()}))
        out.append(f"| {task} | {n} | {steps} | {dit_steps} | {device} | {any_['num_samples']} | {ref} "
                   f"| {fmt(b.get('gfid'), 1)} | {fmt(t.get('gfid'), 1)} | {'–' if g is None else f'{100 * g:.1f}%'} "
                   f"| {fmt(b.get('precision'), 3)} / {fmt(t.get('precision'), 3)} "
                   f"| {fmt(b.get('recall'), 3)} / {fmt(t.get('recall'), 3)} |")
    out += ["", "`mixed_precision=auto`: bf16 autocast on a GPU, fp32 on a CPU without AMX; every sample set is "
            "scored on the CPU. The rows of one task and device are one DiT run at several budgets (its learning curve); "
            "the same budget on two devices is two runs of the same recipe and seed (a replicate: their difference is "
            "run-to-run noise)."]
    shipped = sorted({r.get("dit_device") or "?" for r in records if (r.get("tokenizer_weights") or "").startswith("float16")})
    if shipped:
        out += ["", f"Rows trained on {', '.join(shipped)}: the tokenizers are the shipped pair (`--tokenizers shipped`: "
                "float16 weights of the same stage models, loaded as float32; their val scores equal the study's to the "
                "printed digits, see the README's demo), so their latent caches differ from the other rows' by that "
                "rounding only."]
    out += noise + trained + pools
    grids: dict[tuple, dict] = {}  # one per task, N and arm: the longest-trained DiT's
    for r in sorted((r for r in records if r.get("grid")), key=lambda r: r["dit_steps"]):
        grids[(r["task"], r["num_tokens"], r.get("tag") or "", r["arm"])] = r
    for _, r in sorted(grids.items()):
        out += ["", f"{r['task']}, {r['arm']}, N = {r['num_tokens']}, DiT {r['dit_steps']} steps on "
                f"{r.get('dit_device') or '?'}: ![{r['task']} {r['arm']}](../img/{r['grid']})"]
    return out


# DiTs re-sampled with another way of decoding the class-conditional samples (nothing trained): the record's
# field and value, the column name, the paragraph above the table
RESAMPLED = {
    "pool": ("caption_pool", "train", "train pool",
             "Caption pool: the same class-conditional DiT, sampled with the same seed, decoded with captions drawn from "
             "the training captions of each class instead of the held-out ones (`--caption-pool train --tasks class "
             "--arms textok`); the baseline decodes without text, so its score is the same under either pool."),
    "cycle": ("caption_choice", "cycle", "cycle-chosen",
              "Caption choice: the same class-conditional DiT, sampled with the same seed, decoded with the held-out "
              "caption of the class that best explains each sample's tokens (the lowest cycle error, "
              "`TexTok.cycle_error`: decode, re-encode with the same caption, compare the tokens) instead of one "
              "drawn at random (`--caption-choice cycle --tasks class --arms textok`, i.e. `textok sample-fid "
              "--caption-choice cycle`); the baseline decodes without text, so its score is the same either way."),
}


def resampled_table(records: list[dict], variant: str) -> list[str]:
    """The class-conditional TexTok DiTs re-sampled with another decoding (``RESAMPLED[variant]``) beside the same DiT
    decoded as usual (a random draw from the held-out pool), and the baseline's DiT of that budget."""
    field, value, name, text = RESAMPLED[variant]
    usual = lambda x: not x.get("caption_pool") and not x.get("caption_choice")  # noqa: E731
    rows = []
    for r in sorted((r for r in records if r.get(field) == value),
                    key=lambda r: (r["num_tokens"], r.get("tag") or "", r["dit_steps"], r.get("dit_seed") or 0)):
        same = lambda x: all(x.get(k) == r.get(k) for k in ("task", "num_tokens", "tokenizer_steps", "dit_steps",  # noqa: E731
                                                             "tag", "dit_seed", "sample_seed"))
        held = {x["arm"]: x["report"] for x in records if same(x) and usual(x)}
        b, h, t = held.get("baseline", {}), held.get(r["arm"], {}), r["report"]
        rows.append(f"| {r['task']} | {r['num_tokens']} | {r['dit_steps']} | {r.get('dit_seed') or 0} "
                    f"| {r.get('dit_device') or '?'} | {r['arm']} "
                    + "".join(f"| {fmt(x.get(m), d)} " for m, d in (("gfid", 1), ("precision", 3), ("recall", 3))
                              for x in (h, t))
                    + f"| {fmt(b.get('gfid'), 1)} |")
    if not rows:
        return []
    # every DiT seed re-sampled this way against the baseline's DiTs of that budget (usual decoding: it has no text)
    seeds = training_noise([r for r in records if r["arm"] == "baseline" and usual(r) and not r.get("sample_seed")]
                           + [dict(r, arm="textok") for r in records if r.get(field) == value and not r.get("sample_seed")],
                           intro=f"The baseline's DiTs against TexTok's same DiTs decoded this way ({name}), over DiT seeds:",
                           textok=f"TexTok ({name})")
    return ["", text, "",
            f"| task | N | DiT steps | DiT seed | DiT trained on | arm | gFID usual | gFID {name} | precision usual "
            f"| precision {name} | recall usual | recall {name} | gFID baseline |",
            "|---|---:|---:|---:|---|---|" + "---:|" * 7] + rows + seeds


def caption_reliance_table(data: dict, curves=(), first: bool = True, replicas: Sequence[dict] = ()) -> list[str]:
    """The tokenizer pair with TexTok decoding its tokens with its own caption, another caption of the same class
    and a caption of another class (``studies/emoji32/caption_reliance.py``): what the class-conditional
    pipeline's decoding with a caption of the class costs before any DiT is involved. A file measured without
    the baseline (``--baseline none``) gets the baseline of that N trained again on the file's machine to the
    TexTok's budget where ``replicas`` hold one, else Table 1's baseline of that N at its largest budget (from
    ``curves``); ``first``: the table that explains the columns (the next ones say only what differs)."""
    records = data.get("records", [])
    if not records:
        return []
    cell = {(r["split"], r["arm"], r["decode"]): r for r in records}
    n = records[0].get("num_tokens")
    table1, theirs = "", []
    budget = re.search(r"step_0*(\d+)", (data.get("tokenizers") or {}).get("textok") or "")
    again = [r for r in replicas if r["run"] == f"baseline-n{n}-s0" and r.get("cpu") == data.get("cpu")
             and budget and r["steps"] == int(budget.group(1))]
    if not any(r["arm"] == "baseline" for r in records) and again:
        for split in dict.fromkeys(r["split"] for r in records):
            b = one(again, split=split)
            if b:
                cell[(split, "baseline", "own")] = b
        table1 = (f" TexTok and the baseline were both trained again on this machine ({data.get('cpu')}; the study's "
                  f"recipe and seed, `python -m studies.emoji32.reproduction --job A-n{n}-s0 --steps {budget.group(1)}` for A = textok, baseline; see "
                  f"\"Trained again on another machine\"); the file was measured without the baseline (`--baseline "
                  f"none`), whose column is the baseline's own score file at that budget (`{again[0]['replicate']}`).")
    elif not any(r["arm"] == "baseline" for r in records):
        for split in report_order(r["split"] for r in records):
            base = [r for r in curves if r["run"] == f"baseline-n{n}-s0" and r["split"] == split]
            if base:
                b = max(base, key=lambda r: r["steps"])
                cell[(split, "baseline", "own")] = b
                theirs += [f"{split_label(split)} rFID {fmt(r['rfid'], 1)}, PSNR {fmt(r['psnr'])} dB" for r in curves
                           if r["run"] == f"textok-n{n}-s0" and r["split"] == split and r["steps"] == b["steps"]]
                table1 = (f" This TexTok was trained again on this machine (the study's recipe and seed, "
                          f"`python -m studies.emoji32.reproduction --job textok-n{n}-s0 --steps {b['steps']}`; its stage "
                          f"models had not been kept) and measured without the baseline (`--baseline none`): the "
                          f"baseline column is Table 1's `baseline-n{n}-s0` at {b['steps']} steps ({b.get('cpu') or '?'})")
        if table1:
            table1 += (f"; Table 1's TexTok of that budget, for comparison with the retrained one: {'; '.join(theirs)}"
                       if theirs else "") + "."
    present = {r["decode"] for r in records}
    cols = [("baseline", "own"), ("textok", "own")] + [
        ("textok", d) for d in ("same-class", "same-class-random", "same-class-cycle", "other-class") if d in present]
    heads = {"own": "TexTok, own caption", "same-class": "TexTok, the next caption of the class (sort order)",
             "same-class-random": "TexTok, a random caption of the class",
             "same-class-cycle": "TexTok, the caption of the class chosen by cycle error",
             "other-class": "TexTok, a caption of another class"}
    intro = [] if first else [
        "", f"The same at N = {n} ({data.get('pair', '?')}; `{data.get('command', '?')}`; {data.get('cpu', '?')}, "
            f"{data.get('threads', '?')} thread{'' if data.get('threads') == 1 else 's'}, {data.get('date', '?')})."
            + table1]
    out = ["", "What decoding with a caption of the class costs the tokenizer itself (no DiT involved): TexTok encodes "
           "each held-out image with its own caption and decodes the tokens with its own caption, with another caption "
           "of the same class (the next distinct one in sort order among the split's captions of that class, which "
           "often shares words with the image's own; or one drawn at random, as the class-conditional pipeline's "
           "detokenizer draws from its pool; or, of up to 16 captions of the class, the one under which decoding "
           "and re-encoding moves the tokens least, as `--caption-choice cycle` picks) or with a caption of another "
           f"class (`{data.get('command', 'python -m studies.emoji32.caption_reliance')}`, i.e. `textok eval-tokenizer "
           "--decode-captions same-class|same-class-random|same-class-cycle|other-class`; "
           f"{data.get('pair', 'the shipped N = 4 pair')}; "
           f"{data.get('cpu', '?')}, {data.get('threads', '?')} thread{'' if data.get('threads') == 1 else 's'}, "
           f"{data.get('date', '?')}). "
           "rFID over all images of the split, including those whose class holds a single distinct caption "
           "(they keep it: the count swapped is given)." + table1, ""]
    out = (out if first else intro + [""]) + [
           "| split | metric | baseline | " + " | ".join(heads[d] for _, d in cols[1:]) + " |",
           "|---|---|" + "---:|" * len(cols)]
    for split in report_order(r["split"] for r in records):
        row = [cell.get((split, arm, dec), {}) for arm, dec in cols]
        for metric, name, digits in (("rfid", "rFID", 1), ("psnr", "PSNR (dB)", 2), ("lpips", "LPIPS", 3)):
            out.append(f"| {split_label(split)} | {name} | "
                       + " | ".join(fmt(c.get(metric), digits) for c in row) + " |")
        out.append(f"| {split_label(split)} | images swapped | – | 0 of {row[1].get('num_images', '?')} | "
                   + " | ".join(f"{c.get('swapped', '?')} of {c.get('num_images', '?')}" for c in row[2:]) + " |")
    if first and (REPO / "docs" / "img" / "reproduction_caption_reliance.png").is_file():
        out += ["", f"Eight {split_label('val')} emoji whose class holds another caption: original | baseline | TexTok | "
                "TexTok decoding the same tokens with a random caption of the class | with the caption of the class "
                "chosen by cycle error | with a caption of another class (`--grid`; the captions: "
                "[reproduction_caption_reliance.txt](../img/reproduction_caption_reliance.txt)).", "",
                '<img src="../img/reproduction_caption_reliance.png" width="220" alt="caption reliance at N = 4">']
    return out


def sampling_noise(records: list[dict]) -> list[str]:
    """gFID of the same DiT sampled with several seeds (``--sample-seed``): the noise of one sample set."""
    by = defaultdict(dict)
    for r in records:
        key = (r["task"], r["num_tokens"], r["tokenizer_steps"], r["dit_steps"], r.get("dit_device") or "?",
               r.get("tag") or "", r["arm"])
        by[key][r.get("sample_seed") or 0] = r["report"]["gfid"]
    rows = [(k, v) for k, v in sorted(by.items()) if len(v) > 1]
    if not rows:
        return []
    out = ["", "Sampling noise: the same DiT sampled again with other seeds (`--sample-seed S`), every other setting "
           "equal. A gFID difference between the arms smaller than this spread is within the noise of one sample set.",
           "", "| task | N | DiT steps | DiT trained on | arm | gFID per sampling seed | spread (max - min) | spread / mean |",
           "|---|---:|---:|---|---|---|---:|---:|"]
    for (task, n, _, steps, device, _, arm), v in rows:
        values = list(v.values())
        spread, mean = max(values) - min(values), sum(values) / len(values)
        per = ", ".join(f"{seed}: {g:.1f}" for seed, g in sorted(v.items()))
        out.append(f"| {task} | {n} | {steps} | {device} | {arm} | {per} | {spread:.1f} | {100 * spread / mean:.1f}% |")
    return out


NOISE_INTRO = ("DiT-training noise: the same recipe trained again on the same tokens with another seed "
               "(`--dit-seed S`), or with the same seed on another device, each sampled with seed 0. A claim needs the "
               "difference of the means to exceed two standard deviations of either arm (the issue's rule for seeds).")


def training_noise(records: list[dict], intro: str = NOISE_INTRO, textok: str = "TexTok") -> list[str]:
    """gFID of independent DiT trainings of one recipe on the same tokens (``--dit-seed``, and the same seed
    trained on two devices), sampled with seed 0: mean ± std per arm, and the issue's rule for a claim (the
    difference of the means exceeds two standard deviations of either arm). ``textok``: the TexTok column's name."""
    by = defaultdict(lambda: defaultdict(list))
    for r in records:
        key = (r["task"], r["num_tokens"], r["tokenizer_steps"], r["dit_steps"])
        by[key][r["arm"]].append((r.get("dit_seed") or 0, r.get("dit_device") or "?", r["report"]["gfid"]))
    rows = [(k, v) for k, v in sorted(by.items()) if min(len(v.get(a, ())) for a in ("baseline", "textok")) >= 2]
    if not rows:
        return []
    out = ["", intro,
           "", "| task | N | DiT steps | baseline gFID per DiT (seed, device) | baseline mean ± std "
           f"| {textok} gFID per DiT | {textok} mean ± std | gain of the means | > 2 std? |",
           "|---|---:|---:|---|---|---|---|---:|---|"]
    short = lambda d: " ".join(re.sub(r"\(R\)|NVIDIA|Processor", "", d).split())  # noqa: E731  (H100 80GB HBM3, Intel Xeon)
    for (task, n, _, steps), v in rows:
        cells, stats = [], {}
        for arm in ("baseline", "textok"):
            runs = sorted(v[arm])
            g = [x[2] for x in runs]
            stats[arm] = (statistics.mean(g), statistics.stdev(g))
            cells += [", ".join(f"{x[2]:.1f} ({x[0]}, {short(x[1])})" for x in runs),
                      f"{stats[arm][0]:.1f} ± {stats[arm][1]:.1f}"]
        (mb, sb), (mt, st) = stats["baseline"], stats["textok"]
        verdict = two_std_verdict(mb - mt, sb, st)  # lower gFID is better
        out.append(f"| {task} | {n} | {steps} | {' | '.join(cells)} | {100 * gain(mb, mt):.1f}% | {verdict} |")
    return out


def generation_pending(curves, records: list[dict]) -> list[str]:
    """What the generation half still lacks: a planned N (the largest rFID gain, and 4) with no DiT, or a
    task with a single DiT budget (no learning curve yet)."""
    gains = gain_by_n(curves)
    planned = sorted({max(gains, key=gains.get), 4} if gains else {4})
    missing = [f"N = {n}" for n in planned if not any(r["num_tokens"] == n for r in records)]
    budgets = defaultdict(set)  # of one run: one tag (one device)
    for r in records:
        budgets[(r["task"], r["num_tokens"], r.get("tag") or "")].add(r["dit_steps"])
    runs = defaultdict(int)  # (task, N) -> the most budgets any one run of it has
    for (task, n, _), b in budgets.items():
        runs[(task, n)] = max(runs[(task, n)], len(b))
    single = [f"{task} at N = {n}" for (task, n), most in sorted(runs.items()) if most < 2]
    out = []
    if missing:
        out.append(f"- Pending: the DiTs at {', '.join(missing)}.")
    if single:
        out.append(f"- Pending: a second DiT budget (the learning curve) for {', '.join(single)}; until then these "
                   "rows are single points, not a converged comparison.")
    return [""] + out if out else []
