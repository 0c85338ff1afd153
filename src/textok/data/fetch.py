"""Real datasets assembled from the package registries: ``fetch(name, root)``.

- ``emoji``: npm ``emoji-datasource-google`` / ``emoji-datasource-twitter`` 16.0.0 (``npm pack``),
  the 64 px PNG of every emoji and skin tone, captioned from ``emoji.json`` (Unicode name, skin
  tone, category, subcategory). Folder format; ``split`` per entry: ``train``; ``val_unseen``
  (~10% of emoji held out with every style and skin tone: the *new-emoji* test, 0 of its 652
  images share a caption or ``base`` with ``train``); ``val`` (~10% of the other images at random:
  mostly the other style or a skin-tone sibling of a training emoji under the same caption, 640 of
  692 share a caption and 670 a ``base`` with ``train``, so it tests *recall*, not new images).
  Counts at seed 0, printed by ``textok data check data/emoji`` (docs/data.md, "Twins").
- ``fashion-mnist``: Debian ``dataset-fashion-mnist`` (``apt-get download`` + ``dpkg-deb -x``, no
  root needed), written as a class tree ``train/<class>/NNNNN.png`` and ``test/...`` (28x28
  grey) with template captions (``class_captions.json``) and held-out ones
  (``class_captions_heldout.json``).
- ``photos``: the photos bundled inside scikit-image and scikit-learn (18 images, folder format).

Downloads are cached under ``$TEXTOK_CACHE/downloads`` (default ``~/.cache/textok/downloads``)
and checked by hash (npm) or by the counts in the files (Debian). Each fetch writes
``root/manifest.json`` (recipe, counts, licences); running it again with the same recipe only
checks the files (idempotent); a changed recipe rebuilds the folder in a temporary directory
and swaps it in, so a crash never leaves a half-written dataset. A non-empty folder without a
fetch's manifest is refused, never replaced (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import importlib.util
import json
import logging
import os
import random
import shutil
import struct
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from ..assets import cache_dir
from ..config import check_seed
from ..io import (named_os_error, remove_stale_temporaries, replace_dir_atomic, temporary_prefix,
                  write_json_atomic)
from .formats import (CAPTIONS_FILE, CLASS_CAPTIONS_FILE, HELDOUT_CAPTIONS_FILE, MANIFEST_FILE, DataRootLock,
                      write_json_lines)
from .scenes import scenes_recipe, write_scenes

log = logging.getLogger(__name__)



def downloads_dir() -> Path:
    path = cache_dir() / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: `{cmd[0]}` is not installed") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what}: `{' '.join(cmd)}` failed (exit {proc.returncode}): {' | '.join(tail)}")


# --------------------------------------------------------------------------------------- emoji

EMOJI_VERSION = "16.0.0"
# npm's dist.shasum (SHA-1 of the tarball) for the pinned version.
EMOJI_PACKAGES = {
    "google": ("emoji-datasource-google", "a80ac3e8106cbd4d8648ce758aa099e8827b6157", "Apache-2.0",
               "Noto Emoji images (c) Google, Apache License 2.0"),
    "twitter": ("emoji-datasource-twitter", "e2bd39a8acb77e158106f8249dd7b4cd93fa1b14", "CC-BY-4.0",
                "Twemoji graphics (c) Twitter, Inc and other contributors, CC-BY 4.0"),
}
SKIN_TONES = {"1F3FB": "light skin tone", "1F3FC": "medium-light skin tone", "1F3FD": "medium skin tone",
              "1F3FE": "medium-dark skin tone", "1F3FF": "dark skin tone"}


def npm_tarball(package: str, version: str, sha1: str) -> Path:
    """The cached ``npm pack`` tarball of ``package@version`` (downloaded once, SHA-1 checked)."""
    dest = downloads_dir() / f"{package}-{version}.tgz"
    if dest.is_file() and _sha(dest, "sha1") == sha1:
        return dest
    if shutil.which("npm") is None:
        raise FileNotFoundError(
            f"fetching {package}@{version} needs `npm` (install Node.js, e.g. `apt-get install npm`), "
            f"or put {dest.name} (npm's tarball) into {dest.parent}"
        )
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        log.info("npm pack %s@%s", package, version)
        _run(["npm", "pack", f"{package}@{version}", "--silent"], Path(tmp), f"fetching {package}")
        got = Path(tmp) / dest.name
        if not got.is_file():
            raise RuntimeError(f"npm pack {package}@{version} did not produce {dest.name}")
        if _sha(got, "sha1") != sha1:
            raise RuntimeError(f"{package}@{version}: tarball SHA-1 {_sha(got, 'sha1')} != pinned {sha1}")
        os.replace(got, dest)
    return dest


def _emoji_name(text: str) -> str:
    return " ".join(text.lower().replace(":", ",").replace("&", "and").split())


def emoji_caption(entry: dict, tones: str | None = None) -> str:
    """``"woman judge, dark skin tone; people and body, person role"``."""
    name = _emoji_name(entry["name"])
    if tones:
        parts = list(dict.fromkeys(SKIN_TONES[t] for t in tones.split("-")))  # "1F3FB-1F3FB" -> one tone
        name += ", " + ", ".join(parts)
    category = _emoji_name(entry["category"])
    subcategory = _emoji_name(entry["subcategory"].replace("-", " "))
    return f"{name}; {category}, {subcategory}"


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


@contextlib.contextmanager
def _built_into(folder: Path, prefix: str | None = None) -> Iterator[Path]:
    """A new temporary folder beside ``folder`` to build it in (``prefix``: its name's start, default
    ``.<folder name>.``), swapped in as ``folder`` when the block ends without an error and removed in any case:
    a crash never leaves a half-written folder, and a kill's leftover (whose process is gone) is removed
    by the next build. ``folder`` is locked against readers meanwhile (``DataRootLock``: a training
    reading it refuses the rebuild). An OS error names the file in ``folder``, not in the temporary."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise named_os_error(e, folder) from None
    remove_stale_temporaries(folder.parent, prefix=prefix if prefix is not None else f".{folder.name}.")
    with DataRootLock(folder, exclusive=True):
        try:
            tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(folder, prefix), suffix=".tmp", dir=folder.parent))
        except OSError as e:  # a read-only parent: name the folder the user asked for
            raise named_os_error(e, folder, (e.filename,)) from None
        try:
            try:
                yield tmp
                replace_dir_atomic(tmp, folder)
            except OSError as e:  # a full disk: the file it hit, as it would be in ``folder``
                raise _in_folder(e, tmp, folder) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def _in_folder(error: OSError, tmp: Path, folder: Path) -> OSError:
    """``error`` naming ``folder`` (or its file) instead of the temporary ``tmp`` it was built in."""
    if error.errno is None:
        return error
    if error.filename is None:
        return OSError(error.errno, error.strerror or str(error), str(folder))
    try:
        rel = Path(error.filename).relative_to(tmp)
    except ValueError:
        return error
    return OSError(error.errno, error.strerror or str(error), str(folder / rel))


