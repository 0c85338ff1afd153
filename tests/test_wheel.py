"""The installable wheel: `python -m build --wheel` holds the package and every shipped file, no tests or studies,
and once installed into a fresh virtual environment `textok reconstruct` runs with the shipped TexTok on a
bundled image."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from textok import CaptionedTokenizer

REPO = Path(__file__).resolve().parents[1]
SHIPPED = "textok/pretrained/emoji32-textok-n4"


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (the build writes build/ and *.egg-info beside them)."""
    if not (REPO / "src" / SHIPPED / "model.safetensors").is_file():
        pytest.skip("no shipped pair in src/textok/pretrained/")
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(REPO / "src" / "textok", src / "src" / "textok",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (setuptools) is the test environment's; nothing is downloaded
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, src], cwd=src)
    wheels = sorted(out.glob("textok-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_the_shipped_pair_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"textok", wheel.name.split("-py3")[0] + ".dist-info"}, tops  # textok-<version>.dist-info
    for arm in ("emoji32-textok-n4", "emoji32-baseline-n4"):
        for f in ("config.json", "model.safetensors", "SOURCE.json"):
            assert f"textok/pretrained/{arm}/{f}" in names
    # every file that ships (the pairs, their DiT folders with dit/ inside, the Inception features) is in the wheel
    root = REPO / "src" / "textok" / "pretrained"
    ships = {f"textok/pretrained/{p.relative_to(root).as_posix()}" for p in root.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")}
    assert sorted(ships - set(names)) == []
    assert "textok/tokenizer.py" in names and "textok/app_examples/crab.png" in names
    assert not [n for n in names if "tests/" in n or "studies/" in n or "conftest" in n]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("dist-info/METADATA"))).decode()
    assert "Requires-Dist: huggingface_hub" in metadata


@pytest.mark.slow
def test_the_installed_wheel_reconstructs_a_bundled_image(wheel, tmp_path):
    # a fresh environment whose only textok is the wheel; torch and the other dependencies are reached through a
    # .pth naming this environment's site-packages (their .pth files, this checkout's editable install among them,
    # are not read from there)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    where = json.loads(run([python, "-c", "import json, textok, pathlib; p = pathlib.Path(textok.__file__).parent; "
                                          "print(json.dumps([str(p), str(p / 'pretrained'), str(p / 'app_examples')]))"],
                           cwd=tmp_path, env=env).stdout)
    package, pretrained, examples = map(Path, where)
    assert package.is_relative_to(venv) and not package.is_relative_to(REPO)
    out = tmp_path / "rec.png"
    result = run([venv / "bin" / "textok", "reconstruct", examples / "crab.png", "--checkpoint",
                  pretrained / "emoji32-textok-n4", "--caption", "crab; animals and nature, animal marine",
                  "--out", out], cwd=tmp_path, env=env)
    assert "reconstructed 1 image(s) at 32px" in result.stdout
    from PIL import Image

    with Image.open(out) as grid:  # original above its reconstruction
        assert grid.mode == "RGB" and grid.width >= 32 and grid.height >= 64
    # the installed pair is the shipped one
    installed = CaptionedTokenizer.load_config(pretrained / "emoji32-textok-n4")
    assert installed == CaptionedTokenizer.load_config(REPO / "src" / SHIPPED)
