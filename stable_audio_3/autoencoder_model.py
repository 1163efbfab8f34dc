"""``AutoencoderModel``: encode audio to SAME latents and decode them back, with upstream's API.

Audio can be given as (samples,), (channels, samples) or (batch, channels, samples), or as a list of
single clips; numpy or torch; float, or int16/int32 (scaled by 1/32767 and 1/2147483647). Each clip
is resampled to the model rate with torchaudio's default ``Resample`` filter (:mod:`.resample`), all
clips are zero-padded at the end to the longest one rounded up to a multiple of the downsampling
ratio, and mono is duplicated to stereo. A 2-D array's channel axis is the shorter one.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .autoencoder import SameAutoencoder
from .devices import default_device
from .editing import _as_channels_first, set_channels
from .hub import resolve_autoencoder_files
from .loading import load_state_dict_strict, read_safetensors
from .resample import resample

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
LARGE_PARAMETERS = 400_000_000  # SAME-L has 852 M (slow on a CPU), SAME-S 108 M


def autoencoder_config(config: dict, source) -> dict:
    """The autoencoder block of an AE-only (``model``) or full (``model.pretransform.config``) config."""
    model = config.get("model") if isinstance(config, dict) else None
    if isinstance(model, dict):
        if "encoder" in model:
            return model
        nested = (model.get("pretransform") or {}).get("config")
        if isinstance(nested, dict) and "encoder" in nested:
            return nested
    raise ValueError(
        f"{source} is not an autoencoder config (no model.encoder or model.pretransform.config); "
        "give same-s, same-l, their Hub repo or a folder holding a SAME or full Stable Audio 3 model."
    )


def _is_rate(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def _clips(audio) -> list:
    """The clips: a list as given, one clip, or the items of a (batch, channels, samples) array."""
    if isinstance(audio, (str, os.PathLike)):
        raise ValueError(
            "encode takes audio samples, not a file path; load the file first, e.g. "
            "audio, sr = torchaudio.load(path), then call encode(audio, sr)."
        )
    if isinstance(audio, (list, tuple)):
        if not audio:
            raise ValueError("The list of clips is empty; give at least one clip of audio samples.")
        return list(audio)
    ndim = getattr(audio, "ndim", None)
    if ndim is None:
        raise ValueError(f"Audio must be a numpy array or a torch tensor, got {type(audio).__name__}.")
    if ndim not in (1, 2, 3):
        raise ValueError(
            f"Audio must have shape (samples,), (channels, samples) or (batch, channels, samples); "
            f"got {ndim} dimensions {tuple(audio.shape)}."
        )
    return list(audio) if ndim == 3 else [audio]


def _clip_tensor(clip) -> torch.Tensor:
    """One clip as float32 (channels, samples), checked for size, channel count and finite values."""
    if getattr(clip, "ndim", 0) == 3 and clip.shape[0] != 1:
        raise ValueError("A clip in the list has a batch axis; give each clip as (channels, samples).")
    if getattr(clip, "ndim", None) is not None and math.prod(clip.shape) == 0:
        raise ValueError(f"The input audio is empty (shape {tuple(clip.shape)}); give at least one sample.")
    samples = _as_channels_first(clip)
    if samples.shape[0] > 2:
        raise ValueError(
            f"The audio has {samples.shape[0]} channels; give mono or stereo clips, e.g. audio[:2], or a "
            "(batch, channels, samples) array for several clips."
        )
    if not torch.isfinite(samples).all():
        raise ValueError("The input audio contains NaN or infinite values; clean or re-read it first.")
    return samples


def _rates(sr, count: int) -> list[int]:
    rates = list(sr) if isinstance(sr, (list, tuple)) else [sr] * count
    if len(rates) != count or not all(_is_rate(r) for r in rates):
        raise ValueError(
            f"sr must be a positive whole number of Hz (or a list of {count}, one per clip), got {sr!r}."
        )
    return [int(r) for r in rates]


def prepare_batch(audio, sr, *, sample_rate: int, channels: int, multiple: int) -> torch.Tensor:
    """Clips as a float32 (B, channels, N) batch at ``sample_rate``, N a multiple of ``multiple``."""
    clips = _clips(audio)
    rates = _rates(sr, len(clips))
    resampled = []
    for clip, rate in zip(clips, rates, strict=True):
        resampled.append(resample(_clip_tensor(clip), rate, sample_rate))
    longest = max(s.shape[-1] for s in resampled)
    length = longest + (-longest % multiple)
    device = resampled[0].device
    return torch.cat(
        [set_channels(F.pad(s.to(device), (0, length - s.shape[-1]))[None], channels) for s in resampled]
    )


class AutoencoderModel:
    """A loaded SAME-S / SAME-L autoencoder: ``encode`` audio to latents and ``decode`` them back."""

    def __init__(self, autoencoder: SameAutoencoder, sample_rate: int, device, weights_path=None):
        self.autoencoder = autoencoder
        self.sample_rate = int(sample_rate)
        self.device = torch.device(device)
        self.weights_path = weights_path

    @classmethod
    def from_pretrained(
        cls,
        name_or_path,
        device=None,
        token: str | None = None,
        revision: str | None = None,
        cache_dir=None,
        dtype: torch.dtype = torch.float32,
    ) -> AutoencoderModel:
        """Load ``same-s`` / ``same-l``, a Hub repo id or a folder with model_config.json + model.safetensors.

        ``same-s`` / ``same-l`` use a full Stable Audio 3 checkpoint already in the cache that carries the
        same autoencoder before downloading the AE repo. The device defaults to CUDA, MPS, then CPU.
        Upstream always runs in float32; ``dtype`` float16 / bfloat16 cast the weights (the rotary
        frequency tables stay float32).
        """
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
        device = torch.device(device) if device is not None else default_device()
        config_path, weights_path, prefix = resolve_autoencoder_files(
            name_or_path, token=token, revision=revision, cache_dir=cache_dir
        )
        config = json.loads(Path(config_path).read_text())
        ae_config = autoencoder_config(config, config_path)
        with torch.device("meta"):
            autoencoder = SameAutoencoder.from_config(ae_config)
        state = {
            key: tensor.to(dtype) if tensor.is_floating_point() and not key.endswith("inv_freq") else tensor
            for key, tensor in read_safetensors(weights_path, prefix=prefix).items()
        }
        load_state_dict_strict(autoencoder, state, source=weights_path, device=device)
        if device.type == "cpu" and sum(p.numel() for p in autoencoder.parameters()) > LARGE_PARAMETERS:
            warnings.warn("SAME-L is designed for a GPU; on the CPU long audio takes minutes.", stacklevel=2)
        autoencoder.eval().requires_grad_(False)
        return cls(autoencoder, config.get("sample_rate", 44100), device, weights_path)

    # ------------------------------------------------------------------ properties

    @property
    def latent_dim(self) -> int:
        return self.autoencoder.latent_dim

    @property
    def downsampling_ratio(self) -> int:
        return self.autoencoder.downsampling_ratio

    @property
    def dtype(self) -> torch.dtype:
        return self.autoencoder.bottleneck.scaling_factor.dtype

    # ------------------------------------------------------------------ encode / decode

    @torch.inference_mode()
    def encode(self, audio, sr, chunked: bool = False, chunk_size: int = 128, overlap: int = 32):
        """Audio at rate ``sr`` -> float32 latents (B, latent_dim, frames).

        ``audio``: (samples,), (channels, samples), (batch, channels, samples) or a list of clips
        (``sr`` then may be a list too). ``chunked`` encodes overlapping windows of ``chunk_size``
        latent frames (``overlap`` frames shared) to save memory.
        """
        batch = prepare_batch(
            audio,
            sr,
            sample_rate=self.sample_rate,
            channels=self.autoencoder.in_channels,
            multiple=self.downsampling_ratio,
        )
        batch = batch.to(self.device, self.dtype)
        latents = self.autoencoder.encode(batch, chunked=chunked, chunk_size=chunk_size, overlap=overlap)
        return latents.float()

    @torch.inference_mode()
    def decode(self, latents, chunked: bool = False, chunk_size: int = 128, overlap: int = 32):
        """Latents (B, latent_dim, frames) -> float32 audio (B, 2, frames * downsampling_ratio), not clamped.

        Decoding adds upstream's small noise from the global torch RNG (seed it with
        ``torch.manual_seed`` for repeatable output); ``chunked`` decodes windows of ``chunk_size`` frames.
        """
        latents = self._check_latents(latents)
        audio = self.autoencoder.decode(
            latents.to(self.device, self.dtype), chunked=chunked, chunk_size=chunk_size, overlap=overlap
        )
        return audio.float()

    def _check_latents(self, latents) -> torch.Tensor:
        if isinstance(latents, np.ndarray):
            latents = torch.from_numpy(latents)
        if not isinstance(latents, torch.Tensor) or not latents.is_floating_point():
            raise ValueError("Latents must be a float tensor (batch, latent_dim, frames), e.g. from encode.")
        if latents.dim() == 2:
            latents = latents.unsqueeze(0)
        if latents.dim() != 3 or latents.shape[1] != self.latent_dim or latents.shape[-1] == 0:
            raise ValueError(
                f"Latents must have shape (batch, {self.latent_dim}, frames) with frames >= 1, got "
                f"{tuple(latents.shape)}; were they made by another autoencoder?"
            )
        if not torch.isfinite(latents).all():
            raise ValueError("The latents contain NaN or infinite values; check what produced them.")
        return latents