def _recipe_matches(root: Path, recipe: dict) -> bool:
    """True if ``root`` holds a complete dataset made by ``recipe`` (manifest and every file)."""
    manifest = root / MANIFEST_FILE
    if not manifest.is_file():
        return False
    try:
        m = json.loads(manifest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    if m.get("recipe") != recipe:
        return False
    files = m.get("files", [])
    return len(files) == m.get("num_images") and all((root / f).is_file() for f in files)


def _check_root(root: Path) -> None:
    """Refuse a ``root`` that holds anything but a dataset an earlier fetch made.

    A rebuild replaces the whole folder, so a folder of the user's own files (``--root .``) would
    be deleted; only a folder with a fetch's ``manifest.json`` (recipe inside) is ours to replace.
    """
    if not root.exists():
        return
    if not root.is_dir():
        raise NotADirectoryError(f"--root {root}: exists and is not a folder")
    if not any(root.iterdir()):
        return
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("recipe"), dict)
            and manifest["recipe"].get("dataset") in DATASETS):
        raise ValueError(f"--root {root}: folder is not empty and holds no {MANIFEST_FILE} of `textok data fetch`; "
                         f"refusing to replace it (give a new or empty folder)")
    DataRootLock(root, exclusive=True).release()  # in use by a training: refused now, not after the download


