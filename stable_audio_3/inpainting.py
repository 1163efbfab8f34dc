"""Inpainting and continuation: which parts of the audio to keep, on the sample and the latent grid.

Inpaint masks work on the audio-sample grid, 1 = keep, 0 = generate, then go to the latent grid by
nearest-neighbour resizing (latent frame j takes sample j * downsampling_ratio). Everything at or
after ``int(max(durations) * sr)`` is always generated.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
import torch.nn.functional as F


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
