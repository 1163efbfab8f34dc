"""Band-limited resampling by a Hann-windowed sinc: torchaudio's default ``Resample``, without torchaudio.

The rates are reduced by their greatest common divisor to ``orig`` -> ``new``. Output sample ``j`` of
every block of ``new`` is a weighted sum of the input around time ``j / new`` (in input blocks), the
weights being a sinc low-pass at ``rolloff`` times the lower Nyquist frequency, cut off after
``LOWPASS_WIDTH`` zero crossings and shaped by a Hann window. One strided convolution applies all
``new`` filters; the kernel and the output length are computed with the same roundings as
torchaudio's ``transforms.Resample(orig_freq, new_freq)`` (defaults), so the numbers are identical.
Rates whose filters would exceed ``KERNEL_LIMIT`` taps (44101 -> 44100 Hz: 7.8 GB) are first
interpolated linearly to a whole multiple of the new rate, then filtered down.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

LOWPASS_WIDTH = 6  # zero crossings of the sinc kept on each side
ROLLOFF = 0.99  # cut-off as a fraction of the lower Nyquist frequency
KERNEL_LIMIT = 1 << 23  # filter taps built at most (32 MiB); rates with a larger kernel go in two steps


def kernel_taps(orig_freq: int, new_freq: int) -> int:
    """How many filter taps :func:`resample` needs from ``orig_freq`` to ``new_freq`` in one step."""
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    return new * (2 * math.ceil(LOWPASS_WIDTH * orig / (min(orig, new) * ROLLOFF)) + orig)


@functools.lru_cache(maxsize=8)
def sinc_kernel(orig: int, new: int) -> tuple[torch.Tensor, int]:
    """(new, 1, 2 * reach + orig) float32 filters for gcd-reduced rates, and ``reach`` in input samples."""
    cutoff = min(orig, new) * ROLLOFF  # in cycles per block of ``orig`` input samples
    reach = math.ceil(LOWPASS_WIDTH * orig / cutoff)
    taps = torch.arange(-reach, reach + orig, dtype=torch.float64) / orig
    # The phase of each output sample is rounded to float32 before it meets the taps, as in
    # torchaudio's kernel; keeping that rounding is what makes the filters bit-identical.
    phases = (torch.arange(new, dtype=torch.float32) / new).to(torch.float64)
    t = ((taps[None, :] - phases[:, None]) * cutoff).clamp(-LOWPASS_WIDTH, LOWPASS_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_WIDTH / 2) ** 2
    x = t * math.pi
    sinc = torch.where(x == 0, torch.ones_like(x), x.sin() / x)
    kernel = sinc * (window * (cutoff / orig))
    return kernel.to(torch.float32)[:, None, :], reach


def resample(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """``waveform`` (..., time) from ``orig_freq`` to ``new_freq`` Hz (whole numbers), in its dtype."""
    if orig_freq == new_freq:
        return waveform
    if kernel_taps(orig_freq, new_freq) > KERNEL_LIMIT:
        # Rates that share almost no divisor (44101 -> 44100 Hz) would need gigabytes of filters: the
        # clip is first interpolated linearly up to a whole multiple of the new rate, then filtered down.
        step = new_freq * math.ceil(orig_freq / new_freq)
        return resample(_linear(waveform, orig_freq, step), step, new_freq)
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    kernel, reach = sinc_kernel(orig, new)
    *lead, length = waveform.shape
    flat = F.pad(waveform.reshape(-1, 1, length), (reach, reach + orig))
    out = F.conv1d(flat, kernel.to(waveform.device, waveform.dtype), stride=orig)  # (N, new, blocks)
    out = out.transpose(1, 2).reshape(*lead, -1)
    # torchaudio rounds the exact length to float32 before taking the ceiling; so do we.
    return out[..., : math.ceil(np.float32(new * length / orig))]


def _linear(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """``waveform`` (..., time) sampled at ``new_freq`` by linear interpolation (sample ``j`` at input
    time ``j * orig_freq / new_freq``; the last input sample is held past the end)."""
    length = waveform.shape[-1]
    count = max(1, math.ceil(length * new_freq / orig_freq))
    where = torch.arange(count, dtype=torch.float64, device=waveform.device) * (orig_freq / new_freq)
    left = where.floor().long().clamp(max=length - 1)
    right = (left + 1).clamp(max=length - 1)
    frac = (where - left).clamp(0, 1).to(waveform.dtype)
    return waveform[..., left] * (1 - frac) + waveform[..., right] * frac
