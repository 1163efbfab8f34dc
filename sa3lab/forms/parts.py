"""Widgets and views the forms share: model picker, seed field, audio source, parsers and result views."""

from __future__ import annotations

import html
import re
import tempfile
import uuid
from pathlib import Path

import ipywidgets as widgets

from .. import catalog
from ..audio_input import check_readable
from ..runs import RunResult, random_seed
from . import compat

STYLE = {"description_width": "130px"}
WIDE = {"width": "680px"}
LOCAL = "__local__"
UPLOADS = Path(tempfile.gettempdir()) / "sa3lab-uploads"


def text_field(value: str = "", description: str = "", placeholder: str = "", wide: bool = True, **kw):
    layout = WIDE if wide else {"width": "340px"}
    return widgets.Text(
        value=value, description=description, placeholder=placeholder, style=STYLE, layout=layout, **kw
    )


def _option_label(key: str) -> str:
    entry = catalog.get(key)
    if entry.key == "demo":
        return "demo (tiny offline test model: noise)"
    return f"{entry.key} (gated)" if entry.gated else entry.key


class ModelPicker:
    """A dropdown of catalog keys, a local-folder option with a path field, and a line about the model."""

    def __init__(self, keys, value: str | None = None, allow_local: bool = True):
        keys = list(keys)
        path = ""
        if value and value not in keys:
            if value in catalog.ENTRIES:
                keys.insert(0, value)
            elif allow_local:
                value, path = LOCAL, value
            else:
                raise ValueError(f"Unknown model {value!r} for this form; choose one of: {', '.join(keys)}.")
        options = [(_option_label(k), k) for k in keys]
        if allow_local:
            options.append(("local folder…", LOCAL))
        self.dropdown = widgets.Dropdown(
            options=options,
            value=value or keys[0],
            description="Model",
            style=STYLE,
            layout={"width": "420px"},
        )
        self.path = text_field(
            path, "Folder", "/path/to/model (model_config.json + model.safetensors)", continuous_update=False
        )
        self.info = widgets.HTML()
        self.dropdown.observe(self._changed, "value")
        self._changed()
        self.widget = widgets.VBox([self.dropdown, self.path, self.info])

    def _changed(self, change=None) -> None:
        local = self.dropdown.value == LOCAL
        self.path.layout.display = None if local else "none"
        entry = self.entry()
        if entry is None:
            self.info.value = (
                "<small>A folder with model_config.json and model.safetensors (as in the Hub repos).</small>"
            )
            return
        parts = [html.escape(entry.description)]
        if entry.max_duration_s:
            parts.append(f"up to {entry.max_duration_s:g} s")
        if entry.gated:
            parts.append(
                f"gated: accept its terms at <a href='{entry.page}' target='_blank'>{entry.page}</a>"
            )
        parts.append(html.escape(entry.device_advice))
        self.info.value = "<small>" + " · ".join(parts) + "</small>"

    def select(self, model: str) -> None:
        """Show ``model``: a choice of the dropdown, or else a local folder."""
        keys = [value for _, value in self.dropdown.options]
        if model in keys:
            self.dropdown.value = model
        elif LOCAL in keys:
            self.dropdown.value, self.path.value = LOCAL, model
        else:
            raise ValueError(f"{model} is not one of this form's models: {', '.join(keys)}.")

    def observe(self, callback) -> None:
        """Call ``callback()`` when the model or the folder changes."""
        self.dropdown.observe(lambda _: callback(), "value")
        self.path.observe(lambda _: callback(), "value")

    def entry(self) -> catalog.Entry | None:
        return None if self.dropdown.value == LOCAL else catalog.get(self.dropdown.value)

    def defaults(self) -> dict:
        """The chosen model's default steps / CFG / sampler (see :func:`sa3lab.catalog.model_defaults`)."""
        local = self.dropdown.value == LOCAL
        return catalog.model_defaults(self.path.value.strip() if local else self.dropdown.value)

    @property
    def value(self) -> str:
        """The catalog key, or the local folder (checked)."""
        if self.dropdown.value != LOCAL:
            return self.dropdown.value
        folder = self.path.value.strip()
        if not folder:
            raise ValueError(
                "Type the model folder (with model_config.json and model.safetensors), or choose a model."
            )
        if not Path(folder).expanduser().is_dir():
            raise ValueError(
                f"The folder {folder} does not exist; check the path, or choose a model from the list."
            )
        return folder


