"""The CLI: every user error, OS error included, is one line naming the file or option, exit 2."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from textok.cli import main


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("textok ") and ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err and err.rstrip().endswith(errors[0]), err
    for needle in needles:
        assert str(needle) in errors[0], err
    return errors[0]


@pytest.mark.parametrize("kind", ["zero-byte", "npy", "nan-mu"])
def test_bad_npz_files_are_one_line_errors(tmp_path, capsys, kind):
    from textok.metrics.fid import load_stats

    ref = tmp_path / "ref.npz"
    if kind == "zero-byte":
        ref.write_bytes(b"")
    elif kind == "npy":
        np.save(tmp_path / "x.npy", np.zeros((2, 4, 4, 3), np.uint8))
        ref = tmp_path / "x.npy"
    else:
        np.savez(ref, mu=np.array([np.nan, 0.0]), sigma=np.eye(2))
    with pytest.raises(ValueError, match="non-finite" if kind == "nan-mu" else "npz"):
        load_stats(ref)
    # --samples is read with the same loader, before any model is loaded
    assert main(["eval-generation", "--samples", str(ref), "--ref", str(ref)]) == 2
    _one_line_error(capsys, ref)


def _tiny_tokenizer(path):
    from textok import TexTok, TexTokConfig

    TexTok(TexTokConfig.from_preset("textok-mini-32", width=32, depth=1, heads=4, num_tokens=8,
                                    max_text_tokens=16, text_in="none")).save_pretrained(path)
    return path


def test_non_utf8_caption_is_one_line_error(tmp_path, capsys):
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
    assert main(["reconstruct", "--checkpoint", str(tmp_path), "--caption", bad, "--out", str(tmp_path / "o.png"),
                 str(tmp_path / "a.png")]) == 2
    _one_line_error(capsys, "--caption", "UTF-8")
    assert main(["sample", "--checkpoint", str(tmp_path), "--prompt", bad, "--out", str(tmp_path / "o.png")]) == 2
    _one_line_error(capsys, "--prompt")


def test_full_disk_is_one_line_error_and_leaves_no_half_file(tmp_path, capsys, monkeypatch):
    from safetensors import SafetensorError

    import textok.io

    tok = _tiny_tokenizer(tmp_path / "tok")
    data = tmp_path / "data"
    from .conftest import write_image, write_jsonl

    for i in range(2):
        write_image(data / f"{i}.png", size=(32, 32), seed=i)
    write_jsonl(data / "captions.jsonl", [{"file": f"{i}.png", "caption": "x"} for i in range(2)])

    def full(*a, **k):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                              "message: \"No space left on device\" })")

    monkeypatch.setattr(textok.io, "save_file", full)
    out = tmp_path / "cache"
    assert main(["encode-dataset", "--checkpoint", str(tok), "--data", str(data), "--out", str(out)]) == 2
    _one_line_error(capsys, "shard-00000.safetensors", "No space left")
    assert not list(out.glob("*.tmp")) and not (out / "shard-00000.safetensors").exists()

    # a JSON writer on a full disk: the message names the target file, not the temporary one
    real_write_text = type(out).write_text

    def enospc(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(type(out), "write_text", enospc)
    with pytest.raises(OSError) as err:
        textok.io.write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert err.value.filename == str(tmp_path / "x.json") and not list(tmp_path.glob(".x.json*"))
    monkeypatch.setattr(type(out), "write_text", real_write_text)


def test_weights_get_the_usual_file_mode(tmp_path):
    import os

    import torch

    from textok.io import save_state_dict

    umask = os.umask(0o022)
    try:
        save_state_dict({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
    finally:
        os.umask(umask)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644


def test_broken_pipe_is_quiet(tmp_path):
    import subprocess
    import sys

    tok = _tiny_tokenizer(tmp_path / "tok")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from textok.cli import main; sys.exit(main())",
                             "info", str(tok)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away at once (`| head -0`)
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode in (0, 141)  # 0 if everything fitted in the pipe buffer before it closed


def test_non_string_split_is_a_bad_entry(tmp_path, capsys):
    from .conftest import write_image, write_jsonl

    for i in range(3):
        write_image(tmp_path / f"{i}.png", seed=i)
    write_jsonl(tmp_path / "captions.jsonl", [{"file": "0.png", "caption": "x"}, {"file": "1.png", "caption": "y"},
                                              {"file": "2.png", "caption": "z", "split": ["train"]}])
    assert main(["data", "check", str(tmp_path), "--image-size", "32"]) == 1
    out = capsys.readouterr().out
    assert "'split' must be a string" in out and "Traceback" not in out
    assert main(["data", "check", str(tmp_path), "--split", "nosuch"]) == 2
    _one_line_error(capsys, "--split nosuch", "train")


def test_overrides_after_an_option_are_overrides(tmp_path, capsys):
    import yaml

    from textok.config import to_dict

    from .conftest import tiny_config, write_image, write_jsonl

    for i in range(4):
        write_image(tmp_path / "d" / f"{i}.png", seed=i)
    write_jsonl(tmp_path / "d" / "captions.jsonl", [{"file": f"{i}.png", "caption": "x"} for i in range(4)])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(to_dict(tiny_config(tmp_path / "d", "model.text_in=none"))))
    assert main(["train-tokenizer", "--config", str(cfg), "--out", str(tmp_path / "run"), "schedule.max_steps=1",
                 "--threads", "1", "checkpoint.every=1"]) == 0
    assert "trained 1 steps" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main(["train-tokenizer", "--config", str(cfg), "--bogus"])
    assert err.value.code == 2 and "textok train-tokenizer: error: unrecognized arguments: --bogus" in capsys.readouterr().err


def test_checkpoint_folder_given_as_model_gets_a_hint(tmp_path, capsys):
    step = tmp_path / "run" / "checkpoints" / "step_00000002"
    step.mkdir(parents=True)
    (step / "trainer_state.json").write_text("{}")
    assert main(["info", str(step)]) == 2
    _one_line_error(capsys, "training checkpoint", str(tmp_path / "run" / "model"))


# ---- round two (issue 38): checkpoints and configs a careless or hostile user hands over ------------------------
@pytest.mark.parametrize("content, needle", [("[1, 2]", "got a list"), ('"textok"', "got a str"),
                                             ("x" * (2 << 20), "too large")])
def test_a_config_json_that_is_not_a_mapping_is_one_line(tmp_path, capsys, content, needle):
    tok = _tiny_tokenizer(tmp_path / "tok")
    (tok / "config.json").write_text(content)
    photo = tmp_path / "a.png"
    from .conftest import write_image

    write_image(photo, size=(32, 32))
    assert main(["info", str(tok)]) == 2
    _one_line_error(capsys, tok / "config.json", needle)
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(tmp_path / "g.png")]) == 2
    _one_line_error(capsys, "config.json", needle)
    from textok.explore import Explorer  # the page (textok app) loads the same way

    with pytest.raises(ValueError, match=needle):
        Explorer([tok])


@pytest.mark.parametrize("change, needle", [({"num_tokens": 2_000_000_000}, "num_tokens=2,000,000,000 is beyond"),
                                            ({"depth": 10**9}, "depth=1,000,000,000 is beyond"),
                                            ({"width": 1 << 20, "heads": 4}, "parameters"),
                                            ({"num_tokens": 9}, "shape mismatch")])
def test_absurd_or_mismatched_sizes_are_refused_before_allocating(tmp_path, capsys, change, needle):
    import json
    import time

    tok = _tiny_tokenizer(tmp_path / "tok")
    cfg = json.loads((tok / "config.json").read_text())
    (tok / "config.json").write_text(json.dumps({**cfg, **change}))
    t = time.perf_counter()
    assert main(["info", str(tok)]) == 2  # info too: it used to print a 1 TB model happily
    _one_line_error(capsys, needle)
    assert time.perf_counter() - t < 10


def test_a_nan_checkpoint_does_not_reconstruct_a_black_image(tmp_path, capsys):
    import torch

    from textok.io import load_state_dict, save_state_dict

    tok = _tiny_tokenizer(tmp_path / "tok")
    weights = load_state_dict(tok / "model.safetensors")
    save_state_dict({k: torch.full_like(v, float("nan")) for k, v in weights.items()}, tok / "model.safetensors")
    from .conftest import write_image

    photo = write_image(tmp_path / "a.png", size=(32, 32))
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(tmp_path / "g.png")]) == 2
    _one_line_error(capsys, "model.safetensors", "non-finite weights")
    assert not (tmp_path / "g.png").exists()


def test_init_from_refuses_nan_weights(tmp_path, make_config):
    import torch

    from textok.io import load_state_dict, save_state_dict
    from textok.training import Trainer, TokenizerTask

    from .conftest import write_image, write_jsonl

    for i in range(4):
        write_image(tmp_path / "d" / f"{i}.png", seed=i)
    write_jsonl(tmp_path / "d" / "captions.jsonl", [{"file": f"{i}.png", "caption": "x"} for i in range(4)])
    cfg = make_config(tmp_path / "d", "model.text_in=none")
    TokenizerTask(cfg).build_model().save_pretrained(tmp_path / "init")
    weights = load_state_dict(tmp_path / "init" / "model.safetensors")
    name = next(iter(weights))
    weights[name] = torch.full_like(weights[name], float("inf"))
    save_state_dict(weights, tmp_path / "init" / "model.safetensors")
    with pytest.raises(ValueError, match=f"non-finite weights .*in {name}"):
        Trainer(TokenizerTask(cfg), cfg, tmp_path / "run", init_from=tmp_path / "init")


def _billion_laughs(path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("kind", ["laughs", "huge", "not-utf8"])
def test_a_hostile_yaml_config_ends_in_one_line_quickly(tmp_path, capsys, kind):
    import time

    path = tmp_path / "c.yaml"
    if kind == "laughs":  # 1 KB standing for 10^9 strings
        _billion_laughs(path)
    elif kind == "huge":
        path.write_text("model:\n  note: " + "x" * (3 << 20) + "\n")
    else:
        path.write_bytes(b"model: {note: caf\xe9}\n")
    t = time.perf_counter()
    assert main(["train-tokenizer", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, path, {"laughs": "more than", "huge": "too large", "not-utf8": "not UTF-8"}[kind])
    assert time.perf_counter() - t < 10 and not (tmp_path / "run").exists()


# ---- round three (issue 46): devices, threads, seeds, dtypes and animated images at the edge ---------------------
@pytest.mark.parametrize("device, needle", [("cuda", "has no usable cuda device"), ("cuda:7", "cuda"),
                                            ("gpu0", "not a device name"), ("meta", "holds no values")])
def test_a_device_this_build_lacks_is_one_line(tmp_path, capsys, device, needle):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this build has CUDA")
    tok = _tiny_tokenizer(tmp_path / "tok")
    from .conftest import write_image

    photo = write_image(tmp_path / "a.png", size=(32, 32))
    for args in (["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(tmp_path / "g.png")],
                 ["fid-stats", "--data", str(tmp_path), "--out", str(tmp_path / "s.npz")],
                 ["sample", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "s.png")]):
        assert main([*args, "--device", device]) == 2
        _one_line_error(capsys, f"--device {device}", needle)
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "s.npz").exists()


@pytest.mark.parametrize("threads", ["100000", "0", "-3"])
def test_a_thread_count_beyond_the_machine_is_one_line(tmp_path, capsys, threads):
    """--threads 100000: `info` and `reconstruct` died with a segmentation fault."""
    import torch

    from textok.config import max_threads

    tok = _tiny_tokenizer(tmp_path / "tok")
    before = torch.get_num_threads()
    assert main(["info", str(tok), "--threads", threads]) == 2
    _one_line_error(capsys, f"--threads must lie in [1, {max_threads()}]", f"got {threads}")
    assert torch.get_num_threads() == before
    assert main(["info", str(tok), "--threads", "1"]) == 0  # a sane count still works


def test_a_seed_out_of_range_is_one_line_naming_it(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "none"), "--seed", "-1", "--out", str(tmp_path / "s.png")]) == 2
    _one_line_error(capsys, "--seed must be an integer in [0, 4294967295], got -1")
    assert main(["sample-fid", "--checkpoint", str(tmp_path / "none"), "--num", "2", "--seed", str(10**30),
                 "--out", str(tmp_path / "s.npz")]) == 2
    _one_line_error(capsys, "--seed must be an integer")


def test_a_weight_whose_header_gives_another_dtype_is_refused(tmp_path, capsys):
    """Same bytes, same shape, an integer dtype: it loaded and reconstructed differently, without a word."""
    import torch
    from safetensors.torch import save_file

    from textok import TexTok
    from textok.io import load_state_dict

    tok = _tiny_tokenizer(tmp_path / "tok")
    weights = load_state_dict(tok / "model.safetensors")
    name = next(k for k, v in weights.items() if v.dtype == torch.float32 and v.dim() == 2)
    weights[name] = weights[name].view(torch.int32)  # the header says I32 over the float's bytes
    save_file(weights, str(tok / "model.safetensors"), metadata={"format": "pt"})
    from .conftest import write_image

    photo = write_image(tmp_path / "a.png", size=(32, 32))
    assert main(["info", str(tok)]) == 2  # from the header, before any weight is read
    _one_line_error(capsys, "model.safetensors", "dtype mismatch", f"{name}: file int32 vs model float32")
    assert main(["reconstruct", str(photo), "--checkpoint", str(tok), "--out", str(tmp_path / "g.png")]) == 2
    _one_line_error(capsys, "dtype mismatch", name)
    with pytest.raises(ValueError, match="dtype mismatch"):
        TexTok.from_pretrained(tok)
    assert not (tmp_path / "g.png").exists()
    weights[name] = weights[name].view(torch.float32).half()  # a half-precision file is fine: float for float
    save_file(weights, str(tok / "model.safetensors"), metadata={"format": "pt"})
    assert TexTok.from_pretrained(tok).state_dict()[name].dtype == torch.float32


def test_reconstruct_says_when_an_animated_image_gives_its_first_frame(tmp_path, capsys, caplog):
    """The page said so; the CLI used frame 1 of an animated GIF silently."""
    from PIL import Image

    tok = _tiny_tokenizer(tmp_path / "tok")
    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    with caplog.at_level("WARNING"):
        assert main(["reconstruct", str(gif), "--checkpoint", str(tok), "--out", str(tmp_path / "g.png")]) == 0
    notes = [r.getMessage() for r in caplog.records if "animated" in r.getMessage()]
    assert notes == [f"{gif}: animated image: frame 1 of 3 used (the first, as in training data)"]
