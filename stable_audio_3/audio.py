"""Audio in: samples of any common layout and type as float32 tensors at the model's rate.

``generate`` takes a pair of sample rate and samples, in either order: ``(sr, audio)`` as upstream's
``generate`` expects, or ``(audio, sr)`` as ``torchaudio.load`` returns. The samples may be a numpy
array (float, int16 scaled by 1/32767, int32 by 1/2147483647) or a torch tensor, 1-D (mono) or 2-D.
A 2-D numpy array is read as (samples, channels) and a 2-D tensor as (channels, samples), as upstream
does, except that a reading with more channels than samples is swapped (e.g. librosa's
(channels, samples) numpy arrays).

``AutoencoderModel.encode`` takes (samples,), (channels, samples), (batch, channels, samples) or a
list of clips with their rate(s) (:func:`prepare_batch`): each clip is resampled, all are zero-padded
at the end to the longest one rounded up to a multiple of the downsampling ratio, and mono is
duplicated to stereo. A 2-D array's channel axis is the shorter one.
"""

from __future__ import annotations

import math
import os
import warnings

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
    return rate, as_channels_first(samples)


def as_channels_first(samples) -> torch.Tensor:
    """Samples (numpy or torch, float or int16/int32, 1-D or 2-D) as float32 (channels, n)."""
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


def prepare_audio(
    audio, *, sample_rate: int, length: int, channels: int, device=None, name: str = "The input audio"
) -> torch.Tensor:
    """Input audio as a float32 (1, channels, length) tensor at ``sample_rate``, ready to encode.

    Resampled (:func:`resample`) when the rate differs, then cut to its
    first ``length`` samples or zero-padded at the end (no normalisation of any kind). NaN or
    infinite samples are refused; channels past ``channels`` are dropped with a warning. ``name``
    names the audio in those messages.
    """
    rate, samples = split_audio(audio)
    if not torch.isfinite(samples).all():
        raise ValueError(f"{name} contains NaN or infinite samples; clean or re-read it first.")
    if channels > 1 and samples.shape[0] > channels:
        warnings.warn(
            f"{name} has {samples.shape[0]} channels; only the first {channels} are used "
            f"(channels {channels + 1}-{samples.shape[0]} are dropped; mix them down first to keep them).",
            stacklevel=3,
        )
    samples = resample(samples.to(device), rate, sample_rate)
    fitted = samples.new_zeros(samples.shape[0], length)
    kept = min(length, samples.shape[1])
    fitted[:, :kept] = samples[:, :kept]
    return set_channels(fitted.unsqueeze(0), channels)


def _clips(audio) -> list:
    """The clips: a list as given, one clip, or the items of a (batch, channels, samples) array."""
    if isinstance(audio, (str, os.PathLike)):
        raise ValueError(
            "encode takes audio samples, not a file path; load the file first, e.g. "
            "audio, sr = torchaudio.load(path), then call encode(audio, sr)."
        )
    if isinstance(audio, (list, tuple)):
        if not audio:
            raise ValueError("The list of clips is empty; give at least one clip of audio samples.")
        return list(audio)
    ndim = getattr(audio, "ndim", None)
    if ndim is None:
        raise ValueError(f"Audio must be a numpy array or a torch tensor, got {type(audio).__name__}.")
    if ndim not in (1, 2, 3):
        raise ValueError(
            f"Audio must have shape (samples,), (channels, samples) or (batch, channels, samples); "
            f"got {ndim} dimensions {tuple(audio.shape)}."
        )
    return list(audio) if ndim == 3 else [audio]


def _clip_tensor(clip) -> torch.Tensor:
    """One clip as float32 (channels, samples), checked for size, channel count and finite values."""
    if getattr(clip, "ndim", 0) == 3 and clip.shape[0] != 1:
        raise ValueError("A clip in the list has a batch axis; give each clip as (channels, samples).")
    if getattr(clip, "ndim", None) is not None and math.prod(clip.shape) == 0:
        raise ValueError(f"The input audio is empty (shape {tuple(clip.shape)}); give at least one sample.")
    samples = as_channels_first(clip)
    if samples.shape[0] > 2:
        raise ValueError(
            f"The audio has {samples.shape[0]} channels; give mono or stereo clips, e.g. audio[:2], or a "
            "(batch, channels, samples) array for several clips."
        )
    if not torch.isfinite(samples).all():
        raise ValueError("The input audio contains NaN or infinite values; clean or re-read it first.")
    return samples


def _rates(sr, count: int) -> list[int]:
    rates = list(sr) if isinstance(sr, (list, tuple)) else [sr] * count
    if len(rates) != count or not all(_is_rate(r) and r > 0 for r in rates):
        raise ValueError(
            f"sr must be a positive whole number of Hz (or a list of {count}, one per clip), got {sr!r}."
        )
    return [int(r) for r in rates]


def prepare_batch(audio, sr, *, sample_rate: int, channels: int, multiple: int) -> torch.Tensor:
    """Clips as a float32 (B, channels, N) batch at ``sample_rate``, N a multiple of ``multiple``."""
    clips = _clips(audio)
    rates = _rates(sr, len(clips))
    resampled = []
    for clip, rate in zip(clips, rates, strict=True):
        resampled.append(resample(_clip_tensor(clip), rate, sample_rate))
    longest = max(s.shape[-1] for s in resampled)
    length = longest + (-longest % multiple)
    device = resampled[0].device
    return torch.cat(
        [set_channels(F.pad(s.to(device), (0, length - s.shape[-1]))[None], channels) for s in resampled]
    )