class SeedField:
    """A seed box (-1: a new random seed each run) with a button that draws a fixed new seed."""

    def __init__(self, value: int = -1):
        self.box = widgets.IntText(
            value=int(value),
            description="Seed",
            style=STYLE,
            layout={"width": "260px"},
            tooltip="-1 picks a random seed each run",
        )
        self.button = widgets.Button(description="New seed", icon="random", tooltip="Draw a new random seed")
        self.button.on_click(lambda _: setattr(self.box, "value", random_seed()))
        self.widget = widgets.HBox([self.box, self.button])

    @property
    def value(self) -> int:
        seed = int(self.box.value)
        if seed < -1 or seed > 2**32 - 1:
            raise ValueError(f"Seed must be -1 (random) or a whole number from 0 to {2**32 - 1}; got {seed}.")
        return seed


def save_upload(name: str, data: bytes) -> Path:
    """Write one uploaded file to a private temporary folder; returns its path."""
    UPLOADS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(name or "upload")).name) or "upload"
    path = UPLOADS / f"{uuid.uuid4().hex[:8]}-{safe}"
    path.write_bytes(data)
    return path


def take_uploads(upload: widgets.FileUpload, value) -> list[Path]:
    """Save the files of a FileUpload ``value`` and empty the widget (no bytes stay in widget state)."""
    saved = [save_upload(name, data) for name, data in compat.uploaded_files(value)]
    if saved:
        compat.clear_upload(upload)
    return saved


class AudioSource:
    """An audio file: typed path or upload. An upload is saved to a temporary file whose path fills the field,
    and the upload widget is emptied so the audio bytes never stay in the notebook's widget state."""

    def __init__(
        self, description: str = "Audio file", value: str = "", placeholder: str = "path/to/audio.wav"
    ):
        self.path = text_field(value, description, placeholder)
        self.upload = widgets.FileUpload(
            accept="audio/*,.wav,.flac,.ogg,.mp3", multiple=False, description="Upload"
        )
        self.upload.observe(self._uploaded, "value")
        self.widget = widgets.HBox([self.path, self.upload])

    def _uploaded(self, change) -> None:
        saved = take_uploads(self.upload, change["new"])
        if saved:
            self.path.value = str(saved[0])

    def read(self, what: str = "audio") -> str:
        return str(check_readable(self.path.value, what))


def parse_numbers(text: str, what: str, example: str = "1, 0.5") -> list[float]:
    """Numbers separated by commas or spaces."""
    values = []
    for part in re.split(r"[,\s;]+", text.strip()):
        if not part:
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(
                f"Write {what} as numbers separated by commas, e.g. {example}; could not read {part!r}."
            ) from None
    return values


def parse_regions(text: str) -> list[tuple[float, float]]:
    """``"2-4, 6-7.5"`` -> ``[(2.0, 4.0), (6.0, 7.5)]``."""
    regions = []
    for part in [p.strip() for p in re.split(r"[,;]+", text) if p.strip()]:
        match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*(?:-|–|to)\s*(\d+(?:\.\d*)?)", part)
        if match is None:
            raise ValueError(
                "Write regions as start-end in seconds separated by commas, e.g. 2-4, 6-7.5; "
                f"could not read {part!r}."
            )
        regions.append((float(match[1]), float(match[2])))
    if not regions:
        raise ValueError(
            "Add at least one region to regenerate, e.g. 2-4 (seconds), or 8-12 to continue an 8 s clip."
        )
    return regions


def parse_seeds(text: str, limit: int) -> list[int]:
    seeds = []
    for value in parse_numbers(text, "seeds", "42, 7"):
        if value != int(value) or value < -1:
            raise ValueError(f"Seeds must be whole numbers of 0 or more (or -1 for random); got {value:g}.")
        seeds.append(int(value))
    if not seeds:
        raise ValueError("Give at least one seed, e.g. 42 or 42, 7.")
    if len(seeds) > limit:
        raise ValueError(f"Use at most {limit} seeds per comparison; got {len(seeds)}.")
    return seeds


# ---------------------------------------------------------------------------------------------- views


SETTING_FORMATS = {
    "mode": "{}",
    "steps": "{} steps",
    "cfg_scale": "CFG {:g}",
    "duration": "{:g} s",
    "batch_size": "batch {}",
}


def run_rows(result: RunResult) -> dict:
    """Model, device, settings, cache and per-stage timings of a run, for a metadata table."""
    rows = {"model": result.model_key}
    if result.repo_id:
        rows["repo"] = f"{result.repo_id} @ {(result.revision or '?')[:10]}"
    rows["device"] = f"{result.device} · {result.dtype}"
    rows["seed"] = result.seed
    settings = [fmt.format(result.settings[k]) for k, fmt in SETTING_FORMATS.items() if k in result.settings]
    if settings:
        rows["settings"] = " · ".join(settings)
    rows["model cache"] = (
        "hit (already loaded)" if result.cache_hit else f"loaded in {result.load_elapsed_s:.2f} s"
    )
    rows["timings"] = " · ".join(
        f"{stage.replace('_', ' ')} {sec:.2f} s" for stage, sec in result.timings.items()
    )
    return rows
