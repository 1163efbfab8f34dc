"""Peak protection: audio louder than the ceiling is turned down by one gain, never clipped, never boosted.

The engine's decoder can give samples beyond full scale. A 32-bit float WAV keeps them; every output
that cannot (16-bit WAV, FLAC, MP3, OGG, the notebooks' players, and any future one such as radio's
files) would hard-clip them, which distorts. Instead, when a clip's peak is above the ceiling (default
:data:`sa3lab.defaults.PEAK_CEILING_DBFS`, 0 dBFS), the whole clip is multiplied by one gain, so the
ratios between samples (the sound, the stereo image) are kept; a clip within the ceiling is left
exactly as it is, and a quiet one is never made louder. NaN or infinite audio is refused, never
written. This follows upstream's issue #78 and PR #90 (Stability-AI/stable-audio-3).

Lossy encoders (MP3, Vorbis) overshoot the level they are given by a fraction of a dB once decoded
(more on square waves), so lossy outputs keep :data:`LOSSY_HEADROOM_DB` below the ceiling.

The peak is measured on the audio as it is written: the engine has trimmed the decoder's padding
(``StableAudioModel._decode``) before the lab sees a result, and an encoder's copy is measured after it
is mixed down and resampled (:func:`sa3lab.render.encodable`).

Every writer calls :func:`protect` (a tensor) or :func:`measure` then :attr:`Peak.gain` (a file written
in blocks); the run record keeps :meth:`Peak.record` of each item (:func:`sa3lab.quality.assess`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from stable_audio_3.checks import finite_output

from . import checks, defaults

LOSSY_HEADROOM_DB = 1.0  # lossy outputs peak this far below the ceiling (decoded MP3/Vorbis overshoot)
LOWEST_CEILING_DBFS = -40.0
CEILING_RULE = f"The peak ceiling must be a level in dBFS from {LOWEST_CEILING_DBFS:g} to 0, e.g. -1"
FLOAT_WAV = ("raw", "protected")  # the saved 32-bit float WAV: as made, or under the ceiling too


def checked_ceiling(value) -> float:
    """A peak ceiling a person gives: a level in dBFS from :data:`LOWEST_CEILING_DBFS` to 0."""
    return checks.real(CEILING_RULE, value, low=LOWEST_CEILING_DBFS, high=0)


def checked_float_wav(value) -> str:
    """What the saved float WAV gets: one of :data:`FLOAT_WAV`."""
    if value not in FLOAT_WAV:
        raise ValueError(f"The float WAV must be {' or '.join(FLOAT_WAV)}; got {checks.shown(value)}.")
    return value


def dbfs(level: float) -> float:
    return 20 * math.log10(level) if level > 0 else -math.inf


@dataclass(frozen=True)
class Peak:
    """A clip's loudest sample (linear, finite) against a ceiling, and the one gain that keeps it under."""

    peak: float
    ceiling_dbfs: float = defaults.PEAK_CEILING_DBFS
    lossy: bool = False

    @property
    def limit(self) -> float:
        """The largest sample allowed, linear: the ceiling, less the headroom of lossy outputs."""
        return 10 ** ((self.ceiling_dbfs - (LOSSY_HEADROOM_DB if self.lossy else 0.0)) / 20)

    @property
    def gain(self) -> float:
        """1.0 within the limit, else limit / peak (below 1: never a boost)."""
        return 1.0 if self.peak <= self.limit else self.limit / self.peak

    @property
    def attenuated_db(self) -> float:
        """How far the gain turns the clip down, in dB (0.0: not at all)."""
        return 0.0 if self.gain == 1.0 else -20 * math.log10(self.gain)

    def flag(self, float_wav: str = defaults.FLOAT_WAV) -> str | None:
        """The quality flag's sentence when the clip is turned down, else None."""
        if self.gain == 1.0:
            return None
        kept = "is attenuated too" if float_wav == "protected" else "keeps the raw level"
        return (
            f"Attenuated {self.attenuated_db:.1f} dB to avoid clipping: the peak is "
            f"{dbfs(self.peak):+.1f} dBFS, over the {self.ceiling_dbfs:g} dBFS ceiling "
            f"(the 32-bit float WAV {kept})."
        )

    def record(self) -> dict:
        """What the run record keeps: the ceiling and the attenuation of fixed-point and of lossy outputs."""
        lossy = Peak(self.peak, self.ceiling_dbfs, lossy=True)
        return {
            "ceiling_dbfs": self.ceiling_dbfs,
            "attenuated_db": round(self.attenuated_db, 3),
            "lossy_attenuated_db": round(lossy.attenuated_db, 3),
        }


