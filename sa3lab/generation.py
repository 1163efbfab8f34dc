"""The generation job: a checked request, its run through a loaded model, and its saved result.

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

import hashlib
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from stable_audio_3 import sampling

from . import catalog, checks
from .audio_input import check_readable, read_audio
from .progress import NoProgress
from .runs import RunResult, new_result, save_result

MODES = ("text-to-audio", "audio-to-audio", "inpaint", "continuation")
LONG_STEPS = 200  # more steps need confirm_long=True
MAX_STEPS = 1000
MAX_CFG = 100.0
MAX_BATCH = 16
MAX_LORA_STRENGTH = 10.0
SAMPLERS = tuple(sampling.SAMPLERS)
SAMPLER_SETTINGS = ("steps", "cfg_scale", "sampler", *catalog.GUIDANCE)  # None: the model's default


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
    """One parameter of a schedule shift: name, inclusive range, default, whole number or not."""

    name: str
    low: float
    high: float
    default: float
    whole: bool = False


SCHEDULES = {  # the engine's shift types (stable_audio_3.sampling) and upstream's interface ranges
    "logsnr": (
        Param("anchor_length", 100, 10000, 2000, True),
        Param("anchor_logsnr", -12, 0, -6.2),
        Param("rate", -2, 2, 0.0),
        Param("logsnr_end", -2, 6, 2.0),
    ),
    "flux": (
        Param("min_length", 1, 10000, 256, True),
        Param("max_length", 1, 10000, 4096, True),
        Param("alpha_min", 0.1, 20, 1.0),
        Param("alpha_max", 0.1, 20, 1.0),
    ),
    "full": (
        Param("base_shift", 0, 5, 0.5),
        Param("max_shift", 0, 5, 1.15),
        Param("min_length", 1, 10000, 256, True),
        Param("max_length", 1, 10000, 4096, True),
    ),
    "none": (),
}
SCHEDULE_HELP = (
    "How the steps spread over the noise levels: the model config's own, or a shift with its parameters "
    "(LogSNR: even in log-SNR; Flux / Full: stretched by the length; None: linear)."
)


@dataclass(frozen=True)
class LoraUse:
    """One LoRA file as a run uses it: strength, noise-level interval (1 = start) and layer filter."""

    file: str
    strength: float = 1.0
    interval: tuple[float, float] = (0.0, 1.0)
    layer_filter: str = ""


@dataclass
class GenerationRequest:
    """One generation. ``model`` is a catalog key or a local model folder. Holds no token.

    Sampler settings (:data:`SAMPLER_SETTINGS`) left None take the model's defaults. ``schedule``:
    ``{"type": "logsnr" | "flux" | "full" | "none", <its parameters>}`` (see :data:`SCHEDULES`), or
    None for the model config's own. ``lora_strengths`` / ``lora_intervals`` / ``lora_layer_filters``
    hold one value per LoRA file, one for all of them, or none (1, (0, 1), ""). A continuation keeps
    the first ``duration - continuation_s`` seconds of the source and generates the rest.
    ``prompt_expansion``: what the Prompt Assistant wrote the prompt from (recorded, not used).
    ``confirm_long`` allows more than :data:`LONG_STEPS` steps.
    """

    model: str
    prompt: str
    duration: float = 10.0
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
    prompt_expansion: dict | None = None
    output_dir: str = "outputs"
    confirm_long: bool = False

    def entry(self) -> catalog.Entry | None:
        """The catalog entry, or None for a local folder (ValueError: not found / unknown)."""
        return catalog.lookup(self.model)

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
        defaults = catalog.model_defaults(self.model)
        own = {name: getattr(self, name) for name in SAMPLER_SETTINGS}
        return {name: defaults[name] if own[name] is None else own[name] for name in SAMPLER_SETTINGS}

    def loras(self) -> list[LoraUse]:
        """Each LoRA file with its strength, interval and layer filter (a single value applies to all)."""
        count = len(self.lora_files)

        def spread(values, default):
            values = list(values) or [default]
            return values * count if len(values) == 1 else values

        return [
            LoraUse(file, strength, tuple(interval), layer_filter)
            for file, strength, interval, layer_filter in zip(
                self.lora_files,
                spread(self.lora_strengths, 1.0),
                spread(self.lora_intervals, (0.0, 1.0)),
                spread(self.lora_layer_filters, ""),
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
            self.model, "The model must be a catalog name such as small-music, or a folder"
        )
        self.prompt = checks.text(self.prompt, "The prompt must be text, e.g. 'rain on a tin roof'")
        if not self.prompt.strip():
            raise ValueError("Enter a prompt: describe the audio you want, e.g. 'rain on a tin roof'.")
        self.negative_prompt = checks.text(
            self.negative_prompt or "", "The negative prompt must be text (or empty)"
        )
        self.duration = checks.real(
            self.duration, "Duration must be a number of seconds, more than 0", above=0
        )
        self.seed = checks.seed(self.seed)
        self.batch_size = checks.whole(
            self.batch_size,
            f"Batch size must be between 1 and {MAX_BATCH} (a whole number)",
            low=1,
            high=MAX_BATCH,
        )
        if self.mode not in MODES:
            raise ValueError(f"Mode must be one of {', '.join(MODES)}; got {checks.shown(self.mode)}.")
        self.source_audio = (
            checks.path(self.source_audio, "The source audio must be a file path", True) or None
        )
        self.init_noise_level = checks.real(
            self.init_noise_level, "The noise level must be a number above 0 and at most 1", above=0, high=1
        )
        pairs = "Regions must be a list of (start, end) pairs in seconds, e.g. [(2, 4), (6, 7.5)]"
        self.regions = [_pair(pair, pairs) for pair in checks.items(self.regions, pairs)]
        self.continuation_s = checks.real(
            self.continuation_s, "The continuation length must be a number of seconds (0 or more)", low=0
        )
        if self.prompt_expansion is not None and not isinstance(self.prompt_expansion, dict):
            raise ValueError(
                f"prompt_expansion must be a dict (the Prompt Assistant's record) or None; "
                f"got {checks.shown(self.prompt_expansion)}."
            )
        self.output_dir = checks.path(
            self.output_dir, "The output folder must be a folder path, e.g. 'outputs'"
        )
        self.confirm_long = checks.flag(self.confirm_long, "confirm_long must be True or False")

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
            setattr(self, name, _ranged(value, spec.label, spec.low, spec.high, whole=name == "steps"))
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise ValueError(
                f"The sampler must be one of {', '.join(SAMPLERS)}; got {checks.shown(self.sampler)}."
            )
        if self.cfg_interval is not None:
            self.cfg_interval = _interval(self.cfg_interval, "The CFG interval must be", "(0, 1)")
        if self.schedule is not None:
            self.schedule = check_schedule(self.schedule)

    def _check_loras(self) -> None:
        files = "LoRA files must be a list of paths, e.g. ['style.safetensors']"
        self.lora_files = [checks.path(f, files) for f in checks.items(self.lora_files, files)]
        strengths = (
            f"LoRA strengths must be a list of numbers from {-MAX_LORA_STRENGTH:g} to {MAX_LORA_STRENGTH:g}, "
            "e.g. [0.8]"
        )
        self.lora_strengths = [
            checks.real(x, strengths, low=-MAX_LORA_STRENGTH, high=MAX_LORA_STRENGTH)
            for x in checks.items(self.lora_strengths, strengths)
        ]
        intervals = "LoRA intervals must be a list of (low, high) pairs, e.g. [(0, 1)]"
        self.lora_intervals = [
            _interval(pair, "Each LoRA interval must be", "(0.5, 1)")
            for pair in checks.items(self.lora_intervals, intervals)
        ]
        filters = "LoRA layer filters must be a list of texts, e.g. ['layers.[0-11].'] ('' for every layer)"
        self.lora_layer_filters = [
            checks.text(f, filters) for f in checks.items(self.lora_layer_filters, filters)
        ]
        for file in self.lora_files:
            if not Path(file).expanduser().is_file():
                raise ValueError(f"The LoRA file {file} was not found; check the path or upload it.")
        for values, what in (
            (self.lora_strengths, "strength"),
            (self.lora_intervals, "interval"),
            (self.lora_layer_filters, "layer filter"),
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
            raise ValueError(
                f"Set how many seconds to add: more than 0 and less than the duration ({self.duration:g} s), "
                f"which counts the kept part too; got {self.continuation_s:g} s."
            )
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


def _ranged(value, label: str, low: float, high: float, whole: bool = False):
    """``value`` checked against ``low``..``high``: "<label> must be a (whole) number from low to high"."""
    rule = f"{label} must be a {'whole ' if whole else ''}number from {low:g} to {high:g}"
    return (checks.whole if whole else checks.real)(value, rule, low=low, high=high)


def _interval(value, start: str, example: str) -> tuple[float, float]:
    """A (low, high) pair of noise levels with 0 <= low <= high <= 1."""
    rule = f"{start} a pair (low, high) of noise levels with 0 <= low <= high <= 1, e.g. {example}"
    low, high = _pair(value, rule)
    if not 0 <= low <= high <= 1:
        raise ValueError(f"{rule}; got {checks.shown(list(value))}.")
    return low, high


def _pair(value, rule: str) -> tuple[float, float]:
    pair = checks.items(value, rule)
    if len(pair) != 2:
        raise ValueError(f"{rule}; got {checks.shown(value)}.")
    return checks.real(pair[0], rule), checks.real(pair[1], rule)


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
        checked[p.name] = _ranged(schedule.get(p.name, p.default), label, p.low, p.high, p.whole)
    if "min_length" in checked and checked["min_length"] >= checked["max_length"]:
        raise ValueError(
            f"The schedule's min_length ({checked['min_length']}) must be less than its max_length "
            f"({checked['max_length']})."
        )
    return checked


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path) -> str:
    """The sha256 of a file (kept per path, size and modification time: a big LoRA is read once)."""
    file = Path(path).expanduser().resolve()
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _file_record(path: str) -> dict:
    return {"file": path, "name": Path(path).name, "sha256": file_sha256(path)}


def _mode_inputs(request: GenerationRequest) -> dict:
    """The engine arguments of the request's mode."""
    if request.mode == "audio-to-audio":
        return {"init_audio": read_audio(request.source_audio), "init_noise_level": request.init_noise_level}
    if request.mode in ("inpaint", "continuation"):
        starts, ends = zip(*request.edit_regions(), strict=True)
        return {
            "inpaint_audio": read_audio(request.source_audio),
            "inpaint_mask_start_seconds": list(starts),
            "inpaint_mask_end_seconds": list(ends),
        }
    return {}


