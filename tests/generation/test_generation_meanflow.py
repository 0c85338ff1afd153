"""MeanFlow through the DiT task, the pipeline and the CLI (tiny models, a few steps)."""

import numpy as np
import pytest
import torch

from textok.cli import build_parser, main
from textok.config import ConfigError
from textok.diffusion import SAMPLERS, MeanFlow
from textok.generation import Pipeline, sample_fid
from textok.latents import encode_dataset
from textok.training.dit_task import DiTTask, build_dit_config, train_dit


def meanflow_config(cache, steps, **extra):
    data = {
        "model": {"preset": "dit-tiny", "num_tokens": 8, "token_dim": 8, "num_classes": 3, "class_dropout": 0.25,
                  "learn_sigma": False, "time_inputs": 2},
        "diffusion": {"objective": "meanflow", "learned_variance": False, "meanflow": {"cfg_scale": 2.0}},
        "data": {"cache": str(cache), "max_items": 4},
        "optim": {"batch_size": 4, "lr": 2e-3},
        "schedule": {"max_steps": steps},
        "ema": {"decay": 0.9},
        "checkpoint": {"every": 1000},
        "preview": {"steps": 1, "cfg_scale": 1.0},
        "logging": {"num_preview": 0, "progress": False, "tensorboard": False},
        "mixed_precision": "no",
    }
    return build_dit_config(data, [f"{k}={v}" for k, v in extra.items()])


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_dataset, make_tokenizer):
    """A class-conditional MeanFlow DiT (guidance trained in) trained for a few steps."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("meanflow")
    cache = encode_dataset(make_tokenizer(base / "tok"), make_dataset(base / "data"), base / "cache", progress=False)
    cfg = meanflow_config(cache, 6)
    return {"base": base, "cache": cache, "config": cfg, "result": train_dit(cfg, base / "run")}


def test_meanflow_task_trains_and_saves_its_objective(run):
    assert run["result"].step == 6 and run["result"].nonfinite_total == 0
    pipe = Pipeline.from_pretrained(run["result"].model_dir)
    assert isinstance(pipe.diffusion, MeanFlow)
    assert pipe.dit.config.time_inputs == 2
    d = pipe.config.diffusion
    assert (d.default_sampler, d.default_steps(d.default_sampler)) == ("meanflow", 1)
    assert (d.cfg_scale, d.meanflow.cfg_scale) == (1.0, 2.0)  # guidance trained in, none added at sampling


def test_meanflow_task_step_mixes_the_unconditional_velocity(run):
    """One task step with trained guidance: a finite loss whose gradient reaches the DiT."""
    task = DiTTask(run["config"])
    task.setup("cpu")
    model = task.build_model().train()
    batch = task.collate([task.cache[i] for i in range(4)])
    res = task.generator_loss(model, batch, 0, torch.Generator().manual_seed(0))
    res.loss.backward()
    assert torch.isfinite(res.loss) and "mse" in res.logs
    assert model.interval_embed.mlp[0].weight.grad is not None


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_pipeline_samples_in_1_2_4_steps(run, steps):
    pipe = Pipeline.from_pretrained(run["result"].model_dir)
    images, tokens = pipe(labels=[0, 2], steps=steps, seed=3, return_tokens=True)
    assert images.shape == (2, 3, 32, 32) and tokens.shape == (2, 8, 8) and torch.isfinite(tokens).all()
    assert torch.equal(tokens, pipe(labels=[0, 2], steps=steps, seed=3, return_tokens=True)[1])


def test_cli_parses_and_runs_the_meanflow_sampler(run, tmp_path, capsys):
    parser = build_parser()
    for command in (["sample", "--checkpoint", "m", "--class", "0", "--out", "g.png"],
                    ["sample-fid", "--checkpoint", "m", "--num", "4", "--out", "s.npz"]):
        args = parser.parse_args(command + ["--sampler", "meanflow", "--steps", "2"])
        assert (args.sampler, args.steps) == ("meanflow", 2)
        assert parser.parse_args(command).sampler is None  # default: the model's (meanflow, 1 step)
    assert list(SAMPLERS) == ["ddpm", "ddim", "euler", "heun", "meanflow"] and SAMPLERS["meanflow"].default_steps == 1

    model_dir = str(run["result"].model_dir)
    for i, extra in enumerate(([], ["--sampler", "meanflow", "--steps", "4"])):  # one output each: no --overwrite
        assert main(["sample", "--checkpoint", model_dir, "--class", "1", "--num", "2",
                     "--out", str(tmp_path / f"g{i}.png"), *extra]) == 0
        assert (tmp_path / f"g{i}.png").is_file()
    assert main(["sample", "--checkpoint", model_dir, "--class", "1", "--num", "1", "--sampler", "ddim",
                 "--out", str(tmp_path / "h.png")]) == 2
    assert "for MeanFlow" in capsys.readouterr().err
    out = sample_fid(model_dir, num=3, out=tmp_path / "s.npz", batch_size=2, steps=2, sampler="meanflow", progress=False)
    with np.load(out) as z:
        assert z["arr_0"].shape == (3, 32, 32, 3)


def test_meanflow_config_is_checked(run):
    with pytest.raises(ConfigError, match="model.time_inputs=2"):
        meanflow_config(run["cache"], 1, **{"model.time_inputs": 1})
    with pytest.raises(ConfigError, match="needs a conditional DiT with condition dropout"):
        meanflow_config(run["cache"], 1, **{"model.class_dropout": 0.0})
    cfg = meanflow_config(run["cache"], 1, **{"model.class_dropout": 0.0, "diffusion.meanflow.cfg_scale": 1.0})
    assert cfg.diffusion.meanflow.cfg_scale == 1.0
    with pytest.raises(ConfigError, match="model.time_inputs=1"):
        build_dit_config({"model": {"preset": "dit-tiny", "time_inputs": 2}})
