"""Every default of the lab, in one place: taken from the engine and the model's config where they exist.

- Sampler settings per model (:func:`objective_defaults` of the model's objective, which
  :func:`sa3lab.catalog.model_defaults` looks up): the steps, CFG and sampler of the model's
  diffusion objective (:data:`stable_audio_3.sampling.OBJECTIVE_DEFAULTS`: post-trained models 8
  pingpong steps without guidance, base models 50 euler steps at CFG 7), and the guidance defaults of
  the engine's ``generate`` and DiT call (guidance over the whole schedule, no rescale, no norm cap,
  full APG, 6 s of duration padding), with the config's own schedule and upstream's audio-to-audio
  schedule.
- Schedule shift parameters: the engine's (:func:`stable_audio_3.sampling.shift_parameters`).
- The lab's own: a request's duration, the folders results are written to, and the peak policy of
  what is written (:mod:`sa3lab.peaks`): the ceiling, and whether the 32-bit float WAV keeps its raw
  level.
"""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path

from stable_audio_3 import sampling

DURATION = 10.0  # seconds of audio a generation request makes unless it says otherwise
OUTPUT_DIR = "outputs"  # where runs are saved (WAV + JSON sidecar)
SWEEP_OUTPUT_DIR = f"{OUTPUT_DIR}/sweep"
PEAK_CEILING_DBFS = 0.0  # fixed-point and lossy outputs louder than this are turned down by one gain
FLOAT_WAV = "raw"  # the saved 32-bit float WAV keeps overs; "protected": under the ceiling too
POST_TRAINED_OBJECTIVE = "rf_denoiser"
BASE_OBJECTIVE = "rectified_flow"
RADIO_SEGMENT_S = 10.0  # seconds of new audio each radio segment adds
RADIO_CONTEXT_S = 5.0  # seconds of the stream so far each radio segment continues from
RADIO_CROSSFADE_S = 0.05  # the joins' crossfade, inside the context the model regenerates


@functools.cache
def guidance() -> dict:
    """The engine's defaults of the guidance and schedule settings (upstream's), keyed by the lab's names."""
    from stable_audio_3.dit import DiffusionTransformer
    from stable_audio_3.pipeline import StableAudioModel

    generate = inspect.signature(StableAudioModel.generate).parameters
    dit = inspect.signature(DiffusionTransformer.forward).parameters
    return {
        "cfg_interval": tuple(float(x) for x in dit["cfg_interval"].default),
        "scale_phi": float(dit["scale_phi"].default),
        "cfg_norm_threshold": float(dit["cfg_norm_threshold"].default),
        "apg_scale": float(generate["apg_scale"].default),
        "schedule": None,  # None: the model config's own distribution shift
        "duration_padding": float(generate["duration_padding_sec"].default),
        "a2a_schedule": generate["a2a_schedule"].default,  # upstream's, for seed-for-seed parity
    }


def objective_defaults(objective: str | None) -> dict:
    """Every sampler setting's default for a diffusion objective: the engine's steps, CFG and sampler
    for it, and the guidance defaults. An unknown objective (a folder whose config cannot be read)
    counts as post-trained, whose settings are the engine's own call defaults."""
    if objective not in sampling.OBJECTIVE_DEFAULTS:
        objective = POST_TRAINED_OBJECTIVE
    return {**sampling.OBJECTIVE_DEFAULTS[objective], **guidance()}


def folder_objective(folder) -> str | None:
    """The diffusion objective in a local model folder's config, or None if it cannot be read."""
    try:
        config = json.loads((Path(folder).expanduser() / "model_config.json").read_text())
        return config["model"]["diffusion"].get("diffusion_objective")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
