"""Text-embedding cost per image, and the training-step speed-up of the text-embedding cache.

    python benchmarks/bench_text.py --data data/emoji            # after `textok data fetch emoji`
    python benchmarks/bench_text.py --data data/emoji --captions 1024 --steps 10 --batch 32

1. Per-image cost of the frozen text encoder (MiniLM by default): embed ``--captions`` real
   captions of the data set in batches of ``--encode-batch``; seconds per caption (= per image,
   one caption each). The paper reports ~0.01 s per image (T5-XL on their accelerators).
2. A TexTok training step (forward + MSE backward + AdamW step, ``--preset``) fed by
   (a) the encoder in the loop, or (b) ``load_text_cache`` (built here first with
   ``build_text_cache``); median ms per step over ``--steps`` steps after a warm-up, same
   batches for both. The images are loaded once up front so only the text path differs.

Prints a Markdown table. Set ``--threads`` to share the machine fairly.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import tempfile
import time

import torch


def median_time(fn, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/emoji")
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--captions", type=int, default=512)
    p.add_argument("--encode-batch", type=int, default=64)
    p.add_argument("--preset", default="textok-mini-64")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from textok import TexTok, TexTokConfig, TextEncoder
    from textok.data import build_text_cache, collate, load_text_cache, open_dataset

    ds = open_dataset(args.data, "train")
    n = min(args.captions, len(ds.records))
    captions = [ds.records[i].captions[0] for i in range(n)]
    encoder = TextEncoder.from_pretrained(args.encoder)

    # 1. per-caption encoder cost
    def encode_all():
        for i in range(0, n, args.encode_batch):
            encoder(captions[i : i + args.encode_batch])

    t_encode = median_time(encode_all, warmup=1, reps=3)
    per_caption = t_encode / n

    # 2. training step: encoder in the loop vs cache
    config = TexTokConfig.from_preset(args.preset, text_dim=encoder.dim)
    model = TexTok(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [collate([ds[(s * args.batch + j) % len(ds)] for j in range(args.batch)]) for s in range(args.steps)]
    with tempfile.TemporaryDirectory() as tmp:
        # the cache lives beside a copy of the captions (the data folder stays untouched)
        build_text_cache(tmp, encoder, captions=[c for b in batches for c in b["captions"]])
        cache = load_text_cache(tmp, encoder.name)
    t_build_note = f"{len(cache)} captions cached"

    def step(text_source, batch):
        text = text_source(batch["captions"])
        out = model(batch["images"], text)
        loss = torch.nn.functional.mse_loss(out.reconstruction, batch["images"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def time_steps(text_source):
        step(text_source, batches[0])  # warm-up
        times = []
        for b in batches:
            t = time.perf_counter()
            step(text_source, b)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def time_text(text_source):
        return median_time(lambda: [text_source(b["captions"]) for b in batches], warmup=1, reps=3) / len(batches)

    t_enc_step, t_cache_step = time_steps(encoder), time_steps(cache)
    t_enc_text, t_cache_text = time_text(encoder), time_text(cache)

    date = datetime.date.today().isoformat()
    print(f"# bench_text.py  {date}  {platform.processor() or platform.machine()}  torch {torch.__version__}  "
          f"threads {args.threads}  data {args.data}")
    print()
    print("| measurement | value |")
    print("|---|---|")
    print(f"| {args.encoder} text embedding, {n} captions, batch {args.encode_batch} | "
          f"{per_caption * 1000:.2f} ms/caption ({1 / per_caption:.0f} captions/s) |")
    print(f"| text path per batch of {args.batch}: encoder | {t_enc_text * 1000:.1f} ms |")
    print(f"| text path per batch of {args.batch}: cache ({t_build_note}) | {t_cache_text * 1000:.2f} ms |")
    print(f"| {args.preset} train step (fwd+bwd+AdamW), batch {args.batch}, encoder in the loop | "
          f"{t_enc_step * 1000:.0f} ms |")
    print(f"| {args.preset} train step, batch {args.batch}, text cache | {t_cache_step * 1000:.0f} ms |")
    print(f"| speed-up of the step from the cache | {t_enc_step / t_cache_step:.2f}x |")


if __name__ == "__main__":
    main()
