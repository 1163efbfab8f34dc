"""Random weights at a sane scale on a model built from its config, saved in the repo layout."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .configs import AUTOENCODERS, model_config
from .text_encoder import write_text_encoder

TEXT_ENCODER_SUBFOLDER = "t5gemma-b-b-ul2"


ONES = ("gamma", "alpha", "weight_g", "running_std", "scaling_factor")  # gains: 1 + small noise
ZEROS = ("beta", "bias")  # offsets: small noise around 0


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    """Give every floating-point parameter random values that keep activations at a sane scale.

    Gains are about 1 and offsets about 0 (by parameter name), matrices N(0, 1/fan_in), anything
    else (memory tokens, padding embedding, modulation vectors) N(0, 0.02^2); the values the
    modules were built with are ignored, so modules may be built with ``torch.empty``.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if not param.is_floating_point() or param.numel() == 0:
                continue
            noise = torch.randn(param.shape, generator=g, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ONES:
                param.copy_(1 + 0.02 * noise)
            elif leaf in ZEROS:
                param.copy_(0.02 * noise)
            elif (param.ndim >= 2 and leaf == "weight") or leaf == "weight_v":
                param.copy_(noise / max(1, param[0].numel()) ** 0.5)
            else:
                param.copy_(0.02 * noise)
    return module


def _build(config: dict, text_encoder_dir: Path | None) -> nn.Module:
    if "diffusion" in config["model"]:
        from ..model import DiffusionModel

        return DiffusionModel(config, text_encoder_dir)
    from ..autoencoder import SameAutoencoder

    return SameAutoencoder.from_config(config["model"])


def write_model_repo(folder, name: str, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight ``name`` model (e.g. ``small-music``, ``same-s``) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model_config(name, size)
    text_dir = None
    if name not in AUTOENCODERS:
        text_dir = write_text_encoder(folder / TEXT_ENCODER_SUBFOLDER, size=size, seed=seed)
    with torch.device("cpu"):
        model = randomize_(_build(config, text_dir), seed)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "model_config.json").write_text(json.dumps(config, indent=2))
    return folder
