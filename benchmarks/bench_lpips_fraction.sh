#!/bin/bash
# Seconds per step of the reproduction study's recipe (configs/emoji32_textok_p8.yaml, TexTok N = 8)
# with LPIPS on 8 of the 32 images of a batch (loss.perceptual_fraction=0.25, the study's) vs all 32,
# one thread, the two settings alternated twice; the trainer prints s/step every 20 steps.
#   bash benchmarks/bench_lpips_fraction.sh [DATA=data/emoji]
set -e
cd "$(dirname "$0")/.."
DATA=${1:-data/emoji}
lscpu | grep "Model name" || true
for f in 0.25 1.0 0.25 1.0; do
  out=$(mktemp -d)
  echo "== perceptual_fraction=$f $(date -u +%T)"
  .venv/bin/textok train-tokenizer --config configs/emoji32_textok_p8.yaml --out "$out" --threads 1 \
    model.num_tokens=8 loss.perceptual_fraction=$f schedule.max_steps=60 logging.log_every=20 \
    logging.progress=false logging.tensorboard=false logging.preview_every=0 checkpoint.every=1000 \
    data.root="$DATA" 2>&1 | grep -E "s/step|trained" | cut -c1-160
  rm -rf "$out"
done
