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


def test_clipping_is_a_flat_top_at_any_level_and_overs_are_flagged_as_attenuated():
    """Issue 25: samples beyond full scale are turned down by one gain in every output, so a clean
    crest over 0 dBFS is not clipping; audio held flat at its peak is, at whatever level."""
    over = quality.assess(_tone([440.0], amp=2.0), SR)
    assert set(over["flags"]) == {"attenuated"} and over["clipped_share"] == 0.0
    assert over["attenuated_db"] > 6.0 and over["flags"]["attenuated"].startswith("Attenuated 6.0 dB")
    full_scale = quality.assess(_tone([440.0], amp=1.0), SR)
    assert full_scale["flags"] == {} and full_scale["attenuated_db"] == 0.0
    for level in (1.0, 0.5):  # hard-clipped at full scale, and at half scale
        flat = quality.assess(_tone([440.0], amp=3 * level).clamp(-level, level), SR)
        assert "clipped" in flat["flags"] and flat["clipped_share"] > 0.5
    under_ceiling = quality.assess(_tone([440.0], amp=2.0), SR, ceiling_dbfs=-1.0, float_wav="protected")
    assert under_ceiling["flags"]["attenuated"].endswith("(the 32-bit float WAV is attenuated too).")
