"""``StableAudioModel``: text-to-audio, audio-to-audio, inpainting and LoRA with upstream's API and seeds."""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass

import torch

from . import checks, inpainting, lengths, lora, sampling
from .audio import prepare_audio
from .conditioning import Conditioning, prompt_max_length, prompt_reader
from .hub import DIFFUSION_MODELS, ModelFiles, local_prompt_files, resolve_model_files
from .layers import check_attention_padding
from .loading import BUILD_ERRORS, check_dtype, config_build_error, read_config, resolve_device
from .lora import LoraStack
from .model import DiffusionModel
from .noise import Noise

DIT_OPTIONS = (
    "cfg_interval",
    "lora_interval",
    "scale_phi",
    "cfg_norm_threshold",
    "lora_layer_filter",
    "lora_configs",
)


@dataclass(frozen=True)
class Generation:
    """What one :meth:`StableAudioModel.generate` call made, and what it used (``return_info=True``)."""

    audio: torch.Tensor | None  # (B, 2, samples) float32 in [-1, 1]; None with return_latents=True
    latents: torch.Tensor  # (B, latent channels, frames): the sampler's output, before decoding
    seed: int | tuple[int, ...]  # the seed of the batch's one stream, or one per item
    timings: dict[str, float]  # seconds per stage: text_encoding, encoding, sampling[, decoding]
    lora_strengths: tuple[tuple[str, float], ...]  # (file, strength) of each loaded LoRA as this call used it
    sample_rate: int


def prompt_fit(name_or_path, prompt: str, cache_dir=None):
    """How much of ``prompt`` a model's text encoder takes (a
    :class:`~stable_audio_3.conditioning.PromptFit`), read from the model's config and tokenizer files
    on this machine without loading the model; None while those files are not here (nothing is
    downloaded)."""
    checks.text("prompt", prompt)  # refused whether or not the files are here
    found = local_prompt_files(name_or_path, cache_dir)
    if found is None:
        return None
    encoder, folder = found
    return prompt_reader(folder, prompt_max_length(encoder)).fit(prompt)


