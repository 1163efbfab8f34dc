"""The LoRA training job: a checked request, its run on a base model, and the saved adapter with its card.

A run writes ``<output_dir>/<name>.safetensors`` (upstream's LoRA format: float16 tensors and a
``lora_config`` header, so ``load_lora`` here and upstream's loader both read it; baked row norms
for dora-rows, and for an ``-xs`` adapter its frozen SVD bases beside it, ``<name>.svd_bases.pt``), its
``<name>.resume.pt`` (optimiser, step and random state: a stopped run continues exactly), and a
training card beside them: ``<name>.card.md`` (model, dataset hash, settings, result in a table, the
loss curve ``<name>.loss.png`` and all of it as a JSON block that :func:`read_card` returns). The
card is Markdown, not a ``.json``, so the results library does not take it for a run's sidecar.
Stop (a progress ``step`` that raises) ends the run after the current step and still saves; the
result then says how to resume.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

# the engine's names the training form uses, handed on (forms reach the engine through the lab)
from stable_audio_3.lora import ADAPTER_TYPES as ADAPTER_TYPES
from stable_audio_3.training import TrainingStopped as TrainingStopped
from stable_audio_3.training.data import AUDIO_EXTENSIONS as SOUNDFILE_EXTENSIONS
from stable_audio_3.training.data import AudioReader, dataset_files

from . import catalog, checks, defaults, render
from .audio_input import FFMPEG_SUFFIXES, decode_clip
from .generation import GenerationRequest
from .progress import NoProgress
from .runs import package_versions

BASE_KEYS = catalog.keys("base")
PRECISIONS = (None, "bf16", "fp16", "fp32")
MAX_STEPS = 1_000_000
MAX_BATCH = 64
MAX_RANK = 1024
NEEDS_BASE = (
    "LoRA training needs a base model (small-music-base, small-sfx-base or medium-base), "
    "as upstream's trainer requires"
)
EXAMPLE_RATE = 44100
# A dataset's clips: what libsndfile reads and, through the lab's reader, what ffmpeg reads (m4a/AAC ...)
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS + FFMPEG_SUFFIXES
CLIP_READER = AudioReader(AUDIO_EXTENSIONS, decode_clip)
PREVIEW_CFG = 7.0  # upstream's training demos
# A training step in the time model of :func:`estimate`: the forward pass and a backward pass of
# about twice its cost over the batch's seconds of audio, after encoding the clips (see
# benchmarks/bench_train_previews.py for the measured figures).
TRAIN_PASSES = 3.0
TRAIN_STEP_S = 0.25  # per step, whatever the size: reading the clips, the optimiser, Python (tiny model)


@dataclass
class TrainingRequest(catalog.ModelRequest):
    """One LoRA training run. ``model`` is a base catalog key or a local base-model folder. Holds no token.

    ``duration``: the length (s) every clip is cropped or zero-padded to (upstream: 380).
    ``preview_every``: a preview with the current adapter every that many steps (0: none).
    ``resume_from``: a LoRA file (ours, with its ``.resume.pt``, or upstream's) to continue.
    ``svd_bases``: for an -xs adapter type, a frozen ``svd_bases.pt`` to train against ("": the SVD
    of the model's weights, or the bases written beside ``resume_from``).
    """

    model: str
    data_dir: str
    name: str = "my-lora"
    steps: int = 1000
    learning_rate: float = 1e-4
    batch_size: int = 1
    adapter_type: str = "dora-rows"
    rank: int = 16
    alpha: float | None = None  # None: the rank
    include: str = ""  # comma-separated substrings of layer names ("" = all layers)
    exclude: str = ""
    base_precision: str | None = None  # None keeps the loaded dtype
    duration: float = 30.0
    seed: int = 42
    resume_from: str = ""
    svd_bases: str = ""
    preview_every: int = 0
    preview_prompt: str = ""  # "" = the first clip's caption
    preview_duration: float = 5.0
    preview_steps: int = 50
    output_dir: str = defaults.OUTPUT_DIR

    def check(self) -> None:
        """Raise ValueError with one sentence for anything a person must fix (values normalised in place)."""
        self.model = checks.path("The model must be a base catalog name or a model folder", self.model)
        entry = self.entry()
        if entry is not None and entry.key not in BASE_KEYS:
            what = "a post-trained model" if entry.kind == "generation" else "not a text-to-audio model"
            raise ValueError(f"{entry.key} is {what}; {NEEDS_BASE}.")
        if entry is None and defaults.folder_objective(self.model) != defaults.BASE_OBJECTIVE:
            raise ValueError(
                f"The folder {self.model} holds a post-trained model (or no readable model_config.json); "
                f"{NEEDS_BASE}."
            )
        self.steps = checks.whole(
            f"Steps must be a whole number from 1 to {MAX_STEPS}", self.steps, low=1, high=MAX_STEPS
        )
        self.learning_rate = checks.real(
            "The learning rate must be a number above 0 and at most 1 (such as 1e-4)",
            self.learning_rate,
            above=0,
            high=1,
        )
        self.batch_size = checks.whole(
            f"Batch size must be a whole number from 1 to {MAX_BATCH}", self.batch_size, low=1, high=MAX_BATCH
        )
        self.rank = checks.whole(
            f"Rank must be a whole number from 1 to {MAX_RANK}", self.rank, low=1, high=MAX_RANK
        )
        if self.alpha is not None:
            self.alpha = checks.real("Alpha must be a number above 0 (empty: the rank)", self.alpha, above=0)
        if self.base_precision not in PRECISIONS:
            raise ValueError(
                "Base precision must be one of bf16, fp16, fp32 or None (keep the loaded one); "
                f"got {checks.shown(self.base_precision)}."
            )
        limit = entry.max_duration_s if entry is not None else None
        rule = "The clip length must be a number of seconds above 0" + (
            f" and at most {limit:g}" if limit else ""
        )
        self.duration = checks.real(rule, self.duration, above=0, high=limit)
        self.seed = checks.whole("The seed must be a whole number of 0 or more", self.seed, low=0)
        self.include = checks.text(
            "Include must be text: layer-name patterns separated by commas", self.include or ""
        )
        self.exclude = checks.text(
            "Exclude must be text: layer-name patterns separated by commas", self.exclude or ""
        )
        self.name = checks.text("The name must be text, such as 'my-lora'", self.name).strip()
        if not self.name or Path(self.name).name != self.name or self.name.startswith("."):
            raise ValueError(
                "The name must be a plain file name without folders, such as 'my-lora'; "
                f"got {checks.shown(self.name)}."
            )
        self.preview_every = checks.whole(
            "Preview every must be a whole number of steps (0: none)", self.preview_every, low=0
        )
        self.preview_prompt = checks.text("The preview prompt must be text", self.preview_prompt or "")
        self.preview_duration = checks.real(
            "The preview length must be seconds above 0", self.preview_duration, above=0
        )
        self.preview_steps = checks.whole(
            "Preview steps must be a whole number from 1 to 1000", self.preview_steps, low=1, high=1000
        )
        self.output_dir = checks.path(
            "The output folder must be a folder path, such as 'outputs'", self.output_dir
        )
        self.resume_from = checks.path("The resume file must be a file path", self.resume_from, True)
        if self.resume_from and not Path(self.resume_from).expanduser().is_file():
            raise ValueError(
                f"The resume file {self.resume_from} was not found; check the path or leave it empty."
            )
        self.adapter()  # adapter type, alpha and filters checked by the engine
        self.svd_bases = checks.path("The SVD bases file must be a file path", self.svd_bases, True)
        if self.svd_bases and not self.adapter_type.endswith("-xs"):
            raise ValueError(
                f"An SVD bases file is only for -xs adapter types, not {self.adapter_type}; leave it empty."
            )
        if self.svd_bases and not Path(self.svd_bases).expanduser().is_file():
            raise ValueError(
                f"The SVD bases file {self.svd_bases} was not found; check the path or leave it empty."
            )
        self.data = checks.path("The dataset must be a folder of clips with .txt captions", self.data_dir)
        check_dataset(self.data_dir)

    def adapter(self):
        from stable_audio_3.training import AdapterConfig

        return AdapterConfig(
            rank=self.rank,
            alpha=self.alpha,
            adapter_type=self.adapter_type,
            include=self.include or None,
            exclude=self.exclude or None,
        )

    def settings(self):
        from stable_audio_3.training import TrainingSettings

        return TrainingSettings(
            steps=self.steps,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            duration=self.duration,
            seed=self.seed,
            base_precision=self.base_precision,
            adapter=self.adapter(),
        )


@dataclass
class TrainingResult:
    """A finished (or stopped) run: the adapter file, its card and what happened on the way."""

    lora_path: str
    card_path: str
    plot_path: str
    model_key: str
    step: int  # steps done, resumed ones included
    steps: int  # planned
    stopped: bool
    losses: list[float]
    elapsed_s: float  # this session's wall time (steps and previews)
    peak_memory_bytes: int
    dataset_hash: str
    clips: int
    sample_rate: int
    prompt: str  # the previews' prompt (by default the first clip's caption)
    previews: list[tuple[int, object]] = field(default_factory=list)  # (step, audio (channels, samples))
    card: dict = field(default_factory=dict)
    earlier_s: float = 0.0  # the wall time of the sessions it resumed (their training cards say it)

    @property
    def total_s(self) -> float:
        """The wall time of all its sessions, the resumed ones included."""
        return self.earlier_s + self.elapsed_s


def estimate(machine, loaded=(), **values) -> dict[str, float]:
    """A rough wall time on ``machine`` of a run with ``values`` (:class:`TrainingRequest` fields,
    unchecked: the form estimates before there is a dataset), by part: loading the base model
    (unless its name is in ``loaded``), the steps left (after a resume's) and the previews among them.

    The same time model as a sweep's estimate (:mod:`sa3lab.sweep_plan`); ValueError or TypeError for
    values that cannot be estimated (the form shows none then)."""
    from . import sweep_plan as plan

    given = {f.name: f.default for f in fields(TrainingRequest) if f.default is not MISSING}
    v = {**given, **values}
    params, speed = plan.model_params(v["model"]), plan.speed_over_2_cores(machine)
    done = resumed_step(v["resume_from"])
    steps, batch = (checks.whole("at least 1", v[k], low=1) for k in ("steps", "batch_size"))
    every = checks.whole("0 or more", v["preview_every"], low=0)
    audio = checks.real("", v["duration"], above=0) * batch
    step = (
        TRAIN_STEP_S
        + TRAIN_PASSES * (plan.STEP_S + plan.STEP_S_PER_PARAM_SECOND * params * audio / speed)
        + audio * (plan.DECODE_S_PER_SECOND + plan.DECODE_S_PER_PARAM_SECOND * params / speed)
        + plan.TEXT_ENCODER_S * batch
    )
    previews = max(steps // every - done // every, 0) if every > 0 else 0
    preview = 0.0
    if previews:
        look = GenerationRequest(
            model=v["model"],
            prompt="preview",
            duration=v["preview_duration"],
            steps=v["preview_steps"],
            cfg_scale=PREVIEW_CFG,
            confirm_long=True,
        )
        preview = plan.estimated_seconds(look, machine) - plan.SAVE_S  # a preview is not saved
    return {
        "load": 0.0 if v["model"] in loaded else plan.load_seconds(params),
        "steps": max(steps - done, 0) * step,
        "previews": previews * preview,
    }


def resumed_step(resume_from: str) -> int:
    """The step a resume file's run reached, from its training card (0 without one)."""
    card = _earlier_card(resume_from)
    return int(card.get("step", 0))


def check_dataset(folder) -> None:
    """The audio+captions checks (empty folder, missing captions, unreadable or silent clips) up front.

    Pre-encoded latent folders are checked by the trainer, which knows the model's latent channels.
    """
    from stable_audio_3.training.data import AudioCaptionDataset, check_folder

    folder = check_folder(folder)
    if not any(f.name != "silence.npy" for f in dataset_files(folder, (".npy",))):
        AudioCaptionDataset(folder, sample_rate=EXAMPLE_RATE, sample_size=4096, reader=CLIP_READER)


def dataset_hash(folder) -> str:
    """SHA-256 over every non-hidden file of the dataset (relative path and content), in name order."""
    folder = Path(folder).expanduser()
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_example_dataset(folder, clips: int = 4, seconds: float = 2.0) -> Path:
    """A few generated clips with captions (plucked notes over a hum) to try training without data."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    t = np.arange(int(EXAMPLE_RATE * seconds)) / EXAMPLE_RATE
    for i in range(clips):
        pitch = 196.0 * 2 ** (i * 3 / 12)  # G3 and minor thirds above it
        pluck = np.sin(2 * np.pi * pitch * t) * np.exp(-3 * (t % 0.5))
        hum = 0.1 * np.sin(2 * np.pi * 55 * t) + 0.01 * rng.standard_normal(t.size)
        left, right = 0.4 * pluck + hum, 0.3 * pluck + hum
        sf.write(folder / f"pluck{i + 1}.wav", np.stack([left, right], 1).astype(np.float32), EXAMPLE_RATE)
        (folder / f"pluck{i + 1}.txt").write_text(f"plucked notes over a low hum, note {i + 1}\n")
    return folder


def _free_name(folder: Path, name: str, resume_from: str) -> Path:
    """``folder/name.safetensors``, or ``name-2`` ... when taken (continuing a file in place is allowed)."""
    resume = Path(resume_from).expanduser().resolve() if resume_from else None
    candidate, n = folder / f"{name}.safetensors", 1
    while candidate.exists() and candidate.resolve() != resume:
        n += 1
        candidate = folder / f"{name}-{n}.safetensors"
    return candidate


def _first_caption(dataset) -> str:
    return dataset.captions[0] if not dataset.encoded else str(dataset.meta[0]["prompt"]).strip()


def run(core, request: TrainingRequest, pasted_token=None, progress=None, on_step=None, on_preview=None):
    """Check, load the base model, train, save the adapter and its card; returns a :class:`TrainingResult`.

    ``on_step(report)`` after every step (a :class:`~stable_audio_3.training.StepReport`);
    ``on_preview(step, audio, sample_rate)`` after each preview (made through the run core with the
    adapters as they are, in eval mode). The run holds the model's lock: no generation changes the
    model's LoRA state while it trains. A ``progress.step`` that raises
    :class:`~stable_audio_3.training.TrainingStopped` (a Stop button) ends the run after that step;
    an interrupt (KeyboardInterrupt) ends it too, keeping the last finished step. The file is saved
    either way and the result says the run stopped.
    """
    if not isinstance(request, TrainingRequest):
        raise ValueError(f"Training takes a TrainingRequest; got {checks.shown(request)}.")
    progress = progress or NoProgress()
    loaded = core.load(request.model, pasted_token, progress)
    model = loaded.model
    with core.own_adapters(model):  # a generation may have left LoRA files on the cached model
        return _train(core, model, request, progress, on_step, on_preview)


def _train(core, model, request: TrainingRequest, progress, on_step, on_preview) -> TrainingResult:
    from stable_audio_3.training import LoraTrainer

    progress.stage("reading the dataset")
    folder = Path(request.output_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = _free_name(folder, request.name, request.resume_from)
    trainer = LoraTrainer(
        model,
        request.data_dir,
        request.settings(),
        resume_from=request.resume_from or None,
        reader=CLIP_READER,
        svd_bases=request.svd_bases or None,
    )
    previews: list[tuple[int, object]] = []
    prompt = request.preview_prompt.strip() or _first_caption(trainer.dataset)
    look = GenerationRequest(  # checked as it is built, before the first step
        model=request.model,
        prompt=prompt,
        duration=request.preview_duration,
        steps=request.preview_steps,
        cfg_scale=PREVIEW_CFG,
        seed=request.seed,
        output_dir=request.output_dir,
        confirm_long=True,  # the request's own range (preview steps up to 1000) applies
    )

    clock = WallClock(request.steps, request.preview_every)

    def preview(tr) -> None:
        progress.stage(f"preview at step {tr.step}")
        began = time.perf_counter()
        with tr.evaluating():
            made = core.sample(model, [look], core.engine_arguments(look), keep_adapters=True)
        previews.append((tr.step, made.audio[0]))
        if on_preview is not None:
            on_preview(*previews[-1], int(model.sample_rate))
        clock.previewed(time.perf_counter() - began)

    reports = []

    def step(report) -> None:
        report = clock.report(report)  # wall time: previews and redraws included
        reports.append(report)
        if on_step is not None:
            on_step(report)
        progress.step(
            report.step, report.steps, f"step {report.step}/{report.steps} · loss {report.loss:.4f}"
        )

    try:
        if trainer.step >= request.steps:
            raise ValueError(
                f"The resume file has {trainer.step} steps already; set more steps than that to train on."
            )
        progress.start(request.steps, f"training from step {trainer.step}")
        clock.start(trainer.step)
        try:
            trainer.train(step, save_path=path, preview_every=request.preview_every, on_preview=preview)
        except KeyboardInterrupt:  # the notebook's interrupt: as Stop, the last finished step is saved
            if not reports:
                raise
        elapsed = clock.elapsed()
        trainable = trainer.trainable_parameters  # counted before close() takes the adapters off
    finally:
        trainer.close()
        if request.base_precision is not None:
            core.cache.clear()  # the cached model's frozen weights were cast: load it afresh next time
    result = TrainingResult(
        lora_path=str(path),
        card_path=str(path.with_suffix(".card.md")),
        plot_path=str(path.with_suffix(".loss.png")),
        model_key=request.model,
        step=trainer.step,
        steps=request.steps,
        stopped=trainer.step < request.steps,
        losses=list(trainer.losses),
        elapsed_s=elapsed,
        peak_memory_bytes=max((r.memory_bytes for r in reports), default=0),
        dataset_hash=dataset_hash(request.data_dir),
        clips=len(trainer.dataset),
        sample_rate=int(model.sample_rate),
        prompt=prompt,
        previews=previews,
        earlier_s=earlier_seconds(request.resume_from),
    )
    result.card = _write_card(result, request, model, trainer, trainable)
    return result


def _write_card(result: TrainingResult, request: TrainingRequest, model, trainer, trainable: int) -> dict:
    """The training card (Markdown with a JSON block) and the loss curve (PNG) beside the LoRA file."""
    from stable_audio_3.lora import companion_bases, read_lora_file

    source = model.source
    written = Path(result.lora_path).is_file()  # as written (baked norms counted), once a step has run
    lora_config = read_lora_file(result.lora_path).config if written else trainer.adapter_config.lora_config()
    bases = companion_bases(result.lora_path)
    card = {
        "lora_file": Path(result.lora_path).name,
        "resume_file": Path(result.lora_path).with_suffix(".resume.pt").name,
        "svd_bases_file": bases.name if lora_config["adapter_type"].endswith("-xs") else None,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": request.model,
        "repo_id": source.repo_id if source else None,
        "revision": source.revision if source else None,
        "device": str(model.device),
        "dataset": {"folder": str(request.data_dir), "sha256": result.dataset_hash, "clips": result.clips},
        "settings": {
            **{k: v for k, v in asdict(request).items() if k not in ("model", "data_dir", "output_dir")},
            "lora_config": lora_config,
        },
        "trainable_parameters": trainable,
        "step": result.step,
        "steps": result.steps,
        "stopped": result.stopped,
        "losses": result.losses,
        "elapsed_s": round(result.elapsed_s, 3),  # this session
        "total_elapsed_s": round(result.total_s, 3),  # with the sessions it resumed
        "peak_memory_bytes": result.peak_memory_bytes,
        "versions": package_versions(),
    }
    Path(result.plot_path).write_bytes(render.loss_png(result.losses))
    model_line = card["model"] + (
        f" ({card['repo_id']} @ {(card['revision'] or '?')[:10]})" if card["repo_id"] else ""
    )
    rows = {
        "LoRA file": f"`{card['lora_file']}` (resume: `{card['resume_file']}`"
        + (f", frozen SVD bases: `{card['svd_bases_file']}`)" if card["svd_bases_file"] else ")"),
        "base model": model_line,
        "dataset": f"{result.clips} clip(s) in `{request.data_dir}`, sha256 `{result.dataset_hash}`",
        "adapter": ", ".join(f"{k} {v}" for k, v in lora_config.items()),
        "settings": f"{request.steps} steps, learning rate {request.learning_rate:g}, batch "
        f"{request.batch_size}, clip length {request.duration:g} s, base precision "
        f"{request.base_precision or 'as loaded'}, seed {request.seed}",
        "result": f"step {result.step} of {result.steps}{' (stopped)' if result.stopped else ''}, loss "
        f"{result.losses[0]:.4f} -> {result.losses[-1]:.4f}, {time_text(result)}, "
        f"peak memory {result.peak_memory_bytes / 2**30:.2f} GiB on {card['device']}",
        "created": card["created_utc"],
    }
    table = "\n".join(f"| {k} | {v} |" for k, v in rows.items())
    text = (
        f"# LoRA training card: {Path(result.lora_path).stem}\n\n| | |\n|---|---|\n{table}\n\n"
        f"![loss curve]({Path(result.plot_path).name})\n\n## Record\n\n```json\n"
        f"{json.dumps(card, indent=2)}\n```\n"
    )
    Path(result.card_path).write_text(text, encoding="utf-8")
    return card


def time_text(result: TrainingResult) -> str:
    """``3 min 05 s``, or after a resume ``5 min 10 s in all (this session 2 min 05 s)``."""
    if not result.earlier_s:
        return remaining_text(result.elapsed_s)
    return f"{remaining_text(result.total_s)} in all (this session {remaining_text(result.elapsed_s)})"


def earlier_seconds(resume_from: str) -> float:
    """The wall time of the run a resume file continues, from its training card (0 without one)."""
    card = _earlier_card(resume_from)
    return float(card.get("total_elapsed_s", card.get("elapsed_s", 0.0)))


def _earlier_card(resume_from: str) -> dict:
    """The training card beside a resume file ({} without one)."""
    if not resume_from:
        return {}
    try:
        return read_card(Path(resume_from).expanduser().with_suffix(".card.md"))
    except (OSError, ValueError, IndexError):
        return {}


class WallClock:
    """A run's elapsed and remaining wall time for its step reports, previews included.

    The engine's reports time the optimiser steps alone; a preview every N steps can cost more than
    the steps between them, so the remaining time is the steps left at the mean step time plus the
    previews left at the mean preview time (the first preview's cost is counted once it is measured).
    """

    def __init__(self, steps: int, preview_every: int):
        self.steps, self.every = steps, preview_every
        self.began, self.first, self.preview_s, self.previews = time.perf_counter(), 0, 0.0, 0

    def start(self, step: int) -> None:
        self.began, self.first = time.perf_counter(), step

    def previewed(self, seconds: float) -> None:
        self.preview_s += seconds
        self.previews += 1

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def report(self, report):
        """``report`` with wall-clock ``elapsed`` and ``remaining``."""
        elapsed = self.elapsed()
        done = report.step - self.first
        step_s = (elapsed - self.preview_s) / max(done, 1)
        previews_left = self.steps // self.every - report.step // self.every if self.every else 0
        preview_s = self.preview_s / self.previews if self.previews else step_s
        remaining = (self.steps - report.step) * step_s + previews_left * preview_s
        return replace(report, elapsed=elapsed, remaining=remaining)


def read_card(path) -> dict:
    """The record (JSON block) of a training card written by :func:`run`."""
    text = Path(path).read_text(encoding="utf-8")
    return json.loads(text.split("```json\n", 1)[1].rsplit("\n```", 1)[0])


def remaining_text(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``12 s``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
