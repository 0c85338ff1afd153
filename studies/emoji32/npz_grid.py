"""Grid of ADM samples: one row per class, the first K samples of each (without labels: the first
K x K samples, K per row).

    python -m studies.emoji32.npz_grid samples.npz grid.png --per-class 8
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from textok.data.transforms import make_grid, to_pil


def sample_grid(samples: str | Path, out: str | Path, per_class: int = 8, max_rows: int | None = None) -> int:
    """Write the grid PNG of ``samples`` (.npz, ADM layout) to ``out``; returns its number of rows."""
    with np.load(samples) as f:
        images = f["arr_0"]
        labels = f["arr_1"] if "arr_1" in f.files else None
    if labels is None:
        rows = [images[i:i + per_class] for i in range(0, min(len(images), per_class * per_class), per_class)]
    else:
        rows = [images[labels == c][:per_class] for c in np.unique(labels)]
    rows = rows[:max_rows]
    x = torch.from_numpy(np.concatenate(rows)).permute(0, 3, 1, 2).float() / 127.5 - 1  # [B, 3, H, W]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    to_pil(make_grid(x, nrow=per_class)).save(out)
    return len(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("samples")
    p.add_argument("out")
    p.add_argument("--per-class", type=int, default=8)
    a = p.parse_args()
    rows = sample_grid(a.samples, a.out, a.per_class)
    print(f"{a.out}: {rows} rows x {a.per_class}")


if __name__ == "__main__":
    main()
