"""Step previews: what the sampler's denoised estimate looks (and sounds) like every N steps, cheaply.

Decoding the latents costs about as much as a sampling step on a CPU (the SAME decoder runs on whole
attention chunks, so even a short excerpt costs most of one), far more than the 10 % of a run a
preview may take. So a preview's spectrogram is not decoded: :class:`LatentSpectrogram` maps each
latent frame linearly to the dBFS levels of the audio it decodes to, a ridge regression fitted on
this model's decoded results in the kernel (every finished run with previews teaches it). Until a
fit exists the preview shows the latents themselves. With
``listen=True`` each preview also decodes the first :data:`LISTEN_FRAMES` latents (about 3 s) to
hear them, at the price of a decode per preview; it draws the decoder's noise without touching the
run's random numbers, so the result stays the same, and teaches the fit at once.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import checks, render

ROWS = 96  # log-spaced frequency rows of a preview
LISTEN_FRAMES = 32  # latents decoded to listen to: about 3 s
MIN_FIT_FRAMES = 64  # decoded latent frames a fit needs before it is used
RIDGE = 0.1  # regularisation of the slopes, relative to the mean latent variance
LATENT_RANGE = (-3.0, 3.0)  # standard deviations shown by the latent view


@dataclass(frozen=True)
class Preview:
    """One preview: the estimate after ``step`` of ``steps`` as a PNG, and maybe audio to hear."""

    step: int
    steps: int
    sigma: float
    kind: str  # "estimate": spectrogram estimated from the latents; "latents": the latents themselves
    image: bytes  # PNG
    audio: torch.Tensor | None  # (channels, samples) decoded excerpt, when listening
    sample_rate: int

    @property
    def caption(self) -> str:
        what = (
            "spectrogram estimated from the latents (log frequency, fixed dBFS scale)"
            if self.kind == "estimate"
            else "latents (a spectrogram estimate shows once this model has finished a run with previews)"
        )
        return f"step {self.step}/{self.steps} · noise level {self.sigma:.2f} · {what}"


class LatentSpectrogram:
    """A linear map from latent frames to spectrogram rows (dBFS), fitted by ridge regression."""

    def __init__(self, channels: int, rows: int = ROWS):
        self.xtx = np.zeros((channels + 1, channels + 1))
        self.xty = np.zeros((channels + 1, rows))
        self.frames = 0
        self.rows = rows
        self._weights: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        return self.frames >= MIN_FIT_FRAMES

    @staticmethod
    def _features(latents: torch.Tensor) -> np.ndarray:
        x = latents.detach().to("cpu", torch.float64).numpy().T  # (frames, channels)
        return np.hstack([x, np.ones((x.shape[0], 1))])

    def add(self, latents: torch.Tensor, audio: torch.Tensor, sample_rate: int, hop: int) -> None:
        """Learn from (channels, frames) latents and the (channels, samples) audio they decode to."""
        frames = min(latents.shape[-1], audio.shape[-1] // hop)
        if frames < 1:
            return
        levels = render.log_spectrogram(audio[..., : frames * hop], sample_rate, frame=hop, rows=self.rows).db
        x = self._features(latents[..., :frames])
        self.xtx += x.T @ x
        self.xty += x.T @ levels.T.astype(np.float64)
        self.frames += frames
        self._weights = None

    def _solve(self) -> np.ndarray:
        """Weights (channels + 1, rows): ridge on centred latents, so only the slopes shrink, not the mean."""
        n = self.xtx[-1, -1]
        mean_x, mean_y = self.xtx[-1, :-1] / n, self.xty[-1] / n
        sxx = self.xtx[:-1, :-1] - n * np.outer(mean_x, mean_x)
        sxy = self.xty[:-1] - n * np.outer(mean_x, mean_y)
        ridge = RIDGE * np.trace(sxx) / len(sxx) + 1e-9
        slopes = np.linalg.solve(sxx + ridge * np.eye(len(sxx)), sxy)
        return np.vstack([slopes, mean_y - mean_x @ slopes])

    def predict(self, latents: torch.Tensor) -> np.ndarray:
        """(rows, frames) dBFS levels estimated for (channels, frames) latents."""
        if self._weights is None:
            self._weights = self._solve()
        return np.clip((self._features(latents) @ self._weights).T, *render.DB_RANGE)


class PreviewFits:
    """The :class:`LatentSpectrogram` learnt for each loaded model (held weakly: it goes with the model)."""

    def __init__(self):
        self._fits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __contains__(self, model) -> bool:
        return model in self._fits

    def of(self, model) -> LatentSpectrogram:
        """The fit for a loaded model (a new, empty one for a model not seen yet)."""
        if model not in self._fits:
            self._fits[model] = LatentSpectrogram(model.model.latent_channels)
        return self._fits[model]


def _keeping_rng(device: torch.device):
    """A block whose random draws leave the global generators as they were."""
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(devices=[device.index or 0], device_type=device.type)


class StepPreviews:
    """Show ``show`` a :class:`Preview` after every ``every``-th sampling step of a generation.

    ``fits``: what earlier generations taught about each model (the lab's own); none: learn afresh.
    ``seconds`` is the time the previews of the last generation took (showing them included).
    """

    def __init__(
        self,
        show: Callable[[Preview], None],
        every: int = 2,
        listen: bool = False,
        fits: PreviewFits | None = None,
    ):
        self.show = show
        self.fits = fits if fits is not None else PreviewFits()
        self.every = checks.whole(
            "Previews come every N steps: N must be a whole number from 1 to 1000", every, low=1, high=1000
        )
        self.listen = checks.flag("listen must be True or False", listen)
        self.seconds = 0.0
        self._last: torch.Tensor | None = None

    def watch(self, model, duration: float) -> Callable[[dict], None]:
        """The sampler callback for one generation of ``duration`` seconds on ``model``."""
        fit, hop, rate = self.fits.of(model), model.model.downsampling_ratio, model.sample_rate
        frames = max(1, math.ceil(duration * rate / hop))
        self.seconds, self._last = 0.0, None

        def on_step(info: dict) -> None:
            self._last = info["denoised"]
            step = info["i"] + 1
            if step % self.every:
                return
            start = time.perf_counter()
            latents = info["denoised"][0, :, :frames]
            audio = self._excerpt(model, latents) if self.listen else None
            if audio is not None:
                fit.add(latents[:, :LISTEN_FRAMES], audio, rate, hop)
            if fit.ready:
                kind, image = "estimate", render.levels_png(fit.predict(latents), *render.DB_RANGE)
            else:
                kind, image = "latents", render.levels_png(_standardised(latents), *LATENT_RANGE)
            sigma = float(info["sigma"].reshape(-1)[0])
            self.show(Preview(step, info["steps"], sigma, kind, image, audio, rate))
            self.seconds += time.perf_counter() - start

        return on_step

    @staticmethod
    def _excerpt(model, latents: torch.Tensor) -> torch.Tensor | None:
        """The first seconds the estimate decodes to, as decoded (the player turns loud audio down by
        one gain); None when it holds NaN or infinite samples (the run's end says why)."""
        autoencoder = model.model.autoencoder
        first = latents[None, :, :LISTEN_FRAMES].to(model.model.autoencoder_dtype)
        with _keeping_rng(model.device):
            audio = autoencoder.decode(first)[0].to("cpu", torch.float32)
        return audio if bool(torch.isfinite(audio).all()) else None

    def learn(self, model, audio: torch.Tensor) -> None:
        """Teach the model's fit with the generation's result (its first item) and its final latents."""
        if self._last is None:
            return
        start = time.perf_counter()
        self.fits.of(model).add(self._last[0], audio[0], model.sample_rate, model.model.downsampling_ratio)
        self.seconds += time.perf_counter() - start


def _standardised(latents: torch.Tensor) -> np.ndarray:
    """Each latent channel as standard deviations from its mean over time (channels, frames)."""
    x = latents.detach().to("cpu", torch.float32)
    return ((x - x.mean(dim=1, keepdim=True)) / (x.std(dim=1, keepdim=True, correction=0) + 1e-6)).numpy()
