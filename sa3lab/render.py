"""A result as self-contained HTML: player, spectrogram, waveform, levels and a run table.

Pure functions that return HTML strings (or PNG bytes), so a result can be written into a notebook
as an ordinary cell output: it is saved with the notebook, shows in static exports (nbconvert,
GitHub, nbviewer) and after a kernel restart, with no widget state. Audio is embedded as a
compressed preview (MP3, or WAV where libsndfile cannot write MP3) sized to a byte budget, a clip
louder than the peak ceiling turned down by one gain (:mod:`sa3lab.peaks`), never clipped; the
full-quality file is the saved WAV. Figures are drawn on ``matplotlib.figure.Figure`` directly, so
the kernel's own matplotlib backend (e.g. inline) is left alone; matplotlib is imported at the first
drawing, not with this module.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import soundfile
import torch

from . import peaks

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DB_RANGE = (-100.0, 0.0)  # dBFS: one fixed colour scale for every spectrogram (before/after alike)
FREQ_RANGE = (20.0, 22050.0)  # Hz shown on the log frequency axis
FREQ_ROWS = 256  # log-spaced rows of a spectrogram image
PREVIEW_BYTES = 240_000  # audio budget per embedded clip: 30 s at 64 kbit/s
PREVIEW_KBPS = (40, 128)  # MP3 bitrate bounds of a preview (libsndfile's constant rates span 40-320)
MESSAGE_COLOURS = {"error": "#b00020", "info": "#0b5394", "warning": "#8a6d00"}


# ---------------------------------------------------------------------------------------- audio


MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # MPEG-1/2/2.5
WAV_RATES = range(8000, 192001)  # the rates a preview in WAV keeps (browsers play these)
PREVIEW_RATE = 48000  # a rate outside what the encoder takes is resampled to the nearest one above, or this


def finite_in_range(audio: torch.Tensor) -> torch.Tensor:
    """A float32 CPU copy of ``audio`` with every sample finite and within [-1, 1], for the figures.

    The file reader and the engine refuse NaN and infinite samples before here; should one still come,
    a figure shows it as silence (NaN) or full scale. Encoders get :func:`encodable`'s audio instead.
    """
    data = audio.detach().to("cpu", torch.float32)
    data = torch.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0)
    return data.clamp(-1, 1)


def downmix(audio: torch.Tensor, channels: int = 2) -> torch.Tensor:
    """(channels, samples) with at most ``channels`` (1 or 2) channels: more are folded in, the
    even-numbered onto the left and the odd-numbered onto the right (their mean, so never louder)."""
    if audio.shape[0] <= channels:
        return audio
    if channels == 1:
        return audio.mean(dim=0, keepdim=True)
    return torch.stack([audio[0::2].mean(dim=0), audio[1::2].mean(dim=0)])


def to_rate(audio: torch.Tensor, sample_rate: int, rates=MP3_RATES) -> tuple[torch.Tensor, int]:
    """``(audio, rate)`` at a rate in ``rates`` (a tuple of rates, or a ``range`` of them).

    A rate already accepted is kept; another is resampled to the lowest listed rate above it (else the
    highest; :data:`PREVIEW_RATE` for a range) by the engine's resampler.
    """
    from stable_audio_3.resample import resample

    sample_rate = int(sample_rate)
    if sample_rate in rates:
        return audio, sample_rate
    if isinstance(rates, range):
        candidates = [PREVIEW_RATE]
    else:
        candidates = sorted(r for r in rates if r > sample_rate) or [max(rates)]
    return resample(audio, sample_rate, candidates[0]), candidates[0]


def encodable(
    audio: torch.Tensor,
    sample_rate: int,
    rates=MP3_RATES,
    channels: int = 2,
    *,
    ceiling_dbfs: float | None = None,
    lossy: bool = False,
) -> tuple[np.ndarray, int]:
    """``((samples, channels) float32, rate)`` an encoder accepts: at most ``channels`` channels
    (:func:`downmix`), a rate in ``rates`` (:func:`to_rate`), and louder than the ceiling (default
    :data:`sa3lab.defaults.PEAK_CEILING_DBFS`; ``lossy``: less the lossy headroom) turned down by one
    gain, measured on what the encoder gets (:func:`sa3lab.peaks.protect`). NaN or infinite samples
    are refused (ValueError). Any clip is accepted, even one of no samples (one silent sample)."""
    peaks.measure(audio)  # refuses non-finite audio before the resampler
    data = audio.detach().to("cpu", torch.float32)
    if data.ndim == 1:
        data = data[None]
    if data.shape[-1] == 0:
        data = torch.zeros(max(1, data.shape[0]), 1)
    data, rate = to_rate(downmix(data, channels), sample_rate, rates)
    data, _ = peaks.protect(data, ceiling_dbfs, lossy=lossy)
    return data.T.contiguous().numpy(), rate


def mp3_available() -> bool:
    return "MP3" in soundfile.available_formats()


def _mp3_level(kbps: float) -> float:
    """libsndfile's MP3 compression level for a constant bitrate (0.0: 320 kbit/s, 0.9: 56, 0.98: 40)."""
    return min(0.98, max(0.0, (320.0 - kbps) / 293.3))


