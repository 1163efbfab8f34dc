"""The training objective of the base models, as upstream's LoRA training sets it up.

One step on a batch of clean latents ``x0`` (B, C, T) with valid-frame masks and durations:

1. flow times ``t = 1 - s`` with ``s`` truncated logit-normal (the lowest 7.5 % of the logistic
   normal cut off and rescaled), warped by the config's training shift at each item's effective
   length ``ceil(int(seconds_total * sr) / downsampling)``;
2. ``x_t = (1 - t) x0 + t noise``, target velocity ``noise - x0``; for a batch of more than one the
   noise is first re-paired with the clips by a Sinkhorn approximation of optimal transport;
3. each item's valid region is extended into the padding by an exponential number of frames (mean
   4 s), which the DiT attends to and the loss covers;
4. an inpainting mask per item (1 = given, 0 = generated): the whole clip generated (80 %), a
   prefix given (10 %) or up to 10 random segments generated (10 %), padding always generated; the
   DiT sees ``[mask, x0 * mask]`` as local conditioning;
5. with probability 0.1 per item the cross-attention conditioning (prompt + duration tokens) is
   replaced by zeros (classifier-free guidance dropout);
6. loss: per-item mean squared error over the generated valid frames, averaged over the batch, plus
   the same over the given valid frames (weight 1).

Random numbers come from a CPU ``torch.Generator`` and a ``random.Random`` in upstream's order, so
with a seed they repeat upstream's draws on the CPU for contiguous inputs; :class:`StepDraws` holds
them, so a step can also be replayed with given draws.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from ..sampling import IdentityShift, shift_from_options

LEFT_TRUNCATION = 0.075
CFG_DROPOUT = 0.1
SILENCE_EXTENSION_SECONDS = 4.0
MASK_TYPE_WEIGHTS = {"segments": 0.1, "full": 0.8, "prefix": 0.1}
MAX_MASK_SEGMENTS = 10
CONTEXT_LOSS_WEIGHT = 1.0
SINKHORN_ITERATIONS = 20


@dataclass
class StepDraws:
    """The random choices of one step (CPU tensors)."""

    timestep_sample: torch.Tensor  # (B,) truncated logit-normal, before t = 1 - s and the shift
    noise: torch.Tensor  # (B, C, T), before the optimal-transport pairing
    kept_length: torch.Tensor  # (B,) long: valid frames after the silence extension
    inpaint_mask: torch.Tensor  # (B, 1, T) float: 1 = given to the model, 0 = to generate
    cfg_dropout: torch.Tensor  # (B,) bool: conditioning replaced by zeros


def truncated_logit_normal(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of sigmoid(N(0, 1)) restricted to above ``LEFT_TRUNCATION``, rescaled to [0, 1)."""
    normal = torch.distributions.Normal(0.0, 1.0)
    cdf = normal.cdf(torch.randn(n, generator=generator))
    lower = normal.cdf(torch.logit(torch.tensor(LEFT_TRUNCATION)))
    samples = torch.sigmoid(normal.icdf(lower + (1 - lower) * cdf))
    return (samples - LEFT_TRUNCATION) / (1 - LEFT_TRUNCATION)


