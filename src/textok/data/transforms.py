"""Image reading and the standard transforms (no torchvision).

- ``load_image(path)``: any file PIL reads -> RGB as an image viewer shows it (``to_rgb``: EXIF
  orientation applied; RGBA / LA / palette-with-transparency composited on white; 16-bit, 32-bit
  and float images scaled from their full range; CMYK, grey and palette converted). Unreadable
  files, images beyond ``MAX_IMAGE_PIXELS`` (checked before decoding) and values with no display
  range raise ``ImageError`` naming the file and the reason.
- ``center_crop(img, size)``: the ADM evaluation protocol (box-downsample while the short side
  is at least twice the target, bicubic resize of the short side to ``size``, centre crop).
- ``random_crop(img, size, rng)``: training crop (resize the short side to ``size`` first, so
  a crop always fits; optional horizontal flip is off by default: captions say "left").
- ``to_tensor`` / ``to_pil``: [3, H, W] float in [-1, 1] <-> PIL; ``load_tensor(path or PIL, size)``:
  the evaluation crop as a model sees it, [3, size, size].
"""

from __future__ import annotations

import io
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

#: the one pixel cap of every command and the page (width x height, read from the header before
#: anything is decoded): a 248 KB PNG can declare 16000 x 16000 pixels and decode to 768 MB
MAX_IMAGE_PIXELS = 50_000_000  # 50 megapixels (e.g. 8660 x 5773)


class ImageError(ValueError):
    """An image could not be used: ``name`` (the file, or a shard member) and ``reason``; the
    message is ``"{name}: {reason}"``."""

    def __init__(self, name, reason: str):
        self.name, self.reason = str(name), reason
        super().__init__(f"{name}: {reason}")

    def __reduce__(self):  # picklable (DataLoader workers send errors to the main process)
        return type(self), (self.name, self.reason)


#: modes ``to_rgb`` converts as a viewer shows them; any other is refused with its name
_PLAIN_MODES = {"1", "L", "P", "RGB", "RGBA", "LA", "PA", "RGBa", "La", "CMYK", "YCbCr", "RGBX"}


