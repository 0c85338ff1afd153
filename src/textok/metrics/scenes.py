"""Prompt adherence on the procedural scenes (``textok.data.scenes``): does an image show what its caption says?

``read_scene(image)`` reads a scene back from an RGB uint8 image without looking at any caption: the
background, and for each cell of the 3x3 grid whether it holds an object and that object's colour,
shape and size. ``score_adherence(images, entries)`` compares the reading of each image with its
``captions.jsonl`` entry, factor by factor (GenEval's way: an image is right or wrong per factor):

- ``background``: the named background is the caption's;
- ``present``: each stated object's cell holds an object;
- ``colour`` / ``shape`` / ``size``: ... and that object has the stated colour / shape / size;
- ``empty``: every cell the caption does not name is empty; ``count``: as many objects as stated;
- ``exact``: all of the above (the whole scene is right).

How each factor is read (the renders are flat colours on a flat background, anti-aliased):

- **background**: the named background nearest to the image's median colour (objects cover at most
  ~15% of a render);
- **colour and presence**: a cell's pixels, less the measured background colour (a global tint cancels),
  are summed; the sum is fitted as ``amount * (colour - background)`` for each named colour (least squares,
  as ``textok.data.scenes.colour_at`` fits one pixel): the best fit names the colour, and the cell holds an
  object when ``amount`` (pixels of full coverage) reaches ``MIN_MASS_FRACTION`` of the smallest object the
  renderer draws. A sum is what blur, chroma subsampling and noise leave nearly unchanged;
- **shape and size**: no fixed rule reads a 5-pixel shape, so the cell's alpha map (coverage by the
  object's colour) is matched to rendered templates: every shape x size x in-cell offset the data set
  draws, rendered by ``render_scene`` itself at the image's size, sharp and blurred
  (``TEMPLATE_BLURS``, so that soft reconstructions match soft templates); the nearest template (L2)
  names the shape and the size. The templates are rendered once per image size (~0.5 s and 32 MB at 32 px;
  at most 11 offsets per axis at larger sizes).

The offsets inside a cell are not read (no caption states them): a generated object anywhere in its
cell counts. On real renders every factor reads 100% (``docs/data.md``: the ceiling); with another
scene's caption (``shift=1``) the rates fall to what two independent scenes share by chance (the floor).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import scenes as sc

#: a cell holds an object when its colour's fitted amount (pixels of full coverage) reaches this fraction of
#: the smallest object the renderer draws (a small triangle: ~9 pixels at 32 px)
MIN_MASS_FRACTION = 0.6
#: Gaussian blurs (sigma in pixels at 32 px, scaled with the image) of the shape templates
TEMPLATE_BLURS = (0.0, 0.5, 1.0, 1.5, 2.0)
#: the factors, in table order; the object factors are rated per object and per image (all its objects)
OBJECT_FACTORS = ("present", "colour", "shape", "size")
FACTORS = ("background", *OBJECT_FACTORS, "empty", "count", "exact")

_COLOUR_NAMES = list(sc.COLOURS)
_COLOUR_RGB = np.asarray([sc.COLOURS[c] for c in _COLOUR_NAMES], dtype=np.float64)
_BG_NAMES = list(sc.BACKGROUNDS)
_BG_RGB = np.asarray([sc.BACKGROUNDS[b] for b in _BG_NAMES], dtype=np.float64)
_CLASSES = [(shape, size) for shape in sc.SHAPES for size in sc.SIZES]


def cell_windows(size: int) -> list[tuple[slice, slice]]:
    """Per cell (reading order), the pixels whose centres lie inside it: ``(rows, columns)`` slices."""
    edges = [int(np.ceil(k * size / 3 - 0.5)) for k in range(4)]
    spans = [slice(edges[k], edges[k + 1]) for k in range(3)]
    return [(spans[cell // 3], spans[cell % 3]) for cell in range(9)]


def _smallest_area(size: int) -> float:
    """The smallest object's area in pixels (a small triangle, ``scenes._draw``'s proportions)."""
    r = sc.RADIUS["small"] * size / 3
    return 1.8 * 0.95 * r * r


def read_background(image: np.ndarray) -> tuple[str, np.ndarray]:
    """The background of an RGB uint8 image [S, S, 3]: the named background nearest to the image's median
    colour, and that median colour (RGB, float)."""
    med = np.median(np.asarray(image, dtype=np.float64).reshape(-1, 3), axis=0)
    return _BG_NAMES[int(np.argmin(((_BG_RGB - med) ** 2).sum(1)))], med


def name_colour(deviation: np.ndarray, background: np.ndarray) -> tuple[str, float]:
    """The named colour whose mixture with ``background`` (RGB) explains ``deviation``, a sum of
    ``pixel - background`` over a region: ``(name, amount)``, ``amount`` in pixels of full coverage (the fit of
    ``deviation`` as ``amount * (colour - background)``, least squares, ``amount >= 0``)."""
    dirs = _COLOUR_RGB - np.asarray(background, dtype=np.float64)  # [C, 3]
    amount = np.maximum(dirs @ deviation / np.maximum((dirs * dirs).sum(1), 1e-9), 0.0)
    k = int(((deviation - amount[:, None] * dirs) ** 2).sum(1).argmin())
    return _COLOUR_NAMES[k], float(amount[k])


@functools.lru_cache(maxsize=2)
def _templates(size: int, blurs: tuple[float, ...] = TEMPLATE_BLURS) -> tuple[list[np.ndarray], np.ndarray]:
    """Per cell, the alpha maps of every shape x size x offset (sharp and blurred), flattened
    [M, h * w] float32; and the class index (into ``_CLASSES``) of each row [M]."""
    from scipy.ndimage import gaussian_filter

    J = sc.jitter_steps(size)
    offsets = [int(v) for v in np.unique(np.round(np.linspace(-J, J, min(2 * J + 1, 11))))]
    lo, hi = sc.BACKGROUNDS["black"], sc.COLOURS["white"]
    maps, labels = [], []
    for k, (shape, sz) in enumerate(_CLASSES):
        for dy in offsets:
            for dx in offsets:
                scene = {"background": "black", "objects": [
                    {"colour": "white", "shape": shape, "size": sz, "cell": c, "dx": dx, "dy": dy} for c in range(9)]}
                img = np.asarray(sc.render_scene(scene, size), dtype=np.float64).mean(-1)
                maps.append((img - lo[0]) / (hi[0] - lo[0]))
                labels.append(k)
    maps = np.clip(np.stack(maps), 0.0, 1.0).astype(np.float32)  # [M0, S, S]
    variants = [maps] + [gaussian_filter(maps, (0, s * size / 32, s * size / 32), mode="constant")
                         for s in blurs if s > 0]
    full = np.concatenate(variants)
    per_cell = [np.ascontiguousarray(full[:, rows, cols].reshape(len(full), -1), dtype=np.float32)
                for rows, cols in cell_windows(size)]
    return per_cell, np.tile(np.asarray(labels), len(variants))


@functools.lru_cache(maxsize=2)
def _template_norms(size: int, blurs: tuple[float, ...] = TEMPLATE_BLURS) -> list[np.ndarray]:
    """Per cell, the squared L2 norm of each template row (``_templates``): the same for every image read."""
    return [(t * t).sum(1) for t in _templates(size, blurs)[0]]


def _one_blas_thread():
    """A context in which BLAS runs one thread: a template match is a ~100 x 7,000 matrix-vector product, which a
    threaded BLAS slows down several times on a busy 2-core machine (4 vs 23-33 ms an image measured under load)."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


