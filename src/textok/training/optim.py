"""The generator's optimiser, built from ``optim`` (``textok.training.config.OptimConfig``).

- ``optimizer="adamw"``: ``torch.optim.AdamW`` over every parameter (``implementation`` picks
  torch's foreach / fused / for-loop kernels).
- ``optimizer="muon"``: ``torch.optim.Muon`` (momentum orthogonalised by Newton-Schulz) for the
  weight matrices of the transformer blocks -- the hidden layers, as Muon's authors and
  modded-nanogpt use it -- and AdamW for everything else: embeddings, position tables, the
  input and output projections, norms and biases (``muon_scope="matrices"``: Muon for the
  input and output projections' matrices too). Muon's step is rescaled to AdamW's update RMS
  (``adjust_lr_fn="match_rms_adamw"``), so ``muon_lr`` lives on AdamW's scale.

The schedule (``textok.training.trainer.lr_at``) sets each group's learning rate from that
group's own peak, the ``lr`` it was built with (``peak_lrs``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from torch.optim._muon import _adjust_lr as _muon_lr

from ..models.modules.transformer import Block


# Polar Express's quintics (a, b, c) per Newton-Schulz iteration: p(x) = a x + b x^3 + c x^5 (arXiv:2505.16932;
# 5 iterations, safety factor 2e-2, cushion 2, as modded-nanogpt computed them)
POLAR_EXPRESS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def ns_dtype(device: torch.device) -> torch.dtype:
    """Muon's Newton-Schulz dtype: bfloat16 on a GPU (as torch does) and on a CPU with AMX tiles; float32 on
    other CPUs, where bfloat16 matmuls are slower than float32."""
    if device.type != "cpu":
        return torch.bfloat16
    try:
        return torch.bfloat16 if torch.cpu._is_amx_tile_supported() else torch.float32
    except AttributeError:
        return torch.float32


def hidden_matrices(model: nn.Module, scope: str = "blocks") -> set[int]:
    """ids of the 2-D weights of the ``nn.Linear`` layers inside transformer ``Block``s (``scope="blocks"``) or
    of every ``nn.Linear`` (``scope="matrices"``)."""
    if scope not in ("blocks", "matrices"):
        raise ValueError(f"optim.muon_scope={scope!r}: must be 'blocks' or 'matrices'")
    roots = [model] if scope == "matrices" else [m for m in model.modules() if isinstance(m, Block)]
    return {id(m.weight) for root in roots for m in root.modules() if isinstance(m, nn.Linear)}


class MultiOptimizer:
    """Several optimisers stepped as one (Muon for the matrices, AdamW for the rest): the
    ``param_groups`` of all, ``step``, ``zero_grad``, and a state dict keyed by optimiser name."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers.values() for g in opt.param_groups]

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.optimizers):
            raise ValueError(f"optimiser state holds {sorted(state)}, this run has {sorted(self.optimizers)} "
                             f"(optim.optimizer changed?)")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


