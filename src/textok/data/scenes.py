"""Procedural captioned scenes: a data set whose captions state (almost) every factor of the image.

``textok.data.fetch.fetch_scenes(root, count=100_000, size=32, seed=0)`` (``textok data fetch scenes``)
draws small scenes, deterministically from ``seed`` (no download), with ``write_scenes``, in the folder format (``captions.jsonl`` + PNGs +
``manifest.json``). Each scene: a background colour (4 named) and 1-3 objects, each with a colour
(8 named), a shape (6), a size (small / large) and a cell of a 3x3 grid (distinct cells), plus a
small random offset inside its cell that no caption states (the detail only the image tokens can
carry). The caption names the objects in reading order:

    "a large red circle at top left and a small blue diamond at bottom right, on a grey background"

Splits: ``train`` (``count`` scenes), ``val`` (new scenes from the same distribution) and
``val_compositional`` (every scene holds at least one of ``HELDOUT_PAIRS``, colour-shape pairs
that never occur in ``train`` or ``val``). No scene (factors and offsets) occurs twice anywhere.

Caption variants for the condition-richness ablation are stored as extra fields and selected with
``caption_variant="shapes"`` / ``"shapes_colours"`` (``textok.data.captions``: a variant that is
not built in reads the entry's ``caption_<variant>`` field); ``"full"`` is the whole caption.
``caption_bits()`` gives the entropy of each variant's caption under the train distribution.

Rendering: PIL polygons on a canvas ``SUPERSAMPLE`` times larger, box-reduced to ``size`` (anti-
aliased edges); each entry keeps the factors and the objects' centres in output pixels, so a
detector can read the image where the caption says an object is.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..config import check_seed
from ..io import write_json_atomic
from .formats import CAPTIONS_FILE, MANIFEST_FILE, write_json_lines

#: object colours (name -> sRGB), far apart in RGB so a mean-colour detector tells them apart
COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (40, 70, 230), "yellow": (240, 220, 40),
    "purple": (150, 50, 190), "cyan": (40, 210, 220), "orange": (250, 140, 20), "white": (245, 245, 245),
}
#: backgrounds: none equals an object colour (navy is much darker than blue)
BACKGROUNDS = {"black": (15, 15, 15), "grey": (125, 125, 125), "brown": (110, 70, 35), "navy": (20, 30, 90)}
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
SIZES = ("small", "large")
#: the 3x3 grid, row by row (cell index = 3 * row + column): the caption's reading order
POSITIONS = ("top left", "top middle", "top right", "middle left", "center", "middle right",
             "bottom left", "bottom middle", "bottom right")
MAX_OBJECTS = 3
#: colour-shape pairs never drawn in train or val; every val_compositional scene holds one
HELDOUT_PAIRS = (("red", "triangle"), ("blue", "ring"), ("green", "cross"), ("yellow", "diamond"))
SPLITS = ("train", "val", "val_compositional")
#: caption variants besides "full", stored as ``caption_<variant>`` fields
VARIANTS = ("shapes", "shapes_colours")
SUPERSAMPLE = 4
#: the largest image side (a 4096 px canvas, 50 MB while drawn) and the most scenes per split (a
#: file each) a recipe may ask for
MAX_SIZE, MAX_COUNT = 1024, 10_000_000
# Radii and offsets as fractions of a grid cell: radius + offset < half a cell, so objects never overlap.
RADIUS = {"small": 0.22, "large": 0.36}
JITTER = 0.12  # the largest centre offset (either axis), as a fraction of a cell


def _pairs(heldout: bool) -> list[tuple[str, str]]:
    held = set(HELDOUT_PAIRS)
    return [(c, s) for c in COLOURS for s in SHAPES if ((c, s) in held) == heldout]


def jitter_steps(size: int) -> int:
    """Largest centre offset in canvas pixels (``size * SUPERSAMPLE`` wide): offsets are integers
    in ``[-J, J]``, i.e. steps of 1/SUPERSAMPLE output pixel."""
    return int(JITTER * size * SUPERSAMPLE / 3)


def sample_scene(rng: np.random.Generator, size: int, compositional: bool = False) -> dict:
    """One scene's factors: ``{"background", "objects": [{"colour", "shape", "size", "position",
    "cell", "dx", "dy"}] in reading order}`` (``dx``/``dy`` in canvas pixels)."""
    allowed, held = _pairs(False), _pairs(True)
    k = int(rng.integers(1, MAX_OBJECTS + 1))
    cells = sorted(int(c) for c in rng.choice(len(POSITIONS), size=k, replace=False))
    forced = int(rng.integers(k)) if compositional else -1  # the object that gets a held-out pair
    J = jitter_steps(size)
    objects = []
    for i, cell in enumerate(cells):
        pool = held if i == forced else allowed
        colour, shape = pool[int(rng.integers(len(pool)))]
        objects.append({"colour": colour, "shape": shape, "size": SIZES[int(rng.integers(len(SIZES)))],
                        "position": POSITIONS[cell], "cell": cell,
                        "dx": int(rng.integers(-J, J + 1)), "dy": int(rng.integers(-J, J + 1))})
    return {"background": list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))], "objects": objects}


def scene_key(scene: dict) -> tuple:
    """Everything that determines the image: two scenes with equal keys render identical pixels."""
    return (scene["background"],) + tuple((o["cell"], o["colour"], o["shape"], o["size"], o["dx"], o["dy"])
                                          for o in scene["objects"])


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def scene_captions(scene: dict) -> dict[str, str]:
    """``{"full": ..., "shapes_colours": ..., "shapes": ...}`` for one scene."""
    objs = scene["objects"]
    full = _join([f"a {o['size']} {o['colour']} {o['shape']} at {o['position']}" for o in objs])
    return {"full": f"{full}, on a {scene['background']} background",
            "shapes_colours": _join([f"a {o['colour']} {o['shape']}" for o in objs]),
            "shapes": _join([f"a {o['shape']}" for o in objs])}


_SUFFIX = re.compile(r",? on an? (\S+) background$")
_PHRASE = re.compile(r"an? (\S+) (\S+) (\S+) at (.+)$")
_GRAMMAR = "'a {size} {colour} {shape} at {position}[, ... and ...], on a {background} background'"


def parse_caption(text: str) -> dict:
    """The scene a full caption states (the inverse of ``scene_captions(scene)["full"]``): ``{"background",
    "objects": [{"colour", "shape", "size", "position", "cell", "dx": 0, "dy": 0}]}``, objects in the order
    stated (no caption states the offsets: 0). Case and repeated spaces are forgiven; anything else outside
    the grammar raises a ValueError naming the phrase."""
    if not isinstance(text, str):
        raise ValueError(f"a scenes caption is text, got {type(text).__name__}")
    clean = " ".join(text.lower().split()).rstrip(".")
    m = _SUFFIX.search(clean)
    if not m:
        raise ValueError(f"caption {text!r} does not end with ', on a <background> background' "
                         f"(the grammar: {_GRAMMAR})")
    background = m.group(1)
    if background not in BACKGROUNDS:
        raise ValueError(f"caption {text!r}: unknown background {background!r}; choose from {list(BACKGROUNDS)}")
    body = clean[:m.start()]
    phrases = [p.strip() for p in re.split(r",(?: and)? | and ", body)] if body else []
    if not phrases or not 1 <= len(phrases) <= MAX_OBJECTS:
        raise ValueError(f"caption {text!r} states {len(phrases)} objects; a scene holds 1 to {MAX_OBJECTS} "
                         f"(the grammar: {_GRAMMAR})")
    objects = []
    for phrase in phrases:
        pm = _PHRASE.match(phrase)
        if not pm:
            raise ValueError(f"caption {text!r}: {phrase!r} is not 'a <size> <colour> <shape> at <position>'")
        size, colour, shape, position = pm.groups()
        for what, value, allowed in (("size", size, SIZES), ("colour", colour, tuple(COLOURS)),
                                     ("shape", shape, SHAPES), ("position", position, POSITIONS)):
            if value not in allowed:
                raise ValueError(f"caption {text!r}: unknown {what} {value!r} in {phrase!r}; choose from "
                                 f"{list(allowed)}")
        cell = POSITIONS.index(position)
        if any(o["cell"] == cell for o in objects):
            raise ValueError(f"caption {text!r}: two objects at {position} (one object per cell)")
        objects.append({"colour": colour, "shape": shape, "size": size, "position": position, "cell": cell,
                        "dx": 0, "dy": 0})
    return {"background": background, "objects": objects}


#: the factors ``swap_scene`` edits
SWAP_FACTORS = ("colour", "position", "background")


def swap_scene(scene: dict, factor: str, rng_or_index: np.random.Generator | int) -> tuple[dict, str]:
    """``scene`` with one factor changed: ``(new_scene, description)``, e.g. ``"colour: red -> purple (the large
    red circle at top left)"``. ``factor``: ``"colour"`` or ``"position"`` of one object, or ``"background"``.

    An int ``rng_or_index`` picks deterministically (the study's swaps): object ``index % len(objects)``, the
    colour three names further on, the mirrored cell (else the free cell farthest away), the next background;
    a ``numpy.random.Generator`` draws the object and a different value at random. The edited object keeps
    its place in the list (its caption phrase is edited where it stands) and its offsets; the input is not
    modified."""
    if factor not in SWAP_FACTORS:
        raise ValueError(f"unknown swap factor {factor!r}; choose from {SWAP_FACTORS}")
    rng = rng_or_index if isinstance(rng_or_index, np.random.Generator) else None
    if rng is None and not isinstance(rng_or_index, (int, np.integer)):
        raise ValueError(f"rng_or_index must be an int or a numpy Generator, got {type(rng_or_index).__name__}")
    objects = [dict(o) for o in scene["objects"]]
    new = {**scene, "objects": objects}
    if factor == "background":
        names = list(BACKGROUNDS)
        old = scene["background"]
        others = [b for b in names if b != old]
        new["background"] = (others[int(rng.integers(len(others)))] if rng is not None
                             else names[(names.index(old) + 1) % len(names)])
        return new, f"background: {old} -> {new['background']}"
    if not objects:
        raise ValueError(f"a {factor} swap needs an object; the scene has none")
    j = int(rng.integers(len(objects))) if rng is not None else int(rng_or_index) % len(objects)
    o = objects[j]
    what = f"the {o['size']} {o['colour']} {o['shape']} at {o['position']}"
    if factor == "colour":
        names = list(COLOURS)
        others = [c for c in names if c != o["colour"]]
        colour = (others[int(rng.integers(len(others)))] if rng is not None
                  else names[(names.index(o["colour"]) + 3) % len(names)])
        objects[j] = dict(o, colour=colour)
        return new, f"colour: {o['colour']} -> {colour} ({what})"
    free = [c for c in range(len(POSITIONS)) if c not in {p["cell"] for p in objects}]
    if not free:
        raise ValueError("a position swap needs a free cell; all nine are taken")
    if rng is not None:
        cell = free[int(rng.integers(len(free)))]
    else:
        row, col = divmod(o["cell"], 3)
        far = max(free, key=lambda c: abs(c // 3 - row) + abs(c % 3 - col))  # the mirrored cell when free, else this
        cell = 8 - o["cell"] if (8 - o["cell"]) in free else far
    objects[j] = dict(o, cell=cell, position=POSITIONS[cell])
    return new, f"position: {o['position']} -> {POSITIONS[cell]} ({what})"


def object_centre(obj: dict, size: int) -> tuple[float, float]:
    """The object's centre ``(x, y)`` in output pixels (continuous; pixel i spans [i, i + 1))."""
    cell = size / 3
    row, col = divmod(obj["cell"], 3)
    return ((col + 0.5) * cell + obj["dx"] / SUPERSAMPLE, (row + 0.5) * cell + obj["dy"] / SUPERSAMPLE)


def object_radius(obj: dict, size: int) -> float:
    """The object's radius in output pixels."""
    return RADIUS[obj["size"]] * size / 3


def _draw(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        h = r * 0.85  # about the circle's area
        draw.rectangle((x - h, y - h, x + h, y + h), fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x + r * 0.95, y + r * 0.8), (x - r * 0.95, y + r * 0.8)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=fill)
    elif shape == "cross":
        t = r * 0.33
        draw.rectangle((x - r, y - t, x + r, y + t), fill=fill)
        draw.rectangle((x - t, y - r, x + t, y + r), fill=fill)
    elif shape == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        inner = r * 0.55
        return inner  # the caller punches the hole with the background colour
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")
    return None


def render_scene(scene: dict, size: int = 32) -> Image.Image:
    """The scene as an RGB ``size`` x ``size`` image (drawn ``SUPERSAMPLE`` x larger, box-reduced)."""
    big = size * SUPERSAMPLE
    bg = BACKGROUNDS[scene["background"]]
    image = Image.new("RGB", (big, big), bg)
    draw = ImageDraw.Draw(image)
    for o in scene["objects"]:
        x, y = object_centre(o, size)
        x, y, r = x * SUPERSAMPLE, y * SUPERSAMPLE, object_radius(o, size) * SUPERSAMPLE
        inner = _draw(draw, o["shape"], x, y, r, COLOURS[o["colour"]])
        if inner is not None:
            draw.ellipse((x - inner, y - inner, x + inner, y + inner), fill=bg)
    return image.reduce(SUPERSAMPLE)


def colour_at(image: np.ndarray, x: float, y: float, radius: float, background: str) -> tuple[str, float]:
    """The named object colour seen in a disc around ``(x, y)`` (output pixels) of an RGB uint8
    image [S, S, 3], and how strongly: ``(name, alpha)``, alpha in [0, 1] (0: only background).

    Every pixel of a render is ``alpha * colour + (1 - alpha) * background`` (anti-aliased edges),
    so the pixel of the disc farthest from the background is fitted by each named colour mixed
    with the background; the best fit names the colour, its mixing weight is ``alpha``.
    """
    img = np.asarray(image, dtype=np.float64)
    bg = np.asarray(BACKGROUNDS[background], dtype=np.float64)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    disc = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= (radius + 0.5) ** 2
    pixels = img[disc]
    if not len(pixels):
        return "", 0.0
    p = pixels[np.argmax(((pixels - bg) ** 2).sum(1))] - bg
    best, best_err, best_alpha = "", np.inf, 0.0
    for name, rgb in COLOURS.items():
        d = np.asarray(rgb, dtype=np.float64) - bg
        alpha = float(np.clip(p @ d / max(d @ d, 1e-9), 0.0, 1.0))
        err = float(((p - alpha * d) ** 2).sum())
        if err < best_err:
            best, best_err, best_alpha = name, err, alpha
    return best, best_alpha


def _entropy(p) -> float:
    p = np.asarray([v for v in p if v > 0], dtype=np.float64)
    return float(-(p * np.log2(p)).sum())


def caption_bits() -> dict[str, float]:
    """Entropy in bits of each caption variant under the train / val distribution (exact).

    Objects are drawn independently given their count k (uniform 1..3) and listed in reading
    order, so H(full) = H(k) + H(background) + E_k[k (H(colour, shape) + H(size)) + log2 C(9, k)];
    ``"offsets"`` is the detail no caption states: each object's 2-D offset inside its cell.
    """
    pairs = _pairs(False)
    h_pair = math.log2(len(pairs))
    h_shape = _entropy([sum(s == shape for _, s in pairs) / len(pairs) for shape in SHAPES])
    h_k = math.log2(MAX_OBJECTS)
    ks = range(1, MAX_OBJECTS + 1)
    mean = lambda f: sum(f(k) for k in ks) / MAX_OBJECTS  # noqa: E731
    return {
        "full": h_k + math.log2(len(BACKGROUNDS)) + mean(
            lambda k: k * (h_pair + math.log2(len(SIZES))) + math.log2(math.comb(len(POSITIONS), k))),
        "shapes_colours": h_k + mean(lambda k: k * h_pair),
        "shapes": h_k + mean(lambda k: k * h_shape),
        "offsets_32px": mean(lambda k: k * 2 * math.log2(2 * jitter_steps(32) + 1)),
    }


def generate_scenes(count: int, eval_count: int, size: int, seed: int) -> dict[str, list[dict]]:
    """The scenes of every split, deduplicated across splits (val and val_compositional are drawn
    first, from their own streams, so they do not change with ``count``)."""
    seen: set[tuple] = set()
    out = {}
    for split_id, (split, n) in enumerate((("val", eval_count), ("val_compositional", eval_count),
                                           ("train", count))):
        rng = np.random.default_rng([seed, split_id + 1])
        scenes = []
        while len(scenes) < n:
            scene = sample_scene(rng, size, compositional=split == "val_compositional")
            key = scene_key(scene)
            if key in seen:
                continue
            seen.add(key)
            scenes.append(scene)
        out[split] = scenes
    return out


def default_eval_count(count: int) -> int:
    """Images per evaluation split: a tenth of ``count``, at most 1,000 (rFID costs ~1 core-minute per 1,000)."""
    return max(1, min(1000, count // 10))


def scenes_recipe(count: int = 100_000, size: int = 32, seed: int = 0, eval_count: int | None = None) -> dict:
    """The recipe of a scenes data set (checked options; ``eval_count`` defaults to ``default_eval_count``)."""
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"scenes: --count must lie in [1, {MAX_COUNT:,}], got {count}")
    # a scene is drawn on a canvas SUPERSAMPLE x larger: --size 100000 asked for 160 GB per image
    if not 12 <= size <= MAX_SIZE:
        raise ValueError(f"scenes: --size must lie in [12, {MAX_SIZE}] pixels (3x3 grid of shapes; the canvas is "
                         f"{SUPERSAMPLE}x larger), got {size}")
    check_seed(seed, "--seed")
    eval_count = default_eval_count(count) if eval_count is None else eval_count
    if not 1 <= eval_count <= MAX_COUNT:
        raise ValueError(f"scenes: eval_count must lie in [1, {MAX_COUNT:,}], got {eval_count}")
    return {"dataset": "scenes", "version": 1, "count": count, "eval_count": eval_count, "size": size, "seed": seed}


def write_scenes(out: Path, recipe: dict) -> dict:
    """Render every split of ``recipe`` (``scenes_recipe``) into the empty folder ``out``: PNGs under
    ``images/<split>/``, ``captions.jsonl`` and ``manifest.json``; returns the manifest.
    ``textok.data.fetch.fetch_scenes`` wraps it with the fetchers' idempotence and atomic swap."""
    size = recipe["size"]
    entries = []
    for split, scenes in generate_scenes(recipe["count"], recipe["eval_count"], size, recipe["seed"]).items():
        (out / "images" / split).mkdir(parents=True)
        for i, scene in enumerate(scenes):
            rel = f"images/{split}/{i:06d}.png"
            render_scene(scene, size).save(out / rel, compress_level=1)
            captions = scene_captions(scene)
            objects = [dict(o, x=round(x, 3), y=round(y, 3), radius=round(object_radius(o, size), 3))
                       for o in scene["objects"] for x, y in [object_centre(o, size)]]
            entries.append({"file": rel, "caption": captions["full"], "split": split,
                            **{f"caption_{v}": captions[v] for v in VARIANTS},
                            "background": scene["background"], "objects": objects})
    manifest = {
        "recipe": recipe, "format": "folder", "num_images": len(entries), "min_image_size": size,
        "splits": {s: sum(e["split"] == s for e in entries) for s in SPLITS},
        "factors": {"colours": list(COLOURS), "backgrounds": list(BACKGROUNDS), "shapes": list(SHAPES),
                    "sizes": list(SIZES), "positions": list(POSITIONS), "objects": [1, MAX_OBJECTS],
                    "heldout_pairs": [list(p) for p in HELDOUT_PAIRS]},
        "caption_variants": ["full", *VARIANTS],
        "caption_bits": {k: round(v, 2) for k, v in caption_bits().items()},
        "caption": "'a {size} {colour} {shape} at {position}[, ... and ...], on a {background} background'",
        "licences": {"images": "generated by textok (no third-party content)"},
        "files": [e["file"] for e in entries],
    }
    write_json_lines(out / CAPTIONS_FILE, entries)
    write_json_atomic(out / MANIFEST_FILE, manifest)
    return manifest


__all__ = ["scenes_recipe", "write_scenes", "generate_scenes", "sample_scene", "render_scene", "scene_captions", "scene_key",
           "parse_caption", "swap_scene", "SWAP_FACTORS",
           "caption_bits", "object_centre", "object_radius", "colour_at", "COLOURS", "BACKGROUNDS", "SHAPES", "SIZES",
           "POSITIONS", "HELDOUT_PAIRS", "SPLITS", "VARIANTS"]
