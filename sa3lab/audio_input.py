"""Audio a person brings to the lab: files checked and read with one-sentence errors, and a test chord."""

from __future__ import annotations

import math
from pathlib import Path

import soundfile as sf
import torch

REFERENCE_CHORD_HZ = (130.81, 261.63, 329.63, 392.0)  # C3 + a C major triad
REFERENCE_CHORD_RATE = 44100


def _unreadable(path, exc: Exception) -> ValueError:
    return ValueError(
        f"Could not read {path} as audio ({type(exc).__name__}); use a WAV, FLAC, OGG or MP3 file."
    )


def check_readable(path: str, what: str = "audio") -> Path:
    """The path of an existing, decodable audio file; ValueError with one sentence otherwise."""
    if not path or not str(path).strip():
        raise ValueError(f"Choose the {what}: upload a file or type its path.")
    file = Path(str(path).strip()).expanduser()
    if not file.is_file():
        raise ValueError(f"The {what} file {file} was not found; check the path or upload the file.")
    try:
        info = sf.info(str(file))
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the same to the user
        raise _unreadable(file, exc) from None
    if info.frames == 0:
        raise ValueError(f"The {what} file {file} contains no samples; choose another file.")
    return file


def read_audio(path: str, max_seconds: float | None = None) -> tuple[int, torch.Tensor]:
    """``(sample_rate, float32 (channels, samples))`` of a file, optionally only its first seconds."""
    file = check_readable(path)
    try:
        with sf.SoundFile(str(file)) as f:
            frames = -1 if max_seconds is None else int(round(max_seconds * f.samplerate))
            data, rate = f.read(frames, dtype="float32", always_2d=True), f.samplerate
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(file, exc) from None
    return rate, torch.from_numpy(data.T.copy())


def reference_chord(seconds: float, sample_rate: int = REFERENCE_CHORD_RATE) -> torch.Tensor:
    """A stereo C major chord with soft edges, peaking near -6 dBFS: a known input for round trips."""
    t = torch.arange(int(round(seconds * sample_rate)), dtype=torch.float64) / sample_rate
    notes = list(enumerate(REFERENCE_CHORD_HZ))
    left = sum(torch.sin(2 * math.pi * f * t) / (i + 1) for i, f in notes)
    right = sum(torch.sin(2 * math.pi * f * t + 0.3 * i) / (len(notes) - i) for i, f in notes)
    fade = torch.clamp(torch.minimum(t, t[-1] - t) / 0.05, max=1.0)
    stereo = torch.stack([left, right]) * fade
    return (0.5 * stereo / stereo.abs().max().clamp(min=1e-9)).float()