def _sampler_arguments(settings: dict, loras: list[LoraUse]) -> dict:
    """The engine arguments of the sampler settings and of the LoRA files' strengths, intervals and
    filters (the files loaded in the order of ``loras``)."""
    arguments = {
        "steps": settings["steps"],
        "cfg_scale": settings["cfg_scale"],
        "sampler_type": settings["sampler"],
        "cfg_interval": tuple(settings["cfg_interval"]),
        "scale_phi": settings["scale_phi"],
        "cfg_norm_threshold": settings["cfg_norm_threshold"],
        "apg_scale": settings["apg_scale"],
        "duration_padding_sec": settings["duration_padding"],
    }
    if settings["schedule"] is not None:
        arguments["dist_shift"] = sampling.shift_from_options(settings["schedule"])
    arguments["lora_strengths"] = [lora.strength for lora in loras]
    if any(lora.interval != (0.0, 1.0) or lora.layer_filter for lora in loras):
        arguments["lora_configs"] = [
            {"lora_index": i, "interval": lora.interval, "layer_filter": lora.layer_filter}
            for i, lora in enumerate(loras)
        ]
    return arguments


def _mode_record(request: GenerationRequest) -> dict:
    """The mode's inputs for the run record: source file (name, sha256), noise level, regions, length."""
    if request.mode == "text-to-audio":
        return {}
    record = {"source": _file_record(request.source_audio)}
    if request.mode == "audio-to-audio":
        record["init_noise_level"] = request.init_noise_level
    else:
        record["regions"] = request.edit_regions()
    if request.mode == "continuation":
        record["continuation_s"] = request.continuation_s
        record["kept_s"] = request.duration - request.continuation_s
    return record


