"""``make demo``: placeholder until the tokenizer trainer lands.

Reconstructs the photos bundled with scikit-image with a freshly initialised ``textok-mini-64``
model and its no-text twin, and says plainly that the weights are untrained.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .data.transforms import center_crop, make_grid, to_pil, to_tensor
from .io import atomic_path
from .models import TexTok, TexTokConfig
from .text import TextEncoder

PHOTOS = {"astronaut": "an astronaut in a white suit in front of a flag", "chelsea": "a tabby cat",
          "coffee": "a cup of coffee on a saucer", "rocket": "a rocket on a launch pad"}


@torch.no_grad()
def demo(out: str | Path = "demo_out") -> dict:
    from PIL import Image
    from skimage import data as skdata

    out = Path(out)
    torch.manual_seed(0)
    images = torch.stack([to_tensor(center_crop(Image.fromarray(getattr(skdata, n)()), 64)) for n in PHOTOS])
    encoder = TextEncoder.from_pretrained("minilm")
    text = encoder(list(PHOTOS.values()))
    rows, report = [images], {}
    for text_in in ("none", "both"):
        model = TexTok(TexTokConfig.from_preset("textok-mini-64", text_in=text_in)).eval()
        rec = model.decode(model.encode(images, text), text).clamp(-1, 1)
        rows.append(rec)
        report[text_in] = float(((rec - images) ** 2).mean())
        print(f"text_in={text_in:5s} params={model.num_parameters()['total']:,} tokens={tuple(model.token_shape)} "
              f"mse={report[text_in]:.4f} (UNTRAINED weights: training is not built yet)")
    with atomic_path(out / "reconstructions.png") as tmp:
        to_pil(make_grid(torch.cat(rows), nrow=len(PHOTOS))).save(tmp, format="PNG")
    print(f"wrote {out / 'reconstructions.png'} (rows: original | baseline | TexTok)")
    return report
