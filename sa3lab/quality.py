"""Is a result sound? Duration, levels and flags for silent, clipped and noise-like audio."""

from __future__ import annotations

import math

import torch

SILENT_PEAK_DBFS = -60.0
CLIPPED_SHARE = 0.001  # share of samples at |x| >= 0.999
NOISE_FLATNESS = 0.5  # mean spectral flatness above this sounds like white noise


def _dbfs(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else -math.inf


def spectral_flatness(audio: torch.Tensor, n_fft: int = 2048) -> float:
    """Mean over frames of geometric / arithmetic mean of the power spectrum (1.0 = white noise)."""
    mono = audio.float().mean(dim=0)
    if mono.numel() < n_fft:
        return 0.0
    spec = torch.stft(
        mono, n_fft, hop_length=n_fft // 2, window=torch.hann_window(n_fft), return_complex=True
    )
    power = spec.abs().pow(2)[1:] + 1e-12  # drop DC
    loud = power.mean(dim=0) > 1e-8  # ignore silent frames
    if not loud.any():
        return 0.0
    flat = torch.exp(torch.log(power).mean(dim=0)) / power.mean(dim=0)
    return float(flat[loud].mean())


def assess(audio: torch.Tensor, sample_rate: int, requested_s: float | None = None) -> dict:
    """Levels and flags of one (channels, samples) clip, JSON-serialisable, with plain explanations."""
    audio = audio.detach().to("cpu", torch.float32)
    peak = audio.abs().amax(dim=-1).tolist()
    rms = audio.pow(2).mean(dim=-1).sqrt().tolist()
    clipped = float((audio.abs() >= 0.999).float().mean())
    flatness = spectral_flatness(audio)
    flags = {}
    if max(peak) <= 0 or _dbfs(max(peak)) < SILENT_PEAK_DBFS:
        flags["silent"] = f"Peak level is below {SILENT_PEAK_DBFS:.0f} dBFS: the result is (nearly) silent."
    if clipped > CLIPPED_SHARE:
        flags["clipped"] = (
            f"{clipped:.1%} of samples are at full scale: the result is clipped and will distort."
        )
    if flatness > NOISE_FLATNESS and "silent" not in flags:
        flags["noise_like"] = (
            f"The spectrum is flat like white noise (flatness {flatness:.2f}); with real weights this "
            "usually means a broken set-up (wrong dtype, attention or weights)."
        )
    produced = audio.shape[-1] / sample_rate
    return {
        "requested_s": requested_s,
        "produced_s": produced,
        "peak_dbfs": [_dbfs(p) for p in peak],
        "rms_dbfs": [_dbfs(r) for r in rms],
        "clipped_share": clipped,
        "spectral_flatness": flatness,
        "flags": flags,
    }