@dataclass
class SceneReading:
    """What ``read_scene`` sees: the background, and per occupied cell its object."""

    background: str
    #: cell -> {"colour", "shape", "size", "mass" (pixels of full coverage)}
    objects: dict[int, dict] = field(default_factory=dict)


def read_scene(image: np.ndarray) -> SceneReading:
    """Read a scene from an RGB uint8 image [S, S, 3] (any S >= 12), without its caption."""
    image = np.asarray(image)
    size = image.shape[0]
    background, bg_rgb = read_background(image)
    # against the measured background colour, so that a global tint cancels
    deviation = image.astype(np.float64) - bg_rgb
    min_mass = MIN_MASS_FRACTION * _smallest_area(size)
    templates, labels = None, None
    objects = {}
    for cell, (rows, cols) in enumerate(cell_windows(size)):
        dev = deviation[rows, cols]
        colour, mass = name_colour(dev.reshape(-1, 3).sum(0), bg_rgb)
        if mass < min_mass:
            continue
        d = np.asarray(sc.COLOURS[colour], dtype=np.float64) - bg_rgb
        coverage = np.clip(dev @ d / max(float(d @ d), 1e-9), 0.0, 1.0)  # [h, w]: the object's alpha map
        if templates is None:
            templates, labels = _templates(size, tuple(TEMPLATE_BLURS))
        query = coverage.reshape(-1).astype(np.float32)
        t = templates[cell]
        norms = _template_norms(size, tuple(TEMPLATE_BLURS))[cell]
        shape, sz = _CLASSES[int(labels[int((norms - 2 * t @ query).argmin())])]
        objects[cell] = {"colour": colour, "shape": shape, "size": sz, "mass": round(mass, 2)}
    return SceneReading(background, objects)


