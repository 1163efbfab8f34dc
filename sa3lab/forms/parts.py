"""Widgets and views the forms share: model picker, seed field, audio source, parsers and result views."""

from __future__ import annotations

import html
import re
import tempfile
import uuid
from pathlib import Path

import ipywidgets as widgets

from .. import catalog, checks, render, vocabulary
from ..audio_input import audio_info, check_readable, read_audio
from ..runs import RunResult, random_seed
from . import compat

STYLE = {"description_width": "130px"}
WIDE = {"width": "calc(100% - 4px)", "max_width": "680px"}  # the output area's width (less margins)
NARROW = {"width": "340px", "max_width": "100%"}
ROW = {"flex_flow": "row wrap"}  # a row of controls wraps onto the next line rather than clip
CENTRED_ROW = {**ROW, "align_items": "center"}  # such a row, its controls centred on one line
LOCAL = "__local__"
UPLOADS = Path(tempfile.gettempdir()) / "sa3lab-uploads"


def text_field(value: str = "", description: str = "", placeholder: str = "", wide: bool = True, **kw):
    layout = WIDE if wide else NARROW
    field = widgets.Text(
        value=value, description=description, placeholder=placeholder, style=STYLE, layout=layout, **kw
    )
    return compat.with_tooltip(field, placeholder) if placeholder else field  # whole on hover, if cut


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
            layout={"width": "420px", "max_width": "100%"},
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
        """Show ``model``: a choice of the dropdown (a catalog key it lacks is added), else a folder."""
        keys = [value for _, value in self.dropdown.options]
        if (
            model not in keys
            and model in catalog.ENTRIES
            and catalog.get(model).kind == catalog.get(keys[0]).kind
        ):
            listed = [option for option in self.dropdown.options if option[1] != LOCAL]
            local = [option for option in self.dropdown.options if option[1] == LOCAL]
            self.dropdown.options = [*listed, (_option_label(model), model), *local]
            keys.append(model)
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


FIXED, NEW_EACH_RUN = "fixed", "new each run"


class SeedField:
    """The seed as an explicit choice: fixed (the box's number) or new each run (a random one).

    With "new each run" the box shows the seed the last run used; "Keep" (or choosing "fixed")
    makes it the fixed seed. "New seed" draws one fixed seed. A box of -1 means a new seed too.
    """

    def __init__(self, value: int = -1):
        value = int(value)
        self.choice = widgets.ToggleButtons(
            options=[FIXED, NEW_EACH_RUN],
            value=NEW_EACH_RUN if value == -1 else FIXED,
            style={"button_width": "110px"},
            layout={"width": "auto"},
        )
        # the label beside the buttons (a ToggleButtons' own description wraps above them in 8)
        label = widgets.HTML(
            '<div style="text-align:right;padding-right:8px">Seed</div>',
            layout={"width": STYLE["description_width"]},
        )
        # text, not a number widget: the browser holds numbers as doubles, exact only below 2**53
        self.box = widgets.Text(value=str(value), layout={"width": "190px"})
        self.button = widgets.Button(description="New seed", icon="random", tooltip="Draw a new fixed seed")
        self.button.on_click(lambda _: self.fix(random_seed()))
        self.last = widgets.HTML()
        self.choice.observe(self._chosen, "value")
        self._chosen()
        self.widget = widgets.HBox([label, self.choice, self.box, self.button, self.last], layout=ROW)

    def _chosen(self, change=None) -> None:
        self.box.disabled = self.choice.value == NEW_EACH_RUN

    def fix(self, seed: int) -> None:
        """Use ``seed`` from now on (fixed)."""
        self.choice.value, self.box.value = FIXED, str(int(seed))

    def remember(self, seed: int | None) -> None:
        """After a run: show the seed it used (in the box too, when a new seed is drawn each run)."""
        if seed is None:
            return
        if self.choice.value == NEW_EACH_RUN:
            self.box.value = str(int(seed))
        self.last.value = f"<small>last run: seed {int(seed)}</small>"

    @property
    def value(self) -> int:
        """-1 for a new seed each run, else the fixed seed (ValueError if out of range)."""
        if self.choice.value == NEW_EACH_RUN:
            return -1
        return parse_seed(self.box.value)


