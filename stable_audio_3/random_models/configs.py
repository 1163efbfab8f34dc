"""``model_config.json`` contents with the released structure, at released or tiny sizes.

The key set and non-size values follow the released configs (see the sa3 specs); only widths,
depths and the text length change with ``size``. Tiny models keep the released code paths: SAME-S
chunked attention with midpoint shift, SAME-L sliding windows and sinusoidal decoder blocks,
differential attention in medium, memory tokens, adaLN and inpaint conditioning.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = {
    "small-music": ("small", "rf_denoiser"),
    "small-sfx": ("small", "rf_denoiser"),
    "medium": ("medium", "rf_denoiser"),
    "small-music-base": ("small", "rectified_flow"),
    "small-sfx-base": ("small", "rectified_flow"),
    "medium-base": ("medium", "rectified_flow"),
}
AUTOENCODERS = {"same-s": "small", "same-l": "medium"}
SAMPLE_SIZE = {"small": 5292032, "medium": 16777216}


@dataclass(frozen=True)
class Sizes:
    """Widths and depths that differ between released and tiny models."""

    ae_channels: dict  # family -> SAME channels (times c_mult gives the transformer width)
    ae_c_mult: int
    ae_heads_dim: int
    ae_depth_s: int  # SAME-S blocks per encoder/decoder
    ae_depth_l: int  # SAME-L blocks per encoder/decoder
    ae_sin_blocks_l: int  # SAME-L decoder blocks with sin gating
    latent_dim: int
    dit_width: dict  # family -> embed_dim
    dit_depth: dict
    dit_heads: dict
    ff_mult: int
    text_max_length: int


RELEASED = Sizes(
    ae_channels={"small": 128, "medium": 256},
    ae_c_mult=6,
    ae_heads_dim=64,
    ae_depth_s=6,
    ae_depth_l=12,
    ae_sin_blocks_l=8,
    latent_dim=256,
    dit_width={"small": 1024, "medium": 1536},
    dit_depth={"small": 20, "medium": 24},
    dit_heads={"small": 16, "medium": 24},
    ff_mult=4,
    text_max_length=256,
)
TINY = Sizes(
    ae_channels={"small": 32, "medium": 32},
    ae_c_mult=2,
    ae_heads_dim=32,
    ae_depth_s=2,
    ae_depth_l=2,
    ae_sin_blocks_l=2,
    latent_dim=32,
    dit_width={"small": 128, "medium": 128},
    dit_depth={"small": 2, "medium": 2},
    dit_heads={"small": 2, "medium": 2},
    ff_mult=2,
    text_max_length=64,
)
SIZES = {"released": RELEASED, "tiny": TINY}


def _sizes(size: str) -> Sizes:
    if size not in SIZES:
        raise ValueError(f"Unknown size {size!r}; use one of {sorted(SIZES)}.")
    return SIZES[size]


def _same_block_config(family: str, s: Sizes, role: str) -> dict:
    cfg = {
        ("in_channels" if role == "encoder" else "out_channels"): 512,
        "channels": s.ae_channels[family],
        "c_mults": [s.ae_c_mult],
        "strides": [16],
        "latent_dim": s.latent_dim,
        "differential": True,
        "dim_heads": s.ae_heads_dim,
        "variable_stride": True,
        "transformer_depths": [s.ae_depth_s if family == "small" else s.ae_depth_l],
    }
    if role == "decoder":
        cfg["sinusoidal_blocks"] = [0 if family == "small" else s.ae_sin_blocks_l]
    if family == "small":
        cfg.update(
            checkpointing=False,
            dyt=True,
            chunk_size=32,
            chunk_midpoint_shift=True,
            conv_mapping=role == "decoder",
            mask_noise=0.01 if role == "decoder" else 0.0,
        )
    else:
        cfg.update(sliding_window=[1, 1], conv_bias=False)
    return cfg


def _autoencoder_model(family: str, s: Sizes, conv_bias_key: bool = True) -> dict:
    blocks = {role: _same_block_config(family, s, role) for role in ("encoder", "decoder")}
    if not conv_bias_key:  # the AE-only SAME-L repo omits this ignored key
        for cfg in blocks.values():
            cfg.pop("conv_bias", None)
    return {
        "encoder": {"type": "same", "config": blocks["encoder"]},
        "decoder": {"type": "same", "config": blocks["decoder"]},
        "bottleneck": {
            "type": "softnorm",
            "config": {
                "dim": s.latent_dim,
                "noise_augment_dim": 0,
                "noise_regularize": True,
                "auto_scale": True,
                "freeze": True,
            },
        },
        "pretransform": {"type": "patched", "config": {"patch_size": 256, "channels": 2}},
        "latent_dim": s.latent_dim,
        "downsampling_ratio": 4096,
        "io_channels": 2,
    }


def autoencoder_config(name: str, size: str = "tiny") -> dict:
    """Config of an AE-only repo (``same-s`` or ``same-l``)."""
    if name not in AUTOENCODERS:
        raise ValueError(f"Unknown autoencoder {name!r}; use one of {sorted(AUTOENCODERS)}.")
    return {
        "model_type": "autoencoder",
        "sample_size": 65536,
        "sample_rate": 44100,
        "audio_channels": 2,
        "model": _autoencoder_model(AUTOENCODERS[name], _sizes(size), conv_bias_key=False),
    }


def diffusion_config(name: str, size: str = "tiny", text_repo_id: str | None = None) -> dict:
    """Config of a full text-to-audio repo (``small-music``, ``medium-base``, ...).

    ``text_repo_id`` is the repo whose ``t5gemma-b-b-ul2/`` holds the text encoder; like the
    released base configs, it defaults to the post-trained sibling.
    """
    if name not in FAMILIES:
        raise ValueError(f"Unknown model {name!r}; use one of {sorted(FAMILIES)}.")
    family, objective = FAMILIES[name]
    s = _sizes(size)
    width = s.dit_width[family]
    shift = {"base_shift": 0.5, "max_shift": 1.15, "min_length": 256, "max_length": 4096}
    if family == "small":
        shift = {"type": "full", **shift}
    sibling = name.removesuffix("-base")
    return {
        "model_type": "diffusion_cond_inpaint",
        "sample_size": SAMPLE_SIZE[family],
        "sample_rate": 44100,
        "audio_channels": 2,
        "model": {
            "io_channels": s.latent_dim,
            "pretransform": {
                "type": "autoencoder",
                "iterate_batch": False,
                "chunked": True,
                "config": _autoencoder_model(family, s),
            },
            "conditioning": {
                "configs": [
                    {
                        "id": "prompt",
                        "type": "t5gemma",
                        "config": {
                            "max_length": s.text_max_length,
                            "padding_mode": "learned",
                            "repo_id": text_repo_id or f"stabilityai/stable-audio-3-{sibling}",
                            "subfolder": "t5gemma-b-b-ul2",
                        },
                    },
                    {
                        "id": "seconds_total",
                        "type": "number",
                        "config": {"min_val": 0, "max_val": 384, "fourier_features_type": "expo"},
                    },
                ],
                "cond_dim": 768,
            },
            "diffusion": {
                "type": "dit",
                "diffusion_objective": objective,
                "cross_attention_cond_ids": ["prompt", "seconds_total"],
                "global_cond_ids": ["seconds_total"],
                "local_add_cond_ids": ["inpaint_mask", "inpaint_masked_input"],
                "mask_padding_attention": True,
                "use_effective_length_for_schedule": True,
                "distribution_shift_options": shift,
                "config": {
                    "io_channels": s.latent_dim,
                    "patch_size": 1,
                    "embed_dim": width,
                    "depth": s.dit_depth[family],
                    "num_heads": s.dit_heads[family],
                    "cond_token_dim": 768,
                    "global_cond_dim": 768,
                    "project_cond_tokens": True,
                    "project_global_cond": True,
                    "local_add_cond_dim": s.latent_dim + 1,
                    "transformer_type": "continuous_transformer",
                    "global_cond_type": "adaLN",
                    "timestep_cond_type": "global",
                    "timestep_features_type": "expo",
                    "timestep_features_dim": 256,
                    "timestep_features_logsnr": False,
                    "num_memory_tokens": 64,
                    "norm_type": "rms_norm",
                    "norm_kwargs": {"force_fp32": True},
                    "attn_kwargs": {"qk_norm": "rms", "differential": family == "medium"},
                    "ff_kwargs": {"mult": s.ff_mult, "no_bias": False},
                    "zero_init_branch_outputs": True,
                },
            },
        },
    }


def model_config(name: str, size: str = "tiny") -> dict:
    """Config for any model or autoencoder name."""
    if name in AUTOENCODERS:
        return autoencoder_config(name, size)
    return diffusion_config(name, size)