def judge(reading: SceneReading, entry: dict) -> dict:
    """One image's factors against its caption entry (``background``, ``objects`` with ``cell``, ``colour``,
    ``shape``, ``size``): ``{factor: bool}`` for ``FACTORS`` (object factors: all stated objects), plus
    ``"objects"`` (per stated object ``{factor: bool}``) and ``"extra_cells"`` (occupied cells the caption
    does not name)."""
    stated = {}
    for o in entry["objects"]:
        seen = reading.objects.get(int(o["cell"]))
        stated[int(o["cell"])] = {
            "present": seen is not None,
            **{f: seen is not None and seen[f] == o[f] for f in ("colour", "shape", "size")}}
    extra = sorted(c for c in reading.objects if c not in stated)
    out = {"background": reading.background == entry["background"],
           **{f: all(s[f] for s in stated.values()) for f in OBJECT_FACTORS},
           "empty": not extra, "count": len(reading.objects) == len(stated)}
    out["exact"] = out["background"] and out["size"] and out["colour"] and out["shape"] and out["empty"]
    out["objects"] = [stated[int(o["cell"])] for o in entry["objects"]]
    out["extra_cells"] = extra
    return out


def edit_shown(judged: dict, scene: dict, edited: dict) -> bool:
    """Whether an image judged against ``edited`` (``judge``, or an image of ``score_adherence(images, [edited,
    ...])``) shows the one edit that turned ``scene`` into ``edited`` (``textok.data.scenes.swap_scene``): the
    new background; the edited object's new colour; the moved object (its colour) at its new cell and nothing
    left at its old one. Whatever else the image gets wrong does not count here."""
    if scene["background"] != edited["background"]:
        return bool(judged["background"])
    for j, (old, new) in enumerate(zip(scene["objects"], edited["objects"])):
        if old != new:
            seen = judged["objects"][j]
            if old["cell"] != new["cell"]:
                return bool(seen["colour"] and int(old["cell"]) not in judged["extra_cells"])
            return bool(seen["colour"])
    raise ValueError("the scene and the edited scene are the same: no edit to look for")


def _check_entry(entry, i: int) -> None:
    if not isinstance(entry, dict) or "background" not in entry or not isinstance(entry.get("objects"), list):
        raise ValueError(f"caption entry {i} has no scenes factors ('background', 'objects'): is this a scenes "
                         f"data set (textok data fetch scenes)?")


def score_adherence(images, entries: Sequence[dict], size: int | None = None) -> dict:
    """Score ``images`` (uint8 [N, S, S, 3], or a sequence of [S, S, 3]) against their caption
    ``entries`` (``captions.jsonl`` dicts of a scenes data set, in the same order).

    ``size``: the data set's image side (``manifest.json``'s recipe); images of another size are refused
    (the grid and the templates are the render's). Returns ``{"images": [per image: the ``judge`` dict and
    the reading], "summary": summarize(...)}``.
    """
    images = list(images) if not isinstance(images, np.ndarray) else images
    if len(images) != len(entries):
        raise ValueError(f"{len(images)} images for {len(entries)} caption entries: they must pair one to one")
    if not len(images):
        raise ValueError("no images to score")
    per_image = []
    with _one_blas_thread():
        for i, (image, entry) in enumerate(zip(images, entries)):
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3 or image.shape[0] != image.shape[1]:
                raise ValueError(f"image {i}: expected a square RGB uint8 image [S, S, 3], got {image.dtype} "
                                 f"{tuple(image.shape)}")
            if size is not None and image.shape[0] != size:
                raise ValueError(f"image {i} is {image.shape[0]} px, the data set's scenes are {size} px")
            if image.shape[0] < 12:
                raise ValueError(f"image {i} is {image.shape[0]} px: too small for a 3x3 grid of shapes (>= 12 px)")
            _check_entry(entry, i)
            reading = read_scene(image)
            result = judge(reading, entry)
            result["read"] = {"background": reading.background,
                              "objects": {str(c): o for c, o in sorted(reading.objects.items())}}
            if "file" in entry:
                result["file"] = entry["file"]
            per_image.append(result)
    return {"images": per_image, "summary": summarize(per_image)}