def measure(audio: torch.Tensor, ceiling_dbfs: float | None = None, *, lossy: bool = False) -> Peak:
    """The :class:`Peak` of a clip (any shape; one peak over all its channels, so the image is kept).

    NaN or infinite samples raise :class:`~stable_audio_3.checks.NonFiniteOutputError` (a ValueError).
    """
    finite_output(audio, "The audio", "it is refused, and nothing was written")
    peak = float(audio.detach().abs().max()) if audio.numel() else 0.0
    return Peak(peak, defaults.PEAK_CEILING_DBFS if ceiling_dbfs is None else ceiling_dbfs, lossy)


def protect(
    audio: torch.Tensor, ceiling_dbfs: float | None = None, *, lossy: bool = False
) -> tuple[torch.Tensor, Peak]:
    """``(audio times its one gain, its Peak)``: the same tensor when it is within the ceiling."""
    peak = measure(audio, ceiling_dbfs, lossy=lossy)
    return scaled(audio, peak), peak


def scaled(audio: torch.Tensor, peak: Peak) -> torch.Tensor:
    """``audio`` (the clip ``peak`` was measured on, or a block of it) times the peak's one gain.

    Divided by the peak, then times the limit (a peak near float32's largest has a gain float32 cannot
    hold); the clamp to the limit only catches float rounding at the peak itself.
    """
    if peak.gain == 1.0:
        return audio
    return (audio.to(torch.float32) / peak.peak * peak.limit).clamp(-peak.limit, peak.limit)


class StreamGain:
    """The gain of a stream that arrives in pieces (the radio's player): never clipped, never a step.

    It starts at 1 and only ever falls, each time along a ramp of ``ramp_s`` that ends by the first
    sample that would pass the ceiling, so the stream stays under it without hard clipping and without
    a jump in level at a join. For that, the last ``ramp_s`` of each piece is held back until the next
    piece (or :meth:`flush`) shows what follows. Pieces are (channels, samples), finite.
    """

    def __init__(self, sample_rate: int, ceiling_dbfs: float | None = None, ramp_s: float = 0.02):
        level = defaults.PEAK_CEILING_DBFS if ceiling_dbfs is None else ceiling_dbfs
        self.limit = 10 ** (level / 20)
        self.ramp = max(1, round(ramp_s * sample_rate))
        self.level = 1.0  # the running gain at the last sample given out
        self.held = None  # the samples held back, not yet given out

    def push(self, piece: np.ndarray) -> np.ndarray:
        """What of the stream can go out now, at its gain: ``piece`` after the held samples, less the
        new last ``ramp_s``."""
        return self._out(piece, final=False)

    def flush(self) -> np.ndarray:
        """The held samples, at their gain, as if the stream ended there."""
        return self._out(None, final=True)

    def _out(self, piece: np.ndarray | None, final: bool) -> np.ndarray:
        parts = [p for p in (self.held, piece) if p is not None]
        if not parts:
            return np.zeros((1, 0), np.float32)
        data = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
        peak = np.abs(data).max(axis=0) if data.shape[1] else np.zeros(0, np.float32)
        allowed = self.limit / np.maximum(peak, self.limit)  # 1 within the ceiling, else limit / peak
        # the running gain only falls ...
        level = np.minimum.accumulate(np.minimum(allowed, self.level))
        # ... and each fall becomes a ramp that ends where it is needed: the mean of the next `ramp` values
        ahead = np.concatenate([level, np.full(self.ramp, level[-1] if level.size else self.level)])
        sums = np.concatenate([[0.0], np.cumsum(ahead, dtype=np.float64)])
        gain = ((sums[self.ramp :] - sums[: -self.ramp]) / self.ramp)[: data.shape[1]].astype(np.float32)
        n = data.shape[1] if final else max(0, data.shape[1] - self.ramp)
        if n:
            self.level = float(level[n - 1])
        self.held = None if n == data.shape[1] else data[:, n:]
        return data[:, :n] * gain[:n]
