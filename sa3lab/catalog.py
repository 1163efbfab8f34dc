"""The Stable Audio 3 collections: what each repo is, whether it is gated, where it runs well.

The repositories are the engine's (:data:`stable_audio_3.hub.DIFFUSION_MODELS` and
:data:`~stable_audio_3.hub.AUTOENCODER_MODELS`): the catalog adds what a notebook user needs to
choose one. A model's default settings come from its objective (:mod:`sa3lab.defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stable_audio_3.hub import AUTOENCODER_MODELS, DIFFUSION_MODELS

from . import checks, defaults
from .defaults import BASE_OBJECTIVE, POST_TRAINED_OBJECTIVE

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
    objective: str | None  # the diffusion objective of a text-to-audio model (its defaults follow)
    description: str
    memory_gib: float  # rough need in float32 on CPU
    sibling: str | None = None  # the post-trained model of a base checkpoint
    runnable: bool = True
    not_runnable_reason: str = ""

    @property
    def defaults(self) -> dict:
        """The default sampler settings (:func:`sa3lab.defaults.objective_defaults`); {} for others."""
        return defaults.objective_defaults(self.objective) if self.objective else {}

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
            DIFFUSION_MODELS["small-music"],
            "standard",
            "generation",
            True,
            SMALL_PARAMS,
            120.0,
            False,
            POST_TRAINED_OBJECTIVE,
            "Music and stems, up to 2 minutes.",
            5.0,
        ),
        Entry(
            "small-sfx",
            DIFFUSION_MODELS["small-sfx"],
            "standard",
            "generation",
            True,
            SMALL_PARAMS,
            120.0,
            False,
            POST_TRAINED_OBJECTIVE,
            "Sound effects and one-shots.",
            5.0,
        ),
        Entry(
            "medium",
            DIFFUSION_MODELS["medium"],
            "standard",
            "generation",
            True,
            MEDIUM_PARAMS,
            380.0,
            True,
            POST_TRAINED_OBJECTIVE,
            "Music, stems and sound effects, up to 6 minutes; the best quality.",
            18.0,
        ),
        Entry(
            "small-music-base",
            DIFFUSION_MODELS["small-music-base"],
            "base",
            "generation",
            False,
            SMALL_PARAMS,
            120.0,
            False,
            BASE_OBJECTIVE,
            "Base checkpoint of small-music (for LoRA training, CFG).",
            5.0,
            sibling="small-music",
        ),
        Entry(
            "small-sfx-base",
            DIFFUSION_MODELS["small-sfx-base"],
            "base",
            "generation",
            False,
            SMALL_PARAMS,
            120.0,
            False,
            BASE_OBJECTIVE,
            "Base checkpoint of small-sfx.",
            5.0,
            sibling="small-sfx",
        ),
        Entry(
            "medium-base",
            DIFFUSION_MODELS["medium-base"],
            "base",
            "generation",
            False,
            MEDIUM_PARAMS,
            380.0,
            True,
            BASE_OBJECTIVE,
            "Base checkpoint of medium.",
            18.0,
            sibling="medium",
        ),
        Entry(
            "same-s",
            AUTOENCODER_MODELS["same-s"],
            "autoencoder",
            "autoencoder",
            False,
            108_244_721,
            120.0,
            False,
            None,
            "The autoencoder of the small models (44.1 kHz stereo <-> 256 x 10.77 Hz latents).",
            1.5,
        ),
        Entry(
            "same-l",
            AUTOENCODER_MODELS["same-l"],
            "autoencoder",
            "autoencoder",
            False,
            852_127_457,
            380.0,
            True,
            None,
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
            POST_TRAINED_OBJECTIVE,
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
            None,
            "MLX / ONNX / TensorRT exports of the models.",
            0.0,
            runnable=False,
            not_runnable_reason="It ships MLX, ONNX and TensorRT assets, not model_config.json + "
            "model.safetensors, so the PyTorch engine cannot load it.",
        ),
    ]
}


class ModelRequest:
    """What the lab's requests share: ``model`` is a catalog key or a local model folder, and a
    request is checked once, when it is built (``check`` raises ValueError with one sentence)."""

    model: str

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        raise NotImplementedError

    def entry(self) -> Entry | None:
        """The catalog entry, or None for a local folder (ValueError: not found / unknown)."""
        return lookup(self.model)


def model_defaults(model: str) -> dict:
    """Default sampler settings of a catalog key or a local model folder (its config's objective)."""
    entry = ENTRIES.get(model)
    objective = entry.objective if entry is not None else defaults.folder_objective(model)
    return defaults.objective_defaults(objective)


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
    model = checks.path("The model must be a catalog name such as small-music, or a model folder", model)
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
