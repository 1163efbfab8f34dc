"""LoRA training of a loaded base model in plain torch: start, step, stop, save, resume, preview.

    model = StableAudioModel.from_pretrained("small-music-base")
    trainer = LoraTrainer(model, "my_clips/", TrainingSettings(steps=500))
    trainer.train(callback=lambda report: print(report.step, report.loss), save_path="out/my.safetensors")
    model.load_lora("out/my.safetensors")  # after trainer.close(); or trainer.preview("a prompt") meanwhile

What upstream's ``scripts/train_lora.py`` does, step for step (see :mod:`.objective`): the DiT and
conditioners stay frozen, only the adapters train, with AdamW (lr 1e-4, betas 0.9/0.95, weight
decay 0.01), no learning-rate schedule and no gradient clipping, batches shuffled per epoch.
Differences: errors instead of silently skipped clips; the saved file is the float16 safetensors
LoRA format (upstream's trainer writes Lightning ``.ckpt`` files and has ``export_lora_safetensors``
for this format) and, beside it, ``<name>.resume.pt`` with the optimiser state, step and random
states, so a resumed run continues exactly (upstream restarts the step count and the optimiser).
``dropout`` is applied from step 1 (upstream's ``--dropout`` has no effect: its adapters inherit the
frozen model's eval mode): one input mask on ``lora_A`` per layer and step, drawn from the run's own
generator (seeded from ``seed``, saved in the resume file), never during previews.
"""

from __future__ import annotations

import math
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.utils import parametrize

from .adapters import AdapterConfig, AdapterSet, read_start, save_lora_file, with_frozen_bases
from .data import BatchOrder, make_batch, open_dataset
from .objective import StepDraws, TrainingShift, draw_step, masked_loss, pair_noise

PRECISIONS = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}
BASE_OBJECTIVE = "rectified_flow"
LEARNING_RATE, BETAS, WEIGHT_DECAY = 1e-4, (0.9, 0.95), 0.01


def _positive(name: str, value, kind=float) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{name} must be a positive {'number' if kind is float else 'whole number'}, got {value!r}."
        )


@dataclass(frozen=True)
class TrainingSettings:
    """Run settings; defaults are upstream's ``train_lora.py`` ones except ``steps`` (upstream: 10000)."""

    steps: int = 1000
    learning_rate: float = LEARNING_RATE
    batch_size: int = 1
    duration: float = 380.0  # seconds every clip is cropped or zero-padded to
    seed: int = 42
    base_precision: str | None = None  # cast the frozen weights: "bf16", "fp16", "fp32"; None keeps them
    gradient_checkpointing: bool = True  # recompute DiT blocks in backward: less memory, ~30 % slower
    attention_padding: str | None = None  # None: the model's setting ("exclude" unless loaded otherwise)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)

    def __post_init__(self):
        _positive("steps", self.steps, int)
        _positive("learning_rate", self.learning_rate)
        _positive("batch_size", self.batch_size, int)
        _positive("duration", self.duration)
        if self.base_precision is not None and self.base_precision not in PRECISIONS:
            raise ValueError(
                f"base_precision must be one of {', '.join(PRECISIONS)} or None, got {self.base_precision!r}."
            )


@dataclass(frozen=True)
class StepReport:
    """Progress after one optimiser step."""

    step: int  # steps done, counting resumed ones
    steps: int  # the planned total
    loss: float
    seconds: float  # this step's wall time
    elapsed: float  # wall time of the steps run by this trainer so far
    remaining: float  # estimated wall time of the steps left (mean step time so far)
    memory_bytes: int  # CUDA: peak allocated; otherwise the process's resident memory


class TrainingStopped(Exception):
    """Raised from a training callback to stop after the current step (the run is then saved)."""


