"""Strict checkpoint loading: safetensors straight into a module, one copy of the weights.

Modules are meant to be built on the meta device (``with torch.device("meta"): ...``) and then
filled here with ``assign=True``, so the weights are read once from disk into the target device and
dtype. Any mismatch between the file and the module is an error that names the key and the file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model built from its config."""


def read_safetensors(path, *, prefix: str = "", device="cpu") -> dict[str, torch.Tensor]:
    """Tensors of ``path`` whose key starts with ``prefix`` (stripped), loaded onto ``device``."""
    out = {}
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        for key in f.keys():
            if key.startswith(prefix):
                out[key[len(prefix) :]] = f.get_tensor(key)
    return out


def has_prefix(path, prefix: str) -> bool:
    """Whether any tensor key in the safetensors file starts with ``prefix``."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return any(k.startswith(prefix) for k in f.keys())


def load_state_dict_strict(
    module: torch.nn.Module,
    state_dict: dict[str, torch.Tensor],
    *,
    source: str | Path,
    device=None,
    dtype: torch.dtype | None = None,
) -> torch.nn.Module:
    """Assign ``state_dict`` to ``module`` after checking keys and shapes exactly.

    Floating-point tensors are cast to ``dtype`` (if given) and everything is moved to ``device``.
    Raises :class:`CheckpointMismatchError` naming the first missing, unexpected or mis-shaped key
    and ``source``.
    """
    expected = module.state_dict(keep_vars=True)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing:
        raise CheckpointMismatchError(
            f"{source} has no weight '{missing[0]}' ({len(missing)} missing in all); "
            "the file does not belong to this model config."
        )
    if unexpected:
        raise CheckpointMismatchError(
            f"{source} has an unexpected weight '{unexpected[0]}' ({len(unexpected)} in all); "
            "the file does not belong to this model config."
        )
    prepared = {}
    for key, tensor in state_dict.items():
        want = tuple(expected[key].shape)
        if tuple(tensor.shape) != want:
            raise CheckpointMismatchError(
                f"{source}: weight '{key}' has shape {tuple(tensor.shape)} but the model config "
                f"needs {want}; the file does not belong to this model config."
            )
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        if device is not None:
            tensor = tensor.to(device)
        if tensor.device.type == "cpu" and tensor.data_ptr() % 64:
            # safetensors hands out unaligned views; CPU matmul kernels round differently on them
            tensor = tensor.clone()
        prepared[key] = tensor
    module.load_state_dict(prepared, strict=True, assign=True)
    return module


def load_checkpoint_strict(
    module: torch.nn.Module, path, *, prefix: str = "", device=None, dtype=None
) -> torch.nn.Module:
    """Read ``path`` (keys under ``prefix``) and load them strictly into ``module``."""
    state_dict = read_safetensors(path, prefix=prefix, device="cpu")
    return load_state_dict_strict(module, state_dict, source=path, device=device, dtype=dtype)
