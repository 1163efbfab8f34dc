"""Is a result sound? Duration, levels and flags for silent, clipped, attenuated and noise-like audio."""

from __future__ import annotations

import math

import torch

from . import defaults, peaks

SILENT_PEAK_DBFS = -60.0
CLIPPED_SHARE = 0.001  # share of samples held flat at the clip's own peak
FLAT_TOP = 0.999  # a sample this close to the peak, equal to a neighbour, is clipped
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


def clipped_share(audio: torch.Tensor) -> float:
    """Share of samples held flat at the clip's own peak: within :data:`FLAT_TOP` of it and equal to the
    sample before or after, as hard clipping leaves them at any level. A clean crest, even one beyond
    full scale, is not flat; a (nearly) silent clip has none."""
    level = audio.abs()
    peak = float(level.max()) if level.numel() else 0.0
    if _dbfs(peak) < SILENT_PEAK_DBFS or audio.shape[-1] < 2:
        return 0.0
    same = audio[..., 1:] == audio[..., :-1]
    held = torch.zeros_like(level, dtype=torch.bool)
    held[..., 1:] |= same
    held[..., :-1] |= same
    return float(((level >= FLAT_TOP * peak) & held).float().mean())


def assess(
    audio: torch.Tensor,
    sample_rate: int,
    requested_s: float | None = None,
    *,
    ceiling_dbfs: float | None = None,
    float_wav: str = defaults.FLOAT_WAV,
) -> dict:
    """Levels and flags of one (channels, samples) clip, JSON-serialisable, with plain explanations.

    With the peak record of :mod:`sa3lab.peaks` (``ceiling_dbfs``, ``attenuated_db`` of fixed-point
    outputs, ``lossy_attenuated_db`` of MP3/OGG) and its flag when the clip is over the ceiling;
    ``float_wav`` says whether the saved float WAV is attenuated too. NaN or infinite audio raises
    ValueError (it is never a result).
    """
    audio = audio.detach().to("cpu", torch.float32)
    loudest = peaks.measure(audio, ceiling_dbfs)
    peak = audio.abs().amax(dim=-1).tolist()
    rms = audio.pow(2).mean(dim=-1).sqrt().tolist()
    clipped = clipped_share(audio)
    flatness = spectral_flatness(audio)
    flags = {}
    if max(peak) <= 0 or _dbfs(max(peak)) < SILENT_PEAK_DBFS:
        flags["silent"] = f"Peak level is below {SILENT_PEAK_DBFS:.0f} dBFS: the result is (nearly) silent."
    if clipped > CLIPPED_SHARE:
        flags["clipped"] = (
            f"{clipped:.1%} of samples are held flat at the peak: the result is clipped and will distort."
        )
    if loudest.flag(float_wav):
        flags["attenuated"] = loudest.flag(float_wav)
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
        **loudest.record(),
        "flags": flags,
    }
