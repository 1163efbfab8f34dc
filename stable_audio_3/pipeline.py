"""``StableAudioModel``: text-to-audio, audio-to-audio, inpainting and LoRA with upstream's API and seeds."""

from __future__ import annotations

import random
import time
import warnings

import torch

from . import inpainting, lengths, sampling
from .audio import prepare_audio
from .hub import DIFFUSION_MODELS, resolve_model_files
from .layers import check_attention_padding
from .loading import check_dtype, read_config, resolve_device
from .lora import LoraStack
from .model import DiffusionModel


class StableAudioModel:
    """A loaded Stable Audio 3 model (DiT + conditioners + SAME autoencoder).

    After each :meth:`generate` call, ``last_seed`` holds the seed actually used and ``last_timings``
    the seconds spent per stage (``text_encoding``, ``encoding``, ``sampling``, ``decoding``).
    """

    def __init__(self, model: DiffusionModel, model_config: dict, device, model_half: bool, source=None):
        self.model = model
        self.model_config = model_config
        self.device = torch.device(device)
        self.model_half = model_half
        self.source = source  # hub.ModelFiles of where the weights came from
        self.attention_padding = "exclude"
        self.last_seed: int | None = None
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
        check_attention_padding(attention_padding)
        check_dtype("dtype", dtype)
        check_dtype("autoencoder_dtype", autoencoder_dtype)
        device = resolve_device(device)
        if dtype is None:
            half = device.type == "cuda" if model_half is None else model_half
            dtype = torch.float16 if half else torch.float32
        files = resolve_model_files(name_or_path, token=token, revision=revision, cache_dir=cache_dir)
        config = read_config(files.config_path)
        if "diffusion" not in config.get("model", {}):
            raise ValueError(
                f"{name_or_path} is not a text-to-audio model (its config has no 'model.diffusion'); "
                "use AutoencoderModel for SAME-S / SAME-L."
            )
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

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    # ------------------------------------------------------------------ LoRA

    def load_lora(self, lora_ckpt_paths) -> None:
        """Add one or several LoRA files (they stack with those already loaded; upstream replaces)."""
        self._loras.load(lora_ckpt_paths)

    def set_lora_strength(self, strength: float, lora_index: int | None = None) -> None:
        """Change the strength of one loaded LoRA (by load order) or of all, without reloading."""
        self._loras.set_strength(strength, lora_index)

    def unload_lora(self) -> None:
        """Remove every LoRA and restore the base weights bit-exactly."""
        self._loras.unload()

    @property
    def lora_names(self) -> list[str]:
        return self._loras.names

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
        seed: int = -1,
        init_audio=None,
        init_noise_level: float = 1.0,
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
        **dit_kwargs,
    ) -> torch.Tensor:
        """Generate (B, 2, samples) float32 audio in [-1, 1] at 44.1 kHz (or latents).

        Same arguments, defaults and seeds as upstream's ``generate``. Differences (see README):
        the length cap ``sample_size`` defaults to the model config's (380 s for medium, not 120 s);
        audio tuples may be ``(sr, tensor)`` or ``(tensor, sr)``; batched inpainting works; ``rk4``
        really samples (``rk4_upstream_compat=True`` reproduces upstream's bug); a negative prompt with
        ``cfg_scale == 1`` warns that it has no effect; bad arguments raise ``ValueError``.
        ``callback(info)`` runs after every sampler step (info: ``i``, ``steps``, ``x``, ``t``,
        ``denoised``); raising from it stops generation between steps.
        """
        timings: dict[str, float] = {}
        prompts = self._check_prompts(prompt, batch_size, "prompt")
        negatives = (
            None
            if negative_prompt is None
            else self._check_prompts(negative_prompt, batch_size, "negative_prompt")
        )
        if negatives is not None and cfg_scale == 1.0:
            warnings.warn(
                "negative_prompt has no effect with cfg_scale=1.0; raise cfg_scale (e.g. 7 for base models).",
                stacklevel=2,
            )
        steps = lengths.check_steps(steps)
        sampler_name = sampling.resolve_sampler(sampler_type, self.objective)
        if init_audio is not None:
            init_noise_level = sampling.check_init_noise_level(init_noise_level)
        sigma_max = init_noise_level if init_audio is not None else 1.0
        model, device = self.model, self.device
        plan = lengths.plan_lengths(
            duration,
            batch_size=batch_size,
            sample_rate=self.sample_rate,
            downsampling_ratio=model.downsampling_ratio,
            max_samples=sample_size or self.max_samples,
            padding_sec=duration_padding_sec,
            latent_align=model.latent_align,
            device=device,
        )
        mask = inpainting.build_inpaint_mask(
            length=plan.audio_samples,
            sample_rate=self.sample_rate,
            durations=plan.durations,
            batch_size=batch_size,
            starts=inpaint_mask_start_seconds,
            ends=inpaint_mask_end_seconds,
            mask=inpaint_mask,
        )

        self.last_seed = seed = self._resolve_seed(seed)
        torch.manual_seed(seed)
        noise = torch.randn([batch_size, model.latent_channels, plan.latent_length], device=device)

        t0 = time.perf_counter()
        cond = model.conditioner.condition(prompts, plan.durations, device=device)
        negative = (
            None
            if negatives is None
            else model.conditioner.condition(negatives, plan.durations, device=device)
        )
        timings["text_encoding"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        init_latents = self._encode_input(init_audio, plan.audio_samples) if init_audio is not None else None
        inpaint_latents = (
            self._encode_input(inpaint_audio, plan.audio_samples) if inpaint_audio is not None else None
        )
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
        timings["encoding"] = time.perf_counter() - t0

        x = (
            noise
            if init_latents is None
            else sampling.start_from_init(
                init_latents.expand(batch_size, -1, -1).to(noise.dtype), noise, sigma_max
            )
        )
        shift = dist_shift if dist_shift is not None else model.sampling_shift
        schedule = sampling.build_schedule(steps, sigma_max, shift, plan.effective_lengths, device=device)

        conditions_cache: dict = {}  # per-block work on the fixed conditions, done once per generation

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

        t0 = time.perf_counter()
        latents = sampling.sample(
            sampler_name,
            model_fn,
            x,
            schedule,
            callback=callback,
            disable_tqdm=disable_tqdm,
            rk4_upstream_compat=rk4_upstream_compat,
        )
        timings["sampling"] = time.perf_counter() - t0
        if return_latents:
            self.last_timings = timings
            return latents

        t0 = time.perf_counter()
        chunked = model.chunked if chunked_decode is None else chunked_decode
        kept = plan.output_samples if truncate_output_to_duration else None
        audio = model.autoencoder.decode(
            latents.to(model.autoencoder_dtype),
            chunked=chunked,
            frames=None if kept is None else -(-kept // model.downsampling_ratio),
        )
        audio = lengths.zero_padding(audio, plan.padding_mask, model.downsampling_ratio)
        audio = audio.float().clamp(-1, 1)
        if truncate_output_to_duration:
            if plan.output_samples is not None:
                audio = audio[..., : plan.output_samples]
            elif batch_size > 1:
                warnings.warn("Durations differ within the batch, so the audio is not trimmed.", stacklevel=2)
        timings["decoding"] = time.perf_counter() - t0
        self.last_timings = timings
        return audio

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
    def _resolve_seed(seed) -> int:
        if seed is None or int(seed) == -1:
            return random.randrange(0, 99999)
        if int(seed) < 0:
            raise ValueError(f"seed must be -1 (random) or a number >= 0, got {seed}.")
        return int(seed)

    def _encode_input(self, audio, length: int) -> torch.Tensor:
        ae = self.model.autoencoder
        prepared = prepare_audio(
            audio, sample_rate=self.sample_rate, length=length, channels=ae.io_channels, device=self.device
        )
        return ae.encode(prepared.to(self.model.autoencoder_dtype), chunked=self.model.chunked)


__all__ = ["StableAudioModel", "DIFFUSION_MODELS"]