def fetch_emoji(root: str | os.PathLike, styles: tuple[str, ...] = ("google", "twitter"), seed: int = 0,
                val_fraction: float = 0.1, unseen_fraction: float = 0.1) -> Path:
    """Build the emoji dataset in ``root`` (see the module docstring); returns ``root``."""
    root = Path(root).expanduser()
    unknown = set(styles) - set(EMOJI_PACKAGES)
    if unknown or not styles:
        raise ValueError(f"emoji styles must be among {sorted(EMOJI_PACKAGES)}, got {list(styles)}")
    recipe = {"dataset": "emoji", "version": EMOJI_VERSION, "styles": list(styles), "seed": seed,
              "val_fraction": val_fraction, "unseen_fraction": unseen_fraction, "size": 64}
    if _recipe_matches(root, recipe):
        log.info("%s: emoji dataset already complete", root)
        return root
    _check_root(root)
    tarballs = {s: npm_tarball(EMOJI_PACKAGES[s][0], EMOJI_VERSION, EMOJI_PACKAGES[s][1]) for s in styles}
    with _built_into(root) as tmp:
        entries = _build_emoji(tmp, tarballs, recipe)
        manifest = {
            "recipe": recipe, "format": "folder", "num_images": len(entries),
            "splits": {s: sum(e["split"] == s for e in entries) for s in ("train", "val", "val_unseen")},
            "classes": sorted({e["class"] for e in entries}),
            "licences": {s: {"package": f"{EMOJI_PACKAGES[s][0]}@{EMOJI_VERSION}", "images": EMOJI_PACKAGES[s][2],
                             "attribution": EMOJI_PACKAGES[s][3], "metadata": "MIT (emoji-datasource, Cal Henderson)"}
                         for s in styles},
            "caption": "'{unicode name}[, {skin tone}]; {category}, {subcategory}', lower case",
            "files": [e["file"] for e in entries],
        }
        # Labels index the subcategory (manifest "classes"), so the class-name ablation works.
        index = {c: i for i, c in enumerate(manifest["classes"])}
        for e in entries:
            e["label"] = index[e["class"]]
        write_json_lines(tmp / CAPTIONS_FILE, entries)
        write_json_atomic(tmp / MANIFEST_FILE, manifest)
    log.info("%s: %d emoji images (%s)", root, manifest["num_images"], manifest["splits"])
    return root


def _build_emoji(out: Path, tarballs: dict[str, Path], recipe: dict) -> list[dict]:
    entries = []
    for style, tarball in tarballs.items():
        folder = f"package/img/{style}/64/"
        # One sequential pass: random access into a .tgz re-decompresses from the start each time.
        members, emoji_json = {}, None
        with tarfile.open(tarball, "r:gz") as tar:
            for m in tar:
                if m.isfile() and m.name.startswith(folder):
                    members[m.name[len(folder):]] = tar.extractfile(m).read()
                elif m.name == "package/emoji.json":
                    emoji_json = json.load(tar.extractfile(m))
        if emoji_json is None:
            raise RuntimeError(f"{tarball}: no package/emoji.json")
        expected = []
        for e in sorted(emoji_json, key=lambda e: e["sort_order"]):
            if e.get(f"has_img_{style}"):
                expected.append((e, None, e["image"]))
            for tones, v in sorted(e.get("skin_variations", {}).items()):
                if v.get(f"has_img_{style}"):
                    expected.append((e, tones, v["image"]))
        missing = [img for _, _, img in expected if img not in members]
        if missing or len(expected) != len(members):
            raise RuntimeError(f"{tarball.name}: emoji.json lists {len(expected)} {style} images, the tarball "
                               f"holds {len(members)} ({len(missing)} listed ones missing, e.g. {missing[:3]})")
        (out / "images" / style).mkdir(parents=True, exist_ok=True)
        for e, tones, img in expected:
            data = members[img]
            if _png_size(data) != (64, 64):
                raise RuntimeError(f"{tarball.name}:{folder}{img}: {_png_size(data)} is not 64x64")
            rel = f"images/{style}/{img}"
            (out / rel).write_bytes(data)
            entries.append({
                "file": rel, "caption": emoji_caption(e, tones), "split": "train",
                "class": _emoji_name(e["subcategory"].replace("-", " ")), "style": style,
                "emoji": f"{e['unified']}" + (f"-{tones}" if tones else ""), "base": e["unified"],
                "name": _emoji_name(e["name"]),
                "skin_tone": ", ".join(dict.fromkeys(SKIN_TONES[t] for t in tones.split("-"))) if tones else None,
                "category": e["category"], "subcategory": e["subcategory"],
                "licence": EMOJI_PACKAGES[style][2],
            })
    # Splits: hold out whole emoji (all styles, all skin tones), then a random share of the rest.
    rng = random.Random(recipe["seed"])
    bases = sorted({e["base"] for e in entries})
    unseen = set(rng.sample(bases, round(recipe["unseen_fraction"] * len(bases))))
    seen = [i for i, e in enumerate(entries) if e["base"] not in unseen]
    val = set(rng.sample(seen, round(recipe["val_fraction"] * len(seen))))
    for i, e in enumerate(entries):
        e["split"] = "val_unseen" if e["base"] in unseen else "val" if i in val else "train"
    return entries