def audio_preview(
    audio: torch.Tensor, sample_rate: int, budget: int = PREVIEW_BYTES, *, ceiling_dbfs: float | None = None
) -> tuple[str, bytes]:
    """``(mime type, bytes)`` of a compressed preview of a (channels, samples) clip, about ``budget`` bytes.

    MP3 at a constant bitrate chosen from the budget (within :data:`PREVIEW_KBPS`; long clips get the
    lowest rate and may exceed the budget); 16-bit WAV where libsndfile cannot write MP3. Any finite
    clip is accepted: it is made :func:`encodable` first (mono or stereo, a rate MP3 takes, a clip
    louder than ``ceiling_dbfs`` turned down by one gain).
    """
    if not mp3_available():
        return "audio/wav", wav_bytes(audio, sample_rate, ceiling_dbfs=ceiling_dbfs)
    data, rate = encodable(audio, sample_rate, MP3_RATES, ceiling_dbfs=ceiling_dbfs, lossy=True)
    buf = io.BytesIO()
    seconds = max(data.shape[0] / rate, 1e-3)
    kbps = min(PREVIEW_KBPS[1], max(PREVIEW_KBPS[0], budget * 8 / 1000 / seconds))
    soundfile.write(
        buf, data, rate, format="MP3", compression_level=_mp3_level(kbps), bitrate_mode="CONSTANT"
    )
    return "audio/mpeg", buf.getvalue()


