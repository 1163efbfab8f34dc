"""The Stable Audio 3 collections: what each repo is, whether it is gated, where it runs well.

:func:`model_defaults` is the one place that decides a model's default sampler settings (post-trained:
8 steps, CFG 1, pingpong; base: 50 steps, CFG 7, euler; both: guidance over the whole schedule, no
rescale, no norm cap, full APG, the config's own schedule, 6 s of duration padding, as upstream's
interface), for catalog keys and local folders alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import checks

GUIDANCE = {  # the same for both kinds: upstream's interface defaults
    "cfg_interval": (0.0, 1.0),
    "scale_phi": 0.0,
    "cfg_norm_threshold": 0.0,
    "apg_scale": 1.0,
    "schedule": None,  # None: the model config's own distribution shift
    "duration_padding": 6.0,
}
POST_TRAINED = {"steps": 8, "cfg_scale": 1.0, "sampler": "pingpong", **GUIDANCE}
BASE = {"steps": 50, "cfg_scale": 7.0, "sampler": "euler", **GUIDANCE}
T5GEMMA_ENCODER_PARAMS = 110_000_000  # approximate; bundled in each repo, counted separately


@dataclass(frozen=True)
class Entry:
    """One catalog entry. ``params`` counts the model's own weights (DiT + SAME), not the text encoder."""

    key: str
    repo_id: str | None
    collection: str  # "standard", "base", "autoencoder", "demo" or "other"
    kind: str  # "generation", "autoencoder" or "none"
    gated: bool
    params: int
    max_duration_s: float
    gpu_first: bool
    defaults: dict
    description: str
    memory_gib: float  # rough need in float32 on CPU
    sibling: str | None = None  # the post-trained model of a base checkpoint
    runnable: bool = True
    not_runnable_reason: str = ""

    @property
    def page(self) -> str:
        return f"https://huggingface.co/{self.repo_id}" if self.repo_id else ""

    @property
    def device_advice(self) -> str:
        if self.gpu_first:
            return "GPU recommended; on a CPU it works but takes minutes per clip."
        return "Runs well on a CPU; faster on a GPU."


SMALL_PARAMS = 459_130_896 + 108_244_721
MEDIUM_PARAMS = 1_453_170_192 + 852_127_457

ENTRIES: dict[str, Entry] = {
    e.key: e
    for e in [
        Entry(
            "small-music",
            "stabilityai/stable-audio-3-small-music",
            "standard",
            "generation",
            True,
            SMALL_PARAMS,
            120.0,
            False,
            POST_TRAINED,
            "Music and stems, up to 2 minutes.",
            5.0,
        ),
        Entry(
            "small-sfx",
            "stabilityai/stable-audio-3-small-sfx",
            "standard",
            "generation",
            True,
            SMALL_PARAMS,
            120.0,
            False,
            POST_TRAINED,
            "Sound effects and one-shots.",
            5.0,
        ),
        Entry(
            "medium",
            "stabilityai/stable-audio-3-medium",
            "standard",
            "generation",
            True,
            MEDIUM_PARAMS,
            380.0,
            True,
            POST_TRAINED,
            "Music, stems and sound effects, up to 6 minutes; the best quality.",
            18.0,
        ),
        Entry(
            "small-music-base",
            "stabilityai/stable-audio-3-small-music-base",
            "base",
            "generation",
            False,
            SMALL_PARAMS,
            120.0,
            False,
            BASE,
            "Base checkpoint of small-music (for LoRA training, CFG).",
            5.0,
            sibling="small-music",
        ),
        Entry(
            "small-sfx-base",
            "stabilityai/stable-audio-3-small-sfx-base",
            "base",
            "generation",
            False,
            SMALL_PARAMS,
            120.0,
            False,
            BASE,
            "Base checkpoint of small-sfx.",
            5.0,
            sibling="small-sfx",
        ),
        Entry(
            "medium-base",
            "stabilityai/stable-audio-3-medium-base",
            "base",
            "generation",
            False,
            MEDIUM_PARAMS,
            380.0,
            True,
            BASE,
            "Base checkpoint of medium.",
            18.0,
            sibling="medium",
        ),
        Entry(
            "same-s",
            "stabilityai/SAME-S",
            "autoencoder",
            "autoencoder",
            False,
            108_244_721,
            120.0,
            False,
            {},
            "The autoencoder of the small models (44.1 kHz stereo <-> 256 x 10.77 Hz latents).",
            1.5,
        ),
        Entry(
            "same-l",
            "stabilityai/SAME-L",
            "autoencoder",
            "autoencoder",
            False,
            852_127_457,
            380.0,
            True,
            {},
            "The autoencoder of the medium models.",
            7.0,
        ),
        Entry(
            "demo",
            None,
            "demo",
            "generation",
            False,
            0,
            10.0,
            False,
            POST_TRAINED,
            "A tiny random-weight model built on this machine: checks your set-up, no account, no download. "
            "Its output is noise.",
            0.5,
        ),
        Entry(
            "optimized",
            "stabilityai/stable-audio-3-optimized",
            "other",
            "none",
            False,
            0,
            0.0,
            True,
            {},
            "MLX / ONNX / TensorRT exports of the models.",
            0.0,
            runnable=False,
            not_runnable_reason="It ships MLX, ONNX and TensorRT assets, not model_config.json + "
            "model.safetensors, so the PyTorch engine cannot load it.",
        ),
    ]
}


def get(key: str) -> Entry:
    """The entry for ``key``; unknown keys raise ValueError listing the valid ones."""
    try:
        return ENTRIES[key]
    except KeyError:
        raise ValueError(f"Unknown model {key!r}; choose one of: {', '.join(ENTRIES)}.") from None


def lookup(model) -> Entry | None:
    """The entry of a catalog key, or None for an existing local model folder; ValueError otherwise.

    A folder wins over a key of the same name, as in the engine (``demo`` is always the demo model).
    A name that looks like a path but is no folder is "not found"; any other name is unknown.
    """
    model = checks.path(model, "The model must be a catalog name such as small-music, or a model folder")
    if model != "demo" and Path(model).expanduser().is_dir():
        return None
    if model in ENTRIES:
        return ENTRIES[model]
    if "/" in model or "\\" in model or model.startswith(("~", ".")):
        raise ValueError(
            f"The model folder {model} was not found; check the path (the folder holds model_config.json "
            f"and model.safetensors), or choose one of: {', '.join(ENTRIES)}."
        )
    return get(model)


def in_collection(*collections: str) -> list[Entry]:
    return [e for e in ENTRIES.values() if e.collection in collections]


def keys(*collections: str) -> tuple[str, ...]:
    """The keys of the entries in ``collections``, in catalog order."""
    return tuple(e.key for e in in_collection(*collections))


def folder_objective(folder) -> str | None:
    """The diffusion objective in a local model folder's config, or None if it cannot be read."""
    try:
        config = json.loads((Path(folder).expanduser() / "model_config.json").read_text())
        return config["model"]["diffusion"].get("diffusion_objective")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def model_defaults(model: str) -> dict:
    """Default sampler settings of a catalog key or a local model folder (see :data:`POST_TRAINED`).

    A folder gets the base defaults when its config's objective is ``rectified_flow`` (the base
    checkpoints), else the post-trained ones.
    """
    if model in ENTRIES:
        return ENTRIES[model].defaults
    return BASE if folder_objective(model) == "rectified_flow" else POST_TRAINED