def upload_name(name) -> str:
    """The file name an upload is shown and saved under (no folders; odd characters replaced)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(name or "upload")).name) or "upload"


def save_upload(name: str, data: bytes) -> Path:
    """Write one uploaded file to a private temporary folder of its own, under its own name."""
    folder = UPLOADS / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / upload_name(name)
    path.write_bytes(data)
    return path


EMPTY_UPLOAD_TEXT = (
    "{name} arrived empty (on Colab, uploads of about 1 MB or more do); copy the file into the runtime "
    "instead (the Files pane on the left, or a mounted Google Drive) and type its path, e.g. /content/{name}."
)
COLAB_UPLOAD_HELP = (
    "<small>On Colab, Upload takes files under about 1 MB; for larger ones drop the file in the Files "
    "pane on the left (or use a mounted Drive) and type its path, e.g. /content/clip.wav.</small>"
)


def take_uploads(upload: widgets.FileUpload, value) -> tuple[list[tuple[str, Path]], str]:
    """Save the files of a FileUpload ``value`` and drop their bytes from the widget (no bytes stay in
    widget state; the button still counts the files, see :func:`compat.clear_upload`).

    Returns (name as uploaded, saved path) per file, and a sentence on files that arrived empty
    ("" when none did; such files are not saved).
    """
    files = compat.uploaded_files(value)
    saved = [(Path(str(name)).name, save_upload(name, data)) for name, data in files if data]
    empty = [upload_name(name) for name, data in files if not data]
    if files:
        compat.clear_upload(upload)
    return saved, EMPTY_UPLOAD_TEXT.format(name=empty[0]) if empty else ""


PLAYER_SECONDS = 30.0  # the chosen file's player holds its first seconds


def unshown_text(path, exc: Exception) -> str:
    """One sentence for an audio file the reader took but its player could not be made of."""
    return f"The file {path} could not be shown ({type(exc).__name__}); choose another file."


def audio_seconds(path, what: str = "audio") -> float:
    """The length of an audio file in seconds (ValueError with one sentence if it cannot be used)."""
    return audio_info(path, what).duration


class AudioSource:
    """An audio file: a typed path or an upload, shown with its name, length and a player.

    An upload is saved to a temporary file and its bytes dropped from the upload widget, so they never
    stay in the notebook's widget state; the field then shows the file's name (not the temporary
    path) until another path is typed. :attr:`value` is the file to use.
    """

    def __init__(
        self, description: str = "Audio file", value: str = "", placeholder: str = "path/to/audio.wav"
    ):
        self.path = text_field(value, description, placeholder, continuous_update=False)
        self.upload = widgets.FileUpload(
            accept="audio/*,.wav,.flac,.ogg,.mp3,.m4a,.aac", multiple=False, description="Upload"
        )
        self.chosen = widgets.HTML()
        self._upload: tuple[str, Path] | None = None  # (name shown, saved file)
        self.upload.observe(self._uploaded, "value")
        self.path.observe(lambda _: self._show(), "value")
        rows = [widgets.HBox([self.path, self.upload], layout=ROW), self.chosen]
        if compat.colab_available():
            rows.insert(1, widgets.HTML(COLAB_UPLOAD_HELP))
        self.widget = widgets.VBox(rows)
        self._show()

    def _uploaded(self, change) -> None:
        saved, problem = take_uploads(self.upload, change["new"])
        if problem:
            self.chosen.value = render.message_html(problem, "warning")
        elif saved:
            self._upload = saved[0]
            if self.path.value == saved[0][0]:
                self._show()
            self.path.value = saved[0][0]

    @property
    def value(self) -> str:
        """The file to use: the upload while the field shows its name, else the typed path."""
        typed = self.path.value.strip()
        if self._upload is not None and typed == self._upload[0]:
            return str(self._upload[1])
        return typed

    def set(self, path) -> None:
        """Use the file at ``path`` (a result sent on, a past run's source)."""
        self._upload = None
        self.path.value = str(path or "")

    def _show(self) -> None:
        """The chosen file's name, length and player; its problem in one sentence if it cannot be read."""
        if not self.value:
            self.chosen.value = ""
            return
        try:
            info = audio_info(self.value)
            rate, audio = read_audio(info.path, max_seconds=PLAYER_SECONDS)
            player = render.audio_html(audio, rate)
        except ValueError as exc:
            self.chosen.value = render.message_html(str(exc), "warning")
            return
        except Exception as exc:  # noqa: BLE001 - a field never raises into the kernel
            self.chosen.value = render.message_html(unshown_text(self.value, exc), "warning")
            return
        file, seconds = info.path, info.duration
        name = (
            self._upload[0] if self._upload is not None and self.path.value == self._upload[0] else file.name
        )
        part = f" (player: its first {PLAYER_SECONDS:g} s)" if seconds > PLAYER_SECONDS else ""
        self.chosen.value = f"<div><small>{html.escape(name)} · {seconds:.2f} s{part}</small></div>{player}"

    def read(self, what: str = "audio") -> str:
        return str(check_readable(self.value, what))


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


def parse_seed(text: str) -> int:
    """One seed written as a whole number (read exactly, however large), checked against the bound."""
    text = str(text).strip()
    if not re.fullmatch(r"-?\d+", text):
        raise ValueError(f"{checks.SEED_RULE}; got {text!r}.")
    return checks.seed(int(text))


def parse_seeds(text: str, limit: int) -> list[int]:
    """Seeds separated by commas or spaces (-1: a random one), at most ``limit``."""
    seeds = [parse_seed(part) for part in re.split(r"[,\s;]+", text.strip()) if part]
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


def _sampler_line(settings: dict) -> str:
    return " · ".join(
        [
            settings["sampler"],
            *(
                f"{vocabulary.label(key)} {vocabulary.shown(key, settings[key])}"
                for key in ("cfg_interval", "scale_phi", "cfg_norm_threshold", "apg_scale")
            ),
            vocabulary.schedule_text(settings["schedule"]),
            f"padding {vocabulary.shown('duration_padding', settings['duration_padding'])}",
        ]
    )


def prompt_cut_sentence(prompt: str, tokens: int, max_tokens: int, cut_at: int) -> str:
    """Where the text encoder cuts a long prompt, in one sentence."""
    kept = prompt[:cut_at].rstrip()
    return (
        f"The prompt is {tokens} tokens and the model reads only the first {max_tokens}, up to "
        f"“…{kept[-40:]}”; the rest ({len(prompt) - cut_at} characters) is not used: shorten it."
    )


def _input_rows(settings: dict) -> dict:
    """The mode's inputs, LoRA files and expanded prompt of a generation's record."""
    rows = {}
    if isinstance(settings.get("source"), dict):  # a generation's source file (a round trip names its own)
        rows["source"] = vocabulary.source_text(settings["source"])
    if "init_noise_level" in settings:
        schedule = settings.get("a2a_schedule")
        rows["noise level"] = f"{settings['init_noise_level']:g}" + (
            f" ({schedule} schedule)" if schedule else ""
        )
    if settings.get("regions"):
        rows["regions"] = vocabulary.regions_text(settings["regions"])
    if "continuation_s" in settings:
        rows["continuation"] = f"keeps {settings['kept_s']:g} s, adds {settings['continuation_s']:g} s"
    for i, lora in enumerate(settings.get("loras") or ()):
        low, high = lora["interval"]
        layers = f", layers matching '{lora['layer_filter']}' off" if lora["layer_filter"] else ""
        bases = lora.get("svd_bases")
        bases = f", SVD bases {bases['name']} (sha256 {bases['sha256'][:12]})" if bases else ""
        rows[f"LoRA {i + 1}"] = (
            f"{lora['name']} (sha256 {lora['sha256'][:12]}) × {lora['strength']:g}, "
            f"noise levels {low:g}-{high:g}{layers}{bases}"
        )
    fit = settings.get("prompt_tokens") or {}
    if fit.get("cut_at") is not None:
        rows["prompt length"] = prompt_cut_sentence(
            settings.get("prompt", ""), fit["tokens"], fit["max_tokens"], fit["cut_at"]
        )
    expansion = settings.get("prompt_expansion")
    if expansion:
        edited = " and edited" if expansion.get("edited") else ""
        rows["prompt"] = (
            f"expanded{edited} from “{expansion['idea']}” ({expansion['preset']} → {expansion['category']}, "
            f"{expansion['model_id']})"
        )
    return rows


def run_rows(result: RunResult) -> dict:
    """Model, device, settings, inputs, cache and per-stage timings of a run, for a metadata table."""
    rows = {"model": result.model_key}
    if result.repo_id:
        rows["repo"] = f"{result.repo_id} @ {(result.revision or '?')[:10]}"
    rows["device"] = f"{result.device} · {result.dtype}"
    rows["seed"] = result.seed
    settings = [fmt.format(result.settings[k]) for k, fmt in SETTING_FORMATS.items() if k in result.settings]
    if settings:
        rows["settings"] = " · ".join(settings)
    if "sampler" in result.settings and "cfg_interval" in result.settings:
        rows["sampler"] = _sampler_line(result.settings)
    rows.update(_input_rows(result.settings))
    rows["model cache"] = (
        "hit (already loaded)" if result.cache_hit else f"loaded in {result.load_elapsed_s:.2f} s"
    )
    rows["timings"] = " · ".join(
        f"{stage.replace('_', ' ')} {sec:.2f} s" for stage, sec in result.timings.items()
    )
    return rows
