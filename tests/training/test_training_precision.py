"""mixed_precision="auto" on a CPU: bf16 only where a bf16 matmul measures clearly faster."""

import logging

import pytest
import torch

from textok.training import precision as trainer_mod
from textok.training.precision import resolve_mixed_precision

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU rule")


@pytest.fixture
def fake_speed(monkeypatch):
    def set(fp32, bf16):
        monkeypatch.setattr(trainer_mod, "cpu_matmul_gflops", lambda n=1024, reps=3: (fp32, bf16))
        trainer_mod._cpu_auto_precision.cache_clear()

    yield set
    trainer_mod._cpu_auto_precision.cache_clear()


def test_explicit_modes_pass_through():
    assert resolve_mixed_precision("no") == "no"
    assert resolve_mixed_precision("bf16") == "bf16"


def test_auto_follows_the_measurement_and_says_why(fake_speed, caplog, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    with caplog.at_level(logging.INFO, logger="textok.training.trainer"):
        fake_speed(170.0, 90.0)  # bf16 slower
        assert resolve_mixed_precision("auto") == "no"
        assert "fp32" in caplog.text and "0.53x" in caplog.text
        fake_speed(170.0, 1500.0)  # AMX
        assert resolve_mixed_precision("auto") == "bf16"
        fake_speed(170.0, 200.0)  # barely faster: not worth bf16's rounding
        assert resolve_mixed_precision("auto") == "no"


def test_auto_is_measured_once_per_process(fake_speed, monkeypatch):
    calls = []
    monkeypatch.setattr(trainer_mod, "cpu_matmul_gflops", lambda n=1024, reps=3: calls.append(n) or (100.0, 60.0))
    trainer_mod._cpu_auto_precision.cache_clear()
    for _ in range(3):
        assert resolve_mixed_precision("auto") == "no"
    assert calls == [256, 1024]  # the probe, then the measurement that decides; once


def test_emulated_bf16_is_decided_by_the_small_probe(monkeypatch, caplog):
    # no bf16 hardware (AVX2 only): ~1 GFLOP/s, so the 1024^3 measurement alone would take seconds
    calls = []
    monkeypatch.setattr(trainer_mod, "cpu_matmul_gflops", lambda n=1024, reps=3: calls.append(n) or (60.0, 1.0))
    trainer_mod._cpu_auto_precision.cache_clear()
    with caplog.at_level(logging.INFO, logger="textok.training.trainer"):
        assert resolve_mixed_precision("auto") == "no"
    assert calls == [256]
    assert "measured 256^3 matmul" in caplog.text and "0.02x" in caplog.text
    trainer_mod._cpu_auto_precision.cache_clear()


def test_the_real_measurement_is_positive():
    fp32, bf16 = trainer_mod.cpu_matmul_gflops(n=128, reps=1)
    assert fp32 > 0 and bf16 > 0


def test_auto_needs_amx_even_where_the_probe_favours_bf16(fake_speed, monkeypatch, caplog):
    # AVX512-BF16 without AMX (AMD Zen 4): the 1024^3 probe runs bf16 2.4x faster, yet the models' small
    # matmuls run slower in bf16 than in fp32, so auto stays fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with caplog.at_level(logging.INFO, logger="textok.training.trainer"):
        fake_speed(180.0, 440.0)
        assert resolve_mixed_precision("auto") == "no"
    assert "AMX absent" in caplog.text
