"""Run results and their files: ``outputs/<UTC timestamp>-<model>-<seed>.wav`` + a JSON sidecar.

A :class:`RunResult` carries audio, seed actually used, model, revision, device, dtype, per-stage
timings, cache facts, quality (with each item's peak record: :mod:`sa3lab.peaks`), whether the float
WAV is raw or under the ceiling, and package versions. It has no token field, and nothing here takes
one.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import soundfile as sf
import torch

from . import defaults, peaks, quality

PACKAGES = ("torch", "transformers", "huggingface_hub", "sa3lab")
RANDOM_SEEDS = 99999  # random seeds are drawn from 0..99998, as the engine does for seed=-1


def random_seed() -> int:
    return random.randrange(0, RANDOM_SEEDS)


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class RunResult:
    """One finished run. ``audio`` is (batch, channels, samples) float32 on the CPU."""

    audio: torch.Tensor
    sample_rate: int
    seed: int | None
    model_key: str
    repo_id: str | None
    revision: str | None
    device: str
    dtype: str
    timings: dict[str, float]
    cache_hit: bool
    load_elapsed_s: float
    settings: dict = field(default_factory=dict)
    quality: list[dict] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=package_versions)
    paths: list[str] = field(default_factory=list)
    request: dict = field(default_factory=dict)  # the job's request as it ran: enough to run it again
    float_wav: str = defaults.FLOAT_WAV  # the saved WAV: "raw", or "protected" (under the ceiling)

    def metadata(self) -> dict:
        """Everything but the audio, JSON-serialisable."""
        meta = asdict(self)
        meta.pop("audio")
        return meta


def new_result(
    model,
    audio: torch.Tensor,
    *,
    seed: int,
    model_key: str,
    timings: dict[str, float],
    cache_hit: bool,
    settings: dict,
    requested_s: float | None = None,
    request: dict | None = None,
    ceiling_dbfs: float = defaults.PEAK_CEILING_DBFS,
    float_wav: str = defaults.FLOAT_WAV,
) -> RunResult:
    """The result of a run of ``model`` (a StableAudioModel or an AutoencoderModel), levels assessed.

    ``request``: the job's request as it ran (seed and defaults resolved), stored in the sidecar.
    ``ceiling_dbfs``, ``float_wav``: its peak policy (:mod:`sa3lab.peaks`), in each item's quality.
    """
    source = model.source
    rate = int(model.sample_rate)
    return RunResult(
        audio=audio,
        sample_rate=rate,
        seed=seed,
        model_key=model_key,
        repo_id=source.repo_id if source else None,
        revision=source.revision if source else None,
        device=str(model.device),
        dtype=str(model.dtype).removeprefix("torch."),
        timings=timings,
        cache_hit=cache_hit,
        load_elapsed_s=timings.get("load", 0.0),
        settings=settings,
        quality=[
            quality.assess(item, rate, requested_s, ceiling_dbfs=ceiling_dbfs, float_wav=float_wav)
            for item in audio
        ],
        request=request or {},
        float_wav=float_wav,
    )


def atomic_write(path: Path, write) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then put it in place (none is left on failure),
    with the permissions a plain new file gets (the temporary file's own are owner-only)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.cache
def _umask() -> int:
    """The process's umask, read once (reading it means setting it, and putting it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _free_stem(folder: Path, stem: str) -> str:
    candidate, n = stem, 1
    while (folder / f"{candidate}.wav").exists() or (folder / f"{candidate}.json").exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def readable_stem(result: RunResult) -> str:
    """``<UTC time>-<model>-<first prompt words>-<seed>``: short and readable; a local model folder is
    named by its last part (the record keeps the full path)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    model = _slug(Path(result.model_key).name, 24)  # a folder's or a repo id's last part, or the key
    words = _slug(" ".join(str(result.settings.get("prompt") or "").split()[:4]).lower(), 32)
    return "-".join(part for part in (stamp, model, words, str(result.seed)) if part)


def _slug(text: str, most: int) -> str:
    """``text`` as file-name characters (runs of others become one ``_``), at most ``most`` of them."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_.-")[:most].rstrip("_.-")


def _float_wav_data(result: RunResult, i: int, item: torch.Tensor):
    """Item ``i`` as the float WAV holds it: raw, or under the ceiling its quality records."""
    if result.float_wav == "protected":
        recorded = result.quality[i] if i < len(result.quality) else {}
        item, _ = peaks.protect(item, recorded.get("ceiling_dbfs"))
    return item.detach().to("cpu", torch.float32).T.numpy()


def save_result(result: RunResult, output_dir, stems: list[str] | None = None) -> list[str]:
    """Write each batch item as a WAV (float32) plus a JSON sidecar; returns and records the WAV paths.

    The WAV keeps the raw level (overs included) unless ``result.float_wav`` is "protected": then an
    item louder than its ceiling is turned down by one gain (:func:`sa3lab.peaks.protect`).

    ``stems``: the items' file names without suffix (replacing files of those names), instead of
    :func:`readable_stem` made unique in the folder.
    """
    if not bool(torch.isfinite(result.audio).all()):  # the engine refuses such output; never write it
        raise ValueError("The result holds NaN or infinite samples; nothing was saved.")
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = readable_stem(result)
    paths = []
    for i, item in enumerate(result.audio):
        suffix = f"-{i}" if len(result.audio) > 1 else ""
        stem = stems[i] if stems else _free_stem(folder, f"{name}{suffix}")
        wav = folder / f"{stem}.wav"
        data = _float_wav_data(result, i, item)
        atomic_write(
            wav, lambda tmp, d=data: sf.write(tmp, d, result.sample_rate, subtype="FLOAT", format="WAV")
        )
        paths.append(str(wav))
    result.paths = paths
    meta = json.dumps(result.metadata(), indent=2, default=str)
    for wav in paths:
        sidecar = Path(wav).with_suffix(".json")
        atomic_write(sidecar, lambda tmp: Path(tmp).write_text(meta))
    return paths
