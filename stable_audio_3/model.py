"""The full model as one module tree whose state dict matches ``model.safetensors`` key for key.

``model.model.*`` is the DiT (under a wrapper, as in the checkpoint), ``conditioner.conditioners.*``
the prompt/duration conditioners (the T5Gemma encoder itself lives outside the tree) and
``pretransform.model.*`` the SAME autoencoder.
"""

from __future__ import annotations

import torch
from torch import nn

from .autoencoder import SameAutoencoder
from .conditioning import Conditioners
from .dit import DiffusionTransformer
from .layers import prepack_
from .loading import load_weights
from .sampling import shift_from_options


class _Holder(nn.Module):
    """A parameter-free level of the checkpoint's key hierarchy (``model.`` / ``pretransform.``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


class DiffusionModel(nn.Module):
    def __init__(self, config: dict, text_encoder_dir):
        super().__init__()
        cfg = config["model"]
        self.model = _Holder(DiffusionTransformer.from_config(cfg["diffusion"]))
        diffusion = cfg["diffusion"]
        self.conditioner = Conditioners.from_config(
            cfg["conditioning"],
            text_encoder_dir,
            cross_attention_cond_ids=diffusion.get("cross_attention_cond_ids", ()),
            global_cond_ids=diffusion.get("global_cond_ids", ()),
        )
        self.pretransform = _Holder(SameAutoencoder.from_config(cfg["pretransform"]["config"]))
        self.chunked = bool(cfg["pretransform"].get("chunked", False))
        self.latent_channels = int(cfg["io_channels"])
        self.sampling_shift = shift_from_options(cfg["diffusion"].get("sampling_distribution_shift_options"))

    @classmethod
    def load(
        cls, config: dict, weights_path, text_encoder_dir, *, device, dtype, autoencoder_dtype=None
    ) -> DiffusionModel:
        """The model of ``config`` filled from ``weights_path`` (see :func:`loading.load_weights`).

        Weights take ``dtype``, the SAME autoencoder ``autoencoder_dtype`` (default: ``dtype``); bfloat16
        weights on the CPU are also reordered for oneDNN here (:func:`layers.prepack_`).
        """
        ae_dtype = autoencoder_dtype or dtype
        model = load_weights(
            lambda: cls(config, text_encoder_dir),
            weights_path,
            device=device,
            dtype_for=lambda key: ae_dtype if key.startswith("pretransform.") else dtype,
        )
        model.conditioner.to_device(device)
        for part in (model.dit, model.autoencoder.decoder):  # what generate() runs, bfloat16 on the CPU
            prepack_(part)
        return model

    @property
    def dit(self) -> DiffusionTransformer:
        """The diffusion transformer (``model.model`` in the checkpoint's key hierarchy)."""
        return self.model.model

    @property
    def autoencoder(self) -> SameAutoencoder:
        return self.pretransform.model

    @property
    def dtype(self) -> torch.dtype:
        return self.dit.dtype

    @property
    def autoencoder_dtype(self) -> torch.dtype:
        return self.autoencoder.bottleneck.scaling_factor.dtype

    @property
    def downsampling_ratio(self) -> int:
        return self.autoencoder.downsampling_ratio

    @property
    def latent_align(self) -> int:
        return self.autoencoder.latent_align
