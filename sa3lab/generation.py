"""The generation job: a checked request, its run through a loaded model, and its saved result.

Text-to-audio, audio-to-audio and inpainting / continuation, each optionally with LoRA files.
Default steps and CFG come from :func:`sa3lab.catalog.model_defaults` when the request leaves them
unset, for the button and the plain-Python path alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import catalog
from .audio_input import check_readable, read_audio
from .progress import NoProgress
from .runs import RunResult, new_result, save_result

MODES = ("text-to-audio", "audio-to-audio", "inpaint")


@dataclass
class GenerationRequest:
    """One generation. ``model`` is a catalog key or a local model folder. Holds no token.

    ``lora_strengths`` holds one strength per LoRA file, or one for all of them (none: 1).
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

    def entry(self) -> catalog.Entry | None:
        """The catalog entry, or None for a local folder."""
        if Path(self.model).expanduser().is_dir():
            return None
        return catalog.get(self.model)

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
        """Raise ValueError with one sentence for anything a person must fix."""
        entry = self.entry()
        if entry is not None and not entry.runnable:
            raise ValueError(f"{entry.key} cannot run here: {entry.not_runnable_reason}")
        if entry is not None and entry.kind != "generation":
            raise ValueError(f"{entry.key} is an autoencoder; use the SAME notebook (03) for it.")
        if not self.prompt.strip():
            raise ValueError("Enter a prompt: describe the audio you want, e.g. 'rain on a tin roof'.")
        limit = entry.max_duration_s if entry is not None else None
        if not self.duration > 0 or (limit is not None and self.duration > limit):
            raise ValueError(
                f"Duration must be more than 0 and at most {limit:g} s for {self.model}; "
                f"got {self.duration:g} s."
                if limit is not None
                else f"Duration must be more than 0 seconds; got {self.duration:g}."
            )
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"Steps must be at least 1; got {self.steps}.")
        if self.cfg_scale is not None and self.cfg_scale < 0:
            raise ValueError(f"CFG scale must be 0 or more; got {self.cfg_scale:g}.")
        if not 1 <= self.batch_size <= 16:
            raise ValueError(f"Batch size must be between 1 and 16; got {self.batch_size}.")
        if self.mode not in MODES:
            raise ValueError(f"Mode must be one of {', '.join(MODES)}; got {self.mode!r}.")
        if self.mode != "text-to-audio":
            what = "audio to transform" if self.mode == "audio-to-audio" else "audio to edit"
            check_readable(self.source_audio or "", what)
        if self.mode == "audio-to-audio" and not 0 < self.init_noise_level <= 1:
            raise ValueError(f"The noise level must be above 0 and at most 1; got {self.init_noise_level:g}.")
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
    )
    save_result(result, request.output_dir)
    return result