def to_rgb(img: Image.Image, name=None) -> Image.Image:
    """Any PIL mode -> RGB as an image viewer shows it: transparency composited on white, 16-bit
    and 32-bit integer images scaled from their full range (0..65535), floating-point ones from
    0..1, CMYK and palettes converted. ``ImageError`` (naming ``name``) for values outside those
    ranges or a mode with no standard display."""
    name = name if name is not None else getattr(img, "filename", None) or "image"
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    if img.mode.startswith("I") or img.mode.startswith("F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ImageError(name, f"mode {img.mode} image holds NaN or infinite values")
        if img.mode.startswith("F"):
            # floating-point images have no stored range; 0..1 is the convention viewers follow
            if arr.size and (arr.min() < 0 or arr.max() > 1):
                raise ImageError(name, f"floating-point image with values in [{arr.min():g}, {arr.max():g}], "
                                       f"not 0..1: its display range is unknown")
            arr = arr * 255.0
        else:
            # 16-bit files (PNG, TIFF) open as I;16 or I: full scale is 65535, not the image's own maximum
            if arr.size and (arr.min() < 0 or arr.max() > 65535):
                raise ImageError(name, f"32-bit integer image with values in [{arr.min():g}, {arr.max():g}], "
                                       f"beyond 16 bits: its display range is unknown")
            arr = arr / 257.0
        return Image.fromarray(arr.round().clip(0, 255).astype(np.uint8)).convert("RGB")
    if img.mode not in _PLAIN_MODES:
        raise ImageError(name, f"image mode {img.mode} has no standard display; convert it to RGB first")
    return img.convert("RGB")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read ``path`` fully and return an RGB PIL image; ``ImageError`` on any failure."""
    path = Path(path)
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a directory, not an image")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    return _decode(path, path)


def decode_image(data: bytes, name: str) -> Image.Image:
    """Like ``load_image`` for bytes already in memory (e.g. a tar member); ``name`` is used
    in error messages."""
    if len(data) == 0:
        raise ImageError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name)


def _decode(source, path) -> Image.Image:
    """Decode ``source`` (a path or file object) to RGB as a viewer shows it (EXIF orientation
    applied, see ``to_rgb``); ``path`` names it in errors. The pixel count is checked from the
    header, before decoding."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the cap below is the check, with its message; PIL's own is not
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                w, h = img.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise ImageError(path, f"{w} x {h} pixels is beyond the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixel "
                                           f"limit (refused before decoding: a possible decompression bomb)")
                img.load()  # force decoding now: truncated files fail here, not later
                rgb = to_rgb(ImageOps.exif_transpose(img), path)
                frames = int(getattr(img, "n_frames", 1) or 1)
                if frames > 1:  # an animated image gives its first frame: info["frames"] lets callers say so
                    rgb.info["frames"] = frames
                return rgb
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(path, f"refused as a decompression bomb ({e})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(path, "not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(path, f"corrupt or truncated image ({e})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """The ADM / DiT evaluation crop: [H, W] -> [size, size]."""
    while min(img.size) >= 2 * size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = size / min(img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.BICUBIC)
    arr = np.asarray(img)
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return Image.fromarray(arr[top : top + size, left : left + size])


def random_crop(img: Image.Image, size: int, rng: random.Random | None = None, flip: bool = False) -> Image.Image:
    """Training crop: short side resized to ``size`` (box-halving first, as ``center_crop``),
    then a random ``size`` x ``size`` window; horizontal flip with probability 0.5 if ``flip``."""
    rng = rng or random
    while min(img.size) >= 2 * size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = size / min(img.size)
    if scale != 1.0:
        img = img.resize(tuple(max(size, round(x * scale)) for x in img.size), resample=Image.BICUBIC)
    W, H = img.size
    left, top = rng.randint(0, W - size), rng.randint(0, H - size)
    img = img.crop((left, top, left + size, top + size))
    if flip and rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def prepare_image(img: Image.Image, size: int, name: str, train: bool = False, rng: random.Random | None = None,
                  flip: bool = False, min_size: int | None = None) -> torch.Tensor:
    """The dataset transform: size check, random (train) or ADM centre (eval) crop, -> [3, size, size].

    ``ImageError`` naming ``name`` if the image is smaller than ``min_size`` (default ``size``).
    """
    min_size = size if min_size is None else min_size
    if min(img.size) < min_size:
        raise ImageError(name, f"image is {img.size[0]}x{img.size[1]}, smaller than the {min_size}px crop")
    img = random_crop(img, size, rng, flip=flip) if train else center_crop(img, size)
    return to_tensor(img)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> [3, H, W] float32 in [-1, 1]."""
    arr = np.asarray(to_rgb(img), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3] (the ADM sample layout), with rounding."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] in [-1, 1] -> PIL RGB."""
    return Image.fromarray(to_uint8(image[None])[0])


def load_tensor(image: str | os.PathLike | Image.Image, size: int) -> torch.Tensor:
    """One image file (or PIL image) as the model sees it, read, converted and centre-cropped
    (``center_crop``): -> [3, size, size] in [-1, 1]."""
    if isinstance(image, Image.Image):
        img = image if image.mode == "RGB" else image.convert("RGB")
    else:
        img = load_image(image)
    return to_tensor(center_crop(img, size))


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """[B, 3, H, W] -> one [3, H', W'] image tiled ``nrow`` per row (like torchvision's)."""
    B, C, H, W = images.shape
    ncol = min(nrow, B)
    nrows = (B + ncol - 1) // ncol
    grid = images.new_full((C, nrows * (H + padding) + padding, ncol * (W + padding) + padding), pad_value)
    for i in range(B):
        r, c = divmod(i, ncol)
        y, x = padding + r * (H + padding), padding + c * (W + padding)
        grid[:, y : y + H, x : x + W] = images[i]
    return grid


def captioned_grid(columns: dict[str, torch.Tensor], captions: list[str], scale: int = 2,
                   min_width: int = 420) -> Image.Image:
    """One row per image: a column per entry of ``columns`` (title -> images [B, 3, H, W] in [-1, 1], all of one
    size), each image scaled ``scale`` x (nearest), with ``captions[i]`` (lines split on ``\\n``, wrapped to the
    width) under row i."""
    import textwrap

    from PIL import ImageDraw, ImageFont

    first = next(iter(columns.values()))
    S, pad, line_h, head = first.shape[-1] * scale, 6, 12, 18
    W = max(pad + len(columns) * (S + pad), min_width)
    width = max(20, (W - 2 * pad) // 6)
    lines = [[w for s in str(c).split("\n") for w in textwrap.wrap(s, width) or [""]] for c in captions]
    row_h = S + line_h * max((len(ls) for ls in lines), default=1) + 4 + pad
    canvas = Image.new("RGB", (W, head + len(first) * row_h + pad), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    for j, name in enumerate(columns):
        draw.text((pad + j * (S + pad), 3), name, fill="black", font=font)
    for i in range(len(first)):
        y = head + i * row_h
        for j, images in enumerate(columns.values()):
            canvas.paste(to_pil(images[i]).resize((S, S), Image.NEAREST), (pad + j * (S + pad), y))
        for k, line in enumerate(lines[i]):
            draw.text((pad, y + S + 2 + k * line_h), line, fill=(40, 40, 40), font=font)
    return canvas
