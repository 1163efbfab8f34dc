"""One vocabulary for a run's record: the labels and units the forms use, for every place that shows
one (result cards, the results library), so that a setting reads the same everywhere."""

from __future__ import annotations

import json
from pathlib import Path

from .generation import SETTINGS


def _in_a_table(form_label: str) -> str:
    """A form's label as a table row names it: lower case but for acronyms, no unit."""
    text = form_label.removesuffix(" (s)")
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


LABELS = {
    **{key: _in_a_table(setting.label) for key, setting in SETTINGS.items()},
    "sampler": "sampler",
    "schedule": "schedule",
    "a2a_schedule": "A2A schedule",
    "mode": "mode",
    "prompt": "prompt",
    "negative_prompt": "negative prompt",
    "duration": "duration",
    "batch_size": "batch size",
    "init_noise_level": "noise level",
    "continuation_s": "seconds added",
    "kept_s": "seconds kept",
    "regions": "regions",
    "source": "source",
    "loras": "LoRA files",
    "prompt_tokens": "prompt length",
    "prompt_expansion": "expanded from",
    "chunked": "chunked",
    "latent_shape": "latent shape",
    "latent_rate_hz": "latent frame rate",
    "snr_db": "SNR",
    "multi_resolution_stft_distance": "multi-resolution STFT distance",
}
SECONDS = {"duration", "duration_padding", "continuation_s", "kept_s"}


def label(key: str) -> str:
    """The form's name for a record key (an unknown key reads with spaces for underscores)."""
    return LABELS.get(key, key.replace("_", " "))


def regions_text(regions) -> str:
    """Regions in seconds as "1.0–3.0 s, 6.25–8.0 s"."""
    return ", ".join(f"{_seconds(start)}–{_seconds(end)} s" for start, end in regions)


def _seconds(value) -> str:
    """Seconds with one decimal at least and two at most: 1.0, 6.25."""
    text = f"{float(value):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def source_text(source) -> str:
    """A source file by its name and a short hash (the record keeps the full path)."""
    if isinstance(source, dict) and "name" in source:
        digest = str(source.get("sha256") or "")[:12]
        return f"{Path(str(source['name'])).name}" + (f" (sha256 {digest})" if digest else "")
    return str(source)


def schedule_text(schedule: dict | None) -> str:
    """A schedule as a person reads it: "the config's own", or its type and parameters."""
    if not schedule:
        return "the config's own schedule"
    params = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in schedule.items() if k != "type")
    return f"{schedule['type']} shift" + (f" ({params})" if params else "")


def shown(key: str, value) -> str:
    """A recorded value with the form's units: seconds, dB, frames/s, ranges, file names."""
    try:
        return _shown(key, value)
    except (TypeError, ValueError, KeyError, AttributeError):  # a damaged record: show it as it is
        return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


def _shown(key: str, value) -> str:
    if key == "regions":
        return regions_text(value)
    if key == "source":
        return source_text(value)
    if key == "schedule":
        return schedule_text(value)
    if key == "cfg_interval":
        low, high = value
        return f"{float(low):g}–{float(high):g}"
    if key == "loras":
        return ", ".join(f"{Path(str(lora['name'])).name} × {float(lora['strength']):g}" for lora in value)
    if key == "prompt_tokens":
        return f"{value['tokens']} tokens (the model reads {value['max_tokens']})"
    if key == "prompt_expansion":
        return str(value.get("idea", ""))
    if key == "latent_shape":
        return " × ".join(str(n) for n in value)
    if key == "snr_db":
        return f"{float(value):.2f} dB"
    if key == "latent_rate_hz":
        return f"{float(value):.2f} frames/s"
    if key in SECONDS:
        return f"{float(value):g} s"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)
