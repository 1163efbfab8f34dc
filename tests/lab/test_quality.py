"""Result sanity flags (sa3lab.quality)."""

import math

import torch

from sa3lab import quality

SR = 44100


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