class Muon(torch.optim.Muon):
    """``torch.optim.Muon`` whose Newton-Schulz iteration runs in ``ns_dtype``: torch's runs it in
    bfloat16, right on a GPU, but a CPU without AMX computes these small bfloat16 matmuls many times
    slower than float32 (the scenes recipe's step took ~20x longer on an AMD EPYC in an ad-hoc
    profile). The update is otherwise torch's: Nesterov momentum, orthogonalised, scaled by ``adjust_lr_fn``.

    ``polar_express=True`` swaps Newton-Schulz's one quintic, repeated, for the Polar Express sequence (Amsel et
    al. 2025, arXiv:2505.16932; the coefficients modded-nanogpt uses: 5 iterations, safety factor 2e-2,
    cushion 2): a different quintic per iteration, each the minimax-optimal one for the interval of singular values
    the ones before leave (from 1e-3 up), so the small singular values of a gradient reach 1 in fewer iterations.
    The sequence is greedy: its first ``ns_steps`` terms are the ``ns_steps``-iteration method (more than 5
    repeat the last).

    ``shard=True`` in a data-parallel run (``torch.distributed`` initialised, more than one process) splits
    the Newton-Schulz work between the processes, as modded-nanogpt's distributed Muon does: every process
    holds the same averaged gradients and momentum, orthogonalises its share of the matrices (balanced by
    FLOPs), and one ``all_gather`` gives every process every update. The updates are the ones each process
    would compute alone; the step's Newton-Schulz time is divided by the number of processes."""

    def __init__(self, params, ns_dtype: torch.dtype = torch.bfloat16, shard: bool = False,
                 polar_express: bool = False, gather=None, **kwargs):
        super().__init__(params, **kwargs)
        self.ns_dtype = ns_dtype
        self.shard = shard
        self.polar_express = polar_express
        self.gather = gather  # flat tensor -> every process's, in rank order (default: torch.distributed.all_gather)

    @staticmethod
    def _orthogonalise(g: torch.Tensor, group: dict, dtype: torch.dtype, polar_express: bool = False) -> torch.Tensor:
        """Newton-Schulz on a stack of same-shape wide matrices [K, A, B], A <= B, at once (one batched matmul per
        iteration instead of one per matrix: the matrices of a small model are overhead-bound)."""
        steps = group["ns_steps"]
        if polar_express:
            coefficients = [POLAR_EXPRESS[min(i, len(POLAR_EXPRESS) - 1)] for i in range(steps)]
            safety = 1 + 2e-2  # the norm a little above the spectral norm: rounding cannot push it past 1
        else:
            coefficients, safety = [group["ns_coefficients"]] * steps, 1.0
        x = g.to(dtype)
        x = x / (x.norm(dim=(1, 2), keepdim=True) * safety).clamp(min=group["eps"])  # spectral norm <= 1
        for a, b, c in coefficients:
            gram = x @ x.mT
            x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
        return x.to(g.dtype)

    def _world(self) -> tuple[int, int]:
        """(processes, this rank) that share the Newton-Schulz work: (1, 0) unless sharding applies."""
        dist = torch.distributed
        if self.shard and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return dist.get_world_size(), dist.get_rank()
        return 1, 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        world, rank = self._world()
        for group in self.param_groups:
            lr, m = group["lr"], group["momentum"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            bufs = [self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad)) for p in params]
            torch._foreach_lerp_(bufs, grads, 1 - m)
            updates = torch._foreach_lerp(grads, bufs, m) if group["nesterov"] else bufs
            owner = _assign(params, world)
            mine = [i for i in range(len(params)) if owner[i] == rank]
            ortho = dict(zip(mine, self._orthogonalise_all([updates[i] for i in mine], group)))
            if world > 1:
                ortho = _all_gather_updates(ortho, owner, params, world, rank, self.gather)
            if group["weight_decay"]:
                torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
            by_lr: dict[float, list[int]] = {}  # Muon's lr is scaled per shape: one foreach add per scale
            for i, p in enumerate(params):
                by_lr.setdefault(_muon_lr(lr, group["adjust_lr_fn"], p.shape), []).append(i)
            for scaled, idx in by_lr.items():
                torch._foreach_add_([params[i] for i in idx], [ortho[i] for i in idx], alpha=-scaled)
        return loss

    def _orthogonalise_all(self, updates: list[torch.Tensor], group: dict) -> list[torch.Tensor]:
        """Orthogonalise each [A, B] matrix, batched: a tall matrix is transposed to wide first (Newton-Schulz
        commutes with the transpose), so [256, 64] and [64, 256] share one stack."""
        by_shape: dict[tuple, list[int]] = {}
        for i, u in enumerate(updates):
            by_shape.setdefault((min(u.shape), max(u.shape), u.dtype, u.device), []).append(i)
        out: list[torch.Tensor] = [None] * len(updates)
        for idx in by_shape.values():
            wide = [updates[i].mT if updates[i].size(0) > updates[i].size(1) else updates[i] for i in idx]
            ortho = self._orthogonalise(torch.stack(wide), group, self.ns_dtype, self.polar_express)
            for i, o in zip(idx, ortho.unbind(0)):
                out[i] = o.mT if updates[i].size(0) > updates[i].size(1) else o
        return out


