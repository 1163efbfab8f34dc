"""Duration arithmetic: seconds -> audio samples -> latent frames, valid regions and output trimming.

Every generation works on one latent sequence of length ``L`` shared by the whole batch, sized from
the longest requested duration plus ``padding_sec`` of headroom:

* ``N = int((max(durations) + padding_sec) * sample_rate)``, rounded up to a multiple of the
  downsampling ratio, then to a multiple of ``latent_align`` latent frames (the autoencoder's
  attention chunk in latents: ``chunk_size // stride`` = 2 for the released models), capped at
  ``max_samples`` (the model config's ``sample_size``);
* ``L = N // downsampling_ratio``.

Each item has an *effective* length ``ceil(int(d * sr) / ds)`` latents (its own duration, used for
the schedule shift) and a *valid* length = effective + ``int(padding_sec * sr / ds)`` headroom,
clamped to ``L``; frames past the valid length are padding (excluded from attention, zeroed after
decoding). Audio is trimmed to ``int(d * sr)`` samples only when every item asks for the same ``d``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

DEFAULT_PADDING_SEC = 6.0


def batch_values(value, batch_size: int, name: str) -> list:
    """``value`` repeated to ``batch_size`` items, or the list itself if its length matches."""
    if isinstance(value, (list, tuple)):
        if len(value) != batch_size:
            raise ValueError(
                f"{name} has {len(value)} entries but batch_size is {batch_size}; "
                f"give one {name} or exactly {batch_size}."
            )
        return list(value)
    return [value] * batch_size


MAX_STEPS = 1000  # far past where more steps change anything audible; each step costs one DiT pass


def check_steps(steps) -> int:
    """``steps`` as an int in 1..MAX_STEPS."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps!r}.")
    if steps > MAX_STEPS:
        raise ValueError(
            f"steps must be at most {MAX_STEPS}, got {steps}; each step is one pass of the network "
            "(8 is the default of the post-trained models, 50-100 of the base models)."
        )
    return steps


def check_durations(durations, batch_size: int, max_seconds: float) -> list[float]:
    """One duration per item, each a number in (0, max_seconds]."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}.")
    values = batch_values(durations, batch_size, "duration")
    checked = []
    for d in values:
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d):
            raise ValueError(f"duration must be a number of seconds, got {d!r}.")
        if d <= 0:
            raise ValueError(f"duration must be more than 0 seconds, got {d}.")
        if d > max_seconds:
            raise ValueError(
                f"duration {d} s is longer than this model can generate; use at most {max_seconds:.2f} s."
            )
        checked.append(float(d))
    return checked


def audio_length(
    durations: Sequence[float],
    *,
    sample_rate: int,
    downsampling_ratio: int,
    max_samples: int,
    padding_sec: float = DEFAULT_PADDING_SEC,
    latent_align: int = 2,
) -> int:
    """Samples ``N`` to generate for a batch with these durations (see the module docstring)."""
    longest = max(durations, default=0.0)
    if longest <= 0:
        return max_samples
    n = int((longest + padding_sec) * sample_rate)
    n = -(-n // downsampling_ratio) * downsampling_ratio
    align = downsampling_ratio * latent_align
    n = -(-n // align) * align
    return min(n, max_samples)


def effective_latent_lengths(
    durations: Sequence[float], *, sample_rate: int, downsampling_ratio: int, device=None
) -> torch.Tensor:
    """(B,) float32: latent frames covering each item's own duration, ``ceil(int(d*sr)/ds)``."""
    lengths = [math.ceil(int(d * sample_rate) / downsampling_ratio) for d in durations]
    return torch.tensor(lengths, dtype=torch.float32, device=device)


def headroom_latents(padding_sec: float, *, sample_rate: int, downsampling_ratio: int) -> int:
    """Latent frames of headroom kept valid after each item's duration."""
    return int(padding_sec * sample_rate / downsampling_ratio)


def padding_mask(valid_lengths: torch.Tensor, latent_length: int) -> torch.Tensor:
    """(B, L) bool, True for frames before each item's valid length."""
    positions = torch.arange(latent_length, device=valid_lengths.device)
    return positions.unsqueeze(0) < valid_lengths.unsqueeze(1)


def output_samples(durations: Sequence[float], sample_rate: int) -> int | None:
    """Samples to keep in the returned audio: ``int(d*sr)`` if all durations are equal, else None."""
    if len(set(durations)) != 1:
        return None
    return int(durations[0] * sample_rate)


def zero_padding(audio: torch.Tensor, mask: torch.Tensor, downsampling_ratio: int) -> torch.Tensor:
    """Decoded audio (B, C, T) with samples of padded latent frames set to exactly 0."""
    sample_mask = mask.repeat_interleave(downsampling_ratio, dim=-1)
    length = audio.shape[-1]
    if sample_mask.shape[-1] >= length:
        sample_mask = sample_mask[:, :length]
    else:
        sample_mask = torch.nn.functional.pad(sample_mask, (0, length - sample_mask.shape[-1]), value=False)
    return audio * sample_mask.unsqueeze(1).to(audio.dtype)


@dataclass(frozen=True)
class LengthPlan:
    """All length decisions for one generation call."""

    durations: list[float]  # seconds per item, as conditioned on
    audio_samples: int  # N: samples generated (before trimming)
    latent_length: int  # L = N // downsampling_ratio
    effective_lengths: torch.Tensor  # (B,) float32 latents covering each duration (schedule shift input)
    valid_lengths: torch.Tensor  # (B,) int64: effective + headroom, clamped to L
    padding_mask: torch.Tensor  # (B, L) bool, True = valid frame
    output_samples: int | None  # trim the audio to this many samples, or None to keep all N


def plan_lengths(
    durations,
    *,
    batch_size: int,
    sample_rate: int,
    downsampling_ratio: int,
    max_samples: int,
    padding_sec: float = DEFAULT_PADDING_SEC,
    latent_align: int = 2,
    device=None,
) -> LengthPlan:
    """Validate ``durations`` (a number or one per item) and derive every length for the call.

    ``max_samples`` is the model's maximum (config ``sample_size``); durations above
    ``max_samples / sample_rate`` seconds are rejected. ``padding_sec`` must be >= 0.
    """
    if isinstance(padding_sec, bool) or not isinstance(padding_sec, (int, float)) or not padding_sec >= 0:
        raise ValueError(f"duration_padding_sec must be a number of seconds >= 0, got {padding_sec!r}.")
    values = check_durations(durations, batch_size, max_samples / sample_rate)
    n = audio_length(
        values,
        sample_rate=sample_rate,
        downsampling_ratio=downsampling_ratio,
        max_samples=max_samples,
        padding_sec=padding_sec,
        latent_align=latent_align,
    )
    latents = n // downsampling_ratio
    effective = effective_latent_lengths(
        values, sample_rate=sample_rate, downsampling_ratio=downsampling_ratio, device=device
    )
    headroom = headroom_latents(padding_sec, sample_rate=sample_rate, downsampling_ratio=downsampling_ratio)
    valid = (effective + headroom).clamp(max=latents).long()
    return LengthPlan(
        durations=values,
        audio_samples=n,
        latent_length=latents,
        effective_lengths=effective,
        valid_lengths=valid,
        padding_mask=padding_mask(valid, latents),
        output_samples=output_samples(values, sample_rate),
    )
