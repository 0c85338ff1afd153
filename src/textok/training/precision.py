"""Which precision a run computes in (``mixed_precision``), and the CPU's name (for benchmark and study records)."""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger("textok.training.trainer")  # the trainer's messages, under its name as before


def resolve_mixed_precision(mode: str) -> str:
    """``"auto"`` -> ``"bf16"`` on a GPU with bf16, ``"no"`` (fp32) on a CPU; other modes pass through.

    On a CPU, bf16 autocast made every measured training step slower, with or without AMX tiles: the
    scenes recipe (ViT width 96) 1.4-1.6x slower on an Intel Xeon with AMX tiles and 1.7x on an
    AMD EPYC with AVX512-BF16 (``benchmarks/bench_levers.py``, docs/results/speedrun.md), although both
    CPUs' 1024^3 bf16 matmul is faster than fp32: matrices this narrow are bound by the casts autocast
    adds around every op, not by the matmuls. Ask for ``mixed_precision=bf16`` explicitly to use it."""
    if mode != "auto":
        return mode
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    _log_cpu_auto()
    return "no"


@functools.lru_cache(maxsize=None)
def _log_cpu_auto() -> None:  # once per process
    log.info("mixed_precision=auto on the CPU: fp32 (bf16 autocast measured slower per step on CPUs with and "
             "without AMX; set mixed_precision=bf16 to use it anyway)")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for benchmark and experiment records.

    " (AMX)" is appended where the CPU advertises AMX tiles and " (AVX2)" where AVX2 is its widest: virtual
    machines report one generic name ("Intel(R) Xeon(R) Processor", "AMD EPYC") for hosts of different
    generations, whose step times differ.
    """
    name, flags = None, ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if name is None and line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = line.split(":", 1)[1]
                if name is not None and flags:
                    break
    except OSError:
        pass
    if name is None:
        import platform

        name = platform.processor() or platform.machine()
    flags = set(flags.split())
    if "amx_tile" in flags:
        return f"{name} (AMX)"
    return f"{name} (AVX2)" if "avx2" in flags and "avx512f" not in flags else name


__all__ = ["resolve_mixed_precision", "cpu_name"]
