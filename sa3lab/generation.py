"""The generation job: a checked request, its run through a loaded model, and its saved result.

Text-to-audio, audio-to-audio and inpainting / continuation, each optionally with LoRA files.
Default steps and CFG come from :func:`sa3lab.catalog.model_defaults` when the request leaves them
unset, for the button and the plain-Python path alike. More than :data:`LONG_STEPS` steps run only
with ``confirm_long=True`` (the refusal says how much longer they take); :data:`MAX_STEPS` is the most.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from . import catalog, checks
from .audio_input import check_readable, read_audio
from .progress import NoProgress
from .runs import RunResult, new_result, save_result

MODES = ("text-to-audio", "audio-to-audio", "inpaint")
LONG_STEPS = 200  # more steps need confirm_long=True
MAX_STEPS = 1000
MAX_CFG = 100.0
MAX_BATCH = 16
MAX_LORA_STRENGTH = 10.0


@dataclass
class GenerationRequest:
    """One generation. ``model`` is a catalog key or a local model folder. Holds no token.

    ``lora_strengths`` holds one strength per LoRA file, or one for all of them (none: 1).
    ``confirm_long`` allows more than :data:`LONG_STEPS` steps.
    """

    model: str
    prompt: str
    duration: float = 10.0
    negative_prompt: str = ""
    steps: int | None = None  # None: the model's default
    cfg_scale: float | None = None
    seed: int = -1
    batch_size: int = 1
    mode: str = "text-to-audio"
    source_audio: str | None = None  # file for audio-to-audio / inpainting
    init_noise_level: float = 0.7
    regions: list[tuple[float, float]] = field(default_factory=list)  # inpaint (start, end) seconds
    lora_files: list[str] = field(default_factory=list)
    lora_strengths: list[float] = field(default_factory=list)
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
        record["regions"] = [tuple(pair) for pair in record.get("regions", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in known})

    def settings(self) -> dict:
        """Steps, CFG and sampler as they will run: the request's own, else the model's defaults."""
        defaults = catalog.model_defaults(self.model)
        return {
            "steps": self.steps or defaults["steps"],
            "cfg_scale": defaults["cfg_scale"] if self.cfg_scale is None else self.cfg_scale,
            "sampler": defaults["sampler"],
        }

    def loras(self) -> list[tuple[str, float]]:
        """(file, strength) per LoRA file, with a single strength applied to every file."""
        strengths = self.lora_strengths or [1.0]
        if len(strengths) == 1:
            strengths = strengths * len(self.lora_files)
        return list(zip(self.lora_files, strengths, strict=True))

    def check(self) -> None:
        """Raise ValueError with one sentence for anything a person must fix.

        Types, ranges and finiteness of every field, then what depends on the model and the files.
        Whole numbers given as whole floats (8.0) become ints, paths become strings.
        """
        self._check_values()
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
        if self.mode != "text-to-audio":
            what = "audio to transform" if self.mode == "audio-to-audio" else "audio to edit"
            check_readable(self.source_audio or "", what)
        if self.mode == "inpaint":
            if not self.regions:
                raise ValueError("Add at least one region to regenerate (start and end in seconds).")
            for start, end in self.regions:
                if not 0 <= start < end <= self.duration:
                    raise ValueError(
                        f"The region {start:g}-{end:g} s must lie inside 0-{self.duration:g} s "
                        "with start < end."
                    )
        for file in self.lora_files:
            if not Path(file).expanduser().is_file():
                raise ValueError(f"The LoRA file {file} was not found; check the path or upload it.")
        if len(self.lora_strengths) not in (0, 1, len(self.lora_files)):
            raise ValueError("Give one LoRA strength per LoRA file, one for all, or none for strength 1.")

    def _check_values(self) -> None:
        """Each field on its own: type, finiteness, range (normalised in place)."""
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
        if self.steps is not None:
            self.steps = checks.whole(
                self.steps, f"Steps must be a whole number from 1 to {MAX_STEPS}", low=1, high=MAX_STEPS
            )
        if self.cfg_scale is not None:
            self.cfg_scale = checks.real(
                self.cfg_scale, f"CFG scale must be a number from 0 to {MAX_CFG:g}", low=0, high=MAX_CFG
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
        regions = []
        for pair in checks.items(self.regions, pairs):
            if len(checks.items(pair, pairs)) != 2:
                raise ValueError(f"{pairs}; got {checks.shown(pair)}.")
            regions.append((checks.real(pair[0], pairs), checks.real(pair[1], pairs)))
        self.regions = regions
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
        self.output_dir = checks.path(
            self.output_dir, "The output folder must be a folder path, e.g. 'outputs'"
        )
        self.confirm_long = checks.flag(self.confirm_long, "confirm_long must be True or False")

    def _check_long_run(self) -> None:
        """More than LONG_STEPS steps only with confirm_long, said with how much longer they take."""
        if self.steps is None or self.steps <= LONG_STEPS or self.confirm_long:
            return
        default = catalog.model_defaults(self.model)["steps"]
        raise ValueError(
            f"{self.steps} steps take about {self.steps / default:.0f} times as long as this model's "
            f"default of {default} steps (the model runs once per step): confirm the long run "
            f"(confirm_long=True) or use at most {LONG_STEPS} steps."
        )


def _mode_inputs(request: GenerationRequest) -> dict:
    """The engine arguments of the request's mode."""
    if request.mode == "audio-to-audio":
        return {"init_audio": read_audio(request.source_audio), "init_noise_level": request.init_noise_level}
    if request.mode == "inpaint":
        starts, ends = zip(*request.regions, strict=True)
        return {
            "inpaint_audio": read_audio(request.source_audio),
            "inpaint_mask_start_seconds": list(starts),
            "inpaint_mask_end_seconds": list(ends),
        }
    return {}


def _apply_loras(model, loras: list[tuple[str, float]]) -> None:
    """Leave exactly ``loras`` loaded on ``model``, at their strengths."""
    model.unload_lora()
    if loras:
        model.load_lora([file for file, _ in loras])
        for i, (_, strength) in enumerate(loras):
            model.set_lora_strength(strength, lora_index=i)


def run(lab, request: GenerationRequest, pasted_token: str | None = None, progress=None) -> RunResult:
    """Check, load (or reuse), generate, assess and save one request."""
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
    settings = request.settings()
    _apply_loras(model, request.loras())
    progress.start(settings["steps"], "sampling")
    audio = model.generate(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        duration=request.duration,
        steps=settings["steps"],
        cfg_scale=settings["cfg_scale"],
        batch_size=request.batch_size,
        seed=request.seed,
        callback=lambda info: progress.step(info["i"] + 1, info["steps"]),
        disable_tqdm=True,
        **_mode_inputs(request),
    ).to("cpu", torch.float32)
    timings.update(model.last_timings)
    timings["total"] = time.perf_counter() - start
    result = new_result(
        model,
        audio,
        seed=model.last_seed,
        model_key=request.model,
        timings=timings,
        cache_hit=cache_hit,
        settings={
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "duration": request.duration,
            **settings,
            "mode": request.mode,
            "batch_size": request.batch_size,
        },
        requested_s=request.duration,
        request=asdict(
            replace(
                request,
                seed=model.last_seed,
                steps=settings["steps"],
                cfg_scale=settings["cfg_scale"],
                confirm_long=settings["steps"] > LONG_STEPS,
            )
        ),
    )
    save_result(result, request.output_dir)
    return result