def wav_bytes(audio: torch.Tensor, sample_rate: int, *, ceiling_dbfs: float | None = None) -> bytes:
    """A (channels, samples) clip as a 16-bit WAV file's bytes (quick to write: live previews); mono or
    stereo at a rate browsers play, under the ceiling (:func:`encodable`)."""
    data, rate = encodable(audio, sample_rate, WAV_RATES, ceiling_dbfs=ceiling_dbfs)
    buf = io.BytesIO()
    soundfile.write(buf, data, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def audio_html(
    audio: torch.Tensor,
    sample_rate: int,
    *,
    loop: bool = False,
    budget: int = PREVIEW_BYTES,
    ceiling_dbfs: float | None = None,
) -> str:
    """An ``<audio>`` player with the preview (about ``budget`` bytes) embedded: plays offline and in
    static exports too."""
    mime, data = audio_preview(audio, sample_rate, budget, ceiling_dbfs=ceiling_dbfs)
    attrs = "controls preload='metadata'" + (" loop" if loop else "")
    return f"<audio {attrs} style='width:100%;max-width:640px' src='{_data_uri(mime, data)}'></audio>"


# ---------------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class Spectrogram:
    """dBFS levels on log-spaced frequency rows (low to high) and the axes that go with them."""

    db: np.ndarray  # (FREQ_ROWS, columns)
    freqs: np.ndarray  # (FREQ_ROWS,) Hz
    seconds: float


def log_spectrogram(
    audio: torch.Tensor,
    sample_rate: int,
    columns: int = 1200,
    *,
    frame: int | None = None,
    rows: int = FREQ_ROWS,
) -> Spectrogram:
    """The mono mix's levels in dBFS (a full-scale sine reads 0 dB) on a log frequency axis.

    About ``columns`` centred frames of 2048 samples; ``frame=n``: instead one column per whole
    block of n samples (a window of n samples over each, e.g. one per latent frame).
    """
    mono = finite_in_range(audio).mean(dim=0)
    n_fft = frame or 2048
    hop = frame or max(256, mono.numel() // columns)
    if mono.numel() < n_fft:
        mono = torch.nn.functional.pad(mono, (0, n_fft - mono.numel()))
    window = torch.hann_window(n_fft)
    spec = torch.stft(
        mono, n_fft, hop_length=hop, window=window, center=frame is None, return_complex=True
    ).abs()
    db = (20 * torch.log10(spec * 2 / window.sum() + 1e-10)).numpy()
    linear = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    top = max(FREQ_RANGE[0] * 2, min(FREQ_RANGE[1], sample_rate / 2))
    freqs = np.geomspace(FREQ_RANGE[0], top, rows)
    return Spectrogram(np.clip(_on_rows(db, linear, freqs), *DB_RANGE), freqs, mono.numel() / sample_rate)


def _on_rows(db: np.ndarray, linear: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """(bins, columns) levels on log-spaced rows: the loudest bin of each row's band (a tone shows at its
    level wherever it falls), interpolated where a band holds no bin (the narrow low rows)."""
    above = np.clip(np.searchsorted(linear, freqs), 1, len(linear) - 1)
    weight = (freqs - linear[above - 1]) / (linear[above] - linear[above - 1])
    interpolated = (1 - weight)[:, None] * db[above - 1] + weight[:, None] * db[above]
    edges = np.sqrt(freqs[:-1] * freqs[1:])
    start = np.searchsorted(linear, np.concatenate([[freqs[0]], edges]))
    stop = np.searchsorted(linear, np.concatenate([edges, [freqs[-1] * (1 + 1e-9)]]))
    loudest = np.maximum.reduceat(db, np.minimum(start, len(linear) - 1), axis=0)
    return np.where((stop > start)[:, None], np.maximum(loudest, interpolated), interpolated)


def _shade(ax, regions) -> None:
    for start, end in regions:
        ax.axvspan(start, end, color="#2a9df4", alpha=0.25, lw=0)
        ax.axvline(start, color="#2a9df4", lw=1)
        ax.axvline(end, color="#2a9df4", lw=1)


def _figure(size) -> Figure:
    """A new figure of ``size`` (width, height) inches. matplotlib is imported here, at the first
    drawing, so the jobs (``import sa3lab.lab``) load without it."""
    from matplotlib.figure import Figure

    return Figure(figsize=size)


def _image(fig: Figure, kind: str) -> bytes:
    """The figure as PNG (line art: small and sharp) or JPEG (a spectrogram: a tenth of the PNG)."""
    buf = io.BytesIO()
    options = {"pil_kwargs": {"quality": 80}} if kind == "jpeg" else {}
    fig.savefig(buf, format=kind, dpi=72, bbox_inches="tight", **options)
    return buf.getvalue()


FREQ_TICKS = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def spectrogram_jpeg(
    audio: torch.Tensor, sample_rate: int, *, title: str = "", regions=(), size=(8, 2.4)
) -> bytes:
    """Spectrogram image: log frequency axis to 22 kHz, fixed dB range, ``regions`` (s) marked;
    ``size``: (width, height) in inches at 72 dpi."""
    spec = log_spectrogram(audio, sample_rate)
    fig = _figure(size)
    ax = fig.subplots()
    lo, hi = math.log10(spec.freqs[0]), math.log10(spec.freqs[-1])
    image = ax.imshow(
        spec.db,
        origin="lower",
        aspect="auto",
        extent=[0, spec.seconds, lo, hi],
        cmap="magma",
        vmin=DB_RANGE[0],
        vmax=DB_RANGE[1],
        interpolation="nearest",
    )
    ticks = [f for f in FREQ_TICKS if spec.freqs[0] <= f <= spec.freqs[-1]]
    ax.set_yticks([math.log10(f) for f in ticks], [f"{f / 1000:g}k" if f >= 1000 else str(f) for f in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    _shade(ax, regions)
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="dBFS")
    return _image(fig, "jpeg")


def waveform_png(audio: torch.Tensor, sample_rate: int, *, regions=()) -> bytes:
    """Min/max envelope of each channel over time, ``regions`` (s) marked."""
    data = finite_in_range(audio)
    bins = max(1, min(2000, data.shape[-1]))
    usable = data[:, : data.shape[-1] // bins * bins].reshape(data.shape[0], bins, -1)
    t = np.linspace(0, data.shape[-1] / sample_rate, bins)
    fig = _figure((8, 1.3))
    ax = fig.subplots()
    for ch in range(data.shape[0]):
        ax.fill_between(t, usable[ch].amin(-1).numpy(), usable[ch].amax(-1).numpy(), alpha=0.6, lw=0)
    _shade(ax, regions)
    ax.set_ylim(-1, 1)
    ax.set_xlim(0, data.shape[-1] / sample_rate)
    ax.set_xlabel("time (s)")
    return _image(fig, "png")


def levels_png(levels: np.ndarray, low: float, high: float, size: tuple[int, int] = (640, 160)) -> bytes:
    """A (rows low to high, columns) array as a colour image (fixed ``low``..``high`` scale), PNG bytes.

    No figure and no axes: a lookup in the spectrograms' colour map, quick enough for live previews.
    """
    from matplotlib import colormaps
    from PIL import Image

    scaled = np.clip((np.asarray(levels, dtype=np.float32) - low) / (high - low), 0, 1)
    colours = (colormaps["magma"](scaled[::-1])[..., :3] * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(colours).resize(size, Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def image_html(data: bytes, mime: str, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' style='width:100%;max-width:640px' src='{_data_uri(mime, data)}'/>"


# ---------------------------------------------------------------------------------------- text


def message_html(text: str, kind: str = "error") -> str:
    """One message line (error, info or warning) with a coloured edge."""
    return (
        f'<div class="sa3lab-message sa3lab-{kind}" style="border-left:4px solid {MESSAGE_COLOURS[kind]};'
        f'padding:4px 8px;margin:4px 0">{html.escape(text)}</div>'
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return "-inf" if math.isinf(value) else f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return html.escape(str(value))


def table_html(rows: dict) -> str:
    """A compact two-column table."""
    body = "".join(
        f"<tr><th style='text-align:left;vertical-align:top;padding-right:12px'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{_fmt(v)}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table class='sa3lab-table'>{body}</table>"


def levels_html(quality: dict) -> str:
    """Length, peak and RMS of a clip, with each quality flag spelled out."""
    peak, rms = max(quality["peak_dbfs"]), max(quality["rms_dbfs"])
    line = f"{quality['produced_s']:.2f} s · peak {peak:.1f} dBFS · RMS {rms:.1f} dBFS"
    flags = "".join(message_html(text, "warning") for text in quality["flags"].values())
    return f"<div><small>{line}</small></div>{flags}"


def clip_html(
    audio: torch.Tensor,
    sample_rate: int,
    *,
    title: str = "",
    quality: dict | None = None,
    saved: str | None = None,
    regions=(),
    loop: bool = False,
) -> str:
    """Title, player, spectrogram, waveform, levels and saved file of one (channels, samples) clip.

    The player keeps the ceiling ``quality`` records (:func:`sa3lab.quality.assess`), else the default.
    """
    parts = [f"<b>{html.escape(title)}</b>"] if title else []
    ceiling = (quality or {}).get("ceiling_dbfs")
    parts.append(audio_html(audio, sample_rate, loop=loop, ceiling_dbfs=ceiling))
    spectrogram = spectrogram_jpeg(audio, sample_rate, regions=regions)
    parts.append(image_html(spectrogram, "image/jpeg", "spectrogram"))
    parts.append(image_html(waveform_png(audio, sample_rate, regions=regions), "image/png", "waveform"))
    if quality is not None:
        parts.append(levels_html(quality))
    if saved:
        name = html.escape(saved)
        parts.append(f"<div><small>Saved: <a href='{name}' download><code>{name}</code></a></small></div>")
    return (
        "<div class='sa3lab-clip' style='flex:1 1 360px;min-width:300px;margin:0 8px 8px 0'>"
        + "".join(parts)
        + "</div>"
    )


def result_html(header: str, clips: list[str], rows: dict, notes: list[str] = ()) -> str:
    """One result block: ``header`` (HTML), its notes as warnings, the clips side by side, the run table."""
    warnings = "".join(message_html(note, "warning") for note in notes)
    return (
        "<div class='sa3lab-result' style='border:1px solid #ddd;padding:6px;margin:6px 0'>"
        f"<div>{header}</div>{warnings}"
        f"<div style='display:flex;flex-flow:row wrap'>{''.join(clips)}</div>"
        f"{table_html(rows)}</div>"
    )


def loss_png(losses, *, title: str = "training loss", first_step: int = 1) -> bytes:
    """The loss per step (thin) and its running mean over about a tenth of the steps (bold);
    ``first_step``: the step number of the first loss (a resumed run's plot goes on from there)."""
    values = np.asarray(losses, dtype=np.float64)
    fig = _figure((6, 2.4))
    ax = fig.subplots()
    steps = np.arange(first_step, first_step + values.size)
    if values.size:
        ax.plot(steps, values, lw=0.8, alpha=0.45, color="#0b5394")
        window = max(1, values.size // 10)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=2, color="#0b5394")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _image(fig, "png")
