"""Grid of class-balanced ADM samples: one row per class, the first K samples of each.

    python experiments/npz_grid.py samples.npz grid.png --per-class 8
"""
import argparse

import numpy as np
import torch

from textok.data.transforms import make_grid, to_pil


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("samples")
    p.add_argument("out")
    p.add_argument("--per-class", type=int, default=8)
    a = p.parse_args()
    with np.load(a.samples) as f:
        images, labels = f["arr_0"], f["arr_1"]
    rows = []
    for c in np.unique(labels):
        rows.append(images[labels == c][: a.per_class])
    x = torch.from_numpy(np.concatenate(rows)).permute(0, 3, 1, 2).float() / 127.5 - 1  # [B, 3, H, W]
    to_pil(make_grid(x, nrow=a.per_class)).save(a.out)
    print(f"{a.out}: {len(rows)} classes x {a.per_class}")


if __name__ == "__main__":
    main()