def _inpaint_mask(length: int, valid: int, rng: random.Random) -> torch.Tensor:
    """One item's (1, length) mask, with upstream's choices in upstream's order."""
    kinds = list(MASK_TYPE_WEIGHTS)
    kind = rng.choices(kinds, weights=list(MASK_TYPE_WEIGHTS.values()), k=1)[0]
    if kind == "full":
        return torch.zeros(1, length)
    mask = torch.ones(1, length)
    if valid == 0:
        return mask
    if kind == "segments":
        count = rng.randint(1, MAX_MASK_SEGMENTS)
        longest = max(1, valid // count)
        for _ in range(count):
            size = rng.randint(1, longest)
            if valid - size >= 0:
                start = rng.randint(0, valid - size)
                mask[:, start : start + size] = 0
    else:  # prefix given, the rest of the clip generated
        mask[:, rng.randint(0, valid) : valid] = 0
    mask[:, valid:] = 0  # padding is never given as context
    return mask


def draw_step(
    valid: torch.Tensor,
    shape: tuple[int, int, int],
    *,
    frames_per_second: float,
    generator: torch.Generator,
    rng: random.Random,
) -> StepDraws:
    """Draw one step's random choices for ``valid`` (B,) valid frames of latents of ``shape``."""
    b, _, length = shape
    timestep_sample = truncated_logit_normal(b, generator)
    noise = torch.randn(shape, generator=generator)
    rate = 1.0 / (SILENCE_EXTENSION_SECONDS * frames_per_second)
    extension = torch.empty(b).exponential_(rate, generator=generator).long()
    kept = torch.clamp(valid.cpu() + extension, max=length)
    inpaint = torch.stack([_inpaint_mask(length, int(n), rng) for n in kept])
    dropout = torch.bernoulli(torch.full((b,), CFG_DROPOUT), generator=generator).bool()
    return StepDraws(timestep_sample, noise, kept, inpaint, dropout)


def pair_noise(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``noise`` reordered along the batch to approximate the optimal-transport pairing with ``x0``.

    Sinkhorn iterations on ``-cost / mean(cost)`` (squared distances), then a greedy assignment row
    by row from the soft plan, so the result is a permutation.
    """
    if x0.shape[0] < 2:
        return noise
    with torch.no_grad():
        a, b = x0.reshape(x0.shape[0], -1).float(), noise.reshape(noise.shape[0], -1).float()
        cost = (a * a).sum(1, keepdim=True) + (b * b).sum(1, keepdim=True).T - 2.0 * (a @ b.T)
        log_plan = -cost / cost.mean()
        for _ in range(SINKHORN_ITERATIONS):
            log_plan = log_plan - torch.logsumexp(log_plan, dim=1, keepdim=True)
            log_plan = log_plan - torch.logsumexp(log_plan, dim=0, keepdim=True)
        plan = log_plan.exp()
        order, used = [], torch.zeros(plan.shape[0], dtype=torch.bool, device=plan.device)
        for row in plan:
            pick = int(torch.where(used, torch.full_like(row, -1), row).argmax())
            used[pick] = True
            order.append(pick)
    return noise[order]


class TrainingShift:
    """The config's training-time timestep shift at each item's effective length (or none)."""

    def __init__(self, diffusion_config: dict, *, sample_rate: int, downsampling_ratio: int):
        options = diffusion_config.get("distribution_shift_options")
        self.shift = IdentityShift() if options is None else shift_from_options(options)
        self.per_item = bool(diffusion_config.get("use_effective_length_for_schedule", False))
        self.sample_rate, self.ratio = sample_rate, downsampling_ratio

    def __call__(self, t: torch.Tensor, seconds_total, length: int) -> torch.Tensor:
        if not self.per_item:
            return self.shift.shift(t, length)
        frames = [math.ceil(int(s * self.sample_rate) / self.ratio) for s in seconds_total]
        return self.shift.shift(t, torch.tensor(frames, device=t.device))


def masked_loss(out: torch.Tensor, target: torch.Tensor, kept: torch.Tensor, inpaint: torch.Tensor):
    """Upstream's loss: mean error on generated valid frames + ``CONTEXT_LOSS_WEIGHT`` x on given ones."""
    error = (out.float() - target.float()) ** 2
    channels = error.shape[1]
    given = inpaint[:, 0].bool()
    generated = kept & ~given
    signal = torch.where(generated[:, None], error, 0.0).sum((1, 2)) / (generated.sum(1) * channels + 1e-8)
    loss = signal.mean()
    context = given & kept
    counts = context.sum(1) * channels
    if counts.sum() > 0:
        context_error = torch.where(context[:, None], error, 0.0).sum((1, 2)) / (counts + 1e-8)
        loss = loss + CONTEXT_LOSS_WEIGHT * context_error.mean()
    return loss