def summarize(per_image: Sequence[dict]) -> dict:
    """Rates over images (``{factor: rate}``; an object factor holds for an image when it holds for all its
    stated objects) and over stated objects (``{factor: rate}`` for the object factors), with the counts."""
    n = len(per_image)
    objects = [o for r in per_image for o in r["objects"]]
    return {"num_images": n, "num_objects": len(objects),
            "images": {f: round(sum(bool(r[f]) for r in per_image) / n, 4) for f in FACTORS},
            "objects": {f: round(sum(bool(o[f]) for o in objects) / max(1, len(objects)), 4) for f in OBJECT_FACTORS}}


def chance(entries: Sequence[dict], shift: int = 1) -> dict:
    """The floor a perfect reader would give: each scene's true factors judged against the caption of the scene
    ``shift`` places later (what two independent scenes share by chance); ``summarize``'s layout."""
    n = len(entries)
    per_image = []
    for i, e in enumerate(entries):
        reading = SceneReading(e["background"], {int(o["cell"]): o for o in e["objects"]})
        per_image.append(judge(reading, entries[(i + shift) % n]))
    return summarize(per_image)


# ------------------------------------------------------------------------------ files: the data set, the images

def load_entries(data: str | os.PathLike, split: str, num: int | None = None) -> tuple[list[dict], int]:
    """The ``captions.jsonl`` entries of ``split`` in a scenes data set folder (file order, the first ``num``)
    and the data set's image size (its manifest's recipe)."""
    root = Path(data)
    path = root / "captions.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"--data {root}: no captions.jsonl (make one with textok data fetch scenes)")
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    if manifest.get("recipe", {}).get("dataset") != "scenes":
        raise ValueError(f"--data {root}: not a scenes data set (its manifest.json names no scenes recipe; make one "
                         f"with textok data fetch scenes)")
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            e = json.loads(line)
            if e.get("split") == split:
                entries.append(e)
    if not entries:
        splits = manifest.get("splits", {})
        raise ValueError(f"--data {root}: no images in split {split!r} (splits: {', '.join(splits) or 'none'})")
    if num is not None:
        if num < 1:
            raise ValueError(f"--num must be a positive integer, got {num}")
        if num > len(entries):
            raise ValueError(f"--num {num}: split {split!r} has only {len(entries)} images")
        entries = entries[:num]
    for i, e in enumerate(entries):
        _check_entry(e, i)
    return entries, int(manifest["recipe"]["size"])


