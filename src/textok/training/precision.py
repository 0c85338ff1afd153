"""Which precision a run computes in (``mixed_precision``), and the machine facts that decide it on a
CPU: its name and its measured fp32 / bf16 matmul rates (also read by the benchmarks and studies)."""

from __future__ import annotations

import functools
import logging
import time

import torch

log = logging.getLogger("textok.training.trainer")  # the trainer's messages, under its name as before


def resolve_mixed_precision(mode: str) -> str:
    """``"auto"`` -> ``"bf16"`` on a GPU with bf16; on a CPU, ``"bf16"`` only where the CPU has AMX
    tiles and a bf16 matmul measures at least ``CPU_BF16_MIN_SPEEDUP`` x faster than fp32 (Sapphire
    Rapids and later: several times faster; AVX512-BF16 without AMX runs the models' steps *slower*
    than fp32, even where its large-matmul probe is faster), else ``"no"``
    (fp32). The CPU measurement runs once per process: a 256 x 256 matmul in each dtype first, and
    the 1024 x 1024 one (~0.1 s where bf16 has hardware) only if bf16 is not already far slower
    there (without any bf16 hardware, e.g. an AVX2-only CPU, bf16 runs at ~1 GFLOP/s and the large
    measurement alone would take ~9 s). The choice and its reason are logged."""
    if mode != "auto":
        return mode
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return _cpu_auto_precision(torch.get_num_threads())


CPU_BF16_MIN_SPEEDUP = 1.5  # bf16 rounds activations: only worth it when clearly faster
CPU_BF16_PROBE_FLOOR = 0.5  # bf16 below this fraction of fp32 at 256^3: emulated, no need to measure more


@functools.lru_cache(maxsize=None)
def _cpu_auto_precision(threads: int) -> str:
    n = 256
    fp32, bf16 = cpu_matmul_gflops(n, reps=2)
    if bf16 >= CPU_BF16_PROBE_FLOOR * fp32:  # could be fast: decide on the size the models' matmuls have
        n = 1024
        fp32, bf16 = cpu_matmul_gflops(n)
    try:
        amx = bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch: no way to ask
        amx = None
    # AVX512-BF16 without AMX (AMD Zen 4) wins the large probe (2.4x at 1024^3) yet runs the models' small
    # matmuls and the casts around them slower than fp32 (the scenes recipe's step 1.7x slower: docs/results/speedrun.md): bf16 on a
    # CPU needs AMX tiles too (an unknown answer is taken as none)
    choice = "bf16" if bf16 >= CPU_BF16_MIN_SPEEDUP * fp32 and amx else "no"
    log.info("mixed_precision=auto on the CPU: %s (measured %d^3 matmul at %d threads: bf16 %.0f GFLOP/s vs fp32 "
             "%.0f GFLOP/s, %.2fx; bf16 needs >= %.1fx; AMX %s)", "bf16" if choice == "bf16" else "fp32",
             n, threads, bf16, fp32, bf16 / fp32, CPU_BF16_MIN_SPEEDUP,
             {True: "present", False: "absent", None: "unknown"}[amx])
    return choice


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for benchmark and experiment records."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_matmul_gflops(n: int = 1024, reps: int = 3) -> tuple[float, float]:
    """(fp32, bf16) GFLOP/s of an ``n x n`` matmul on this CPU: best of ``reps``, interleaved so a
    neighbour's load hits both alike."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    pairs = {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}
    best = {k: float("inf") for k in pairs}
    for k, (x, y) in pairs.items():  # warm-up (oneDNN primitive creation)
        torch.mm(x, y)
    for _ in range(reps):
        for k, (x, y) in pairs.items():
            t0 = time.perf_counter()
            torch.mm(x, y)
            best[k] = min(best[k], time.perf_counter() - t0)
    return tuple(2 * n**3 / best[k] / 1e9 for k in ("fp32", "bf16"))


__all__ = ["resolve_mixed_precision", "cpu_name", "cpu_matmul_gflops", "CPU_BF16_MIN_SPEEDUP"]