# ------------------------------------------------------------------------------- fashion-mnist

FASHION_DEB = "dataset-fashion-mnist"
FASHION_CLASSES = ["t-shirt_or_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle_boot"]
FASHION_NOUNS = ["t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "ankle boot"]
FASHION_TEMPLATES = ["a photo of a {}", "a black and white photo of a {}", "a product photo of a {}",
                     "a small grey picture of a {}", "a {} on a black background", "a low-resolution photo of a {}"]
FASHION_HELDOUT_TEMPLATES = ["a catalogue image of a {}", "a greyscale picture showing a {}",
                             "a tiny photo of a single {}"]
FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000)}


def debian_package(package: str) -> Path:
    """``dpkg-deb -x`` of the cached ``apt-get download PACKAGE`` -> the extracted folder."""
    downloads = downloads_dir()
    debs = sorted(downloads.glob(f"{package}_*.deb"))
    if not debs:
        if shutil.which("apt-get") is None:
            raise FileNotFoundError(
                f"fetching {package} needs `apt-get` (Debian/Ubuntu) to download the .deb; on other systems "
                f"download {package}_*.deb from packages.debian.org into {downloads}"
            )
        log.info("apt-get download %s", package)
        try:
            _run(["apt-get", "download", package], downloads, f"fetching {package}")
        except RuntimeError as e:
            raise RuntimeError(f"{e}. If apt does not know the package, run `apt-get update` first") from None
        debs = sorted(downloads.glob(f"{package}_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {package} produced no .deb in {downloads}")
    deb = debs[-1]
    extracted = downloads / f"{deb.stem}.extracted"
    if not (extracted / ".complete").is_file():
        if shutil.which("dpkg-deb") is None:
            raise FileNotFoundError(f"extracting {deb.name} needs `dpkg-deb` (package dpkg)")
        with _built_into(extracted, prefix=".extract.") as tmp:
            _run(["dpkg-deb", "-x", str(deb), str(tmp)], downloads, f"extracting {deb.name}")
            (tmp / ".complete").write_text(_sha(deb))
    return extracted


def read_idx(path: Path):
    """An idx (MNIST) ``.gz`` file -> uint8 numpy array; the header's counts are checked."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 8 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} = {int(np.prod(shape))} bytes, file has {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def fetch_fashion_mnist(root: str | os.PathLike, limit: int | None = None) -> Path:
    """Build the Fashion-MNIST class tree in ``root``. ``limit`` writes only the first ``limit``
    images of each split (for tests); the full source counts are verified either way."""
    root = Path(root).expanduser()
    recipe = {"dataset": "fashion-mnist", "package": FASHION_DEB, "limit": limit,
              "templates": FASHION_TEMPLATES, "heldout_templates": FASHION_HELDOUT_TEMPLATES}
    if _recipe_matches(root, recipe):
        log.info("%s: fashion-mnist already complete", root)
        return root
    _check_root(root)
    source = debian_package(FASHION_DEB) / "usr/share/datasets/fashion-mnist"
    with _built_into(root) as tmp:
        files, counts = [], {}
        for split, (images_name, labels_name, expected) in FASHION_FILES.items():
            images, labels = read_idx(source / images_name), read_idx(source / labels_name)
            if images.shape != (expected, 28, 28) or labels.shape != (expected,):
                raise RuntimeError(f"{source}: {split} has images {images.shape} and labels {labels.shape}, "
                                   f"expected ({expected}, 28, 28) and ({expected},)")
            if labels.max() >= len(FASHION_CLASSES):
                raise RuntimeError(f"{source / labels_name}: label {labels.max()} out of range")
            for name in FASHION_CLASSES:
                (tmp / split / name).mkdir(parents=True)
            n = expected if limit is None else min(limit, expected)
            for i in range(n):
                rel = f"{split}/{FASHION_CLASSES[labels[i]]}/{i:05d}.png"
                Image.fromarray(images[i], mode="L").save(tmp / rel, compress_level=1)
                files.append(rel)
            counts[split] = {"written": n, "source": expected}
        pool = {c: [t.format(n) for t in FASHION_TEMPLATES] for c, n in zip(FASHION_CLASSES, FASHION_NOUNS)}
        heldout = {c: [t.format(n) for t in FASHION_HELDOUT_TEMPLATES] for c, n in zip(FASHION_CLASSES, FASHION_NOUNS)}
        write_json_atomic(tmp / CLASS_CAPTIONS_FILE, pool)
        write_json_atomic(tmp / HELDOUT_CAPTIONS_FILE, heldout)
        write_json_atomic(tmp / MANIFEST_FILE, {
            "recipe": recipe, "format": "class-tree", "classes": FASHION_CLASSES, "min_image_size": 28,
            "num_images": len(files), "splits": counts, "source": str(source),
            "licences": {"images": "MIT (Zalando Research, Fashion-MNIST)", "package": f"Debian {FASHION_DEB}"},
            "files": files,
        })
    return root


# ------------------------------------------------------------------------------------ photos

# (package, file inside its data folder, caption, licence)
PHOTOS = [
    ("skimage", "astronaut.png", "a portrait of astronaut eileen collins in an orange flight suit in front of an american flag", "public domain (NASA)"),
    ("skimage", "chelsea.png", "a ginger tabby cat with green eyes looking to the side", "CC0 (Stefan van der Walt)"),
    ("skimage", "coffee.png", "a cup of coffee with latte art on a saucer with a spoon, seen from above", "CC0 (Rachel Michetti)"),
    ("skimage", "rocket.jpg", "a rocket on a launch pad under a blue sky", "public domain (SpaceX)"),
    ("skimage", "hubble_deep_field.jpg", "the hubble deep field: many small galaxies on a black sky", "public domain (NASA)"),
    ("skimage", "retina.jpg", "a photograph of a human retina, orange with red blood vessels", "CC0 (Mikael Haggstrom)"),
    ("skimage", "ihc.png", "a microscope image of an immunohistochemistry stained tissue sample", "no known copyright restrictions"),
    ("skimage", "camera.png", "a black and white photo of a man with a camera on a tripod", "CC0 (Lav Varshney)"),
    ("skimage", "coins.png", "a black and white photo of rows of old greek coins", "no known copyright restrictions"),
    ("skimage", "horse.png", "a black silhouette of a horse on a white background", "CC0 (Andreas Preuss)"),
    ("skimage", "brick.png", "a grey brick wall texture", "CC0 (cc0textures.com)"),
    ("skimage", "grass.png", "a close-up black and white texture of grass", "CC0 (cc0textures.com)"),
    ("skimage", "gravel.png", "a black and white texture of gravel stones", "CC0 (cc0textures.com)"),
    ("skimage", "text.png", "printed text and a few letters on a white page", "public domain"),
    ("skimage", "clock_motion.png", "a black and white photo of a wall clock, blurred by motion", "public domain (Stefan van der Walt)"),
    ("skimage", "cell.png", "a microscope image of a single cell", "CC0"),
    ("sklearn", "china.jpg", "a chinese temple with a curved roof among trees under a blue sky", "CC-BY-2.0 (danielbuechele on Flickr)"),
    ("sklearn", "flower.jpg", "a pink flower with yellow stamens, close up", "CC-BY-2.0 (vultilion on Flickr)"),
]


def _data_folder(package: str) -> Path:
    module = {"skimage": "skimage.data", "sklearn": "sklearn.datasets"}[package]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        pip = {"skimage": "scikit-image", "sklearn": "scikit-learn"}[package]
        raise ImportError(f"the photos dataset needs {pip} (pip install {pip})")
    folder = Path(spec.origin).parent
    return folder / "images" if package == "sklearn" else folder


def fetch_photos(root: str | os.PathLike) -> Path:
    """Copy the bundled scikit-image / scikit-learn photos into a folder dataset at ``root``."""
    root = Path(root).expanduser()
    recipe = {"dataset": "photos", "files": [p[1] for p in PHOTOS]}
    if _recipe_matches(root, recipe):
        return root
    _check_root(root)
    with _built_into(root) as tmp:
        entries = []
        for package, name, caption, licence in PHOTOS:
            src = _data_folder(package) / name
            if not src.is_file():
                raise FileNotFoundError(f"{src}: not found in the installed {package}")
            rel = f"images/{package}-{name}"
            (tmp / "images").mkdir(exist_ok=True)
            shutil.copyfile(src, tmp / rel)
            entries.append({"file": rel, "caption": caption, "licence": licence, "source": f"{package}:{name}"})
        write_json_lines(tmp / CAPTIONS_FILE, entries)
        write_json_atomic(tmp / MANIFEST_FILE, {"recipe": recipe, "format": "folder", "num_images": len(entries),
                                                "files": [e["file"] for e in entries]})
    return root


# ------------------------------------------------------------------------------------ scenes

def fetch_scenes(root: str | os.PathLike, count: int = 100_000, size: int = 32, seed: int = 0,
                 eval_count: int | None = None) -> Path:
    """Generate the procedural scenes data set into ``root`` (``textok.data.scenes``): ``count``
    training scenes, ``eval_count`` (default a tenth, at most 1,000) in ``val`` and in
    ``val_compositional``, ``size`` px; deterministic from ``seed``, no download."""
    root = Path(root).expanduser()
    recipe = scenes_recipe(count, size, seed, eval_count)
    if _recipe_matches(root, recipe):
        return root
    _check_root(root)
    with _built_into(root) as tmp:
        write_scenes(tmp, recipe)
    return root


@dataclasses.dataclass(frozen=True)
class FetcherInfo:
    """One fetchable data set: the function that builds it, what it is, the options it takes."""

    fetch: Callable[..., Path]
    about: str
    options: tuple[str, ...] = ()  # keyword options beyond root (the CLI's --limit, --seed)


#: Every data set ``textok data fetch`` builds; the CLI reads its choices and options here, so a
#: new data set is one entry plus its fetch function.
FETCHERS: dict[str, FetcherInfo] = {
    "emoji": FetcherInfo(fetch_emoji, "Google + Twitter emoji from npm, captions from the Unicode names", ("seed",)),
    "fashion-mnist": FetcherInfo(fetch_fashion_mnist, "Fashion-MNIST from the Debian package, class captions",
                                 ("limit",)),
    "photos": FetcherInfo(fetch_photos, "the photos bundled with scikit-image / scikit-learn, written captions"),
    "scenes": FetcherInfo(fetch_scenes, "procedural scenes of coloured shapes whose captions state their factors "
                                        "(generated from a seed, no download)", ("count", "size", "seed")),
}
DATASETS = tuple(FETCHERS)


def fetch(name: str, root: str | os.PathLike, **kwargs) -> Path:
    """Fetch dataset ``name`` (one of ``FETCHERS``: ``"emoji"``, ``"fashion-mnist"``, ``"photos"``, ``"scenes"``)
    into ``root``; ``kwargs`` are the data set's options (``FetcherInfo.options``)."""
    if name not in FETCHERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {list(FETCHERS)}")
    for option in kwargs:
        if option not in FETCHERS[name].options:
            takers = [n for n, f in FETCHERS.items() if option in f.options]
            raise ValueError(f"--{option} applies to {', '.join(takers) or 'no data set'} only")
    if "seed" in kwargs:
        check_seed(kwargs["seed"], "--seed")
    if "limit" in kwargs and kwargs["limit"] is not None and kwargs["limit"] < 1:
        raise ValueError(f"--limit must be >= 1, got {kwargs['limit']}")
    root = Path(root).expanduser()
    # a killed earlier fetch's temporary folder beside the root (.<root>.textok<PID>.*.tmp) goes now
    remove_stale_temporaries(root.parent, prefix=f".{root.name}.")
    return FETCHERS[name].fetch(root, **kwargs)