class StableAudioModel:
    """A loaded Stable Audio 3 model (DiT + conditioners + SAME autoencoder).

    One model may serve several threads at once: each :meth:`generate` call keeps its seed, random
    streams, LoRA strengths and timings to itself (``return_info=True`` hands them back).
    ``last_seed`` / ``last_timings`` are kept for upstream-style scripts: they are those of the
    call that finished last, so with threads use ``return_info=True`` instead.
    """

    def __init__(self, model: DiffusionModel, model_config: dict, device, model_half: bool, source=None):
        self.model = model
        self.model_config = model_config
        self.device = torch.device(device)
        self.model_half = model_half
        self.source = source  # hub.ModelFiles of where the weights came from
        self.attention_padding = "exclude"
        self.last_seed: int | list[int] | None = None
        self.last_timings: dict[str, float] = {}
        self._loras = LoraStack([model.model, model.conditioner])

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        device=None,
        model_half: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        cache_dir=None,
        attention_padding: str = "exclude",
        dtype: torch.dtype | None = None,
        autoencoder_dtype: torch.dtype | None = None,
        compile: bool = False,
    ) -> StableAudioModel:
        """Load a model by name (``small-music``, ``medium-base``, ...), Hub repo id or local folder.

        ``model_half`` defaults to upstream's choice: float16 on CUDA, float32 elsewhere. ``dtype``
        (float32, float16 or bfloat16) overrides it, and ``autoencoder_dtype`` sets the SAME
        autoencoder's apart from the DiT's (e.g. float32 on MPS). The T5Gemma text encoder always
        runs in its own bfloat16, as upstream. ``attention_padding="exclude"`` keeps padded latents
        out of attention on every device (what upstream does on CUDA with flash-attn);
        ``"upstream_fallback"`` reproduces upstream's CPU/MPS path exactly (padded keys stay in the
        softmax). ``compile=True`` runs the DiT's transformer through ``torch.compile`` (opt-in,
        meant for CUDA: the first generation per length compiles for a minute or more; results
        move by float rounding; on the CPU it is slower than the default path, so it warns).
        """
        if not isinstance(name_or_path, ModelFiles):  # (files already resolved pass through)
            name_or_path = checks.path_like("name_or_path", name_or_path)
        check_attention_padding(attention_padding)
        check_dtype("dtype", dtype)
        check_dtype("autoencoder_dtype", autoencoder_dtype)
        checks.hub_options(token, revision, cache_dir)
        if model_half is not None:
            checks.flag("model_half", model_half)
        checks.flag("compile", compile)
        device = resolve_device(checks.device(device))
        if dtype is None:
            half = device.type == "cuda" if model_half is None else model_half
            dtype = torch.float16 if half else torch.float32
        files = resolve_model_files(name_or_path, token=token, revision=revision, cache_dir=cache_dir)
        config = read_config(files.config_path)
        model_section = config.get("model")
        if not isinstance(model_section, dict) or "diffusion" not in model_section:
            raise ValueError(
                f"{name_or_path} is not a text-to-audio model (its config has no 'model.diffusion'); "
                "use AutoencoderModel for SAME-S / SAME-L."
            )
        try:
            checks.whole("sample_rate", config["sample_rate"], low=1)
            if config["model"]["diffusion"]["config"].get("embed_dim", 0) >= 1536 and device.type == "cpu":
                warnings.warn(
                    "The medium models are designed for a GPU; on the CPU a generation takes minutes.",
                    stacklevel=2,
                )
            model = DiffusionModel.load(
                config,
                files.weights_path,
                files.text_encoder_dir,
                device=device,
                dtype=dtype,
                autoencoder_dtype=autoencoder_dtype,
            )
        except BUILD_ERRORS as exc:
            raise config_build_error(files.config_path, exc) from None
        if compile:
            if device.type == "cpu":
                warnings.warn(
                    "compile=True on the CPU: measured slower than the default path (oneDNN matmuls); "
                    "it is meant for CUDA.",
                    stacklevel=2,
                )
            model.dit.transformer.compile()
        out = cls(model, config, device, dtype != torch.float32, source=files)
        out.attention_padding = attention_padding
        return out

    # ------------------------------------------------------------------ properties

    @property
    def sample_rate(self) -> int:
        return int(self.model_config["sample_rate"])

    @property
    def objective(self) -> str:
        return self.model_config["model"]["diffusion"].get("diffusion_objective", "v")

    @property
    def max_samples(self) -> int:
        return int(self.model_config.get("sample_size", 5292032))

    @property
    def max_duration(self) -> float:
        return self.max_samples / self.sample_rate

    def prompt_fit(self, prompt: str):
        """How much of ``prompt`` the text encoder takes (a :class:`~stable_audio_3.conditioning.PromptFit`):
        its tokens beyond the config's ``max_length`` are cut, as upstream does."""
        return self.model.conditioner.text_encoders()[0].fit(prompt)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    # ------------------------------------------------------------------ LoRA

    def load_lora(self, lora_ckpt_paths, svd_bases=None) -> list[str]:
        """Add one or several LoRA files (they stack with those already loaded; upstream replaces).

        ``svd_bases``: the frozen ``svd_bases.pt`` that ``-xs`` files were trained against (one path,
        or one entry per file); without it their bases are recomputed. Returns notes on what may make
        a file's result differ from upstream's (also warned as :class:`~stable_audio_3.lora.LoraNote`).
        Waits until generations running on this model (in other threads) have finished.
        """
        return self._loras.load(lora_ckpt_paths, svd_bases)

    def set_lora_strength(self, strength: float, lora_index: int | None = None) -> None:
        """Change the default strength of one loaded LoRA (by load order) or of all, without reloading.

        Generations take the strengths in effect when they start (or their own ``lora_strengths``).
        """
        self._loras.set_strength(strength, lora_index)

    def unload_lora(self) -> None:
        """Remove every LoRA and restore the base weights bit-exactly (after running generations)."""
        self._loras.unload()

    @property
    def lora_paths(self) -> list[str]:
        """The loaded LoRA files in load order (the keys ``lora_strengths`` may use, as are indices)."""
        return [str(f.path) for f in self._loras.files]

    @property
    def lora_names(self) -> list[str]:
        return self._loras.names

    @property
    def lora_notes(self) -> list[tuple[str, ...]]:
        """Each loaded LoRA file's notes (see :meth:`load_lora`), in load order."""
        return self._loras.notes

    # ------------------------------------------------------------------ generation

    @torch.inference_mode()
    def generate(
        self,
        prompt=None,
        negative_prompt=None,
        duration=120,
        steps: int = 8,
        cfg_scale: float = 1.0,
        batch_size: int = 1,
        sample_size: int | None = None,
        truncate_output_to_duration: bool = True,
        clamp_output: bool = True,
        seed: int | list[int] = -1,
        init_audio=None,
        init_noise_level: float = 1.0,
        a2a_schedule: str = "upstream",
        inpaint_audio=None,
        inpaint_mask=None,
        inpaint_mask_start_seconds=None,
        inpaint_mask_end_seconds=None,
        duration_padding_sec: float = 6.0,
        apg_scale: float = 1.0,
        dist_shift=None,
        return_latents: bool = False,
        chunked_decode: bool | None = None,
        sampler_type: str | None = None,
        callback=None,
        disable_tqdm: bool = False,
        rk4_upstream_compat: bool = False,
        lora_strengths=None,
        return_info: bool = False,
        **dit_kwargs,
    ) -> torch.Tensor | Generation:
        """Generate (B, 2, samples) float32 audio in [-1, 1] at 44.1 kHz (or latents; see ``clamp_output``).

        Same arguments, defaults and seeds as upstream's ``generate``; bad arguments raise
        ``ValueError`` with one sentence. Each call draws its random numbers from its own generators
        (the numbers upstream's ``torch.manual_seed(seed)`` gives) and fixes its LoRA strengths at
        its start, so calls in several threads do not disturb each other. NaN or infinite latents or
        audio raise :class:`~stable_audio_3.checks.NonFiniteOutputError`.

        Args:
            prompt: the text, or a list of ``batch_size`` texts (one per item).
            negative_prompt: what to steer away from (text or list); it only acts with
                ``cfg_scale > 1`` (with 1 it warns that it has no effect).
            duration: seconds of audio wanted per item (a number, or one per item).
            steps: sampler steps (post-trained models: 8; base models are made for more).
            cfg_scale: classifier-free guidance scale; 1 turns guidance off.
            batch_size: items generated together.
            sample_size: the longest output in samples; None takes the model config's (380 s for
                medium, where upstream caps every model at 120 s).
            truncate_output_to_duration: cut each item to its ``duration`` (else the padded length).
            clamp_output: clip the audio to [-1, 1], as upstream does; False returns the decoder's
                samples as they are (beyond full scale included), for a caller that keeps them or
                turns a loud clip down by one gain (upstream PR #90; the lab's ``sa3lab.peaks``).
            seed: one whole number seeds one stream for the batch (-1: a random one, as upstream);
                a list gives one seed per item, and then item ``i`` is exactly (bit for bit on the
                CPU) what a batch-1 call with that seed gives (all items need the same duration).
            init_audio: audio-to-audio source, a tensor or ``(sample_rate, tensor)`` /
                ``(tensor, sample_rate)`` of any channel layout; resampled to the model's rate.
            init_noise_level: how far audio-to-audio moves from ``init_audio`` (0-1; 1: fully).
            a2a_schedule: how the schedule starts below full noise (audio-to-audio):
                ``"upstream"`` (default, seed-for-seed upstream's) warps the already scaled times, so
                its interior points can exceed ``init_noise_level``; ``"corrected"`` (upstream's
                open PR #94) warps the full schedule and scales it, so it never goes above
                ``init_noise_level`` and only decreases. Identical at ``init_noise_level=1`` (see
                :func:`~stable_audio_3.sampling.build_schedule`).
            inpaint_audio: the clip to inpaint or continue (same forms as ``init_audio``).
            inpaint_mask: 1 (keep) / 0 (generate) per sample, ``(samples,)`` or ``(B, samples)``;
                or give the regions in seconds instead with the next two arguments.
            inpaint_mask_start_seconds: region starts (a number or a list), with the ends below.
            inpaint_mask_end_seconds: region ends, one per start.
            duration_padding_sec: seconds of headroom sampled beyond the duration, then trimmed.
            apg_scale: adaptive projected guidance: the share of the guidance direction taken
                orthogonal to the conditional estimate (1, the default: all of it; 0: plain CFG).
            dist_shift: a timestep-schedule shift object (see :mod:`stable_audio_3.sampling`);
                None: the model config's.
            return_latents: return the sampler's latents instead of decoded audio.
            chunked_decode: decode in windows (less memory); None: the model config's choice.
            sampler_type: ``pingpong``, ``euler``, ``dpmpp`` or ``rk4``; None: the model's default.
            callback: ``callback(info)`` after every sampler step (``i``, ``steps``, ``x``, ``t``,
                ``denoised``); raising from it stops generation between steps.
            disable_tqdm: no progress bar.
            rk4_upstream_compat: reproduce upstream's rk4 sampler, its bug included (batch size 1).
            lora_strengths: this call's strengths of the loaded LoRA files; None: their current
                strengths; a number: all; a list: one per file; a dict ``{load index or path:
                strength}``: those, the others off.
            return_info: return a :class:`Generation` (output, seeds, timings, LoRA strengths).
            **dit_kwargs: the DiT's options: ``cfg_interval`` (noise levels where guidance acts),
                ``scale_phi`` (CFG rescale), ``cfg_norm_threshold``, ``lora_interval``,
                ``lora_layer_filter``, ``lora_configs`` (per file: ``lora_index``, ``interval``,
                ``layer_filter``).
        """
        timings: dict[str, float] = {}
        batch_size = checks.whole("batch_size", batch_size, low=1)
        prompts = self._check_prompts(prompt, batch_size, "prompt")
        negatives = (
            None
            if negative_prompt is None
            else self._check_prompts(negative_prompt, batch_size, "negative_prompt")
        )
        steps = lengths.check_steps(steps)
        cfg_scale = checks.number("cfg_scale", cfg_scale)
        apg_scale = checks.number("apg_scale", apg_scale)
        init_noise_level = sampling.check_init_noise_level(init_noise_level)
        a2a_schedule = sampling.check_a2a_schedule(a2a_schedule)
        padding_sec = checks.number("duration_padding_sec", duration_padding_sec, low=0)
        for name, value in (
            ("truncate_output_to_duration", truncate_output_to_duration),
            ("clamp_output", clamp_output),
            ("return_latents", return_latents),
            ("disable_tqdm", disable_tqdm),
            ("rk4_upstream_compat", rk4_upstream_compat),
            ("return_info", return_info),
        ):
            checks.flag(name, value)
        if chunked_decode is not None:
            checks.flag("chunked_decode", chunked_decode)
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be a function taking one dict, got {type(callback).__name__}.")
        if dist_shift is not None and not callable(getattr(dist_shift, "shift", None)):
            raise ValueError("dist_shift must be a shift object with a shift(t, seq_len) method, or None.")
        dit_kwargs = _check_dit_kwargs(dit_kwargs)
        if negatives is not None and cfg_scale == 1.0:
            warnings.warn(
                "negative_prompt has no effect with cfg_scale=1.0; raise cfg_scale (e.g. 7 for base models).",
                stacklevel=2,
            )
        sampler_name = sampling.resolve_sampler(sampler_type, self.objective)
        sigma_max = init_noise_level if init_audio is not None else 1.0
        model, device = self.model, self.device
        plan = lengths.plan_lengths(
            duration,
            batch_size=batch_size,
            sample_rate=self.sample_rate,
            downsampling_ratio=model.downsampling_ratio,
            max_samples=self.max_samples
            if sample_size is None
            else checks.whole("sample_size", sample_size, low=1),
            padding_sec=padding_sec,
            latent_align=model.latent_align,
            device=device,
        )
        seeds = self._resolve_seeds(seed, plan)
        per_item = isinstance(seeds, list)
        mask = inpainting.build_inpaint_mask(
            length=plan.audio_samples,
            sample_rate=self.sample_rate,
            durations=plan.durations,
            batch_size=batch_size,
            starts=inpaint_mask_start_seconds,
            ends=inpaint_mask_end_seconds,
            mask=inpaint_mask,
        )
        init = self._input_audio(init_audio, "init_audio", plan.audio_samples)
        inpaint = self._input_audio(inpaint_audio, "inpaint_audio", plan.audio_samples)

        noise = Noise.seeded(seeds, device)
        with self._loras.in_use():
            loras = self._loras.run(lora_strengths)
            used_loras = self._loras.describe(loras)
            with lora.running(loras):
                x_noise = noise.randn([batch_size, model.latent_channels, plan.latent_length], device=device)

                t0 = _clock(device)
                cond = self._condition(prompts, plan.durations, per_item)
                negative = None if negatives is None else self._condition(negatives, plan.durations, per_item)
                timings["text_encoding"] = _clock(device) - t0

                t0 = _clock(device)
                init_latents = None if init is None else self._encode(init)
                inpaint_latents = None if inpaint is None else self._encode(inpaint)
                latent_len = plan.latent_length
                if mask is not None:
                    mask = inpainting.latent_mask(mask.to(device), latent_len)
                mask, masked = inpainting.local_conditioning(
                    mask,
                    inpaint_latents,
                    batch_size=batch_size,
                    channels=model.latent_channels,
                    latent_length=latent_len,
                    device=device,
                )
                local = torch.cat([mask, masked], dim=1)
                timings["encoding"] = _clock(device) - t0

                x = (
                    x_noise
                    if init_latents is None
                    else sampling.start_from_init(
                        init_latents.expand(batch_size, -1, -1).to(x_noise.dtype), x_noise, sigma_max
                    )
                )
                shift = dist_shift if dist_shift is not None else model.sampling_shift
                # per-item seeds: every item has the same length, so one item's schedule serves all
                # (computed as a batch-1 call computes it)
                seq_len = plan.effective_lengths[:1] if per_item else plan.effective_lengths
                schedule = sampling.build_schedule(
                    steps, sigma_max, shift, seq_len, device=device, a2a_schedule=a2a_schedule
                )
                schedule = schedule.expand(batch_size, -1) if per_item else schedule

                conditions_cache: dict = {}  # per-block work on the fixed conditions, once per generation

                def model_fn(x_t, t):
                    return model.dit(
                        x_t.to(model.dtype),
                        t,
                        cond.cross_attn,
                        cond.global_cond,
                        local.to(model.dtype),
                        padding_mask=plan.padding_mask,
                        cfg_scale=cfg_scale,
                        negative_cross_attn_cond=None if negative is None else negative.cross_attn,
                        negative_cross_attn_mask=None if negative is None else negative.cross_attn_mask,
                        apg_scale=apg_scale,
                        attention_padding=self.attention_padding,
                        conditions_cache=conditions_cache,
                        **dit_kwargs,
                    )

                t0 = _clock(device)
                latents = sampling.sample(
                    sampler_name,
                    model_fn,
                    x,
                    schedule,
                    callback=callback,
                    disable_tqdm=disable_tqdm,
                    rk4_upstream_compat=rk4_upstream_compat,
                    noise=noise,
                )
                timings["sampling"] = _clock(device) - t0
                checks.finite_output(latents, "Sampling", self._nonfinite_hint(cfg_scale, loras))
                audio = None
                if not return_latents:
                    t0 = _clock(device)
                    audio = self._decode(latents, plan, noise, chunked_decode, truncate_output_to_duration)
                    checks.finite_output(audio, "Decoding", self._nonfinite_hint(cfg_scale, loras))
                    audio = audio.clamp(-1, 1) if clamp_output else audio
                    timings["decoding"] = _clock(device) - t0

        result = Generation(
            audio=audio,
            latents=latents,
            seed=tuple(seeds) if per_item else seeds,
            timings=timings,
            lora_strengths=used_loras,
            sample_rate=self.sample_rate,
        )
        self.last_seed, self.last_timings = seeds, timings
        if return_info:
            return result
        return latents if return_latents else audio

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_prompts(prompt, batch_size: int, name: str) -> list[str]:
        if prompt is None:
            raise ValueError("Give a prompt (text describing the audio), e.g. prompt='rain on a tin roof'.")
        if isinstance(prompt, (list, tuple)) and len(prompt) == 0:
            raise ValueError(f"The {name} list is empty; give one text per batch item.")
        values = lengths.batch_values(prompt, batch_size, name)
        if not all(isinstance(p, str) for p in values):
            raise ValueError(f"Each {name} must be a string.")
        return values

    @staticmethod
    def _resolve_seeds(seed, plan: lengths.LengthPlan) -> int | list[int]:
        """One seed (-1 -> random), or a list of one per item (each -1 -> random)."""
        if not isinstance(seed, (list, tuple)):
            value = checks.seed(seed)
            return random.randrange(0, 99999) if value == -1 else value
        if len(seed) != len(plan.durations):
            raise ValueError(
                f"seed has {len(seed)} entries but batch_size is {len(plan.durations)}; give one seed per "
                "item (or one number for the whole batch)."
            )
        if len(set(plan.durations)) != 1:
            raise ValueError(
                "A list of seeds needs one duration for the whole batch (an item of another length cannot "
                "equal its own run); give one duration, or generate the other lengths separately."
            )
        values = [checks.seed(s) for s in seed]
        return [random.randrange(0, 99999) if s == -1 else s for s in values]

    def _input_audio(self, audio, name: str, length: int) -> torch.Tensor | None:
        """``init_audio`` / ``inpaint_audio`` as a (1, channels, length) tensor at the model rate."""
        if audio is None:
            return None
        return prepare_audio(
            audio,
            sample_rate=self.sample_rate,
            length=length,
            channels=self.model.autoencoder.io_channels,
            device=self.device,
            name=name,
        )

    def _encode(self, prepared: torch.Tensor) -> torch.Tensor:
        ae = self.model.autoencoder
        return ae.encode(prepared.to(self.model.autoencoder_dtype), chunked=self.model.chunked)

    def _condition(self, prompts: list[str], durations: list[float], per_item: bool):
        """The conditioning of the batch; with per-item seeds item by item, as each item's own call does."""
        condition = self.model.conditioner.condition
        if not per_item:
            return condition(prompts, durations, device=self.device)
        items = [condition([p], [d], device=self.device) for p, d in zip(prompts, durations, strict=True)]
        return Conditioning(
            cross_attn=torch.cat([c.cross_attn for c in items]),
            cross_attn_mask=torch.cat([c.cross_attn_mask for c in items]),
            global_cond=None if items[0].global_cond is None else torch.cat([c.global_cond for c in items]),
        )

    def _decode(self, latents, plan: lengths.LengthPlan, noise: Noise, chunked_decode, truncate: bool):
        """Latents -> float32 audio (not clamped), padding zeroed, trimmed to the duration if asked.

        With per-item noise each item is decoded alone, as its own call decodes it.
        """
        model = self.model
        chunked = model.chunked if chunked_decode is None else chunked_decode
        kept = plan.output_samples if truncate else None
        frames = None if kept is None else -(-kept // model.downsampling_ratio)
        ae_latents = latents.to(model.autoencoder_dtype)
        if noise.per_item:
            audio = torch.cat(
                [
                    model.autoencoder.decode(item, chunked=chunked, frames=frames, noise=noise.item(i))
                    for i, item in enumerate(ae_latents.split(1))
                ]
            )
        else:
            audio = model.autoencoder.decode(ae_latents, chunked=chunked, frames=frames, noise=noise)
        audio = lengths.zero_padding(audio, plan.padding_mask, model.downsampling_ratio).float()
        if truncate:
            if plan.output_samples is not None:
                audio = audio[..., : plan.output_samples]
            elif len(plan.durations) > 1:
                warnings.warn("Durations differ within the batch, so the audio is not trimmed.", stacklevel=3)
        return audio

    def _nonfinite_hint(self, cfg_scale: float, loras: lora.LoraRun) -> str:
        """What to try when a generation comes out NaN or infinite, for these settings."""
        tips = []
        if self.dtype == torch.float16:
            tips.append("dtype=torch.bfloat16 or torch.float32 (float16 overflows easily)")
        if abs(cfg_scale) > 1:
            tips.append(f"a lower cfg_scale than {cfg_scale:g}")
        if any(abs(s) > 0 for s in loras.strengths.values()):
            tips.append("lower LoRA strengths")
        tips.append("another seed")
        return "try " + " or ".join(tips)


def _check_dit_kwargs(options: dict) -> dict:
    """generate()'s extra DiT options, checked: intervals, finite numbers, a string filter."""
    unknown = sorted(set(options) - set(DIT_OPTIONS))
    if unknown:
        raise ValueError(
            f"generate() got unknown argument(s) {unknown}; extra DiT options are {DIT_OPTIONS}."
        )
    checked = dict(options)
    for name in ("cfg_interval", "lora_interval"):
        if name in options:
            checked[name] = checks.interval(name, options[name])
    if "scale_phi" in options:
        checked["scale_phi"] = checks.number("scale_phi", options["scale_phi"], low=0, high=1)
    if "cfg_norm_threshold" in options:
        checked["cfg_norm_threshold"] = checks.number(
            "cfg_norm_threshold", options["cfg_norm_threshold"], low=0
        )
    if "lora_layer_filter" in options and not isinstance(options["lora_layer_filter"], str):
        raise ValueError("lora_layer_filter must be a string of comma-separated layer names.")
    return checked


def _clock(device: torch.device) -> float:
    """``time.perf_counter()`` once ``device`` has finished its queued work (CUDA and MPS run
    asynchronously: without the wait a stage's time would land in the next one)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
    return time.perf_counter()


__all__ = ["StableAudioModel", "Generation", "DIFFUSION_MODELS"]
