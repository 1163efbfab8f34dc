"""The results library: the runs saved in an output folder, newest first, with players, exports and links.

A run is a WAV with its JSON sidecar next to it (see :mod:`sa3lab.runs`); a sidecar that cannot be
read, or whose WAV is gone, gets a one-line note instead of an entry. :meth:`Library.page_html`
renders one page of runs as self-contained HTML (player, spectrogram and waveform through
:func:`sa3lab.render.clip_html`, settings through :func:`sa3lab.render.table_html`, download links),
so the page is saved with the notebook like any result.

Exports that cannot hold samples beyond full scale (16-bit WAV, FLAC, MP3, OGG) turn a run louder than
its recorded peak ceiling down by one gain (:mod:`sa3lab.peaks`), measured over the whole file; the
32-bit float export is the saved WAV itself (raw, unless the run's ``float_wav`` was "protected").

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
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from . import defaults, peaks, quality, render, vocabulary
from .audio_input import INSTALL_FFMPEG, FfmpegError, audio_info, ffmpeg_exe, read_audio, run_ffmpeg
from .generation import GenerationRequest
from .runs import atomic_write

DISPLAY_BUDGET_BYTES = 10_000_000  # Colab's display data limit per notebook
RESULT_SHARE_BYTES = 420_000  # one 30 s form result: 20 of them leave a library page's room
PAGE_BYTES = 1_200_000  # embedded players of one library page: three 30 s runs
CACHED_PAGES = 4  # pages whose players are kept rendered: on show, drawn ahead, the two shown before
PAGE_RUNS = 3  # runs per library page
MAX_NOTES = 5  # note lines shown for unreadable records (then a count)
BLOCK_SECONDS = 10  # exports are written in blocks: one long OGG Vorbis write crashes libsndfile
STAMP = re.compile(r"^(\d{8}T\d{6}Z)")
ZIP_PREFIX = "sa3lab-results-"  # "Download all" writes <output folder>/sa3lab-results-<UTC time>.zip


AAC_FRAME = (
    1024  # samples per AAC frame: a shorter clip is padded with silence to one (else it decodes empty)
)
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


@dataclass(frozen=True)
class ExportFormat:
    label: str
    format: str  # libsndfile major format; for ffmpeg, its muxer
    subtype: str  # libsndfile subtype; for ffmpeg, its encoder
    suffix: str  # appended to the run's stem
    options: tuple = ()  # (name, value) pairs for soundfile.SoundFile
    rates: tuple | range = range(1, 1 << 31)  # sample rates the encoder takes (others are resampled)
    channels: int = 1024  # the most channels it takes (more are mixed down to stereo)
    ffmpeg: bool = False  # written by the ffmpeg program (its options: ffmpeg arguments), not libsndfile
    lossy: bool = False  # kept the lossy headroom under the peak ceiling

    def takes(self, rate: int, channels: int) -> bool:
        return rate in self.rates and channels <= self.channels

    def available(self) -> bool:
        if self.ffmpeg:
            return ffmpeg_exe() is not None
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
        lossy=True,
    ),
    # libvorbis crashes the process at 384 kHz and above
    "ogg": ExportFormat(
        "OGG Vorbis",
        "OGG",
        "VORBIS",
        ".ogg",
        (("compression_level", 0.3),),
        range(1000, 192001),
        8,
        lossy=True,
    ),
    "m4a": ExportFormat(
        "M4A/AAC 256 kbit/s",
        "ipod",
        "aac",
        ".m4a",
        (("-b:a", "256k"),),
        AAC_RATES,
        2,
        ffmpeg=True,
        lossy=True,
    ),
}


def export_formats() -> dict[str, ExportFormat]:
    """The export formats the installed libsndfile (and ffmpeg, if any) can write, by key."""
    return {key: fmt for key, fmt in EXPORTS.items() if fmt.available()}


def missing_formats_note() -> str | None:
    """One sentence naming the formats that cannot be written here, or None when all can."""
    missing = [fmt.label for key, fmt in EXPORTS.items() if key not in export_formats() and not fmt.ffmpeg]
    if missing:
        return (
            f"The installed libsndfile ({sf.__libsndfile_version__}) cannot write {', '.join(missing)}, "
            "so those exports are not offered (libsndfile 1.1 or later writes MP3 and OGG Vorbis)."
        )
    if ffmpeg_exe() is None:
        return (
            f"M4A/AAC export is not offered: it needs ffmpeg, which is not installed here ({INSTALL_FFMPEG})."
        )
    return None


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
            parts.append(f"round trip of {vocabulary.source_text(self.settings.get('source', '?'))}")
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
                rows[vocabulary.label(key)] = vocabulary.shown(key, value)
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

    def recorded_quality(self) -> dict:
        """This item's quality as its record keeps it (levels, flags, peak record), or {}."""
        recorded = self.meta.get("quality")
        item = recorded[self.item] if isinstance(recorded, list) and len(recorded) > self.item else None
        return item if isinstance(item, dict) else {}

    @property
    def ceiling_dbfs(self) -> float:
        """The peak ceiling the run recorded, else the default."""
        ceiling = self.recorded_quality().get("ceiling_dbfs")
        valid = isinstance(ceiling, (int, float)) and peaks.LOWEST_CEILING_DBFS <= ceiling <= 0
        return float(ceiling) if valid else defaults.PEAK_CEILING_DBFS

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

    def page(self, page: int, page_runs: int = PAGE_RUNS) -> list[Run]:
        """The runs of page ``page`` (from 0; a page past either end is the nearest one)."""
        page = min(max(page, 0), self.pages(page_runs) - 1)
        return self.runs[page * page_runs : (page + 1) * page_runs]


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
        self._clips: dict[tuple, str] = {}  # rendered players, by file and version, least recent first
        self._on_show: list[tuple] = []  # the players of the page shown last
        self._ahead: list[tuple] = []  # players drawn ahead (:meth:`prepare`) since that page was shown
        self._page_runs = PAGE_RUNS  # runs on the page shown last

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

    def export(self, run: Run, fmt: str = "wav", ceiling_dbfs: float | None = None) -> Path:
        """Write ``run`` in format ``fmt`` (a key of :data:`EXPORTS`) next to its WAV; returns the file.

        ``wav`` is 16-bit PCM, ``wav-float32`` the saved 32-bit float file itself when it is one. A run
        louder than ``ceiling_dbfs`` (default: the one it recorded; MP3 and OGG keep the lossy headroom
        below it) is turned down by one gain over the whole file, never clipped.
        """
        if fmt not in EXPORTS:
            raise ValueError(f"Export format must be one of {', '.join(EXPORTS)}; got {fmt!r}.")
        target = EXPORTS[fmt]
        if not target.available():
            raise ValueError(missing_formats_note())
        ceiling = run.ceiling_dbfs if ceiling_dbfs is None else peaks.checked_ceiling(ceiling_dbfs)
        info = audio_info(run.wav, "run's audio")  # every sample finite before an encoder sees any
        if fmt == "wav-float32" and info.format == "WAV" and info.subtype == "FLOAT":
            return run.wav
        path = run.export_path(fmt)
        options = {"format": target.format, **dict(target.options)}
        block = BLOCK_SECONDS * info.sample_rate
        loudest = peaks.Peak(info.peak, ceiling, target.lossy)

        def write(tmp):
            with sf.SoundFile(tmp, "w", info.sample_rate, info.channels, target.subtype, **options) as out:
                for start in range(0, info.frames, block):
                    _, data = read_audio(info.path, what="run's audio", start=start, frames=block)
                    out.write(np.ascontiguousarray(peaks.scaled(data, loudest).T.numpy()))

        def convert(tmp):
            """A rate or channel count the encoder does not take: the whole file, resampled or mixed down
            (the channels are kept where the encoder takes them), its peak measured after."""
            _, audio = read_audio(info.path, what="run's audio")
            channels = info.channels if info.channels <= target.channels else min(2, target.channels)
            data, rate = render.encodable(
                audio, info.sample_rate, target.rates, channels, ceiling_dbfs=ceiling, lossy=target.lossy
            )
            with sf.SoundFile(tmp, "w", rate, data.shape[1], target.subtype, **options) as out:
                for start in range(0, data.shape[0], BLOCK_SECONDS * rate):
                    out.write(np.ascontiguousarray(data[start : start + BLOCK_SECONDS * rate]))

        def encode(tmp):
            """ffmpeg: the whole clip as raw float32 on its input, finite, in range, at a rate it takes."""
            _, audio = read_audio(info.path, what="run's audio")
            data, rate = render.encodable(
                audio,
                info.sample_rate,
                target.rates,
                target.channels,
                ceiling_dbfs=ceiling,
                lossy=target.lossy,
            )
            if data.shape[0] < AAC_FRAME:
                data = np.pad(data, ((0, AAC_FRAME - data.shape[0]), (0, 0)))
            raw = ["-f", "f32le", "-ar", str(rate), "-ac", str(data.shape[1]), "-i", "pipe:0"]
            out = [
                "-c:a",
                target.subtype,
                *(word for pair in target.options for word in pair),
                "-f",
                target.format,
                f"file:{Path(tmp).resolve()}",
            ]
            try:
                run_ffmpeg(raw + out, np.ascontiguousarray(data, dtype="<f4").tobytes())
            except FfmpegError as exc:
                raise ValueError(
                    f"ffmpeg could not write {path.name} ({exc}); export another format."
                ) from None

        if target.ffmpeg:
            atomic_write(path, encode)
        else:
            atomic_write(path, write if target.takes(info.sample_rate, info.channels) else convert)
        return path

    def zip_all(self) -> Path:
        """One zip of every file of the folder (each run's WAV, record and exports, sweeps, LoRA files),
        written beside them; it replaces the previous one, and hidden files and earlier zips stay out."""
        files = [
            path
            for path in sorted(self.folder.rglob("*"))
            if path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(self.folder).parts)
            and not (path.name.startswith(ZIP_PREFIX) and path.suffix == ".zip")
        ]
        if not files:
            raise ValueError(f"There is nothing in {self.folder} to download yet: generate a run first.")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = self.folder / f"{ZIP_PREFIX}{stamp}.zip"
        earlier = self.latest_zip()

        def write(tmp):
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
                for file in files:
                    archive.write(file, f"{self.folder.name}/{file.relative_to(self.folder).as_posix()}")

        atomic_write(path, write)
        if earlier is not None and earlier != path:
            earlier.unlink(missing_ok=True)
        return path

    def latest_zip(self) -> Path | None:
        """The newest "Download all" zip of the folder, if any."""
        zips = sorted(self.folder.glob(f"{ZIP_PREFIX}*.zip")) if self.folder.is_dir() else []
        return zips[-1] if zips else None

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

    def _player(self, run: Run) -> tuple[tuple, str]:
        """(cache key, the player's HTML) of ``run``, rendered once per version of its file."""
        stat = run.wav.stat()
        key = (str(run.wav), stat.st_mtime_ns, stat.st_size)
        if key not in self._clips:
            rate, audio = read_audio(run.wav, what="run's audio")
            float_wav = run.meta.get("float_wav", defaults.FLOAT_WAV)
            assessed = quality.assess(audio, rate, ceiling_dbfs=run.ceiling_dbfs, float_wav=float_wav)
            recorded = run.recorded_quality().get("flags")
            if isinstance(recorded, dict) and isinstance(recorded.get("attenuated"), str):
                assessed["flags"].setdefault("attenuated", recorded["attenuated"])  # a protected float WAV
            self._clips[key] = render.clip_html(audio, rate, quality=assessed, regions=run.regions())
        return key, self._clips[key]

    def prepare(self, run: Run) -> bool:
        """Draw ``run``'s player ahead of its page (the library form draws the next older page while one
        is on show), so showing that page renders it no more. Kept until a page is shown after the next
        one; False, and nothing kept, when its file is gone or unreadable (its page says so if shown)."""
        try:
            key, _ = self._player(run)
        except (ValueError, OSError, RuntimeError):
            return False
        if key not in self._on_show and key not in self._ahead:
            self._ahead.append(key)
        self._trim()
        return True

    def _trim(self) -> None:
        """Keep the players of the page on show, those drawn ahead (one page's worth, the newest) and of
        the pages shown before, up to :data:`CACHED_PAGES` pages in all; the least recent go."""
        self._ahead = self._ahead[-self._page_runs :]
        kept = set(self._on_show) | set(self._ahead)
        earlier = [key for key in self._clips if key not in kept][-(CACHED_PAGES - 2) * self._page_runs :]
        order = earlier + self._on_show + self._ahead
        self._clips = {key: self._clips[key] for key in order if key in self._clips}

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

    def _zip_line(self) -> str:
        """The link to the "Download all" zip, or how to make one."""
        latest = self.latest_zip()
        if latest is None:
            return "<div><small>All runs as one zip: press <i>Download all</i>.</small></div>"
        link, name = href(latest), html.escape(latest.name)
        shown = (
            f"<a href='{html.escape(link)}' download='{name}'>{name}</a>" if link else f"<code>{name}</code>"
        )
        made = datetime.fromtimestamp(latest.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"<div>All runs as one zip: {shown} ({_size(latest.stat().st_size)}, made {made}; "
            "<i>Download all</i> makes it again with newer runs).</div>"
        )

    def page_html(self, listing: Listing, page: int = 0, page_runs: int = PAGE_RUNS) -> str:
        """Page ``page`` (from 0) of ``listing`` as one self-contained HTML block."""
        page = min(max(page, 0), listing.pages(page_runs) - 1)
        runs = listing.page(page, page_runs)
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
        parts.insert(1, self._zip_line())
        used, shown = 0, []
        for run in runs:
            try:
                key, player = self._player(run)
                shown.append(key)
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
            parts.append(self._entry(run, player))
        passed = [key for key in self._ahead if key not in shown]  # drawn ahead, not shown: least recent
        self._clips = {key: self._clips[key] for key in passed + [k for k in self._clips if k not in passed]}
        self._on_show, self._ahead, self._page_runs = shown, [], page_runs
        self._trim()
        return "<div class='sa3lab-library'>" + "".join(parts) + "</div>"
