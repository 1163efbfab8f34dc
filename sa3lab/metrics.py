"""How close a reconstruction is to its reference: SNR and multi-resolution STFT distance."""

from __future__ import annotations

import math

import torch

STFT_SIZES = (512, 1024, 2048)


def _aligned(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both clips as float32 (channels, samples) on the CPU, cut to the shorter length."""
    reference = reference.detach().to("cpu", torch.float32)
    estimate = estimate.detach().to("cpu", torch.float32)
    if reference.shape[0] != estimate.shape[0]:
        raise ValueError(f"Channel counts differ: {reference.shape[0]} vs {estimate.shape[0]}.")
    length = min(reference.shape[-1], estimate.shape[-1])
    return reference[..., :length], estimate[..., :length]


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Signal-to-noise ratio in dB of ``estimate`` against ``reference`` over all channels (inf if equal)."""
    reference, estimate = _aligned(reference, estimate)
    signal = float(reference.pow(2).sum())
    noise = float((reference - estimate).pow(2).sum())
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def multi_resolution_stft_distance(
    reference: torch.Tensor, estimate: torch.Tensor, sizes: tuple[int, ...] = STFT_SIZES, eps: float = 1e-5
) -> float:
    """Mean over FFT sizes of spectral convergence plus mean absolute log-magnitude difference.

    0 means identical magnitudes; larger is further apart. Hann windows, hop of a quarter window,
    computed per channel.
    """
    reference, estimate = _aligned(reference, estimate)
    total = 0.0
    for n_fft in sizes:
        if reference.shape[-1] < n_fft:
            pad = n_fft - reference.shape[-1]
            reference = torch.nn.functional.pad(reference, (0, pad))
            estimate = torch.nn.functional.pad(estimate, (0, pad))
        window = torch.hann_window(n_fft)
        ref_mag, est_mag = (
            torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, return_complex=True).abs()
            for x in (reference, estimate)
        )
        convergence = float(torch.linalg.norm(ref_mag - est_mag) / torch.linalg.norm(ref_mag).clamp(min=eps))
        log_distance = float((torch.log(ref_mag + eps) - torch.log(est_mag + eps)).abs().mean())
        total += convergence + log_distance
    return total / len(sizes)
