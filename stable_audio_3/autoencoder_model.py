"""``AutoencoderModel``: encode audio to SAME latents and decode them back, with upstream's API.

Audio can be given as (samples,), (channels, samples) or (batch, channels, samples), or as a list of
single clips; numpy or torch; float, or int16/int32 (see :mod:`stable_audio_3.audio`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from . import checks
from .audio import prepare_batch
from .autoencoder import SameAutoencoder
from .hub import ModelFiles, resolve_autoencoder_files
from .loading import BUILD_ERRORS, check_dtype, config_build_error, load_weights, read_config, resolve_device
from .noise import GLOBAL_NOISE, Noise

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


class AutoencoderModel:
    """A loaded SAME-S / SAME-L autoencoder: ``encode`` audio to latents and ``decode`` them back."""

    def __init__(
        self, autoencoder: SameAutoencoder, sample_rate: int, device, source: ModelFiles | None = None
    ):
        self.autoencoder = autoencoder
        self.sample_rate = int(sample_rate)
        self.device = torch.device(device)
        self.source = source  # hub.ModelFiles of where the weights came from

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
        same autoencoder before downloading the AE repo; ``demo`` is the tiny demo model's autoencoder.
        The device defaults to CUDA, MPS, then CPU. Upstream always runs in float32; ``dtype`` float16 /
        bfloat16 cast the weights (the rotary frequency tables stay float32).
        """
        if not isinstance(name_or_path, ModelFiles):  # (files already resolved pass through)
            name_or_path = checks.path_like("name_or_path", name_or_path)
        check_dtype("dtype", dtype)
        checks.hub_options(token, revision, cache_dir)
        device = resolve_device(checks.device(device))
        files = resolve_autoencoder_files(name_or_path, token=token, revision=revision, cache_dir=cache_dir)
        config = read_config(files.config_path)
        ae_config = autoencoder_config(config, files.config_path)
        try:
            sample_rate = checks.whole("sample_rate", config.get("sample_rate", 44100), low=1)
            autoencoder = load_weights(
                lambda: SameAutoencoder.from_config(ae_config),
                files.weights_path,
                device=device,
                dtype_for=lambda key: dtype or torch.float32,
                prefix=files.weights_prefix,
            )
        except BUILD_ERRORS as exc:
            raise config_build_error(files.config_path, exc) from None
        if device.type == "cpu" and sum(p.numel() for p in autoencoder.parameters()) > LARGE_PARAMETERS:
            warnings.warn("SAME-L is designed for a GPU; on the CPU long audio takes minutes.", stacklevel=2)
        return cls(autoencoder, sample_rate, device, files)

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

    def prepare(self, audio, sr) -> torch.Tensor:
        """What :meth:`encode` feeds the encoder: float32 (B, channels, N) at the model's rate.

        Each clip resampled, mono made stereo, all zero-padded to the longest rounded up to a multiple
        of the downsampling ratio (see :mod:`stable_audio_3.audio`); on the input's device.
        """
        return prepare_batch(
            audio,
            sr,
            sample_rate=self.sample_rate,
            channels=self.autoencoder.in_channels,
            multiple=self.downsampling_ratio,
        )

    @torch.inference_mode()
    def encode(self, audio, sr, chunked: bool = False, chunk_size: int = 128, overlap: int = 32):
        """Audio at rate ``sr`` -> float32 latents (B, latent_dim, frames).

        ``audio``: (samples,), (channels, samples), (batch, channels, samples) or a list of clips
        (``sr`` then may be a list too). ``chunked`` encodes overlapping windows of ``chunk_size``
        latent frames (``overlap`` frames shared) to save memory.
        """
        _check_chunking(chunked, chunk_size, overlap)
        batch = self.prepare(audio, sr).to(self.device, self.dtype)
        latents = self.autoencoder.encode(batch, chunked=chunked, chunk_size=chunk_size, overlap=overlap)
        return checks.finite_output(latents.float(), "Encoding", self._nonfinite_hint())

    @torch.inference_mode()
    def decode(
        self,
        latents,
        chunked: bool = False,
        chunk_size: int = 128,
        overlap: int = 32,
        generator: torch.Generator | None = None,
    ):
        """Latents (B, latent_dim, frames) -> float32 audio (B, 2, frames * downsampling_ratio), not clamped.

        Decoding adds upstream's small noise, from ``generator`` (a ``torch.Generator`` on the model's
        device) or else from the global torch RNG (seed it with ``torch.manual_seed`` for repeatable
        output; a generator seeded the same way gives the same audio without touching global
        state); ``chunked`` decodes windows of ``chunk_size`` frames.
        """
        _check_chunking(chunked, chunk_size, overlap)
        latents = self._check_latents(latents)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
        if generator is not None and generator.device.type != self.device.type:
            raise ValueError(
                f"generator is on {generator.device} but the model is on {self.device}; "
                f"make it with torch.Generator({str(self.device)!r})."
            )
        audio = self.autoencoder.decode(
            latents.to(self.device, self.dtype),
            chunked=chunked,
            chunk_size=chunk_size,
            overlap=overlap,
            noise=GLOBAL_NOISE if generator is None else Noise([generator]),
        )
        return checks.finite_output(audio.float(), "Decoding", self._nonfinite_hint())

    def _nonfinite_hint(self) -> str:
        if self.dtype == torch.float16:
            return "load the autoencoder with dtype=torch.float32 (float16 overflows easily)"
        return "check the input: its values may be far outside what the autoencoder was trained on"

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


def _check_chunking(chunked, chunk_size, overlap) -> None:
    checks.flag("chunked", chunked)
    checks.whole("chunk_size", chunk_size, low=1)
    checks.whole("overlap", overlap, low=0)
