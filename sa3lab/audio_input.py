"""Audio a person brings to the lab, read in one place with one-sentence errors; and a test chord.

Every audio file the lab reads (a form's file field and its player, a generation's or round trip's
source, a training clip in the caption editor, a saved run in the library or a sweep's gallery) is
read here, under the same rules: the file exists, libsndfile decodes it or else ffmpeg does (m4a/AAC
and whatever else ffmpeg reads: :func:`ffmpeg_exe`), any decoder failure being one sentence; its
sample rate is within :data:`RATE_SPAN`, it holds samples, and every sample is a finite number.
(Channels and rates an encoder does not take are made playable where audio is encoded:
:func:`sa3lab.render.encodable`.) Non-finite samples are refused here, before anything native sees
them: an MP3 encoder fed NaN aborts the whole process (LAME's ``calc_energy`` assertion), and a
resampler or a figure would carry them on silently.

* :func:`audio_info`: the file's rate, channels, frames, length and peak, after reading all of it once.
* :func:`read_audio`: its samples, all or a part (the first seconds, or a frame range); the part
  read is checked.
* :func:`check_readable`: the file's path, after the checks of :func:`audio_info`.
* :func:`decode_clip`: a whole file as decoded, for the training dataset, which checks it itself.

ffmpeg is the program on ``PATH`` (Colab's and Kaggle's images have it), else the one the
``imageio-ffmpeg`` package bundles (also on Colab; it installs from pip without touching any pin). It
decodes the file's first audio stream into a 32-bit float WAV in a temporary folder (the last
:data:`DECODED_KEPT` are kept, so a file read several times is decoded once), which is then read and
checked like any WAV: the same rate, emptiness and finiteness checks apply to what ffmpeg decoded.

Writing audio is not here (:mod:`.runs`, :mod:`.render`, :mod:`.library`): those write what the lab
made or read, which is finite.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REFERENCE_CHORD_HZ = (130.81, 261.63, 329.63, 392.0)  # C3 + a C major triad
REFERENCE_CHORD_RATE = 44100
RATE_SPAN = (1000, 768000)  # sample rates accepted, in Hz (outside: a broken header, or no audio)
SCAN_FRAMES = 1 << 18  # frames decoded at a time when a whole file is checked (about 6 s at 44.1 kHz)
FFMPEG_SUFFIXES = (".m4a", ".aac", ".mp4", ".webm", ".wma", ".aiff", ".caf")  # clips ffmpeg reads
DECODED_KEPT = 8  # ffmpeg decodes kept in the temporary folder (the most recent)
FFMPEG_TIMEOUT_S = 600  # an ffmpeg decode or encode taking longer is given up
INSTALL_FFMPEG = "apt-get install ffmpeg, or pip install imageio-ffmpeg"
NO_FFMPEG = (
    "m4a/AAC and the other formats libsndfile does not read need ffmpeg, which is not installed here "
    f"({INSTALL_FFMPEG})"
)


@dataclass(frozen=True)
class AudioInfo:
    """A checked audio file: its path, sample rate, channels, length (frames counted by decoding) and
    peak (its largest absolute sample, linear)."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str  # libsndfile's major format, e.g. "WAV"; "ffmpeg:<its demuxer>" for what ffmpeg decoded
    subtype: str  # e.g. "FLOAT", "PCM_16"
    peak: float = 0.0

    @property
    def duration(self) -> float:
        """The length in seconds."""
        return self.frames / self.sample_rate


