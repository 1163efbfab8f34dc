"""Training data in upstream's two layouts, checked up front with one-sentence errors.

* **Audio + captions**: a folder (searched recursively, hidden files skipped) of audio files
  (``.wav .mp3 .flac .ogg .aif .opus``), each with a same-named ``.txt`` caption. A clip is resampled
  to the model's rate, made stereo (mono duplicated, extra channels dropped), randomly cropped when
  longer than the training length, else zero-padded, and its sign flipped with probability 0.5;
  ``seconds_total`` is the clip's whole length rounded up to a second.
* **Pre-encoded latents**: ``.npy`` latents (C, N) with a ``.json`` each holding ``prompt``,
  ``seconds_total`` and ``padding_mask`` (per frame), as upstream's ``pre_encode_dataset.py``
  writes them; a ``silence.npy`` in the folder pads short ones (else zeros). Longer ones are cropped
  at random within their valid part.

Upstream skips unusable clips silently at training time; here they are reported before training.
Clips are read with soundfile unless the caller hands in an :class:`AudioReader` (the lab's reads
m4a/AAC too, through ffmpeg); the checks here apply to whatever it decodes.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..audio import set_channels
from ..resample import resample

AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".aif", ".opus")
SILENCE_DBFS = -60.0
RATE_SPAN = (1000, 768000)  # sample rates a clip may have, in Hz (the lab's reader takes the same)
LISTED = 5  # names shown in an error before "and N more"


def read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """(float32 (frames, channels), sample rate) of a whole file, as libsndfile decodes it."""
    return sf.read(str(path), dtype="float32", always_2d=True)


@dataclass(frozen=True)
class AudioReader:
    """Which files are clips (lower-case suffixes) and how one is decoded (any exception: unreadable)."""

    suffixes: tuple[str, ...] = AUDIO_EXTENSIONS
    read: Callable[[Path], tuple[np.ndarray, int]] = read_soundfile


@dataclass
class Batch:
    """One training batch: audio (B, 2, samples) or latents (B, C, frames), before encoding."""

    signal: torch.Tensor
    valid: torch.Tensor  # (B,) valid samples (audio) or frames (latents)
    prompts: list[str]
    seconds_total: list[float]
    encoded: bool


def _names(paths, root: Path) -> str:
    shown = [str(Path(p).relative_to(root)) for p in paths[:LISTED]]
    more = f" and {len(paths) - LISTED} more" if len(paths) > LISTED else ""
    return ", ".join(shown) + more


def dataset_files(folder: Path, suffixes) -> list[Path]:
    """The files of ``folder`` (searched recursively; hidden files and folders skipped) with one of
    ``suffixes`` (lower case, e.g. ``(".npy",)``), in name order."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def check_folder(folder) -> Path:
    """``folder`` as a Path (``~`` expanded); ValueError with one sentence when it is not a folder."""
    folder = Path(str(folder)).expanduser()
    if not folder.is_dir():
        raise ValueError(f"The dataset folder {folder} does not exist; check the path.")
    return folder


class AudioCaptionDataset:
    """Audio clips with same-named ``.txt`` captions; every clip is read once here to check it."""

    encoded = False

    def __init__(self, folder, *, sample_rate: int, sample_size: int, reader: AudioReader | None = None):
        self.folder = check_folder(folder)
        self.sample_rate, self.sample_size = sample_rate, sample_size
        self.reader = reader or AudioReader()
        clips = dataset_files(self.folder, self.reader.suffixes)
        if not clips:
            raise ValueError(
                f"The dataset folder {self.folder} holds no audio files ({' '.join(self.reader.suffixes)}); "
                "add clips, each with a .txt caption of the same name."
            )
        uncaptioned = [c for c in clips if not c.with_suffix(".txt").is_file()]
        if uncaptioned:
            raise ValueError(
                f"{len(uncaptioned)} clip(s) have no caption file (a .txt with the same name): "
                f"{_names(uncaptioned, self.folder)}; add one per clip."
            )
        self.captions = [c.with_suffix(".txt").read_text(encoding="utf-8").strip() for c in clips]
        empty = [c for c, text in zip(clips, self.captions, strict=True) if not text]
        if empty:
            raise ValueError(
                f"The caption of {_names(empty, self.folder)} is empty; describe each clip in it."
            )
        unreadable, odd_rate, nonfinite, silent = [], [], [], []
        for clip in clips:
            try:
                data, rate = self.reader.read(clip)
            except Exception:  # noqa: BLE001 - any decoder failure means the same to the user
                unreadable.append(clip)
                continue
            if not RATE_SPAN[0] <= rate <= RATE_SPAN[1]:
                odd_rate.append(clip)
                continue
            if not np.isfinite(data).all():
                nonfinite.append(clip)
                continue
            peak = float(np.abs(data).max()) if data.size else 0.0
            if peak == 0.0 or 20 * math.log10(peak) < SILENCE_DBFS:
                silent.append(clip)
        if unreadable:
            raise ValueError(
                f"These files cannot be read as audio: {_names(unreadable, self.folder)}; "
                "convert them to WAV or FLAC, or remove them."
            )
        if odd_rate:
            raise ValueError(
                f"These clips have a sample rate outside {RATE_SPAN[0] // 1000} kHz to "
                f"{RATE_SPAN[1] // 1000} kHz: {_names(odd_rate, self.folder)}; resample them or remove them."
            )
        if nonfinite:
            raise ValueError(
                f"These clips hold NaN or infinite samples: {_names(nonfinite, self.folder)}; "
                "export them again or remove them."
            )
        if silent:
            raise ValueError(
                f"These clips are silent (peak below {SILENCE_DBFS:.0f} dBFS): "
                f"{_names(silent, self.folder)}; remove them."
            )
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def item(self, index: int, rng: random.Random) -> tuple[torch.Tensor, int, str, float]:
        """(audio (2, sample_size), valid samples, caption, seconds_total), randomly cropped and flipped."""
        data, rate = self.reader.read(self.clips[index])
        audio = torch.from_numpy(data.T.copy())
        if rate != self.sample_rate:
            audio = resample(audio, rate, self.sample_rate)
        n = audio.shape[1]
        size = self.sample_size
        offset = rng.randint(0, n - size) if n > size else 0
        chunk = audio.new_zeros(audio.shape[0], size)
        chunk[:, : min(n, size)] = audio[:, offset : offset + size]
        if rng.random() < 0.5:
            chunk = -chunk
        chunk = set_channels(chunk.clamp(-1, 1).unsqueeze(0), 2)[0]
        return chunk, min(n, size), self.captions[index], float(math.ceil(n / self.sample_rate))


