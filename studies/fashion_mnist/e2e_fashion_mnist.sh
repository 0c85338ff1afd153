#!/usr/bin/env bash
# End to end on Fashion-MNIST at 32 px, class-conditional: TexTok tokens vs its no-text baseline's
# tokens, each with the same DiT, step budget and seed; then class-balanced samples, gFID and
# precision/recall against Inception statistics of the test split.
# Results and budgets: docs/results/generation_e2e.md. Everything is written under $OUT.
#
#   bash studies/fashion_mnist/e2e_fashion_mnist.sh                     # the recorded run (CPU, ~45 min loaded)
#   NUM_SAMPLES=10000 TEST_PER_CLASS=1000 bash studies/fashion_mnist/e2e_fashion_mnist.sh   # bigger FID sets
#   TOK_STEPS=2000 DIT_STEPS=5000 DEVICE=cuda bash studies/fashion_mnist/e2e_fashion_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

TEXTOK=${TEXTOK:-.venv/bin/textok}
DATA=${DATA:-data/fashion-mnist}
OUT=${OUT:-runs/e2e_fmnist}
DEVICE=${DEVICE:-cpu}
TOK_STEPS=${TOK_STEPS:-200}          # tokenizer optimiser steps (batch 32), each model
DIT_STEPS=${DIT_STEPS:-1500}          # DiT optimiser steps (batch 128), each model
TRAIN_PER_CLASS=${TRAIN_PER_CLASS:-1000}   # images per class encoded into the latent caches
TEST_PER_CLASS=${TEST_PER_CLASS:-100}      # reference images per class for the FID statistics
NUM_SAMPLES=${NUM_SAMPLES:-1000}     # class-balanced samples per model
SAMPLER=${SAMPLER:-ddim}
STEPS=${STEPS:-25}
CFG=${CFG:-1.5}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
run() { echo "+ $*"; /usr/bin/time -f "  [%e s wall]" nice -n 10 "$@"; }

[ -d "$DATA/train" ] || run "$TEXTOK" data fetch fashion-mnist --root "$DATA"
run "$TEXTOK" embed-text --data "$DATA" --encoder minilm --max-tokens 16
# Class-balanced subset: the class-tree loader lists images class by class, so "first N" would be
# one class. Symlinks to the originals plus caption pools and the text cache.
run .venv/bin/python -m studies.fashion_mnist.make_fmnist_subset "$DATA" "$OUT/fmnist-subset" \
    --train-per-class "$TRAIN_PER_CLASS" --test-per-class "$TEST_PER_CLASS"
SUB="$OUT/fmnist-subset"

# Reference statistics (Inception pool3 mu/sigma + features for precision/recall).
[ -f "$OUT/fmnist_test_32.npz" ] || run "$TEXTOK" fid-stats --data "$SUB" --split test --image-size 32 \
    --out "$OUT/fmnist_test_32.npz" --device "$DEVICE" --no-progress

# Floor at this N: real training images (the first NUM_SAMPLES/10 of each class) vs the reference.
run .venv/bin/python - "$SUB" "$OUT/real_train.npz" "$((NUM_SAMPLES / 10))" "$TRAIN_PER_CLASS" <<'PY'
import sys, numpy as np, torch
from textok.data import open_dataset
from textok.data.transforms import to_uint8
sub, out, k, per_class = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ds = open_dataset(sub, split="train", image_size=32)          # per_class images of each class, class by class
idx = [c * per_class + i for c in range(10) for i in range(k)]
x = torch.stack([ds[i]["image"] for i in idx]); y = np.array([ds[i]["label"] for i in idx])
np.savez(out, arr_0=to_uint8(x), arr_1=y)
PY
run "$TEXTOK" eval-generation --samples "$OUT/real_train.npz" --ref "$OUT/fmnist_test_32.npz" \
    --out "$OUT/eval_real_train" --device "$DEVICE" --no-progress

for kind in textok baseline; do
  flag=""; [ "$kind" = baseline ] && flag="--baseline"
  # 1. tokenizer (trained on the full training split), 2. latent cache, 3. DiT, 4. samples, 5. metrics
  run "$TEXTOK" train-tokenizer --config configs/fmnist32_textok.yaml $flag --out "$OUT/tok_$kind" \
      schedule.max_steps="$TOK_STEPS"
  run "$TEXTOK" encode-dataset --checkpoint "$OUT/tok_$kind/model" --data "$SUB" --split train \
      --out "$OUT/lat_$kind" --device "$DEVICE"
  run "$TEXTOK" train-dit --config configs/dit_fmnist32.yaml --out "$OUT/dit_$kind" \
      data.cache="$OUT/lat_$kind" schedule.max_steps="$DIT_STEPS"
  run "$TEXTOK" sample-fid --checkpoint "$OUT/dit_$kind/model" --num "$NUM_SAMPLES" \
      --out "$OUT/samples_$kind.npz" --batch-size 100 --sampler "$SAMPLER" --steps "$STEPS" --cfg "$CFG" --seed 0 --device "$DEVICE"
  run .venv/bin/python -m studies.emoji32.npz_grid "$OUT/samples_$kind.npz" "$OUT/grid_$kind.png" --per-class 8
  run "$TEXTOK" eval-generation --samples "$OUT/samples_$kind.npz" --ref "$OUT/fmnist_test_32.npz" \
      --out "$OUT/eval_$kind" --device "$DEVICE" --no-progress
done