def _memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import psutil

    return int(psutil.Process().memory_info().rss)


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _plain(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A tensor autograd may save (conditioner caches filled during a preview hold inference tensors)."""
    return tensor.clone() if tensor is not None and tensor.is_inference() else tensor


class LoraTrainer:
    """Trains LoRA adapters on ``model`` (a loaded base :class:`StableAudioModel`) from ``data_dir``.

    ``resume_from``: a LoRA file to continue; its adapter settings replace ``settings.adapter``, and
    its ``.resume.pt`` companion, when present and matching, restores step, optimiser and random
    state. ``svd_bases``: for an -XS adapter, a frozen ``svd_bases.pt`` (e.g. the one upstream
    publishes with a base model) to train against instead of recomputing the SVD. The model's
    weights are changed in place while the trainer is open (adapters attached,
    frozen weights cast to ``base_precision``); :meth:`close` removes the adapters again.
    """

    def __init__(
        self,
        model,
        data_dir,
        settings: TrainingSettings | None = None,
        *,
        resume_from=None,
        reader=None,
        svd_bases=None,
    ):
        settings = settings or TrainingSettings()
        diffusion = model.model_config["model"]["diffusion"]
        if model.objective != BASE_OBJECTIVE:
            raise ValueError(
                f"This is a post-trained model (objective {model.objective!r}); LoRA training needs a base "
                "model (small-music-base, small-sfx-base or medium-base), as upstream's trainer requires."
            )
        if not diffusion.get("mask_padding_attention", False):
            raise ValueError(
                "Training needs a config with mask_padding_attention, as all released models have."
            )
        if any(parametrize.is_parametrized(m) for m in model.model.modules()):
            raise ValueError(
                "This model already carries adapters (LoRA files or an open trainer); call "
                "model.unload_lora() or trainer.close() before training."
            )
        self.model, self.settings = model, settings
        inner = model.model
        self.device = model.device
        self.sample_rate = model.sample_rate
        self.sample_size = (
            int(settings.duration * self.sample_rate) // inner.downsampling_ratio
        ) * inner.downsampling_ratio
        if self.sample_size == 0:
            raise ValueError(
                f"duration {settings.duration} s is shorter than one latent frame "
                f"({inner.downsampling_ratio / self.sample_rate:.3f} s); raise it."
            )
        self.dataset = open_dataset(
            data_dir,
            sample_rate=self.sample_rate,
            sample_size=self.sample_size,
            downsampling_ratio=inner.downsampling_ratio,
            channels=inner.latent_channels,
            reader=reader,
        )
        self.order = BatchOrder(len(self.dataset), settings.batch_size, settings.seed)
        self.attention_padding = settings.attention_padding or model.attention_padding
        self.shift = TrainingShift(
            diffusion, sample_rate=self.sample_rate, downsampling_ratio=inner.downsampling_ratio
        )
        self.frames_per_second = self.sample_rate / inner.downsampling_ratio
        self.roots = {"model": inner.model, "conditioner": inner.conditioner}
        self.norm_base = str(model.source) if model.source is not None else None  # what baked norms hold for

        self.step = 0
        self.losses: list[float] = []
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.rng = random.Random(settings.seed)
        self.data_rng = random.Random(settings.seed + 1)
        self.dropout_generator = torch.Generator().manual_seed(settings.seed + 2)  # LoRA dropout masks
        start, header, adapter_config = None, {}, settings.adapter
        if resume_from is not None:
            adapter_config, start, header = read_start(resume_from, self.roots)
        if svd_bases is not None and adapter_config.adapter_type.endswith("-xs"):
            start = with_frozen_bases(svd_bases, self.roots, adapter_config, start)
        init = torch.Generator().manual_seed(settings.seed)
        self.adapters = AdapterSet.attach(self.roots, adapter_config, init, start)
        try:
            if settings.base_precision is not None:
                self._cast_frozen(PRECISIONS[settings.base_precision])
            inner.dit.transformer.checkpointing = settings.gradient_checkpointing
            self.optimizer = torch.optim.AdamW(
                self.adapters.parameters(), lr=settings.learning_rate, betas=BETAS, weight_decay=WEIGHT_DECAY
            )
            half = inner.dtype == torch.float16
            self.scaler = torch.amp.GradScaler(self.device.type) if half else None
            self._stop = threading.Event()
            self._elapsed, self._steps_run = 0.0, 0
            if resume_from is not None:
                self.step = int(header.get("step", 0))
                self._restore(Path(resume_from))
        except BaseException:
            self.close()  # leave the model as it was given (apart from a cast)
            raise

    # ------------------------------------------------------------------ properties

    @property
    def adapter_config(self) -> AdapterConfig:
        return self.adapters.config

    @property
    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.adapters.parameters())

    # ------------------------------------------------------------------ setup helpers

    def _cast_frozen(self, dtype: torch.dtype) -> None:
        """Frozen weights (DiT, conditioners, autoencoder) to ``dtype``; adapters stay float32.

        Rotary frequency tables keep their float32, as the loader keeps them.
        """
        adapter_tensors = {
            id(t) for a in self.adapters.adapters.values() for t in [*a.parameters(), *a.buffers()]
        }
        with torch.no_grad():
            for name, tensor in [*self.model.model.named_parameters(), *self.model.model.named_buffers()]:
                if id(tensor) in adapter_tensors or not tensor.is_floating_point():
                    continue
                if name.endswith("inv_freq"):
                    continue
                tensor.data = tensor.data.to(dtype)

    def _resume_path(self, path: Path) -> Path:
        return path.with_name(path.stem + ".resume.pt")

    def _restore(self, path: Path) -> None:
        """Optimiser, step and random states from the ``.resume.pt`` beside ``path``, if it matches."""
        state_path = self._resume_path(path)
        if not state_path.is_file():
            return
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        saved = {k: v.half() for k, v in state["adapters"].items()}
        current = {k: v.half().cpu() for k, v in self.adapters.state_dict().items()}
        if state.get("step") != self.step or saved.keys() != current.keys():
            return
        if not all(torch.equal(saved[k], current[k]) for k in saved):
            return  # the LoRA file was changed after the state was written
        self.adapters.load_state_dict(state["adapters"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.rng.setstate(_as_tuple(state["rng"]))
        self.data_rng.setstate(_as_tuple(state["data_rng"]))
        if "dropout_generator" in state:  # files from before it existed: the seed's fresh masks
            self.dropout_generator.set_state(state["dropout_generator"])
        self.order.restore(state["order"])
        self.losses = list(state["losses"])

    # ------------------------------------------------------------------ one step

    def next_batch(self):
        return make_batch(self.dataset, self.order.next(), self.data_rng)

    def loss(self, batch, draws: StepDraws | None = None) -> torch.Tensor:
        """The training loss of ``batch`` (with given or freshly drawn random choices), with autograd."""
        inner, device = self.model.model, self.device
        x0 = batch.signal.to(device)
        if batch.encoded:
            valid = batch.valid
        else:
            with torch.no_grad():
                x0 = inner.autoencoder.encode(x0.to(inner.autoencoder_dtype), chunked=inner.chunked)
            # valid latent frames: any frame overlapping valid audio, as upstream's mask resizing
            valid = torch.ceil(batch.valid.float() * x0.shape[-1] / batch.signal.shape[-1]).long()
            valid = valid.clamp(max=x0.shape[-1])
        x0 = x0.float()
        length = x0.shape[-1]
        if draws is None:
            draws = draw_step(
                valid,
                tuple(x0.shape),
                frames_per_second=self.frames_per_second,
                generator=self.generator,
                rng=self.rng,
            )
        t = self.shift(1 - draws.timestep_sample.to(device).float(), batch.seconds_total, length)
        noise = pair_noise(x0, draws.noise.to(device).float())
        sigma = t[:, None, None]
        x_t = x0 * (1 - sigma) + noise * sigma
        kept = torch.arange(length, device=device)[None, :] < draws.kept_length.to(device)[:, None]
        inpaint = draws.inpaint_mask.to(device).float()
        cond = inner.conditioner.condition(batch.prompts, batch.seconds_total, device=device)
        cross, global_cond = _plain(cond.cross_attn), _plain(cond.global_cond)
        dropped = draws.cfg_dropout.to(device)[:, None, None]
        cross = torch.where(dropped, torch.zeros_like(cross), cross)
        local = torch.cat([inpaint, x0 * inpaint], dim=1)
        velocity = inner.dit(
            x_t, t, cross, global_cond, local, padding_mask=kept, attention_padding=self.attention_padding
        )
        return masked_loss(velocity, noise - x0, kept, inpaint)

    def train_step(self, batch=None, draws: StepDraws | None = None) -> StepReport:
        """One optimiser step (on the next batch unless given); ValueError on a non-finite loss or OOM."""
        began = time.perf_counter()
        try:
            batch = batch if batch is not None else self.next_batch()
            # this step's dropout masks stay on through backward: gradient checkpointing recomputes
            # the adapted weights there, and they must be the ones the forward pass used
            with self.adapters.dropping(self.dropout_generator):
                loss = self.loss(batch, draws)
                if not torch.isfinite(loss):
                    self.optimizer.zero_grad(set_to_none=True)
                    raise ValueError(
                        f"The loss is {loss.item()} at step {self.step + 1}; lower the learning rate "
                        f"(now {self.settings.learning_rate:g}) or use base_precision 'bf16' or 'fp32'."
                    )
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        except Exception as exc:
            if not _is_out_of_memory(exc):
                raise
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise ValueError(self._out_of_memory_message()) from None
        self.step += 1
        self._steps_run += 1
        loss = loss.item()
        self.losses.append(loss)
        seconds = time.perf_counter() - began
        self._elapsed += seconds
        remaining = self._elapsed / self._steps_run * max(self.settings.steps - self.step, 0)
        memory = _memory_bytes(self.device)
        return StepReport(self.step, self.settings.steps, loss, seconds, self._elapsed, remaining, memory)

    def _out_of_memory_message(self) -> str:
        s, a = self.settings, self.adapter_config
        tips = [
            f"batch_size (now {s.batch_size})",
            f"duration (now {s.duration:g} s)",
            f"rank (now {a.rank})",
        ]
        if not a.adapter_type.endswith("-xs"):
            tips.append("adapter_type 'lora-xs'")
        if self.model.model.dtype == torch.float32:
            tips.append("base_precision 'bf16'")
        if not s.gradient_checkpointing:
            tips.append("gradient_checkpointing on")
        return f"Out of memory on {self.device} at step {self.step + 1}; lower {', '.join(tips)}."

    # ------------------------------------------------------------------ the loop

    def request_stop(self) -> None:
        """Stop after the current step (safe to call from another thread, e.g. a Stop button)."""
        self._stop.set()

    def train(
        self, callback=None, *, save_path=None, save_every: int = 0, preview_every: int = 0, on_preview=None
    ):
        """Run steps until ``settings.steps`` are done or a stop is requested; returns the reports.

        ``callback(report)`` runs after every step (raise :class:`TrainingStopped` there to stop);
        ``on_preview(trainer)`` every ``preview_every`` steps (e.g. ``trainer.preview(prompt)``);
        ``save_path``: written every ``save_every`` steps and when the run ends, finished or stopped.
        """
        self._stop.clear()
        reports = []
        try:
            while self.step < self.settings.steps and not self._stop.is_set():
                report = self.train_step()
                reports.append(report)
                if save_path is not None and save_every and self.step % save_every == 0:
                    self.save(save_path)
                if on_preview is not None and preview_every and self.step % preview_every == 0:
                    on_preview(self)
                if callback is not None:
                    try:
                        callback(report)
                    except TrainingStopped:
                        break
        finally:
            if save_path is not None and self.step > 0:
                self.save(save_path)
        return reports

    # ------------------------------------------------------------------ saving, previews, closing

    def save(self, path) -> Path:
        """Write the LoRA file (upstream format, loads with ``load_lora``) and its ``.resume.pt``."""
        path = Path(path)
        header = {"step": self.step, "steps": self.settings.steps, "seed": self.settings.seed}
        save_lora_file(path, self.adapters, header, norm_base=self.norm_base)
        state = {
            "step": self.step,
            "adapters": {k: v.float().cpu() for k, v in self.adapters.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "generator": self.generator.get_state(),
            "rng": self.rng.getstate(),
            "data_rng": self.data_rng.getstate(),
            "dropout_generator": self.dropout_generator.get_state(),
            "order": self.order.state(),
            "losses": list(self.losses),
        }
        torch.save(state, self._resume_path(path))
        return path

    @contextmanager
    def evaluating(self):
        """The adapters in eval mode inside, each back in its own earlier mode after.

        Dropout does not depend on the mode (it is on only inside :meth:`train_step`), so this is for
        code that reads the mode; nothing here draws from or changes the run's random states.
        """
        modes = {name: adapter.training for name, adapter in self.adapters.adapters.items()}
        for adapter in self.adapters.adapters.values():
            adapter.eval()
        try:
            yield
        finally:
            for name, adapter in self.adapters.adapters.items():
                adapter.train(modes[name])

    def preview(
        self, prompt: str, *, duration: float = 5.0, steps: int = 50, cfg_scale: float = 7.0, **kwargs
    ):
        """Audio generated with the adapters as they are now (upstream's demos: 50 steps, cfg up to 7)."""
        with self.evaluating():
            return self.model.generate(prompt, duration=duration, steps=steps, cfg_scale=cfg_scale, **kwargs)

    def close(self) -> None:
        """Remove the adapters (the model's weights return to the base ones, in the cast dtype)."""
        self.adapters.detach()
        self.model.model.dit.transformer.checkpointing = False


def _as_tuple(value):
    """``random.Random`` state back from its saved (list-converted) form."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
