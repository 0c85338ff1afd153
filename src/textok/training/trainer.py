"""The one training loop, generic over a task (``textok.training.task``), on HF Accelerate.

One optimiser step (``step`` counts optimiser steps from 0):

1. for each of ``grad_accum_steps`` micro-batches: ``task.generator_loss`` under autocast,
   backward of ``loss / grad_accum_steps`` (DDP gradient sync only on the last micro-batch);
2. clip the global gradient norm; if the loss or the norm is not finite on any process the step
   is skipped (gradients dropped, counted); else the optimiser steps and EMA updates;
3. if the task has a critic: the same for ``task.critic_loss`` on the same micro-batches and the
   generator's detached outputs, with its own optimiser.

``Trainer.train_step`` reads as these steps: ``_generator_backward``, ``_generator_update``,
``_critic_step``. What the loop uses lives beside it: the data order (``sampler``), the optimiser
and the learning-rate schedule (``optim``), EMA (``ema``), precision and the machine's facts
(``precision``), signal handling (``signals``), checkpoints (``checkpoint``).

Global batch: ``optim.batch_size`` images per optimiser step over all processes and
micro-batches; each process sees its own slice, picked by ``GlobalBatchSampler`` from a seeded
permutation per epoch, so the data position is a function of the step and resume is exact.

The critic is used in both passes of a step (as a frozen judge in the generator's loss, then
trained), which DDP does not allow on one module, so it is not DDP-wrapped: its gradients are
averaged across processes by one flat all-reduce instead.

Run it on one CPU (``textok train-tokenizer ...``), or ``accelerate launch [--multi_gpu |
--num_processes N --cpu | --num_machines M ...] -m textok train-tokenizer ...``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

from ..config import from_dict, to_dict
from ..io import FolderLock, check_finite, check_state_dict, load_state_dict, save_state_dict, write_json_atomic, write_text_atomic
from ..errors import TextokError
from . import checkpoint as ckpt
from .config import RESUME_MAY_DIFFER
from .ema import EMA, ema_decay
from .optim import build_optimizer, lr_at, peak_lrs
from .precision import cpu_name, resolve_mixed_precision
from .sampler import GlobalBatchSampler, step_rng
from .signals import StopRequests
from .shared_memory import SharedMemoryGroup
from .task import Task, unwrap

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Too many non-finite steps in a row; a checkpoint was saved before stopping."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT / SIGTERM stopped training after a step; the checkpoint and ``model/`` were saved.

    A ``KeyboardInterrupt``, so code that catches ``Exception`` does not carry on as if the run
    had finished; ``signum`` gives the exit status (128 + signum), ``result`` what was saved.
    """

    def __init__(self, signum: int, result: "TrainResult"):
        self.signum, self.result = signum, result
        super().__init__(f"{signal.Signals(signum).name} at step {result.step}: saved checkpoint {result.checkpoint} "
                         f"and {result.model_dir}; continue with --resume")


