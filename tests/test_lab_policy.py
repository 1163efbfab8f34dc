"""Catalog, device/dtype policy and result sanity flags."""

import math

import pytest
import torch

from sa3lab import catalog, quality
from sa3lab.device import Machine, choose

SR = 44100


def test_catalog_covers_the_collections_with_defaults_and_gating():
    keys = set(catalog.ENTRIES)
    assert {
        "small-music",
        "small-sfx",
        "medium",
        "small-music-base",
        "small-sfx-base",
        "medium-base",
        "same-s",
        "same-l",
        "demo",
        "optimized",
    } <= keys
    assert all(catalog.get(k).gated for k in ("small-music", "small-sfx", "medium"))
    assert not any(catalog.get(k).gated for k in ("small-music-base", "same-s", "same-l", "demo"))
    assert catalog.get("medium-base").defaults["steps"] == 50 and catalog.get("medium").defaults["steps"] == 8
    assert catalog.get("small-sfx-base").sibling == "small-sfx"
    opt = catalog.get("optimized")
    assert not opt.runnable and "model.safetensors" in opt.not_runnable_reason
    assert "noise" in catalog.get("demo").description
    with pytest.raises(ValueError, match="small-music"):
        catalog.get("large")


@pytest.mark.parametrize(
    "machine, device, dit, ae",
    [
        (
            Machine(cuda=True, cuda_capability=(8, 0), cuda_name="A100"),
            "cuda",
            torch.bfloat16,
            torch.bfloat16,
        ),
        (
            Machine(cuda=True, cuda_capability=(7, 5), cuda_name="Tesla T4"),
            "cuda",
            torch.float16,
            torch.float16,
        ),
        (Machine(mps=True), "mps", torch.float16, torch.float32),
        (Machine(), "cpu", torch.float32, torch.float32),
    ],
)
def test_dtype_policy(machine, device, dit, ae):
    policy = choose(machine)
    assert (policy.device, policy.dit_dtype, policy.autoencoder_dtype) == (device, dit, ae)
    assert torch.float64 not in (policy.dit_dtype, policy.autoencoder_dtype)


def test_gpu_first_models_warn_on_cpu():
    assert choose(Machine(), gpu_first=True).warnings
    assert not choose(Machine(), gpu_first=False).warnings


def _tone(freqs, seconds=1.0, amp=0.2):
    t = torch.arange(int(SR * seconds)) / SR
    wave = sum(torch.sin(2 * math.pi * f * t) for f in freqs) * amp / len(freqs)
    return torch.stack([wave, wave])


def test_flags_fire_on_bad_signals_and_stay_quiet_on_music():
    chord = quality.assess(_tone([261.6, 329.6, 392.0]), SR, requested_s=1.0)
    assert chord["flags"] == {} and chord["produced_s"] == 1.0
    assert -30 < chord["peak_dbfs"][0] < 0
    quiet = quality.assess(_tone([440.0], amp=0.01), SR)
    assert quiet["flags"] == {}
    assert set(quality.assess(torch.zeros(2, SR), SR)["flags"]) == {"silent"}
    clipped = quality.assess((_tone([440.0], amp=3.0)).clamp(-1, 1), SR)
    assert "clipped" in clipped["flags"] and "noise_like" not in clipped["flags"]
    noise = quality.assess(torch.randn(2, SR, generator=torch.Generator().manual_seed(0)) * 0.1, SR)
    assert set(noise["flags"]) == {"noise_like"}
