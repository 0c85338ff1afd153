"""mixed_precision="auto": bf16 on a GPU that has it, fp32 on any CPU (bf16 measured slower there)."""

import logging

import pytest
import torch

from textok.training import precision as precision_mod
from textok.training.precision import resolve_mixed_precision

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU rule")


def test_explicit_modes_pass_through():
    assert resolve_mixed_precision("no") == "no"
    assert resolve_mixed_precision("bf16") == "bf16"


@pytest.mark.parametrize("amx", [True, False])
def test_auto_is_fp32_on_a_cpu_with_or_without_amx_and_says_why(amx, monkeypatch, caplog):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    precision_mod._log_cpu_auto.cache_clear()
    with caplog.at_level(logging.INFO, logger="textok.training.trainer"):
        assert resolve_mixed_precision("auto") == "no"
    assert "fp32" in caplog.text and "mixed_precision=bf16" in caplog.text


def test_auto_says_it_once_per_process(caplog):
    precision_mod._log_cpu_auto.cache_clear()
    with caplog.at_level(logging.INFO, logger="textok.training.trainer"):
        for _ in range(3):
            assert resolve_mixed_precision("auto") == "no"
    assert caplog.text.count("mixed_precision=auto") == 1


def test_cpu_name_tags_amx_and_avx2(monkeypatch, tmp_path):
    """One generic VM CPU name covers hosts with and without AMX or AVX-512; the record must tell them apart."""
    import builtins

    from textok.training import precision

    real_open = builtins.open

    def fake(flags):
        info = tmp_path / f"cpuinfo-{len(flags)}"
        info.write_text(f"processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: {flags}\n")
        return lambda path, *a, **k: real_open(info if path == "/proc/cpuinfo" else path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake("fpu avx512f amx_bf16 amx_tile amx_int8"))
    assert precision.cpu_name() == "Intel(R) Xeon(R) Processor (AMX)"
    monkeypatch.setattr(builtins, "open", fake("fpu avx2 avx512f"))
    assert precision.cpu_name() == "Intel(R) Xeon(R) Processor"
    monkeypatch.setattr(builtins, "open", fake("fpu avx2 fma"))
    assert precision.cpu_name() == "Intel(R) Xeon(R) Processor (AVX2)"
