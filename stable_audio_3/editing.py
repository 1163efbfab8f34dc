"""Input audio for audio-to-audio and inpainting: conversion, inpaint masks and local conditioning.

Audio comes as a pair of sample rate and samples, in either order: ``(sr, audio)`` as upstream's
``generate`` expects, or ``(audio, sr)`` as ``torchaudio.load`` returns. The samples may be a numpy
array (float, int16 scaled by 1/32767, int32 by 1/2147483647) or a torch tensor, 1-D (mono) or 2-D.
A 2-D numpy array is read as (samples, channels) and a 2-D tensor as (channels, samples), as upstream
does, except that a reading with more channels than samples is swapped (e.g. librosa's
(channels, samples) numpy arrays).

Inpaint masks work on the audio-sample grid, 1 = keep, 0 = generate, then go to the latent grid by
nearest-neighbour resizing (latent frame j takes sample j * downsampling_ratio). Everything at or
after ``int(max(durations) * sr)`` is always generated.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F

from .resample import resample

_INT_SCALE = {np.dtype(np.int16): 32767.0, np.dtype(np.int32): 2147483647.0}
_TORCH_INT_SCALE = {torch.int16: 32767.0, torch.int32: 2147483647.0}


def _is_rate(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def split_audio(audio) -> tuple[int, torch.Tensor]:
    """``(sample_rate, samples)`` with samples as float32 (channels, n), from either tuple order."""
    if not isinstance(audio, (tuple, list)) or len(audio) != 2:
        raise ValueError("Give input audio as a (sample_rate, samples) or (samples, sample_rate) pair.")
    first, second = audio
    if _is_rate(first) and not _is_rate(second):
        rate, samples = int(first), second
    elif _is_rate(second) and not _is_rate(first):
        rate, samples = int(second), first
    else:
        raise ValueError("Give input audio as a pair of an integer sample rate and an array of samples.")
    if rate <= 0:
        raise ValueError(f"The input audio's sample rate must be positive, got {rate}.")
    return rate, _as_channels_first(samples)


def _as_channels_first(samples) -> torch.Tensor:
    if isinstance(samples, np.ndarray):
        if samples.dtype in _INT_SCALE:
            tensor = torch.from_numpy(samples).float() / _INT_SCALE[samples.dtype]
        elif np.issubdtype(samples.dtype, np.floating):
            tensor = torch.from_numpy(np.ascontiguousarray(samples)).float()
        else:
            raise ValueError(
                f"Audio samples of dtype {samples.dtype} are not supported; use float, int16 or int32."
            )
    elif isinstance(samples, torch.Tensor):
        if samples.dtype in _TORCH_INT_SCALE:
            tensor = samples.float() / _TORCH_INT_SCALE[samples.dtype]
        elif samples.is_floating_point():
            tensor = samples.float()
        else:
            raise ValueError(
                f"Audio samples of dtype {samples.dtype} are not supported; use float, int16 or int32."
            )
    else:
        raise ValueError(
            f"Audio samples must be a numpy array or a torch tensor, got {type(samples).__name__}."
        )
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() not in (1, 2) or tensor.numel() == 0:
        raise ValueError(
            f"Audio samples must be 1-D or (channels, samples), got shape {tuple(tensor.shape)}."
        )
    if tensor.dim() == 1:
        return tensor.unsqueeze(0)
    if isinstance(samples, np.ndarray):  # upstream reads numpy as (samples, channels)
        tensor = tensor.t()
    # A reading with more channels than samples was meant the other way round.
    return tensor.t() if tensor.shape[0] > tensor.shape[1] else tensor


def set_channels(audio: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, C, n) audio with ``channels`` channels: mono duplicated, extras dropped, or mixed to mono."""
    if channels == 1:
        return audio.mean(1, keepdim=True)
    if audio.shape[1] == 1:
        return audio.repeat(1, channels, 1)
    return audio[:, :channels]


def prepare_audio(audio, *, sample_rate: int, length: int, channels: int, device=None) -> torch.Tensor:
    """Input audio as a float32 (1, channels, length) tensor at ``sample_rate``, ready to encode.

    Resampled with torchaudio's default windowed-sinc filter (:mod:`.resample`), then cut to its
    first ``length`` samples or zero-padded at the end (no normalisation of any kind).
    """
    rate, samples = split_audio(audio)
    samples = samples.to(device)
    samples = resample(samples, rate, sample_rate)
    fitted = samples.new_zeros(samples.shape[0], length)
    kept = min(length, samples.shape[1])
    fitted[:, :kept] = samples[:, :kept]
    return set_channels(fitted.unsqueeze(0), channels)