def _to_device(batch: dict, device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


@dataclasses.dataclass
class TrainResult:
    step: int
    out_dir: Path
    model_dir: Path | None
    checkpoint: Path | None
    nonfinite_total: int
    seconds: float  # this call's wall seconds
    images_per_second: float
    last_logs: dict
    # wall seconds of every step up to ``step``, across resumes (the checkpoints carry the count), and whether
    # that covers all of them: False after resuming a checkpoint written before the count existed
    total_seconds: float = 0.0
    total_seconds_complete: bool = True


class Trainer:
    """``Trainer(task, config, out_dir).train()``: see the module docstring.

    ``out_dir`` receives ``checkpoints/``, ``tensorboard/``, ``previews/``, ``config.yaml`` and,
    at the end, ``model/`` (the EMA weights, loadable with ``from_pretrained``).
    ``resume=True`` continues from the latest checkpoint in ``out_dir`` (refusing one written
    with a different config); ``init_from`` starts from the weights of a model folder or a
    checkpoint folder (fine-tuning: fresh optimiser, step 0).
    """

    def __init__(self, task: Task, config: Any, out_dir: str | os.PathLike, resume: bool = False,
                 init_from: str | os.PathLike | None = None, accelerator=None):
        from accelerate import Accelerator

        self.task, self.config = task, config
        self.out_dir = Path(out_dir)
        self.ckpt_root = self.out_dir / "checkpoints"
        if accelerator is None:
            kwargs = dict(mixed_precision=resolve_mixed_precision(config.mixed_precision), cpu=not torch.cuda.is_available())
            try:
                accelerator = Accelerator(**kwargs)
            except ValueError as e:
                # Accelerate keeps one global state per process; a second run in the same Python
                # process (a notebook, the demo, tests) with another precision must reset it.
                from accelerate.state import AcceleratorState, PartialState

                if "already been initialized" not in str(e) or PartialState().num_processes > 1:
                    raise
                AcceleratorState._reset_state()
                accelerator = Accelerator(**kwargs)
        self.acc = accelerator
        self.device = accelerator.device
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.is_main = accelerator.is_main_process
        self.config_dict = to_dict(config)

        # models: identical initialisation on every process
        torch.manual_seed(config.seed)
        model = task.build_model()
        self.critic = task.build_critic()
        if init_from is not None:
            self._init_weights(model, Path(init_from))
        task.setup(self.device)
        self.ema = EMA(model)
        self.ema.model.to(self.device)
        o = config.optim
        # grad_sync=shared_memory: no DDP wrapper; train_step averages the gradients in one exchange
        if config.grad_sync == "shared_memory" and self.world > 1 and self.device.type != "cpu":
            raise TextokError(f"grad_sync=shared_memory averages CPU processes' gradients; this run trains on "
                              f"{self.device}: use grad_sync=ddp")
        self.sync = SharedMemoryGroup() if config.grad_sync == "shared_memory" and self.world > 1 else None
        self.opt = build_optimizer(model, o, gather=self.sync.all_gather if self.sync else None)
        self._peak_lrs = peak_lrs(self.opt)  # per group: Muon's groups may have their own peak (optim.muon_lr)
        if self.sync is not None:
            self.model = model.to(self.device)
            self._broadcast(self.model)  # as DDP does: every process starts from rank 0's weights
        else:
            self.model = accelerator.prepare_model(model)
        if config.compile:  # after DDP wrapping, as torch recommends; unwrap() reaches the module inside
            self.model = torch.compile(self.model)
        self.critic_params: list[nn.Parameter] = []
        self.critic_opt = None
        if self.critic is not None:
            self.critic.to(self.device)
            self.critic_params = [p for p in self.critic.parameters() if p.requires_grad]
            self._broadcast(self.critic)
            self.critic_opt = torch.optim.AdamW(
                self.critic_params, lr=o.critic_lr or o.lr, betas=tuple(o.critic_betas or o.betas), eps=o.eps,
                weight_decay=o.weight_decay)

        self.step = 0
        self.skipped_samples = 0  # bad samples left out of this run's batches (all processes, across resumes)
        self._skipped_here = 0  # ... of this process since the last sum
        self.nonfinite_total = 0
        self.nonfinite_in_a_row = 0
        self.ema_updates = 0
        # training wall seconds of the steps before this process (a resumed run's earlier processes): the
        # record of a run stopped and resumed would otherwise count only its last part
        self.seconds_before = 0.0
        self.seconds_complete = True
        self._segment_start: float | None = None  # perf_counter() when this process's training loop began
        self.resumed_from: Path | None = None
        self.sampler = None  # the data order (GlobalBatchSampler or a shard stream's), made by _loader
        self._stream_state: dict | None = None  # a resumed shard stream's saved position
        self._stop = StopRequests()
        # One process owns the run folder until train() ends: two runs into one --out would
        # overwrite each other's checkpoints and config.yaml.
        self._lock = FolderLock(self.out_dir) if self.is_main else None
        try:
            if resume:
                self._resume()
            elif ckpt.latest_checkpoint(self.ckpt_root) is not None:
                raise ValueError(f"{self.out_dir} already holds checkpoints; pass --resume to continue that run "
                                 f"or choose another --out")
        except BaseException:
            self.release()
            raise

    def _resume(self) -> None:
        """Load the newest intact checkpoint; a corrupt newer one is named and passed over."""
        found = ckpt.list_checkpoints(self.ckpt_root)
        if not found:  # a typo in --out must not silently start a new run
            raise TextokError(f"--resume: no checkpoint in {self.ckpt_root}; check --out, or drop --resume to start "
                              f"a new run")
        problems = []
        for candidate in reversed(found):
            try:
                self.load_checkpoint(candidate)
            except ckpt.CorruptCheckpointError as e:
                problems.append(str(e))
                log.warning("%s; trying the previous checkpoint", e)
                continue
            if problems:
                log.warning("resumed from %s: the %d newer checkpoint(s) are corrupt", candidate, len(problems))
            return
        raise ckpt.CorruptCheckpointError(f"--resume: no intact checkpoint in {self.ckpt_root} ({'; '.join(problems)})")

    def release(self) -> None:
        """Give up the run folder's lock (``train()`` does this when it ends)."""
        if self._lock is not None:
            self._lock.release()

    # ---- helpers ------------------------------------------------------------------------
    def _init_weights(self, model: nn.Module, path: Path) -> None:
        folder = path / "model" if (path / "model" / "model.safetensors").is_file() else path
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"--init-from {path}: no model.safetensors (give a model folder, a run folder or a checkpoint)")
        state = load_state_dict(weights)
        check_state_dict(model, state, str(folder))
        check_finite(state, str(weights))
        model.load_state_dict(state)
        log.info("initialised the model from %s", weights)

    def _broadcast(self, module: nn.Module) -> None:
        if self.world > 1:
            for t in list(module.parameters()) + list(module.buffers()):
                torch.distributed.broadcast(t.data, src=0)

    def _allreduce_mean(self, tensors: list[torch.Tensor]) -> None:
        """Average tensors over processes with one flat all-reduce (through shared memory with
        grad_sync=shared_memory)."""
        if self.world == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1).float() for t in tensors])
        if self.sync is not None:
            self.sync.all_reduce_mean_(flat)
        else:
            torch.distributed.all_reduce(flat)
            flat /= self.world
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t).to(t.dtype))
            offset += t.numel()

    def _any_process(self, *flags: bool) -> bool | tuple[bool, ...]:
        """Whether any process raised each flag (one all-reduce for all of them); one flag -> one bool."""
        if self.world > 1:
            t = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.device)
            torch.distributed.all_reduce(t)
            flags = tuple(bool(v > 0) for v in t.tolist())
        return flags[0] if len(flags) == 1 else tuple(flags)

    def _sync_gradients(self, *flags: bool) -> tuple[bool, ...]:
        """grad_sync=shared_memory: average the generator's gradients over processes (a parameter without one
        counts as zeros, as in DDP) and OR ``flags``, in one shared-memory exchange."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        raised = torch.tensor([float(f) for f in flags], device=self.device)
        self._allreduce_mean([p.grad for p in params] + [raised])
        return tuple(bool(v > 0) for v in raised.tolist())

    def _set_lr(self, step: int) -> float:
        lr = lr_at(step, self.config.optim.lr, self.config.schedule)
        for g, peak in zip(self.opt.param_groups, self._peak_lrs):
            g["lr"] = lr_at(step, peak, self.config.schedule)
        if self.critic_opt is not None:
            clr = lr_at(step, self.config.optim.critic_lr or self.config.optim.lr, self.config.schedule)
            for g in self.critic_opt.param_groups:
                g["lr"] = clr
        return lr

    def _clip(self, params) -> torch.Tensor:
        params = [p for p in params if p.grad is not None]
        if not params:
            return torch.zeros((), device=self.device)
        max_norm = self.config.optim.grad_clip if self.config.optim.grad_clip > 0 else float("inf")
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    # ---- one optimiser step ---------------------------------------------------------------
    def train_step(self, micro_batches: list[dict]) -> dict[str, float]:
        """Run one optimiser step on this process's micro-batches; returns averaged logs."""
        logs: dict[str, float] = {}
        self._set_lr(self.step)
        auxes, bad, used = self._generator_backward(micro_batches, logs)
        if self.sync is not None:  # the gradients and the flags in one exchange
            anywhere_used, bad = self._sync_gradients(used > 0, bad)
        else:
            anywhere_used, bad = self._any_process(used > 0, bad)  # one collective a step: small, but synchronises
        if not anywhere_used:  # no usable sample anywhere: nothing to learn from this step
            self.opt.zero_grad(set_to_none=True)
            logs.setdefault("loss", float("nan"))
        else:
            logs.setdefault("loss", 0.0)  # this process had only bad micro-batches; others had samples
            bad = self._generator_update(bad, logs)
            if self.critic is not None and not bad:
                bad = self._critic_step(micro_batches, auxes, logs)
            self._count_nonfinite(bad)
        logs["lr"] = self.opt.param_groups[0]["lr"]
        if "grad_norm" in logs:  # a step that updated (or tried to)
            logs["nonfinite_total"] = float(self.nonfinite_total)
        self.step += 1
        return logs

    def _generator_backward(self, micro_batches: list[dict], logs: dict) -> tuple[list, bool, int]:
        """Forward and backward of the generator's loss over the micro-batches (gradients accumulate; DDP
        syncs on the last). Returns each micro-batch's ``aux`` for the critic (None for an all-bad one),
        whether a loss was not finite, and how many micro-batches had samples."""
        cfg, step, A = self.config, self.step, len(micro_batches)
        self.model.train()
        for p in self.critic_params:  # the critic judges the generator here; it is not trained by it
            p.requires_grad_(False)
        auxes, bad, used = [], False, 0
        for a, batch in enumerate(micro_batches):
            rng = step_rng(cfg.seed, step, self.sampler.part_index(a), self.device)
            with (self.acc.no_sync(self.model) if a < A - 1 and self.world > 1 else _null()):
                if _empty(batch):
                    # every sample of this micro-batch was bad (skipped and counted): no loss, but every
                    # parameter still takes part in a backward pass, so DDP's gradient sync stays in step
                    self.acc.backward(sum(q.sum() for q in self.model.parameters() if q.requires_grad) * 0.0)
                    auxes.append(None)
                    continue
                used += 1
                with self.acc.autocast():
                    res = self.task.generator_loss(self.model, batch, step, rng)
                self.acc.backward(res.loss / A)
            bad |= not bool(torch.isfinite(res.loss.detach()).item())
            auxes.append(res.aux)
            _accumulate(logs, res.logs, A)
            logs["loss"] = logs.get("loss", 0.0) + float(res.loss.detach()) / A
        for p in self.critic_params:
            p.requires_grad_(True)
        return auxes, bad, used

    def _generator_update(self, bad: bool, logs: dict) -> bool:
        """Clip, then step the optimiser and the EMA unless a process saw a non-finite loss (``bad``, already
        shared) or the norm is not finite (then the gradients are dropped). Returns whether the step was bad."""
        norm = self._clip(self.model.parameters())
        # the gradients are synchronised, so every process computes the same norm: no collective needed
        bad = bad or not bool(torch.isfinite(norm).item())
        logs["grad_norm"] = float(norm)
        if not bad:
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if not bad and self.step % self.config.ema.every == 0:
            self.ema.update(self.model, ema_decay(self.config.ema, self.ema_updates))
            self.ema_updates += 1
        return bad

    def _critic_step(self, micro_batches: list[dict], auxes: list, logs: dict) -> bool:
        """The critic's loss on the same micro-batches and the generator's detached outputs, its gradients
        averaged over processes, clipped and stepped. Returns whether the step was bad."""
        A, bad = len(micro_batches), False
        self.critic.train()
        ran = False
        for a, batch in enumerate(micro_batches):
            if auxes[a] is None:  # a micro-batch of bad samples only
                continue
            with self.acc.autocast():
                res = self.task.critic_loss(self.critic, batch, auxes[a], self.step)
            if res is None:
                continue
            ran = True
            (res.loss / A).backward()
            bad |= not bool(torch.isfinite(res.loss.detach()).item())
            _accumulate(logs, res.logs, A)
            logs["critic_loss"] = logs.get("critic_loss", 0.0) + float(res.loss.detach()) / A
        if not self._any_process(ran):
            return False
        for p in self.critic_params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self._allreduce_mean([p.grad for p in self.critic_params])
        norm = self._clip(self.critic_params)
        bad = self._any_process(bad or not bool(torch.isfinite(norm).item()))
        logs["critic_grad_norm"] = float(norm)
        if not bad:
            self.critic_opt.step()
            with torch.no_grad():
                self._allreduce_mean([b for b in self.critic.buffers() if b.is_floating_point()])
        self.critic_opt.zero_grad(set_to_none=True)
        return bad

    def _count_nonfinite(self, bad: bool) -> None:
        self.nonfinite_total += bad
        self.nonfinite_in_a_row = self.nonfinite_in_a_row + 1 if bad else 0

    # ---- the loop ------------------------------------------------------------------------
    def _loader(self, dataset):
        o = self.config.optim
        if getattr(dataset, "is_stream", False):  # WebDataset shards: a deterministic stream (textok.data.stream)
            from ..data.stream import stream_loader

            data = self.config.data
            self.sampler, loader = stream_loader(
                dataset, global_batch=o.batch_size, accum=o.grad_accum_steps, world=self.world, rank=self.rank,
                seed=self.config.seed, step=self.step, num_workers=data.num_workers, collate_fn=self.task.collate,
                pin_memory=self.device.type == "cuda", saved=self._stream_state,
                reshard=getattr(data, "reshard_on_resume", False), resumed=self.resumed_from is not None)
            return loader
        group = getattr(getattr(self.config, "data", None), "group_by_length", 0)
        lengths = self.task.sample_lengths(dataset) if group and hasattr(self.task, "sample_lengths") else None
        if group and lengths is None:
            log.info("data.group_by_length=%d: this model reads no text, so batches are not grouped", group)
            group = 0
        self.sampler = GlobalBatchSampler(len(dataset), o.batch_size, o.grad_accum_steps, self.world, self.rank,
                                          self.config.seed, start_step=self.step, lengths=lengths, group=group)
        return self.task.loader(dataset, self.sampler, self.device)

    def train(self) -> TrainResult:
        """Train to ``schedule.max_steps``. SIGINT / SIGTERM stop after the current step, save the
        checkpoint and ``model/``, then raise ``TrainingInterrupted``."""
        try:
            with self._stop:
                result = self._train()
            if self._stop.signum is not None:
                raise TrainingInterrupted(self._stop.signum, result)
            return result
        finally:
            self.release()

    def _stop_requested(self) -> bool:
        return self._any_process(self._stop.signum is not None)

    def _train(self) -> TrainResult:
        cfg = self.config
        dataset = self.task.train_dataset()
        loader = iter(self._loader(dataset))
        max_steps = cfg.schedule.max_steps
        A = cfg.optim.grad_accum_steps
        writer, bar, preview = None, None, None
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out_dir / "config.yaml", yaml.safe_dump(self.config_dict, sort_keys=False))
            if cfg.logging.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step or None)
            if cfg.logging.num_preview > 0:
                preview = _to_device(self.task.preview_batch(cfg.logging.num_preview), self.device)
            if cfg.logging.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=max_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        start_step, t0 = self.step, time.perf_counter()
        self._segment_start = t0
        images_done, logs = 0, {}
        last_ckpt = None
        try:
            while self.step < max_steps and not self._stop_requested():
                micro = [_to_device(next(loader), self.device) for _ in range(A)]
                # a bad sample is dropped from its micro-batch (collate), so a short batch counts the skips
                self._skipped_here += sum(max(0, self.sampler.micro - len(b["keys"])) for b in micro if "keys" in b)
                logs = self.train_step(micro)
                images_done += cfg.optim.batch_size
                elapsed = time.perf_counter() - t0
                ips = images_done / max(elapsed, 1e-9)
                if self.nonfinite_in_a_row >= cfg.max_nonfinite_in_a_row:
                    last_ckpt = self.save_checkpoint()
                    raise NonFiniteLossError(
                        f"{self.nonfinite_in_a_row} non-finite steps in a row (at step {self.step}; "
                        f"{self.nonfinite_total} in total); stopped, checkpoint saved at {last_ckpt}. "
                        f"Lower optim.lr, enable optim.grad_clip or check the data.")
                if self.is_main:
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{logs['loss']:.4f}", img_s=f"{ips:.1f}",
                                        bad_samples=self.skipped_samples + self._skipped_here,
                                        nonfinite_steps=self.nonfinite_total)
                    at_log = self.step % cfg.logging.log_every == 0 or self.step == max_steps
                    if bar is None and at_log:  # no progress bar (a log file, a scheduler): one line per log_every
                        log.info("step %d/%d loss %.4f %.1f img/s (%.2f s/step)", self.step, max_steps, logs["loss"],
                                 ips, elapsed / max(self.step - start_step, 1))
                    if writer is not None and at_log:
                        for k, v in logs.items():
                            writer.add_scalar(f"train/{k}", v, self.step)
                        writer.add_scalar("train/images_per_second", ips, self.step)
                    if preview is not None and cfg.logging.preview_every and self.step % cfg.logging.preview_every == 0:
                        self.write_preview(preview, writer)
                if self.step % cfg.checkpoint.every == 0 and self.step < max_steps:
                    last_ckpt = self.save_checkpoint()
            if last_ckpt is None or ckpt.read_trainer_state(last_ckpt)["step"] != self.step:
                last_ckpt = self.save_checkpoint()
            model_dir = None
            if self.is_main:
                model_dir = self.out_dir / "model"
                self.task.save_model(self.ema.model, model_dir)
                if preview is not None:
                    self.write_preview(preview, writer)
            self.acc.wait_for_everyone()
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        seconds = time.perf_counter() - t0
        self.seconds_before, self._segment_start = self.seconds_before + seconds, None  # a later train() goes on counting
        self._sum_skipped()
        done = (self.step - start_step) * cfg.optim.batch_size
        result = TrainResult(self.step, self.out_dir, model_dir, last_ckpt, self.nonfinite_total, seconds,
                             done / max(seconds, 1e-9), logs, self.seconds_before, self.seconds_complete)
        if self.is_main:
            write_json_atomic(self.out_dir / "train_summary.json", {
                "step": self.step, "seconds": round(seconds, 2), "images_per_second": round(result.images_per_second, 3),
                "total_seconds": round(result.total_seconds, 2), "total_seconds_complete": result.total_seconds_complete,
                "nonfinite_total": self.nonfinite_total, "skipped_samples": self.skipped_samples,
                "processes": self.world,
                # JSON has no NaN: a non-finite log value is written as null
                "last_logs": {k: round(v, 6) if math.isfinite(v) else None for k, v in logs.items()},
                "interrupted": signal.Signals(self._stop.signum).name if self._stop.signum else None})
        return result

    @torch.no_grad()
    def write_preview(self, batch: dict, writer=None) -> Path:
        from ..data.transforms import make_grid, to_pil
        from ..io import atomic_path

        images, nrow = self.task.preview(self.ema.model, batch)
        grid = make_grid(images, nrow=nrow)
        path = self.out_dir / "previews" / f"step_{self.step:08d}.png"
        with atomic_path(path) as tmp:
            to_pil(grid).save(tmp, format="PNG")
        if writer is not None:
            writer.add_image("preview/ema", (grid.clamp(-1, 1) + 1) / 2, self.step)
        return path

    def _sum_skipped(self) -> None:
        """Add every process's skipped samples since the last sum into ``skipped_samples`` (a
        collective: all processes call it, at a checkpoint and at the end)."""
        here = torch.tensor([float(self._skipped_here)], device=self.device)
        if self.world > 1:
            torch.distributed.all_reduce(here)
        self.skipped_samples += int(here.item())
        self._skipped_here = 0

    def total_seconds(self) -> float:
        """Training wall seconds of the steps done so far, this process's and (resumed) its predecessors'."""
        running = time.perf_counter() - self._segment_start if self._segment_start is not None else 0.0
        return self.seconds_before + running

    # ---- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_XXXXXXXX`` atomically on all processes; prune old ones."""
        final = ckpt.step_dir(self.ckpt_root, self.step)
        tmp = ckpt.temporary_dir(self.ckpt_root, self.step)
        if self.is_main:
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        self.acc.wait_for_everyone()
        ckpt.save_object(tmp / f"rng_rank{self.rank}", ckpt.rng_state())
        self._sum_skipped()
        if self.is_main:
            save_state_dict(unwrap(self.model).state_dict(), tmp / "model.safetensors")
            save_state_dict(self.ema.model.state_dict(), tmp / "ema.safetensors")
            ckpt.save_object(tmp / "optimizer", self.opt.state_dict())
            if self.critic is not None:
                save_state_dict(ckpt.trainable_state_dict(self.critic), tmp / "critic.safetensors")
                ckpt.save_object(tmp / "critic_optimizer", self.critic_opt.state_dict())
            epoch, index = self.sampler.position(self.step) if self.sampler is not None else (0, 0)
            stream = {"stream": self.sampler.state(self.step)} if hasattr(self.sampler, "state") else {}
            write_json_atomic(tmp / ckpt.STATE_NAME, {
                "format": 1, "step": self.step, "epoch": epoch, "index_in_epoch": index,
                "nonfinite_total": self.nonfinite_total, "nonfinite_in_a_row": self.nonfinite_in_a_row,
                "skipped_samples": self.skipped_samples,
                "ema_updates": self.ema_updates, "processes": self.world, "config": self.config_dict, **stream,
                "train_seconds": round(self.total_seconds(), 3), "train_seconds_complete": self.seconds_complete,
            })
        self.acc.wait_for_everyone()
        if self.is_main:
            ckpt.commit_dir(tmp, final)
            ckpt.prune_checkpoints(self.ckpt_root, self.config.checkpoint.keep_last)
        self.acc.wait_for_everyone()
        return final

    def load_checkpoint(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        files = ckpt.read_checkpoint(directory)  # all of it, before anything is loaded: a corrupt one leaves no trace
        state = files.state
        saved_config = state["config"]
        try:  # fields added to the config since the checkpoint was written take their defaults
            saved_config = to_dict(from_dict(type(self.config), saved_config, where="checkpoint config"))
        except (ValueError, TypeError):
            pass  # unknown fields: the plain comparison below names them
        step, sched = int(state["step"]), self.config.schedule
        may_differ = RESUME_MAY_DIFFER + ("schedule.max_steps",)
        saved_sched = saved_config.get("schedule", {})
        if any(saved_sched.get(k, getattr(sched, k)) != getattr(sched, k) for k in ("max_steps", "decay", "cooldown_steps")):
            try:
                old = from_dict(type(sched), saved_sched, where="checkpoint schedule")
            except (ValueError, TypeError) as e:
                raise ValueError(f"{directory}: cannot read the checkpoint's schedule: {e}") from None
            if sched.max_steps < step:
                raise ValueError(f"{directory} is at step {step}, beyond schedule.max_steps={sched.max_steps}; "
                                 f"give a larger schedule.max_steps")
            lr = self.config.optim.lr
            exact = all(lr_at(s, lr, old) == lr_at(s, lr, sched) for s in range(step))
            if (old.decay, old.cooldown_steps) != (sched.decay, sched.cooldown_steps):
                # a new decay (a wsd cool-down branched off a constant-lr trunk) only where the steps
                # already taken had exactly the learning rates the new schedule gives them
                if not exact:
                    raise ValueError(f"{directory}: schedule.decay={old.decay} -> {sched.decay} (cooldown_steps "
                                     f"{old.cooldown_steps} -> {sched.cooldown_steps}) changes the learning rate of "
                                     f"steps already taken (the checkpoint is at step {step})")
                may_differ += ("schedule.decay", "schedule.cooldown_steps")
            # A run may be extended (or cut short) by resuming with another max_steps: exactly the longer
            # run where the learning rates so far agree (constant, or wsd before the cool-down); a cosine is
            # stretched from here on, which is said.
            log.info("resuming step %d with schedule %s/%d steps (was %s/%d): %s", step, sched.decay,
                     sched.max_steps, old.decay, old.max_steps,
                     "exact, the learning rates so far are identical" if exact else "the decay is stretched from here on")
        ckpt.check_same_config(saved_config, self.config_dict, str(directory), may_differ)
        model = unwrap(self.model)
        weights = files.weights("model")
        check_state_dict(model, weights, str(directory / "model.safetensors"))
        model.load_state_dict(weights)
        self.ema.model.load_state_dict(files.weights("ema"))
        self.opt.load_state_dict(files.object("optimizer"))
        if self.critic is not None:
            ckpt.load_trainable_state_dict(self.critic, files.weights("critic"), str(directory / "critic.safetensors"))
            self.critic_opt.load_state_dict(files.object("critic_optimizer"))
        rng_stem = f"rng_rank{self.rank}"
        if rng_stem in files.skeletons:
            ckpt.set_rng_state(files.object(rng_stem))
        else:
            log.warning("%s has no RNG state for process %d (saved with %d processes); RNG reseeded",
                        directory, self.rank, state.get("processes", 1))
            torch.manual_seed(self.config.seed + self.rank + 1_000 * state["step"])
        self.step = int(state["step"])
        self.nonfinite_total = int(state["nonfinite_total"])
        self.skipped_samples = int(state.get("skipped_samples", 0))
        self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
        self.ema_updates = int(state.get("ema_updates", state["step"]))
        # checkpoints written before the count existed: the earlier steps' seconds are unknown
        self.seconds_before = float(state.get("train_seconds", 0.0))
        self.seconds_complete = bool(state.get("train_seconds_complete", "train_seconds" in state or self.step == 0))
        self._stream_state = state.get("stream")  # a shard stream's layout and position (textok.data.stream)
        self.resumed_from = directory
        log.info("resumed from %s at step %d", directory, self.step)


def _empty(batch: dict) -> bool:
    """A micro-batch whose every sample was bad (``collate`` dropped them all)."""
    return "keys" in batch and len(batch["keys"]) == 0


def _accumulate(into: dict, logs: dict, A: int) -> None:
    for k, v in logs.items():
        into[k] = into.get(k, 0.0) + float(v) / A


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


__all__ = ["Trainer", "TrainResult", "TrainingInterrupted", "GlobalBatchSampler", "EMA", "lr_at", "NonFiniteLossError", "step_rng", "resolve_mixed_precision", "cpu_name"]
