"""Random-weight models with the released structure, in the Hugging Face repo layout.

``write_model_repo(folder, "small-music", size="tiny")`` writes ``model_config.json``,
``model.safetensors`` and the bundled text encoder exactly as the official repos lay them out.
``tiny`` models build in seconds (the ``demo`` model, tests); ``released`` ones have the real widths
(benchmarks). Their output is noise: they exercise every code path, not the sound.
"""

from .build import randomize_, write_model_repo
from .configs import AUTOENCODERS, FAMILIES, SIZES, autoencoder_config, diffusion_config, model_config
from .text_encoder import write_text_encoder

__all__ = [
    "AUTOENCODERS",
    "FAMILIES",
    "SIZES",
    "autoencoder_config",
    "diffusion_config",
    "model_config",
    "randomize_",
    "write_model_repo",
    "write_text_encoder",
]
