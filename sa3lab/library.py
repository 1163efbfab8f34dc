"""The results library: the runs saved in an output folder, newest first, with players, exports and links.

A run is a WAV with its JSON sidecar next to it (see :mod:`sa3lab.runs`); a sidecar that cannot be
read, or whose WAV is gone, gets a one-line note instead of an entry. :meth:`Library.page_html`
renders one page of runs as self-contained HTML (player, spectrogram and waveform through
:func:`sa3lab.render.clip_html`, settings through :func:`sa3lab.render.table_html`, download links),
so the page is saved with the notebook like any result.

Display budget (Colab keeps about 10 MB of display data per notebook): a 30 s result embeds a
constant-rate MP3 preview of about :data:`sa3lab.render.PREVIEW_BYTES` (64 kbit/s) plus a JPEG
spectrogram and a PNG waveform, under :data:`RESULT_SHARE_BYTES` in all; 20 of them
(``benchmarks/bench_notebook_size.py``) leave room for one library page, which holds at most
:data:`PAGE_RUNS` runs and embeds players only while the page stays under :data:`PAGE_BYTES`; the
rest of that page is listed with its settings and links but no player. The full-quality files stay
in the output folder.

Download links are relative to the kernel's working folder, which Jupyter sets to the notebook's
folder; JupyterLab and Notebook 7 resolve a relative ``href`` in an HTML output against the
notebook's folder and serve it from ``/files/``, so a link works for files below the server's root.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from . import defaults, quality, render
from .audio_input import audio_info, read_audio
from .generation import GenerationRequest
from .runs import atomic_write

DISPLAY_BUDGET_BYTES = 10_000_000  # Colab's display data limit per notebook
RESULT_SHARE_BYTES = 420_000  # one 30 s form result: 20 of them leave a library page's room
PAGE_BYTES = 1_200_000  # embedded players of one library page: three 30 s runs
PAGE_RUNS = 3  # runs per library page
MAX_NOTES = 5  # note lines shown for unreadable records (then a count)
BLOCK_SECONDS = 10  # exports are written in blocks: one long OGG Vorbis write crashes libsndfile
STAMP = re.compile(r"^(\d{8}T\d{6}Z)")


@dataclass(frozen=True)
class ExportFormat:
    label: str
    format: str  # libsndfile major format
    subtype: str
    suffix: str  # appended to the run's stem
    options: tuple = ()  # (name, value) pairs for soundfile.SoundFile
    rates: tuple | range = range(1, 1 << 31)  # sample rates the encoder takes (others are resampled)
    channels: int = 1024  # the most channels it takes (more are mixed down to stereo)

    def takes(self, rate: int, channels: int) -> bool:
        return rate in self.rates and channels <= self.channels

    def available(self) -> bool:
        formats = sf.available_formats()
        return self.format in formats and self.subtype in sf.available_subtypes(self.format)


EXPORTS = {
    "wav": ExportFormat("WAV 16-bit PCM", "WAV", "PCM_16", ".pcm16.wav"),
    "wav-float32": ExportFormat("WAV 32-bit float", "WAV", "FLOAT", ".float32.wav"),
    "flac": ExportFormat("FLAC 24-bit", "FLAC", "PCM_24", ".flac", (), range(1, 655351), 8),
    "mp3": ExportFormat(
        "MP3 320 kbit/s",
        "MP3",
        "MPEG_LAYER_III",
        ".mp3",
        (("compression_level", 0.0), ("bitrate_mode", "CONSTANT")),
        render.MP3_RATES,
        2,
    ),
    # libvorbis crashes the process at 384 kHz and above
    "ogg": ExportFormat(
        "OGG Vorbis", "OGG", "VORBIS", ".ogg", (("compression_level", 0.3),), range(1000, 192001), 8
    ),
}


def export_formats() -> dict[str, ExportFormat]:
    """The export formats the installed libsndfile can write, by key."""
    return {key: fmt for key, fmt in EXPORTS.items() if fmt.available()}


def missing_formats_note() -> str | None:
    """One sentence naming the formats this libsndfile cannot write, or None when it writes them all."""
    missing = [fmt.label for key, fmt in EXPORTS.items() if key not in export_formats()]
    if not missing:
        return None
    return (
        f"The installed libsndfile ({sf.__libsndfile_version__}) cannot write {', '.join(missing)}, "
        "so those exports are not offered (libsndfile 1.1 or later writes MP3 and OGG Vorbis)."
    )


def href(path: Path) -> str | None:
    """A link to ``path`` relative to the kernel's working folder (the notebook's folder in Jupyter)."""
    try:
        relative = os.path.relpath(Path(path).resolve(), Path.cwd().resolve())
    except ValueError:  # another drive (Windows): no relative link exists
        return None
    return urllib.parse.quote(Path(relative).as_posix())


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 100_000 else f"{math.ceil(nbytes / 1e3)} kB"


def _created(sidecar: Path) -> datetime:
    """The UTC time in the file name (``runs.save_result`` writes it), else the file's modification time."""
    match = STAMP.match(sidecar.name)
    if match:
        return datetime.strptime(match[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(sidecar.stat().st_mtime, timezone.utc)


SETTING_LABELS = {"negative_prompt": "negative prompt", "cfg_scale": "CFG scale", "batch_size": "batch size"}


def _shown(value):
    """A settings value as the table shows it: numbers, text and lists of those as they are."""
    scalar = (str, int, float, bool)
    if value is None or isinstance(value, scalar):
        return value
    if isinstance(value, list) and all(isinstance(v, scalar) for v in value):
        return value
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class Run:
    """One saved WAV and its record. ``item`` is its place in a batch of ``items``."""

    wav: Path
    sidecar: Path
    meta: dict
    created: datetime
    item: int = 0
    items: int = 1

    @property
    def settings(self) -> dict:
        settings = self.meta.get("settings")
        return settings if isinstance(settings, dict) else {}

    @property
    def kind(self) -> str:
        if "latent_shape" in self.settings:
            return "round trip"
        if self.settings.get("mode") == "radio":
            return "radio"
        return "generation"

    def title(self) -> str:
        """Date, model, mode, seed and prompt (or the round trip's source) in one line."""
        parts = [self.created.strftime("%Y-%m-%d %H:%M:%S UTC"), str(self.meta.get("model_key", "?"))]
        if self.kind == "round trip":
            parts.append(f"round trip of {self.settings.get('source', '?')}")
        elif self.kind == "radio":
            parts.append(f"radio, {self.settings.get('segments', '?')} segments")
        else:
            parts.append(str(self.settings.get("mode", "text-to-audio")))
        parts.append(f"seed {self.meta.get('seed', '?')}")
        if self.items > 1:
            parts.append(f"item {self.item + 1} of {self.items}")
        if self.settings.get("prompt"):
            parts.append(f"“{self.settings['prompt']}”")
        return " · ".join(parts)

    def rows(self) -> dict:
        """Model, seed, every recorded setting, device and file, for a settings table."""
        meta = self.meta
        rows = {"model": meta.get("model_key", "?")}
        if meta.get("repo_id"):
            rows["repo"] = f"{meta['repo_id']} @ {str(meta.get('revision') or '?')[:10]}"
        rows["seed"] = meta.get("seed", "?")
        for key, value in self.settings.items():
            if value not in (None, "", [], {}):
                rows[SETTING_LABELS.get(key, key.replace("_", " "))] = _shown(value)
        if meta.get("device"):
            rows["device"] = f"{meta['device']} · {meta.get('dtype', '?')}"
        rows["file"] = self.wav.name
        return rows

    def regions(self) -> list[tuple[float, float]]:
        """The inpainted regions in seconds (for shading), or none when the record has no valid ones."""
        record = self.meta.get("request")
        pairs = record.get("regions", []) if isinstance(record, dict) else []
        try:
            return [(float(start), float(end)) for start, end in pairs]
        except (TypeError, ValueError):
            return []

    def request(self) -> GenerationRequest:
        """The generation request this run recorded (ValueError with one sentence if there is none)."""
        if self.kind == "round trip":
            raise ValueError(
                "This run is a SAME round trip, not a generation: its settings cannot go into a "
                "generation form."
            )
        if self.kind == "radio":
            raise ValueError(
                "This run is a radio stream: resume it in the radio notebook (06); each segment's own "
                "record is in its folder."
            )
        return GenerationRequest.from_record(self.meta)

    def export_path(self, key: str) -> Path:
        return self.wav.with_name(self.wav.stem + EXPORTS[key].suffix)

    def files(self) -> list[Path]:
        """The run's files that exist: the WAV, its record and its exports (a radio stream's segments,
        contexts and sidecar in its folder too)."""
        candidates = [self.wav, self.sidecar, *(self.export_path(key) for key in EXPORTS)]
        if self.kind == "radio" and self.wav.with_suffix("").is_dir():
            candidates += sorted(self.wav.with_suffix("").iterdir())
        return [path for path in candidates if path.is_file()]


@dataclass
class Listing:
    """The runs of a folder, newest first, and one note per record that could not be listed."""

    runs: list[Run]
    notes: list[str]

    def pages(self, page_runs: int = PAGE_RUNS) -> int:
        return max(1, math.ceil(len(self.runs) / page_runs))


def _read_record(sidecar: Path) -> tuple[dict | None, str | None]:
    """(record, None), or (None, a one-line note on why it cannot be listed)."""
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{sidecar.name} is not a readable run record ({type(exc).__name__}); it is not listed."
    if not isinstance(meta, dict):
        return None, f"{sidecar.name} is not a run record (no JSON object); it is not listed."
    if not sidecar.with_suffix(".wav").is_file():
        return None, f"{sidecar.name} has no audio file {sidecar.with_suffix('.wav').name}; it is not listed."
    return meta, None


def _batch_place(sidecar: Path, meta: dict) -> tuple[int, int, int]:
    """(when the batch's record was written (ns), this item's place in the batch, its size).

    A lone run is its own batch; a batch's items share the first item's time, so they stay together.
    """
    paths = meta.get("paths")
    names = [Path(str(p)).name for p in paths] if isinstance(paths, list) else []
    wav = sidecar.with_suffix(".wav").name
    if wav not in names:
        return sidecar.stat().st_mtime_ns, 0, 1
    first = sidecar.with_name(Path(names[0]).stem + ".json")
    written = (first if first.is_file() else sidecar).stat().st_mtime_ns
    return written, names.index(wav), len(names)


class Library:
    """The runs saved in ``folder``: listing, one page as HTML, exports and deletion."""

    def __init__(self, folder=defaults.OUTPUT_DIR):
        self.folder = Path(folder)
        self._clips: dict[tuple, str] = {}  # rendered players of the last page, by file and version

    def scan(self) -> Listing:
        """Every run with a readable record, newest first (batch items in their order).

        By the time in the file name, then (runs of the same second) by when the record was written.
        """
        runs, notes = [], []
        if not self.folder.is_dir():
            return Listing([], [])
        for sidecar in sorted(self.folder.glob("*.json")):
            if sidecar.name.startswith("."):
                continue
            meta, note = _read_record(sidecar)
            if note:
                notes.append(note)
                continue
            written, item, items = _batch_place(sidecar, meta)
            run = Run(sidecar.with_suffix(".wav"), sidecar, meta, _created(sidecar), item, items)
            runs.append(((run.created, written, -item), run))
        runs.sort(key=lambda entry: entry[0], reverse=True)
        return Listing([run for _, run in runs], notes)

    # ------------------------------------------------------------------ files

    def export(self, run: Run, fmt: str = "wav") -> Path:
        """Write ``run`` in format ``fmt`` (a key of :data:`EXPORTS`) next to its WAV; returns the file.

        ``wav`` is 16-bit PCM, ``wav-float32`` the saved 32-bit float file itself when it is one.
        """
        if fmt not in EXPORTS:
            raise ValueError(f"Export format must be one of {', '.join(EXPORTS)}; got {fmt!r}.")
        target = EXPORTS[fmt]
        if not target.available():
            raise ValueError(missing_formats_note())
        info = audio_info(run.wav, "run's audio")  # every sample finite before an encoder sees any
        if fmt == "wav-float32" and info.format == "WAV" and info.subtype == "FLOAT":
            return run.wav
        path = run.export_path(fmt)
        options = {"format": target.format, **dict(target.options)}
        block = BLOCK_SECONDS * info.sample_rate

        def write(tmp):
            with sf.SoundFile(tmp, "w", info.sample_rate, info.channels, target.subtype, **options) as out:
                for start in range(0, info.frames, block):
                    _, data = read_audio(info.path, what="run's audio", start=start, frames=block)
                    out.write(np.ascontiguousarray(data.T.numpy().clip(-1.0, 1.0)))

        def convert(tmp):
            """A rate or channel count the encoder does not take: the whole file, resampled or mixed down."""
            _, audio = read_audio(info.path, what="run's audio")
            if info.channels <= target.channels:  # the channels are kept, only the rate changes
                audio, rate = render.to_rate(render.finite_in_range(audio), info.sample_rate, target.rates)
                data = audio.clamp(-1, 1).T.contiguous().numpy()
            else:
                data, rate = render.encodable(audio, info.sample_rate, target.rates, min(2, target.channels))
            with sf.SoundFile(tmp, "w", rate, data.shape[1], target.subtype, **options) as out:
                for start in range(0, data.shape[0], BLOCK_SECONDS * rate):
                    out.write(np.ascontiguousarray(data[start : start + BLOCK_SECONDS * rate]))

        atomic_write(path, write if target.takes(info.sample_rate, info.channels) else convert)
        return path

    def delete(self, run: Run, *, confirm: bool = False) -> list[Path]:
        """Remove the run's WAV, record and exports (only with ``confirm=True``); returns what went."""
        if confirm is not True:
            raise ValueError(
                f"Deleting {run.wav.name} removes its audio, record and exports for good: "
                "confirm it (confirm=True)."
            )
        removed = run.files()
        for path in removed:
            path.unlink(missing_ok=True)
        folder = run.wav.with_suffix("")
        if run.kind == "radio" and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # the stream's segment folder, now empty
        return removed

    # ------------------------------------------------------------------ HTML

    def _player(self, run: Run) -> str:
        stat = run.wav.stat()
        key = (str(run.wav), stat.st_mtime_ns, stat.st_size)
        if key not in self._clips:
            rate, audio = read_audio(run.wav, what="run's audio")
            self._clips[key] = render.clip_html(
                audio, rate, quality=quality.assess(audio, rate), regions=run.regions()
            )
        return self._clips[key]

    def _entry(self, run: Run, player: str) -> str:
        links = []
        for path in run.files():
            link = href(path)
            name = html.escape(path.name)
            text = f"<code>{name}</code> ({_size(path.stat().st_size)})"
            links.append(f"<a href='{html.escape(link)}' download='{name}'>{text}</a>" if link else text)
        return (
            "<div class='sa3lab-run' style='border:1px solid #ddd;padding:6px;margin:6px 0'>"
            f"<div><b>{html.escape(run.title())}</b></div>"
            f"<div style='display:flex;flex-flow:row wrap'>{player}</div>"
            f"{render.table_html(run.rows())}"
            f"<div><small>Files: {' · '.join(links)}</small></div></div>"
        )

    def page_html(self, listing: Listing, page: int = 0, page_runs: int = PAGE_RUNS) -> str:
        """Page ``page`` (from 0) of ``listing`` as one self-contained HTML block."""
        page = min(max(page, 0), listing.pages(page_runs) - 1)
        runs = listing.runs[page * page_runs : (page + 1) * page_runs]
        notes = listing.notes[:MAX_NOTES]
        if len(listing.notes) > MAX_NOTES:
            notes.append(f"… and {len(listing.notes) - MAX_NOTES} more records that are not listed.")
        parts = [render.message_html(note, "warning") for note in notes]
        if missing_formats_note():
            parts.append(render.message_html(missing_formats_note(), "info"))
        folder = html.escape(str(self.folder))
        if not runs:
            parts.insert(0, f"<div>No runs in <code>{folder}</code> yet.</div>")
            return "<div class='sa3lab-library'>" + "".join(parts) + "</div>"
        first = page * page_runs + 1
        parts.insert(
            0,
            f"<div><b>Runs in <code>{folder}</code></b>, newest first: {first}–{first + len(runs) - 1} "
            f"of {len(listing.runs)} (page {page + 1} of {listing.pages(page_runs)})</div>",
        )
        used, shown = 0, set()
        for run in runs:
            try:
                player = self._player(run)
            except ValueError as exc:  # the reader's one sentence
                player = render.message_html(str(exc), "warning")
            except (OSError, RuntimeError) as exc:
                player = render.message_html(f"The audio file could not be read ({exc}).", "warning")
            if used + len(player) > PAGE_BYTES:
                player = render.message_html(
                    f"No player here: it would take this page past its {PAGE_BYTES / 1e6:g} MB share of "
                    "the notebook; play or download the file from its link below.",
                    "info",
                )
            used += len(player)
            shown.add(str(run.wav))
            parts.append(self._entry(run, player))
        self._clips = {key: value for key, value in self._clips.items() if key[0] in shown}
        return "<div class='sa3lab-library'>" + "".join(parts) + "</div>"