def _file_version(path) -> tuple[str, int, int]:
    """A LoRA file's path, modification time and size: a file rewritten since it was loaded is new."""
    path = Path(path).expanduser().resolve()
    info = path.stat()
    return str(path), info.st_mtime_ns, info.st_size


_LOADED_VERSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> file versions
_MODEL_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its runs' lock
_LOCKS_LOCK = threading.Lock()


def _run_lock(model) -> threading.Lock:
    """One lock per model: a run's LoRA files stay loaded until its generation is over."""
    with _LOCKS_LOCK:
        return _MODEL_LOCKS.setdefault(model, threading.Lock())


def _load_loras(model, loras: list[LoraUse]) -> None:
    """Leave exactly the files of ``loras`` loaded on ``model``, in order; when the same files (same
    versions) are loaded already they stay, else the others go first (after running generations).
    Strengths are not set here: each run passes its own."""
    wanted = [_file_version(lora.file) for lora in loras]
    if _LOADED_VERSIONS.get(model) == wanted and model.lora_paths == [version[0] for version in wanted]:
        return
    model.unload_lora()
    if wanted:
        model.load_lora([version[0] for version in wanted])
    _LOADED_VERSIONS[model] = wanted


def run(
    lab, request: GenerationRequest, pasted_token: str | None = None, progress=None, previews=None
) -> RunResult:
    """Check, load (or reuse), generate, assess and save one request.

    ``previews``: a :class:`sa3lab.previews.StepPreviews` shown the denoised estimate while sampling.
    """
    if not isinstance(request, GenerationRequest):
        raise ValueError(f"A generation takes a GenerationRequest; got {checks.shown(request)}.")
    request.check()
    progress = progress or NoProgress()
    entry = request.entry()
    start = time.perf_counter()
    token = lab.download_token(entry, pasted_token)
    timings = {"access_check": time.perf_counter() - start}
    progress.stage("loading the model (first run downloads it)")
    model, cache_hit, load_s = lab.load_generator(request.model, entry, token)
    timings["load"] = load_s
    settings, loras = request.settings(), request.loras()
    watch = previews.watch(model, request.duration) if previews is not None else None

    def on_step(info: dict) -> None:
        progress.step(info["i"] + 1, info["steps"])
        if watch is not None:
            watch(info)

    progress.start(settings["steps"], "sampling")
    with _run_lock(model):
        _load_loras(model, loras)
        generation = model.generate(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            duration=request.duration,
            batch_size=request.batch_size,
            seed=request.seed,
            callback=on_step,
            disable_tqdm=True,
            return_info=True,
            **_sampler_arguments(settings, loras),
            **_mode_inputs(request),
        )
    audio = generation.audio.to("cpu", torch.float32)
    timings.update(generation.timings)
    if previews is not None:
        previews.learn(model, audio)
        timings["previews"] = previews.seconds
    timings["total"] = time.perf_counter() - start
    record = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "duration": request.duration,
        **settings,
        "mode": request.mode,
        "batch_size": request.batch_size,
        **_mode_record(request),
        "loras": [{**_file_record(lora.file), **asdict(lora)} for lora in loras],
        "prompt_expansion": request.prompt_expansion,
    }
    result = new_result(
        model,
        audio,
        seed=generation.seed,
        model_key=request.model,
        timings=timings,
        cache_hit=cache_hit,
        settings=record,
        requested_s=request.duration,
        request=asdict(
            replace(request, seed=generation.seed, **settings, confirm_long=settings["steps"] > LONG_STEPS)
        ),
    )
    save_result(result, request.output_dir)
    return result
