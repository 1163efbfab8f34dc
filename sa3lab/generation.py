"""The generation request: what one generation can set, its checks, and the settings as they run.

The run itself is :meth:`sa3lab.run_core.RunCore.generate`; every other job that makes audio builds
these requests too (a sweep item is one).

Text-to-audio, audio-to-audio, inpainting and continuation, each optionally with LoRA files (each
with its own strength, interval and layer filter). Every sampler setting left unset (None) takes the
model's default from :func:`sa3lab.catalog.model_defaults`, for the button and the plain-Python path
alike; :data:`SETTINGS` and :data:`SCHEDULES` give each setting's range and one-line help (the form
shows the same). More than :data:`LONG_STEPS` steps run only with ``confirm_long=True`` (the refusal
says how much longer they take); :data:`MAX_STEPS` is the most.

The run record (``RunResult.settings``, the table and the JSON sidecar) holds every setting as it
ran, the mode's inputs (source file name and sha256, noise level, regions, continuation length),
each LoRA file (name, sha256, strength, interval, layer filter), the expanded prompt and the seed
actually used; ``RunResult.request`` is the request as it ran: :meth:`GenerationRequest.from_record`
rebuilds it, and running it again gives the same audio.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stable_audio_3 import sampling

from . import catalog, checks, defaults, peaks
from .audio_input import check_readable

MODES = ("text-to-audio", "audio-to-audio", "inpaint", "continuation")


def _add_out_of_range(duration: float, add_s: float) -> str:
    return (
        f"Set how many seconds to add: more than 0 and less than the duration ({duration:g} s), "
        f"which counts the kept part too; got {add_s:g} s."
    )


def continuation_duration(clip_s: float, add_s: float, limit_s: float | None) -> float:
    """The duration a continuation of a ``clip_s`` clip asks for: the clip plus ``add_s``, at most the
    model's ``limit_s`` (then the clip's start is kept, as :func:`continuation_text` says)."""
    total = clip_s + add_s
    return total if limit_s is None else min(total, limit_s)


def continuation_text(duration: float, add_s: float, clip_s: float) -> str:
    """What a continuation request does with a ``clip_s`` clip: the arithmetic the run does (it keeps
    the source's first ``duration - add_s`` seconds and generates the rest)."""
    kept = duration - add_s
    if not 0 < add_s < duration:
        return _add_out_of_range(duration, add_s)
    if kept > clip_s + 1e-6:
        return (
            f"Keeps the clip's {clip_s:.2f} s and {kept - clip_s:.2f} s of silence after it, then adds "
            f"{add_s:g} s: duration {duration:.2f} s."
        )
    kept_text = f"first {kept:.2f} s (of its {clip_s:.2f} s)" if kept < clip_s - 1e-6 else f"{clip_s:.2f} s"
    return f"Keeps the clip's {kept_text} and adds {add_s:g} s: duration {duration:.2f} s."


LONG_STEPS = 200  # more steps need confirm_long=True
MAX_STEPS = 1000
MAX_CFG = 100.0
MAX_BATCH = 16
MAX_LORA_STRENGTH = 10.0
SAMPLERS = tuple(sampling.SAMPLERS)
SAMPLER_SETTINGS = (  # None: the model's default (sa3lab.defaults)
    "steps",
    "cfg_scale",
    "sampler",
    "cfg_interval",
    "scale_phi",
    "cfg_norm_threshold",
    "apg_scale",
    "schedule",
    "duration_padding",
    "a2a_schedule",
)
A2A_SCHEDULES = sampling.A2A_SCHEDULES
A2A_SCHEDULE_HELP = (
    "Audio to audio below noise 1: upstream's schedule (the default, same audio as upstream) can rise "
    "above the noise level asked for; corrected (upstream PR #94) never goes above it."
)
LATENT_RATE = 44100 / 4096  # latent frames per second of the released models (for noise_levels)


@dataclass(frozen=True)
class Setting:
    """One sampler setting as a person sees it: label, one-line help and inclusive range."""

    label: str
    help: str
    low: float
    high: float


SETTINGS = {
    "steps": Setting(
        "Steps",
        "Model runs along the schedule: more is slower; post-trained models use 8, base ~50.",
        1,
        MAX_STEPS,
    ),
    "cfg_scale": Setting(
        "CFG scale",
        "How strongly the prompt steers: 1 = no guidance (post-trained), 3-9 for base models.",
        0,
        MAX_CFG,
    ),
    "cfg_interval": Setting(
        "CFG interval",
        "Noise levels where guidance runs (1 = the start, 0 = the end); elsewhere one model run.",
        0,
        1,
    ),
    "scale_phi": Setting(
        "CFG rescale",
        "Pulls a guided step's spread back to the unguided one's (0 = off): tames a high CFG.",
        0,
        1,
    ),
    "cfg_norm_threshold": Setting(
        "CFG norm cap",
        "Caps the size of each guidance step (0 = no cap); a few tens limits overshoot.",
        0,
        100,
    ),
    "apg_scale": Setting(
        "APG scale", "Adaptive projected guidance: 1 = full APG (less oversaturation), 0 = plain CFG.", 0, 1
    ),
    "duration_padding": Setting(
        "Padding (s)", "Seconds generated past the duration and cut off, so the ending is not rushed.", 0, 30
    ),
}
SAMPLER_HELP = (
    "pingpong is what post-trained models are distilled for; euler and dpmpp suit base models; "
    "rk4 runs the model 4 times per step."
)


@dataclass(frozen=True)
class Param:
    """One parameter of a schedule shift: name, inclusive range, whole number or not; its default is
    the engine's (:func:`stable_audio_3.sampling.shift_parameters`)."""

    kind: str
    name: str
    low: float
    high: float
    whole: bool = False

    @property
    def default(self) -> float:
        return sampling.shift_parameters(self.kind)[self.name]


def _params(kind: str, *ranges) -> tuple[Param, ...]:
    return tuple(Param(kind, *spec) for spec in ranges)


SCHEDULES = {  # the engine's shift types (stable_audio_3.sampling) and upstream's interface ranges
    "logsnr": _params(
        "logsnr",
        ("anchor_length", 100, 10000, True),
        ("anchor_logsnr", -12, 0),
        ("rate", -2, 2),
        ("logsnr_end", -2, 6),
    ),
    "flux": _params(
        "flux",
        ("min_length", 1, 10000, True),
        ("max_length", 1, 10000, True),
        ("alpha_min", 0.1, 20),
        ("alpha_max", 0.1, 20),
    ),
    "full": _params(
        "full",
        ("base_shift", 0, 5),
        ("max_shift", 0, 5),
        ("min_length", 1, 10000, True),
        ("max_length", 1, 10000, True),
    ),
    "none": (),
}
SCHEDULE_HELP = (
    "How the steps spread over the noise levels: the model config's own, or a shift with its parameters "
    "(LogSNR: even in log-SNR; Flux / Full: stretched by the length; None: linear)."
)


@dataclass(frozen=True)
class LoraUse:
    """One LoRA file as a run uses it: strength, noise-level interval (1 = start), layer filter, and for an
    ``-xs`` file the frozen SVD bases file it was trained against ("" for none: recomputed, with a note)."""

    file: str
    strength: float = 1.0
    interval: tuple[float, float] = (0.0, 1.0)
    layer_filter: str = ""
    svd_bases: str = ""


@dataclass
class GenerationRequest(catalog.ModelRequest):
    """One generation. ``model`` is a catalog key or a local model folder. Holds no token.

    Sampler settings (:data:`SAMPLER_SETTINGS`) left None take the model's defaults. ``schedule``:
    ``{"type": "logsnr" | "flux" | "full" | "none", <its parameters>}`` (see :data:`SCHEDULES`), or
    None for the model config's own. ``a2a_schedule``: ``"upstream"`` (the default) or
    ``"corrected"``, how audio-to-audio's schedule starts below full noise (:data:`A2A_SCHEDULE_HELP`,
    :func:`noise_levels`). ``lora_strengths`` / ``lora_intervals`` / ``lora_layer_filters`` /
    ``lora_svd_bases`` hold one value per LoRA file, one for all of them, or none (1, (0, 1), "", "").
    A continuation keeps the first ``duration - continuation_s`` seconds of the source and generates
    the rest.
    ``prompt_expansion``: what the Prompt Assistant wrote the prompt from (recorded, not used).
    ``peak_ceiling_dbfs``: outputs louder than this are turned down by one gain, never clipped;
    ``float_wav``: the saved 32-bit float WAV stays "raw" or is "protected" the same way
    (:mod:`sa3lab.peaks`). ``confirm_long`` allows more than :data:`LONG_STEPS` steps.
    """

    model: str
    prompt: str
    duration: float = defaults.DURATION
    negative_prompt: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    cfg_interval: tuple[float, float] | None = None
    scale_phi: float | None = None
    cfg_norm_threshold: float | None = None
    apg_scale: float | None = None
    schedule: dict | None = None
    duration_padding: float | None = None
    a2a_schedule: str | None = None
    seed: int = -1
    batch_size: int = 1
    mode: str = "text-to-audio"
    source_audio: str | None = None  # file for audio-to-audio / inpainting / continuation
    init_noise_level: float = 0.7
    regions: list[tuple[float, float]] = field(default_factory=list)  # inpaint (start, end) seconds
    continuation_s: float = 0.0
    lora_files: list[str] = field(default_factory=list)
    lora_strengths: list[float] = field(default_factory=list)
    lora_intervals: list[tuple[float, float]] = field(default_factory=list)
    lora_layer_filters: list[str] = field(default_factory=list)
    lora_svd_bases: list[str] = field(default_factory=list)  # frozen svd_bases.pt of -xs files ("": none)
    prompt_expansion: dict | None = None
    output_dir: str = defaults.OUTPUT_DIR
    peak_ceiling_dbfs: float = defaults.PEAK_CEILING_DBFS
    float_wav: str = defaults.FLOAT_WAV
    confirm_long: bool = False

    @classmethod
    def checked(cls, request) -> GenerationRequest:
        """``request``, which must be a GenerationRequest (checked when it was built)."""
        if not isinstance(request, cls):
            raise ValueError(f"A generation takes a GenerationRequest; got {checks.shown(request)}.")
        return request

    @classmethod
    def from_record(cls, meta: dict) -> GenerationRequest:
        """The request a saved run's sidecar records (``meta["request"]``): running it again gives the run."""
        record = dict(meta.get("request") or {})
        if not record:
            raise ValueError(
                "This run's record has no request (it was saved by an older sa3lab); run it anew."
            )
        for name in ("regions", "lora_intervals"):
            record[name] = [tuple(pair) for pair in record.get(name) or []]
        if record.get("cfg_interval") is not None:
            record["cfg_interval"] = tuple(record["cfg_interval"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in known})

    def settings(self) -> dict:
        """Every sampler setting as it will run: the request's own, else the model's default."""
        model_defaults = catalog.model_defaults(self.model)
        own = {name: getattr(self, name) for name in SAMPLER_SETTINGS}
        return {name: model_defaults[name] if own[name] is None else own[name] for name in SAMPLER_SETTINGS}

    def loras(self) -> list[LoraUse]:
        """Each LoRA file with its strength, interval and layer filter (a single value applies to all)."""
        count = len(self.lora_files)

        def spread(values, default):
            values = list(values) or [default]
            return values * count if len(values) == 1 else values

        return [
            LoraUse(file, strength, tuple(interval), layer_filter, bases)
            for file, strength, interval, layer_filter, bases in zip(
                self.lora_files,
                spread(self.lora_strengths, 1.0),
                spread(self.lora_intervals, (0.0, 1.0)),
                spread(self.lora_layer_filters, ""),
                spread(self.lora_svd_bases, ""),
                strict=True,
            )
        ]

    def edit_regions(self) -> list[tuple[float, float]]:
        """The regions regenerated: inpaint's own, a continuation's from its kept part to the end."""
        if self.mode == "inpaint":
            return list(self.regions)
        if self.mode == "continuation":
            return [(self.duration - self.continuation_s, self.duration)]
        return []

    def check(self) -> None:
        """Raise ValueError with one sentence for anything a person must fix.

        Types, ranges and finiteness of every field, then what depends on the model and the files.
        Whole numbers given as whole floats (8.0) become ints, paths become strings, pairs tuples.
        """
        self._check_values()
        self._check_sampler_settings()
        self._check_loras()
        entry = self.entry()
        if entry is not None and not entry.runnable:
            raise ValueError(f"{entry.key} cannot run here: {entry.not_runnable_reason}")
        if entry is not None and entry.kind != "generation":
            raise ValueError(f"{entry.key} is an autoencoder; use the SAME notebook (03) for it.")
        limit = entry.max_duration_s if entry is not None else None
        if limit is not None and self.duration > limit:
            raise ValueError(
                f"Duration must be more than 0 and at most {limit:g} s for {self.model}; "
                f"got {self.duration:g} s."
            )
        self._check_long_run()
        self._check_mode()

    def _check_values(self) -> None:
        """The prompt, length, seed, mode and files on their own: type, finiteness, range."""
        self.model = checks.path(
            "The model must be a catalog name such as small-music, or a folder", self.model
        )
        self.prompt = checks.text("The prompt must be text, e.g. 'rain on a tin roof'", self.prompt)
        if not self.prompt.strip():
            raise ValueError("Enter a prompt: describe the audio you want, e.g. 'rain on a tin roof'.")
        self.negative_prompt = checks.text(
            "The negative prompt must be text (or empty)", self.negative_prompt or ""
        )
        self.duration = checks.real(
            "Duration must be a number of seconds, more than 0", self.duration, above=0
        )
        self.seed = checks.seed(self.seed)
        self.batch_size = checks.whole(
            f"Batch size must be between 1 and {MAX_BATCH} (a whole number)",
            self.batch_size,
            low=1,
            high=MAX_BATCH,
        )
        if self.mode not in MODES:
            raise ValueError(f"Mode must be one of {', '.join(MODES)}; got {checks.shown(self.mode)}.")
        self.source_audio = (
            checks.path("The source audio must be a file path", self.source_audio, True) or None
        )
        self.init_noise_level = checks.real(
            "The noise level must be a number above 0 and at most 1", self.init_noise_level, above=0, high=1
        )
        pairs = "Regions must be a list of (start, end) pairs in seconds, e.g. [(2, 4), (6, 7.5)]"
        self.regions = [checks.pair(pairs, pair) for pair in checks.items(pairs, self.regions)]
        self.continuation_s = checks.real(
            "The continuation length must be a number of seconds (0 or more)", self.continuation_s, low=0
        )
        if self.prompt_expansion is not None and not isinstance(self.prompt_expansion, dict):
            raise ValueError(
                f"prompt_expansion must be a dict (the Prompt Assistant's record) or None; "
                f"got {checks.shown(self.prompt_expansion)}."
            )
        self.output_dir = checks.path(
            "The output folder must be a folder path, e.g. 'outputs'", self.output_dir
        )
        self.peak_ceiling_dbfs = peaks.checked_ceiling(self.peak_ceiling_dbfs)
        self.float_wav = peaks.checked_float_wav(self.float_wav)
        self.confirm_long = checks.flag("confirm_long must be True or False", self.confirm_long)

    def _check_sampler_settings(self) -> None:
        """Each sampler setting that is set: its type and range (:data:`SETTINGS`)."""
        for name in (
            "steps",
            "cfg_scale",
            "scale_phi",
            "cfg_norm_threshold",
            "apg_scale",
            "duration_padding",
        ):
            value = getattr(self, name)
            if value is None:
                continue
            spec = SETTINGS[name]
            setattr(self, name, _ranged(spec.label, value, spec.low, spec.high, whole=name == "steps"))
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise ValueError(
                f"The sampler must be one of {', '.join(SAMPLERS)}; got {checks.shown(self.sampler)}."
            )
        if self.cfg_interval is not None:
            self.cfg_interval = _interval(self.cfg_interval, "The CFG interval must be", "(0, 1)")
        if self.schedule is not None:
            self.schedule = check_schedule(self.schedule)
        if self.a2a_schedule is not None and self.a2a_schedule not in A2A_SCHEDULES:
            raise ValueError(
                f"The audio-to-audio schedule must be one of {', '.join(A2A_SCHEDULES)} (or None for "
                f"upstream's); got {checks.shown(self.a2a_schedule)}."
            )

    def _check_loras(self) -> None:
        files = "LoRA files must be a list of paths, e.g. ['style.safetensors']"
        self.lora_files = [checks.path(files, f) for f in checks.items(files, self.lora_files)]
        strengths = (
            f"LoRA strengths must be a list of numbers from {-MAX_LORA_STRENGTH:g} to {MAX_LORA_STRENGTH:g}, "
            "e.g. [0.8]"
        )
        self.lora_strengths = [
            checks.real(strengths, x, low=-MAX_LORA_STRENGTH, high=MAX_LORA_STRENGTH)
            for x in checks.items(strengths, self.lora_strengths)
        ]
        intervals = "LoRA intervals must be a list of (low, high) pairs, e.g. [(0, 1)]"
        self.lora_intervals = [
            _interval(pair, "Each LoRA interval must be", "(0.5, 1)")
            for pair in checks.items(intervals, self.lora_intervals)
        ]
        filters = "LoRA layer filters must be a list of texts, e.g. ['layers.[0-11].'] ('' for every layer)"
        self.lora_layer_filters = [
            checks.text(filters, f) for f in checks.items(filters, self.lora_layer_filters)
        ]
        bases = "SVD bases files must be a list of paths, e.g. ['svd_bases.pt'] ('' for none)"
        self.lora_svd_bases = [checks.path(bases, f, True) for f in checks.items(bases, self.lora_svd_bases)]
        for file in self.lora_files:
            if not Path(file).expanduser().is_file():
                raise ValueError(f"The LoRA file {file} was not found; check the path or upload it.")
        for file in self.lora_svd_bases:
            if file and not Path(file).expanduser().is_file():
                raise ValueError(
                    f"The SVD bases file {file} was not found; check the path or leave it empty."
                )
        for values, what in (
            (self.lora_strengths, "strength"),
            (self.lora_intervals, "interval"),
            (self.lora_layer_filters, "layer filter"),
            (self.lora_svd_bases, "SVD bases file"),
        ):
            if len(values) not in (0, 1, len(self.lora_files)):
                raise ValueError(f"Give one LoRA {what} per LoRA file, one for all, or none for the default.")

    def _check_mode(self) -> None:
        """The source file and the regions of the mode."""
        if self.mode != "text-to-audio":
            what = "audio to transform" if self.mode == "audio-to-audio" else "audio to edit"
            check_readable(self.source_audio or "", what)
        if self.mode == "inpaint" and not self.regions:
            raise ValueError("Add at least one region to regenerate (start and end in seconds).")
        if self.mode == "continuation" and not 0 < self.continuation_s < self.duration:
            raise ValueError(_add_out_of_range(self.duration, self.continuation_s))
        for start, end in self.edit_regions():
            if not 0 <= start < end <= self.duration:
                raise ValueError(
                    f"The region {start:g}-{end:g} s must lie inside 0-{self.duration:g} s with start < end."
                )

    def _check_long_run(self) -> None:
        """More than LONG_STEPS steps only with confirm_long, said with how much longer they take."""
        if self.steps is None or self.steps <= LONG_STEPS or self.confirm_long:
            return
        default = catalog.model_defaults(self.model)["steps"]
        raise ValueError(
            f"{self.steps} steps take about {self.steps / default:.0f} times as long as this model's "
            f"default of {default} steps (the model runs once per step): confirm the long run "
            f"(confirm_long=True; in the form: tick allow more than {LONG_STEPS} steps) or use at most "
            f"{LONG_STEPS} steps."
        )


def _ranged(label: str, value, low: float, high: float, whole: bool = False):
    """``value`` checked against ``low``..``high``: "<label> must be a (whole) number from low to high"."""
    rule = f"{label} must be a {'whole ' if whole else ''}number from {low:g} to {high:g}"
    return (checks.whole if whole else checks.real)(rule, value, low=low, high=high)


def _interval(value, start: str, example: str) -> tuple[float, float]:
    """A (low, high) pair of noise levels with 0 <= low <= high <= 1."""
    rule = f"{start} a pair (low, high) of noise levels with 0 <= low <= high <= 1, e.g. {example}"
    return checks.interval(rule, value)


def check_schedule(schedule) -> dict:
    """A schedule shift ``{"type": ..., <parameters>}`` with every parameter in range (missing: default)."""
    kinds = ", ".join(SCHEDULES)
    if not isinstance(schedule, dict) or schedule.get("type") not in SCHEDULES:
        raise ValueError(
            f"The schedule must be None (the model's own) or a dict whose 'type' is one of {kinds}, "
            f"e.g. {{'type': 'logsnr', 'rate': 0.5}}; got {checks.shown(schedule)}."
        )
    params = SCHEDULES[schedule["type"]]
    unknown = set(schedule) - {"type", *(p.name for p in params)}
    if unknown:
        names = ", ".join(p.name for p in params) or "none"
        raise ValueError(
            f"The {schedule['type']} schedule takes {names}; remove {', '.join(sorted(unknown))}."
        )
    checked = {"type": schedule["type"]}
    for p in params:
        label = f"The schedule's {p.name}"
        checked[p.name] = _ranged(label, schedule.get(p.name, p.default), p.low, p.high, p.whole)
    if "min_length" in checked and checked["min_length"] >= checked["max_length"]:
        raise ValueError(
            f"The schedule's min_length ({checked['min_length']}) must be less than its max_length "
            f"({checked['max_length']})."
        )
    return checked


def noise_levels(
    model: str,
    duration: float,
    steps: int,
    init_noise_level: float,
    schedule: dict | None,
    a2a_schedule: str,
) -> list[float]:
    """The noise levels an audio-to-audio run of these settings samples along, start first.

    ``schedule`` None is the model config's own shift (a local folder's config, else the engine's
    default, which the released configs use). A shift that depends on the length sees ``duration``
    at the released models' :data:`LATENT_RATE`. ValueError for settings a request would refuse.
    """
    steps = _ranged(SETTINGS["steps"].label, steps, 1, MAX_STEPS, whole=True)
    level = checks.real(
        "The noise level must be a number above 0 and at most 1", init_noise_level, above=0, high=1
    )
    duration = checks.real("Duration must be a number of seconds, more than 0", duration, above=0)
    options = check_schedule(schedule) if schedule is not None else _config_shift_options(model)
    shift = sampling.shift_from_options(options)
    seq_len = torch.tensor([float(math.ceil(duration * LATENT_RATE))])
    levels = sampling.build_schedule(steps, level, shift, seq_len, a2a_schedule=a2a_schedule)
    return [float(x) for x in levels[0]]


def _config_shift_options(model: str) -> dict | None:
    """A local model folder's sampling shift options; None (the engine's default) otherwise."""
    try:
        config = json.loads((Path(model).expanduser() / "model_config.json").read_text())
        return config["model"]["diffusion"].get("sampling_distribution_shift_options")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