def ffmpeg_exe() -> str | None:
    """The ffmpeg program: the one on ``PATH``, else imageio-ffmpeg's, else None."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - not installed, or its binary is missing
        return None


def _unreadable(path, exc: Exception) -> ValueError:
    if ffmpeg_exe():
        use = "use a WAV, FLAC, OGG, MP3, M4A/AAC or another audio file ffmpeg reads"
    else:
        use = f"use a WAV, FLAC, OGG or MP3 file ({NO_FFMPEG})"
    return ValueError(f"Could not read {path} as audio ({type(exc).__name__}); {use}.")


class FfmpegError(RuntimeError):
    """ffmpeg could not decode or encode a file (its last error line is the message)."""


def run_ffmpeg(arguments: list[str], data: bytes | None = None) -> str:
    """Run ffmpeg with ``arguments`` (after ``-hide_banner -y``), feeding it ``data`` on its input; returns
    its log (stderr). FfmpegError when ffmpeg is missing, fails or takes over :data:`FFMPEG_TIMEOUT_S`."""
    exe = ffmpeg_exe()
    if exe is None:
        raise FfmpegError(NO_FFMPEG)
    command = [exe, "-hide_banner", "-y", *(["-nostdin"] if data is None else []), *arguments]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FfmpegError(type(exc).__name__) from None
    log = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        lines = [line.strip() for line in log.splitlines() if line.strip()]
        raise FfmpegError(lines[-1] if lines else f"exit code {done.returncode}")
    return log


def _decoded_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / "sa3lab-decoded"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ffmpeg_decode(file: Path) -> tuple[Path, str]:
    """(a float32 WAV of ``file``'s first audio stream, ffmpeg's demuxer name), decoded once per version."""
    stat = file.stat()
    key = hashlib.sha256(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    folder = _decoded_folder()
    wav, name = folder / f"{key}.wav", folder / f"{key}.format"
    if wav.is_file() and name.is_file():
        os.utime(wav)
        return wav, name.read_text()
    tmp = folder / f".{key}-{os.getpid()}.wav"
    try:
        log = run_ffmpeg(
            # only local files: a playlist or reference in the container fetches nothing from elsewhere
            ["-protocol_whitelist", "file", "-i", f"file:{file.resolve()}", "-map", "0:a:0"]
            + ["-vn", "-sn", "-dn", "-c:a", "pcm_f32le", "-f", "wav", f"file:{tmp}"]
        )
        demuxer = next(
            (
                line.split(",", 1)[1].split(" from ")[0].strip(", ")
                for line in log.splitlines()
                if line.startswith("Input #0,")
            ),
            "audio",
        )
        name.write_text(f"ffmpeg:{demuxer.split(',')[0]}")
        tmp.replace(wav)
    finally:
        tmp.unlink(missing_ok=True)
    done = [p for p in folder.glob("*.wav") if not p.name.startswith(".")]  # others' decodes in progress stay
    kept = sorted(done, key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[DECODED_KEPT:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".format").unlink(missing_ok=True)
    return wav, name.read_text()


def _empty(what: str, path) -> ValueError:
    return ValueError(f"The {what} file {path} contains no samples; choose another file.")


def _not_finite(what: str, path) -> ValueError:
    return ValueError(
        f"The {what} file {path} holds NaN or infinite samples; export it again or choose another file."
    )


def _check_rate(f: sf.SoundFile, what: str, file: Path) -> int:
    rate = int(f.samplerate)
    if not RATE_SPAN[0] <= rate <= RATE_SPAN[1]:
        low, high = (f"{r // 1000} kHz" for r in RATE_SPAN)
        raise ValueError(
            f"The {what} file {file} has a sample rate of {rate} Hz; use a file sampled at {low} to {high}."
        )
    return rate


def _existing(path, what: str) -> Path:
    if not path or not str(path).strip():
        raise ValueError(f"Choose the {what}: upload a file or type its path.")
    file = Path(str(path).strip()).expanduser()
    if not file.is_file():
        raise ValueError(f"The {what} file {file} was not found; check the path or upload the file.")
    return file


def _open(file: Path) -> tuple[sf.SoundFile, str | None]:
    """The file opened by libsndfile, or ffmpeg's decode of it opened (and ffmpeg's format name)."""
    try:
        return sf.SoundFile(str(file)), None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the same to the user
        if ffmpeg_exe() is None:
            raise _unreadable(file, exc) from None
    try:
        decoded, name = _ffmpeg_decode(file)
        return sf.SoundFile(str(decoded)), name
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(file, exc) from None


def _decoded(f: sf.SoundFile, file: Path, frames: int) -> np.ndarray:
    """Up to ``frames`` frames (-1: the rest) from where ``f`` stands, float32 (frames, channels)."""
    try:
        return f.read(frames, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(file, exc) from None


def audio_info(path, what: str = "audio") -> AudioInfo:
    """The checked file at ``path``: exists, decodes, holds samples, all finite (the whole file is read).

    ValueError with one sentence naming ``what`` (e.g. "source audio") otherwise.
    """
    file = _existing(path, what)
    frames, peak = 0, 0.0
    opened, decoder = _open(file)
    with opened as f:
        rate = _check_rate(f, what, file)
        while True:
            block = _decoded(f, file, SCAN_FRAMES)
            if not block.size:
                break
            if not np.isfinite(block).all():
                raise _not_finite(what, file)
            frames += block.shape[0]
            peak = max(peak, float(np.abs(block).max()))
        info = AudioInfo(file, rate, int(f.channels), frames, decoder or f.format, f.subtype, peak)
    if frames == 0:
        raise _empty(what, file)
    return info


def check_readable(path, what: str = "audio") -> Path:
    """The path of an existing, decodable, non-empty audio file of finite samples (see :func:`audio_info`)."""
    return audio_info(path, what).path


def read_audio(
    path,
    *,
    what: str = "audio",
    max_seconds: float | None = None,
    start: int = 0,
    frames: int | None = None,
) -> tuple[int, torch.Tensor]:
    """``(sample_rate, float32 (channels, samples))`` of a file: all of it, or from frame ``start``
    its next ``frames`` frames or its first ``max_seconds`` seconds (the shorter of the two).

    The samples returned are checked (finite, at least one); :func:`audio_info` checks a whole file.
    """
    file = _existing(path, what)
    with _open(file)[0] as f:
        rate = _check_rate(f, what, file)
        if f.frames == 0:
            raise _empty(what, file)
        seconds = None if max_seconds is None else round(max_seconds * rate)
        limits = [n for n in (frames, seconds) if n is not None]
        count = max(0, min(limits)) if limits else -1
        if start:
            try:
                f.seek(start)
            except Exception as exc:  # noqa: BLE001
                raise _unreadable(file, exc) from None
        data = _decoded(f, file, count)
    if not data.size and count != 0 and not start:
        raise _empty(what, file)
    if not np.isfinite(data).all():
        raise _not_finite(what, file)
    return rate, torch.from_numpy(data.T.copy())


def decode_clip(path: Path) -> tuple[np.ndarray, int]:
    """(float32 (frames, channels), rate) of a whole file as libsndfile or ffmpeg decodes it, unchecked:
    the training dataset (:class:`stable_audio_3.training.data.AudioReader`) checks rate, finiteness and
    silence itself, clip by clip, and names the clips that fail."""
    opened, _ = _open(Path(path))
    with opened as f:
        return f.read(dtype="float32", always_2d=True), int(f.samplerate)


def reference_chord(seconds: float, sample_rate: int = REFERENCE_CHORD_RATE) -> torch.Tensor:
    """A stereo C major chord with soft edges, peaking near -6 dBFS: a known input for round trips."""
    t = torch.arange(int(round(seconds * sample_rate)), dtype=torch.float64) / sample_rate
    notes = list(enumerate(REFERENCE_CHORD_HZ))
    left = sum(torch.sin(2 * math.pi * f * t) / (i + 1) for i, f in notes)
    right = sum(torch.sin(2 * math.pi * f * t + 0.3 * i) / (len(notes) - i) for i, f in notes)
    fade = torch.clamp(torch.minimum(t, t[-1] - t) / 0.05, max=1.0)
    stereo = torch.stack([left, right]) * fade
    return (0.5 * stereo / stereo.abs().max().clamp(min=1e-9)).float()