def load_images(path: str | os.PathLike, entries: Sequence[dict], allow_extra: bool = False) -> np.ndarray:
    """The images to score, uint8 [N, H, W, 3], paired with ``entries`` in order, from

    - an ``.npz`` (``textok sample-fid``'s ADM layout: ``arr_0`` uint8 [N, H, W, 3]), in the entries' order, or
    - a folder of PNGs named as the entries' files: ``<folder>/<file>`` (e.g. ``images/val/000000.png``) or
      ``<folder>/<file's name>`` (``000000.png``): the data set's own ``images/val`` folder is the ceiling;
      a folder that holds PNGs the entries do not name is refused unless ``allow_extra`` (scoring a subset).
    """
    path = Path(path)
    n = len(entries)
    if path.is_dir():
        from PIL import Image

        found, missing = [], []
        for e in entries:
            for candidate in (path / e["file"], path / Path(e["file"]).name):
                if candidate.is_file():
                    found.append(candidate)
                    break
            else:
                missing.append(Path(e["file"]).name)
        if missing:
            raise ValueError(f"{path}: {len(missing)} of the {n} images the captions name are missing (first: "
                             f"{missing[0]}): name the PNGs as the split's files")
        if not allow_extra and all(p.parent == path for p in found):
            extra = {p.name for p in path.glob("*.png")} - {p.name for p in found}
            if extra:
                raise ValueError(f"{path}: holds {n + len(extra)} PNGs for {n} captions ({sorted(extra)[0]} is none of "
                                 f"the split's files): give --num to score the first N, or a folder of the split's "
                                 f"images only")
        images = []
        for p in found:
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("RGB")))
        sizes = sorted({im.shape[:2] for im in images})
        if len(sizes) > 1:
            raise ValueError(f"{path}: the images differ in size ({', '.join('x'.join(map(str, s)) for s in sizes)})")
        return np.stack(images)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: give a folder of PNGs or an .npz of uint8 images (textok sample-fid)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "arr_0" not in z.files:
                raise ValueError(f"{path}: no 'arr_0' array of images (keys: {sorted(z.files)})")
            images = z["arr_0"]
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{path}: arr_0 must be uint8 images [N, H, W, 3], got {images.dtype} {tuple(images.shape)}")
    if len(images) != n:
        hint = f" (or give --num {len(images)} to score the first {len(images)})" if len(images) < n else ""
        raise ValueError(f"{path}: holds {len(images)} images for {n} captions: sample one image per caption, in "
                         f"the split's order{hint}")
    return images


def markdown(summary: dict, chance_summary: dict | None = None) -> str:
    """A Markdown table: per factor, the rate over images and over stated objects (and a perfect reader's
    rates on the same pairing, ``chance``, when given)."""
    pct = lambda v: "" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    head = "| factor | images | objects |" + (" chance: images | chance: objects |" if chance_summary else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for f in FACTORS:
        row = f"| {f} | {pct(summary['images'][f])} | {pct(summary['objects'].get(f))} |"
        if chance_summary:
            row += f" {pct(chance_summary['images'][f])} | {pct(chance_summary['objects'].get(f))} |"
        lines.append(row)
    lines.append(f"\n{summary['num_images']} images, {summary['num_objects']} stated objects")
    return "\n".join(lines)


def evaluate_adherence(images: str | os.PathLike, data: str | os.PathLike, split: str = "val",
                       num: int | None = None, shift: int = 0) -> dict:
    """``textok eval-adherence``: score the images at ``images`` (``load_images``) against the captions of
    ``split`` in the scenes data set ``data``. ``shift``: pair image i with caption i + shift (``shift=1`` on real
    renders gives the floor). Returns ``score_adherence``'s report plus ``"chance"`` (a perfect reader's rates on
    the same pairing: equal to the summary when ``shift`` > 0 and the reader is right), the settings and
    ``"markdown"``."""
    entries, size = load_entries(data, split, num)
    folder = Path(images).resolve()
    renders = (Path(data) / "images").resolve()
    if folder.parent == renders and folder.name != split and (folder / Path(entries[0]["file"]).name).is_file():
        raise ValueError(f"{images}: the {folder.name} split's renders, not the {split} split's (their files share "
                         f"names): give --split {folder.name} or {renders / split}")
    pics = load_images(images, entries, allow_extra=num is not None)
    n = len(entries)
    if pics.shape[1:3] != (size, size):
        raise ValueError(f"{images}: the images are {pics.shape[1]}x{pics.shape[2]} px, the scenes of {data} "
                         f"{size}x{size} px: score images at the data set's size")
    if shift % n == 0 and shift:
        raise ValueError(f"--shift {shift} pairs every image with its own caption (the split has {n})")
    paired = [entries[(i + shift) % n] for i in range(n)]
    report = score_adherence(pics, paired, size=size)
    report["settings"] = {"images": str(images), "data": str(data), "split": split, "num": n, "shift": shift,
                          "size": size}
    report["chance"] = chance(entries, shift) if shift else None
    title = (f"Adherence of {images} to the {split} captions of {data}"
             + (f", image i paired with caption i + {shift} (on real renders: the floor)" if shift else ""))
    report["markdown"] = title + "\n\n" + markdown(report["summary"], report["chance"])
    return report


__all__ = ["read_scene", "read_background", "name_colour", "cell_windows", "SceneReading", "judge", "edit_shown",
           "score_adherence", "summarize", "chance", "load_entries", "load_images", "evaluate_adherence", "markdown",
           "FACTORS", "OBJECT_FACTORS"]