def check_init_noise_level(level) -> float:
    """``init_noise_level`` as a float in (0, 1]."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level <= 1:
        raise ValueError(f"init_noise_level must be a number above 0 and at most 1, got {level!r}.")
    return float(level)


def inpaint_regions(starts, ends, duration: float) -> list[tuple[float, float]]:
    """Validated (start, end) pairs in seconds from numbers or equal-length lists.

    Each region must satisfy ``0 <= start < end <= duration`` (the longest requested duration).
    """
    if (starts is None) != (ends is None):
        missing = "inpaint_mask_end_seconds" if ends is None else "inpaint_mask_start_seconds"
        raise ValueError(f"Inpainting needs both start and end seconds; {missing} is missing.")
    start_list, end_list = isinstance(starts, (list, tuple)), isinstance(ends, (list, tuple))
    if start_list != end_list:
        raise ValueError("Give inpaint start and end seconds both as numbers or both as lists.")
    starts, ends = (list(starts), list(ends)) if start_list else ([starts], [ends])
    if len(starts) != len(ends):
        raise ValueError(
            f"Got {len(starts)} inpaint start times but {len(ends)} end times; give one end per start."
        )
    if not starts:
        raise ValueError("Give at least one inpaint region (start and end seconds).")
    regions = []
    for start, end in zip(starts, ends, strict=True):
        for value in (start, end):
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise ValueError(f"Inpaint start and end must be numbers of seconds, got {value!r}.")
        if start >= end:
            raise ValueError(f"Inpaint region {start}-{end} s is empty; the start must come before the end.")
        if start < 0 or end > duration:
            raise ValueError(
                f"Inpaint region {start}-{end} s lies outside the audio; keep it within 0-{duration} s."
            )
        regions.append((float(start), float(end)))
    return regions


def mask_from_regions(regions, *, length: int, sample_rate: int) -> torch.Tensor:
    """(1, length) float mask: ones, zero on samples ``[int(start*sr), int(end*sr))`` of each region."""
    mask = torch.ones(1, length)
    for start, end in regions:
        mask[:, min(int(start * sample_rate), length) : min(int(end * sample_rate), length)] = 0
    return mask


def explicit_mask(mask, *, length: int, batch_size: int) -> torch.Tensor:
    """A caller's mask (n,), (1, n) or (batch_size, n), 1 = keep, as a float (1 or B, length) tensor.

    A longer mask is cut to ``length``; a shorter one is extended with zeros (generate), so sample
    positions never move (upstream would stretch it).
    """
    mask = torch.as_tensor(mask).float().cpu()
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    if mask.dim() != 2 or mask.shape[0] not in (1, batch_size):
        raise ValueError(
            f"inpaint_mask must have shape (samples,) or ({batch_size}, samples), got {tuple(mask.shape)}."
        )
    if ((mask != 0) & (mask != 1)).any():
        raise ValueError("inpaint_mask must contain only 1 (keep) and 0 (generate).")
    if mask.shape[1] >= length:
        return mask[:, :length].clone()
    return F.pad(mask, (0, length - mask.shape[1]), value=0.0)


def build_inpaint_mask(
    *,
    length: int,
    sample_rate: int,
    durations,
    batch_size: int = 1,
    starts=None,
    ends=None,
    mask=None,
) -> torch.Tensor | None:
    """The sample-grid inpaint mask (1 or B, length), or None when no region or mask is given.

    Regions come from ``starts``/``ends`` (seconds, numbers or lists) or from an explicit ``mask``,
    not both. Samples at or after ``int(max(durations) * sample_rate)`` are set to 0 (generate).
    """
    duration = max(durations)
    if mask is not None:
        if starts is not None or ends is not None:
            raise ValueError("Give either inpaint start/end seconds or an inpaint_mask, not both.")
        result = explicit_mask(mask, length=length, batch_size=batch_size)
    elif starts is None and ends is None:
        return None
    else:
        result = mask_from_regions(
            inpaint_regions(starts, ends, duration), length=length, sample_rate=sample_rate
        )
    result[:, int(duration * sample_rate) :] = 0
    return result


def latent_mask(mask: torch.Tensor, latent_length: int) -> torch.Tensor:
    """A (1 or B, n) sample-grid mask resized to (1 or B, 1, latent_length) by nearest neighbour."""
    return F.interpolate(mask.unsqueeze(1), size=latent_length, mode="nearest")


def local_conditioning(
    mask: torch.Tensor | None,
    inpaint_latents: torch.Tensor | None,
    *,
    batch_size: int,
    channels: int,
    latent_length: int,
    device=None,
    dtype=torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inpaint_mask (B, 1, L), masked_input (B, C, L))`` for the DiT's local conditioning.

    ``mask`` is a latent-grid mask from :func:`latent_mask` (None: zeros, i.e. generate everything);
    ``inpaint_latents`` are the encoded inpaint audio (None: zeros). Batch 1 is repeated to
    ``batch_size``. The DiT input is ``cat([inpaint_mask, masked_input], dim=1)``.
    """
    if mask is None:
        mask = torch.zeros(batch_size, 1, latent_length, device=device, dtype=dtype)
    mask = mask.to(device=device, dtype=dtype).expand(batch_size, -1, -1)
    if inpaint_latents is None:
        masked = torch.zeros(batch_size, channels, latent_length, device=device, dtype=dtype)
    else:
        latents = inpaint_latents.to(device=device, dtype=dtype).expand(batch_size, -1, -1)
        masked = latents * mask
    return mask.contiguous(), masked