class LatentDataset:
    """Pre-encoded latents (``.npy`` + ``.json``) as written by upstream's ``pre_encode_dataset.py``."""

    encoded = True

    def __init__(self, folder, *, latent_length: int, channels: int):
        self.folder = check_folder(folder)
        self.latent_length = latent_length
        files = [f for f in dataset_files(self.folder, (".npy",)) if f.name != "silence.npy"]
        if not files:
            raise ValueError(
                f"The dataset folder {self.folder} holds no pre-encoded latents (.npy with a .json each); "
                "encode clips with pre_encode_dataset.py or give a folder of audio files and captions."
            )
        self.files, self.meta = files, []
        missing, uncaptioned, misfit = [], [], []
        for file in files:
            meta_file = file.with_suffix(".json")
            if not meta_file.is_file():
                missing.append(file)
                continue
            meta = json.loads(meta_file.read_text())
            if not str(meta.get("prompt", "")).strip():
                uncaptioned.append(file)
            shape = np.load(file, mmap_mode="r").shape
            if len(shape) != 2 or shape[0] != channels:
                misfit.append(file)
            self.meta.append(meta)
        if missing:
            raise ValueError(f"These latents have no .json metadata: {_names(missing, self.folder)}.")
        if uncaptioned:
            raise ValueError(
                f"{len(uncaptioned)} latent file(s) have no 'prompt' caption in their .json: "
                f"{_names(uncaptioned, self.folder)}; add one per clip."
            )
        if misfit:
            raise ValueError(
                f"These latents are not ({channels}, frames) arrays, so they were made with another "
                f"autoencoder: {_names(misfit, self.folder)}."
            )
        silence = self.folder / "silence.npy"
        self.silence = torch.from_numpy(np.load(silence)).reshape(channels, -1) if silence.is_file() else None

    def __len__(self) -> int:
        return len(self.files)

    def item(self, index: int, rng: random.Random) -> tuple[torch.Tensor, int, str, float]:
        """(latents (C, latent_length), valid frames, caption, seconds_total), cropped or padded."""
        latents = torch.from_numpy(np.load(self.files[index])).float()
        meta = self.meta[index]
        mask = list(meta.get("padding_mask", [1] * latents.shape[1]))
        size, stored = self.latent_length, latents.shape[1]
        if stored > size:
            last = len(mask) - 1 - mask[::-1].index(1) if 1 in mask else 0
            start = rng.randint(0, last - size) if last > size else 0
            latents, mask = latents[:, start : start + size], mask[start : start + size]
        elif stored < size:
            need = size - stored
            if self.silence is not None:
                pad = self.silence.repeat(1, math.ceil(need / self.silence.shape[1]))[:, :need].float()
            else:
                pad = latents.new_zeros(latents.shape[0], need)
            latents, mask = torch.cat([latents, pad], dim=1), mask[:stored] + [0] * need
        return latents, int(sum(mask)), str(meta["prompt"]).strip(), float(meta["seconds_total"])


class BatchOrder:
    """Shuffled batches over epochs (the last incomplete batch dropped), resumable from (epoch, index)."""

    def __init__(self, size: int, batch_size: int, seed: int):
        if batch_size > size:
            raise ValueError(
                f"batch_size {batch_size} is larger than the dataset ({size} clips); lower it or add clips."
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self.position = 0, 0

    def _permutation(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def next(self) -> list[int]:
        if self.position + self.batch_size > self.size:
            self.epoch, self.position = self.epoch + 1, 0
        picked = self._permutation()[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return picked

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def restore(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def make_batch(dataset, indices: list[int], rng: random.Random) -> Batch:
    """The clips at ``indices`` as one :class:`Batch`."""
    items = [dataset.item(i, rng) for i in indices]
    return Batch(
        signal=torch.stack([signal for signal, *_ in items]),
        valid=torch.tensor([valid for _, valid, _, _ in items]),
        prompts=[prompt for *_, prompt, _ in items],
        seconds_total=[seconds for *_, seconds in items],
        encoded=dataset.encoded,
    )


def open_dataset(
    folder, *, sample_rate: int, sample_size: int, downsampling_ratio: int, channels: int, reader=None
):
    """The dataset in ``folder``: latents if it holds ``.npy`` files, else audio with captions (read by
    ``reader``, an :class:`AudioReader`; None: soundfile)."""
    folder = check_folder(folder)
    if any(f.name != "silence.npy" for f in dataset_files(folder, (".npy",))):
        return LatentDataset(folder, latent_length=sample_size // downsampling_ratio, channels=channels)
    return AudioCaptionDataset(folder, sample_rate=sample_rate, sample_size=sample_size, reader=reader)