def _assign(params: list[torch.Tensor], world: int) -> list[int]:
    """The process that orthogonalises each matrix: the largest first, each to the least-loaded process (by
    Newton-Schulz FLOPs, ~ A * B * min(A, B)); the same on every process, since it depends on shapes only."""
    owner, load = [0] * len(params), [0] * world
    cost = [p.shape[0] * p.shape[1] * min(p.shape) for p in params]
    for i in sorted(range(len(params)), key=lambda i: (-cost[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        owner[i], load[r] = r, load[r] + cost[i]
    return owner


def _all_gather_updates(ortho: dict[int, torch.Tensor], owner: list[int], params: list, world: int, rank: int,
                        gather=None) -> dict:
    """Every process's orthogonalised matrices to every process, in one all_gather of flat buffers (each
    padded to the longest process's share); ``gather``: the all_gather to use (default torch.distributed's)."""
    sizes = [sum(params[i].numel() for i in range(len(params)) if owner[i] == r) for r in range(world)]
    like = params[0]
    flat = torch.zeros(max(sizes), dtype=like.dtype, device=like.device)
    if ortho:
        mine = torch.cat([ortho[i].reshape(-1) for i in sorted(ortho)])
        flat[: mine.numel()] = mine
    if gather is not None:
        parts = gather(flat)
    else:
        parts = [torch.empty_like(flat) for _ in range(world)]
        torch.distributed.all_gather(parts, flat)
    parts[rank] = flat
    out, offset = {}, [0] * world
    for i, p in enumerate(params):  # ascending index within each owner: the order each packed its share
        r = owner[i]
        out[i] = parts[r][offset[r] : offset[r] + p.numel()].view_as(p)
        offset[r] += p.numel()
    return out


def _adamw(params, lr: float, o) -> torch.optim.AdamW:
    kind = {"auto": {}, "foreach": {"foreach": True}, "fused": {"fused": True}, "for-loop": {"foreach": False}}
    return torch.optim.AdamW(params, lr=lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                             **kind[o.implementation])


def build_optimizer(model: nn.Module, o, lr: float | None = None, gather=None):
    """The optimiser of ``model``'s trainable parameters for config section ``o`` (``lr``: the
    peak learning rate, default ``o.lr``; ``gather``: the all_gather a sharded Muon uses, default
    torch.distributed's). Returns an ``AdamW`` or a ``MultiOptimizer``."""
    lr = o.lr if lr is None else lr
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adamw":
        opt = _adamw(params, lr, o)
    else:
        matrices = hidden_matrices(model, o.muon_scope)
        muon_params = [p for p in params if id(p) in matrices]
        rest = [p for p in params if id(p) not in matrices]
        if not muon_params:
            raise ValueError("optim.optimizer=muon: the model has no transformer blocks for Muon to optimise")
        muon_lr = o.muon_lr if o.muon_lr is not None else lr
        opt = MultiOptimizer({
            "muon": Muon(muon_params, lr=muon_lr, weight_decay=o.weight_decay, momentum=o.muon_momentum,
                         ns_steps=o.muon_ns_steps, adjust_lr_fn="match_rms_adamw",
                         ns_dtype=ns_dtype(muon_params[0].device), shard=o.muon_shard,
                         polar_express=o.muon_ns == "polar_express", gather=gather),
            "adamw": _adamw(rest, lr, o),
        })
    return opt


def lr_at(step: int, base_lr: float, schedule) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up, then cosine, constant, or
    constant + a linear cool-down over the last ``cooldown_steps`` (wsd)."""
    if schedule.warmup_steps and step < schedule.warmup_steps:
        return base_lr * (step + 1) / schedule.warmup_steps
    if schedule.decay == "constant":
        return base_lr
    if schedule.decay == "wsd":
        left = schedule.max_steps - 1 - step  # cooldown_steps - 1 at the first cool-down step .. 0 at the last
        if left >= schedule.cooldown_steps:
            return base_lr
        return base_lr * (schedule.min_lr_ratio + (1 - schedule.min_lr_ratio) * max(left, 0) / schedule.cooldown_steps)
    t = (step - schedule.warmup_steps) / max(1, schedule.max_steps - schedule.warmup_steps)
    t = min(max(t, 0.0), 1.0)
    return base_lr * (schedule.min_lr_ratio + (1 - schedule.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def peak_lrs(opt) -> list[float]:
    """The learning rate of each parameter group as built (before any schedule ran)."""
    return [g["lr"] for g in opt.param_groups]


__all__ = ["lr_at", "build_optimizer", "MultiOptimizer", "Muon", "hidden_matrices", "peak_lrs", "ns_dtype"]
