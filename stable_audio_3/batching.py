"""Many generations as few batched ``generate`` calls, each item exactly what it gives alone.

:func:`plan_batches` takes items (each the keyword arguments of one batch-1 ``generate`` call, with
its own ``prompt``, ``seed`` and optionally ``negative_prompt``), groups those whose other settings
are equal (same model call, same duration, hence the same latent length) and cuts each group into
batches of at most :func:`batch_size_for` items. Each batch is one ``generate(seed=[...])`` call, so
item ``i`` of it is bit for bit (on the CPU) the audio of its own call (see
``StableAudioModel.generate``).

How memory per item is estimated (:func:`item_bytes`): what one more item adds while sampling, in
the model's dtype, with ``g`` = 2 branches under guidance (``cfg_scale != 1``) and 1 otherwise:

* the per-block condition tensors kept for the whole run: ``depth * g * (C * K + L * D)`` values
  (``C`` cross-attention tokens, ``K`` their key/value width, ``L`` latent frames, ``D`` the DiT
  width), and
* one block's working set: ``g * (L + M) * D * w`` values (``M`` memory tokens, ``w`` = the
  widths alive at once: residual, norm, q/k/v, attention outputs and the feed-forward's gated
  hidden layer), plus a few float32 copies of the (channels, L) sampler state.

Decoding runs item by item in these batches, so it adds no per-item memory. The batch size is the
memory available on the device (free CUDA memory, or the system's available memory) times
``fraction``, divided by that estimate, capped at ``max_batch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil
import torch

from . import lengths

PER_ITEM_KEYS = ("prompt", "negative_prompt", "seed")
SAMPLER_COPIES = 6  # x, denoised, noise, velocity and temporaries of the (channels, L) state


@dataclass(frozen=True)
class Batch:
    """One ``generate(**kwargs)`` call and the indices of the items it makes, in batch order."""

    indices: tuple[int, ...]
    kwargs: dict


def item_bytes(model, *, duration: float, cfg_scale: float = 1.0, duration_padding_sec: float = 6.0) -> int:
    """Estimated bytes one more batch item adds while sampling (see the module docstring)."""
    diffusion = model.model
    trunk = diffusion.dit.transformer
    block = trunk.layers[0]
    width = trunk.project_in.out_features
    depth = len(trunk.layers)
    plan = lengths.plan_lengths(
        duration,
        batch_size=1,
        sample_rate=model.sample_rate,
        downsampling_ratio=diffusion.downsampling_ratio,
        max_samples=model.max_samples,
        padding_sec=duration_padding_sec,
        latent_align=diffusion.latent_align,
    )
    frames = plan.latent_length
    branches = 1 if cfg_scale == 1 else 2
    conditioner = diffusion.conditioner
    texts = conditioner.text_encoders()
    context = sum(t.max_length for t in texts) + len(conditioner.cross_attention_cond_ids) - len(texts)
    kv_width = block.cross_attn.to_kv.out_features if hasattr(block, "cross_attn") else 0
    qkv = block.self_attn.to_qkv.out_features // width
    ff_hidden = 1.5 * block.ff.ff[0].proj.out_features // width  # the projection and its gated half
    working = 4 + qkv + ff_hidden  # residual, norm, two attention outputs + q/k/v + feed-forward
    element = torch.empty(0, dtype=diffusion.dtype).element_size()
    kept = depth * branches * (context * kv_width + frames * width)
    transient = branches * (frames + trunk.num_memory_tokens) * width * working
    sampler = SAMPLER_COPIES * diffusion.latent_channels * frames * 4
    return int((kept + transient) * element + sampler)


def available_bytes(device) -> int:
    """Memory free for new tensors: free CUDA memory, else the system's available memory."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def batch_size_for(
    model,
    *,
    duration: float,
    cfg_scale: float = 1.0,
    memory: int | None = None,
    fraction: float = 0.5,
    max_batch: int = 16,
) -> int:
    """How many items of this duration fit in ``fraction`` of ``memory`` bytes (default: what is
    free on the model's device now), between 1 and ``max_batch``."""
    per_item = item_bytes(model, duration=duration, cfg_scale=cfg_scale)
    memory = available_bytes(model.device) if memory is None else memory
    fits = int(memory * fraction // per_item)
    return max(1, min(max_batch, fits))


def _frozen(value):
    """A hashable stand-in for a setting, so that equal settings group together."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, torch.Tensor) or getattr(value, "__hash__", None) is None:
        return ("object", id(value))  # tensors, arrays: the same object groups, equal copies do not
    return value


def plan_batches(
    model, items: list[dict], *, max_batch: int | None = None, fraction: float = 0.5
) -> list[Batch]:
    """Group ``items`` (batch-1 ``generate`` keyword arguments) into exact batched calls.

    Items batch together when everything but ``prompt``, ``negative_prompt`` and ``seed`` is equal
    (and all or none have a negative prompt). Each item needs a ``prompt`` and a ``seed`` (a number;
    -1 draws one, reported in the call's ``Generation.seed``) and may not set ``batch_size``.
    Batches hold at most :func:`batch_size_for` items (or ``max_batch`` if given). Order: groups
    in order of their first item, items in their order.
    """
    groups: dict[tuple, list[int]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "prompt" not in item or "seed" not in item:
            raise ValueError(f"Item {index} must be a dict of generate() arguments with a prompt and a seed.")
        if "batch_size" in item or isinstance(item["seed"], (list, tuple)):
            raise ValueError(f"Item {index} describes a batch; give each item as its own batch-1 call.")
        settings = tuple(sorted((k, _frozen(v)) for k, v in item.items() if k not in PER_ITEM_KEYS))
        key = (settings, item.get("negative_prompt") is None)
        groups.setdefault(key, []).append(index)
    batches = []
    for indices in groups.values():
        first = items[indices[0]]
        size = max_batch or batch_size_for(
            model,
            duration=first.get("duration", 120),
            cfg_scale=first.get("cfg_scale", 1.0),
            fraction=fraction,
        )
        for start in range(0, len(indices), size):
            chunk = indices[start : start + size]
            kwargs = {k: v for k, v in first.items() if k not in PER_ITEM_KEYS}
            kwargs["prompt"] = [items[i]["prompt"] for i in chunk]
            kwargs["seed"] = [items[i]["seed"] for i in chunk]
            if first.get("negative_prompt") is not None:
                kwargs["negative_prompt"] = [items[i]["negative_prompt"] for i in chunk]
            kwargs["batch_size"] = len(chunk)
            batches.append(Batch(tuple(chunk), kwargs))
    return batches
