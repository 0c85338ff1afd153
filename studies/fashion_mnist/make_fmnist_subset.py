"""Class-balanced subset of Fashion-MNIST for the end-to-end benchmark.

The class-tree loader lists images class by class, so "the first N images" of a split
(`fid-stats --num`, `encode-dataset --max-images`) would be one or two classes. This writes a
folder holding the first K images of every class per split (symlinks to the originals), plus the
caption pools, the manifest's class order and the text-embedding cache.

    python -m studies.fashion_mnist.make_fmnist_subset data/fashion-mnist runs/e2e_fmnist/fmnist-subset \
        --train-per-class 1000 --test-per-class 100
"""
import argparse
import json
import os
import shutil
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--train-per-class", type=int, default=1000)
    p.add_argument("--test-per-class", type=int, default=100)
    a = p.parse_args()
    src, dst = Path(a.src).resolve(), Path(a.dst)
    manifest = json.loads((src / "manifest.json").read_text())
    dst.mkdir(parents=True, exist_ok=True)
    for split, k in (("train", a.train_per_class), ("test", a.test_per_class)):
        for cls in manifest["classes"]:
            out = dst / split / cls
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted((src / split / cls).iterdir())[:k]:
                link = out / f.name
                if not link.exists():
                    os.symlink(f, link)
    keep = {key: manifest[key] for key in ("classes", "min_image_size") if key in manifest}
    keep["subset_of"] = str(src)
    (dst / "manifest.json").write_text(json.dumps(keep, indent=1))
    for name in ("class_captions.json", "class_captions_heldout.json"):
        shutil.copy(src / name, dst / name)
    if (src / "text_cache").is_dir():
        shutil.copytree(src / "text_cache", dst / "text_cache", dirs_exist_ok=True)
    print(f"{dst}: {a.train_per_class}/class train, {a.test_per_class}/class test")


if __name__ == "__main__":
    main()
