"""Display objects for a result: audio player, spectrogram, waveform, timing/metadata table.

Pure functions: they return IPython display objects and keep no figures open. Figures are drawn on
``matplotlib.figure.Figure`` directly, so the kernel's own backend (e.g. inline) is left alone.
"""

from __future__ import annotations

import html
import io
import math

import ipywidgets as widgets
import soundfile
import torch
from IPython.display import HTML, Audio, Image
from matplotlib.figure import Figure

EMBED_LIMIT_S = 60.0  # longer clips are played through a widget instead of embedded
SPECTRO_RATE = 22050  # the spectrogram shows 0..11 kHz of a mono mix


def audio_player(audio: torch.Tensor, sample_rate: int, saved_path: str | None = None):
    """A player for one (channels, samples) clip at its true level (no peak normalisation).

    Clips longer than ``EMBED_LIMIT_S`` are not embedded in the notebook (they would make it tens of
    MB): they play from an ipywidgets ``Audio`` widget, whose WAV bytes go to the browser over the
    widget channel (JupyterLab, Notebook 7, VS Code and Colab alike) and are not saved with the
    notebook; a note names the saved file.
    """
    seconds = audio.shape[-1] / sample_rate
    data = audio.detach().to("cpu", torch.float32).clamp(-1, 1).numpy()
    if seconds <= EMBED_LIMIT_S:
        return Audio(data=data, rate=sample_rate, normalize=False)
    wav = io.BytesIO()
    soundfile.write(wav, data.T, sample_rate, format="WAV", subtype="PCM_16")
    player = widgets.Audio(value=wav.getvalue(), format="wav", autoplay=False, loop=False)
    where = f"; the full file is {html.escape(saved_path)}" if saved_path else ""
    text = f"{seconds:.0f} s clip: played from the kernel, not kept in the notebook{where}."
    note = widgets.HTML(f"<small>{text}</small>")
    return widgets.VBox([player, note])


def _figure_png(fig: Figure) -> Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return Image(data=buf.getvalue(), format="png")


def spectrogram(audio: torch.Tensor, sample_rate: int, title: str = "") -> Image:
    """Log-magnitude spectrogram (dB) of the mono mix, with time and frequency axes."""
    mono = audio.detach().to("cpu", torch.float32).mean(dim=0)
    step = max(1, sample_rate // SPECTRO_RATE)
    mono, rate = mono[::step], sample_rate / step
    n_fft = 1024
    hop = max(256, int(mono.numel() / 1200))  # at most ~1200 columns whatever the length
    if mono.numel() < n_fft:
        mono = torch.nn.functional.pad(mono, (0, n_fft - mono.numel()))
    spec = torch.stft(mono, n_fft, hop_length=hop, window=torch.hann_window(n_fft), return_complex=True)
    db = 20 * torch.log10(spec.abs() + 1e-6)
    db = db.clamp(min=db.max() - 90)
    fig = Figure(figsize=(8, 2.6))
    ax = fig.subplots()
    extent = [0, mono.numel() / rate, 0, rate / 2000]
    im = ax.imshow(db.numpy(), origin="lower", aspect="auto", extent=extent, cmap="magma")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="dB")
    return _figure_png(fig)


def waveform(audio: torch.Tensor, sample_rate: int) -> Image:
    """Min/max envelope of each channel over time."""
    data = audio.detach().to("cpu", torch.float32)
    bins = min(2000, data.shape[-1])
    usable = data[:, : data.shape[-1] // bins * bins].reshape(data.shape[0], bins, -1)
    t = torch.linspace(0, data.shape[-1] / sample_rate, bins)
    fig = Figure(figsize=(8, 1.6))
    ax = fig.subplots()
    for ch in range(data.shape[0]):
        ax.fill_between(t.numpy(), usable[ch].amin(-1).numpy(), usable[ch].amax(-1).numpy(), alpha=0.6)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("time (s)")
    return _figure_png(fig)


def _fmt(value) -> str:
    if isinstance(value, float):
        return "-inf" if math.isinf(value) else f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return html.escape(str(value))


def metadata_table(rows: dict, flags: dict | None = None) -> HTML:
    """A compact two-column table, with any quality flags spelled out above it."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>"
        for k, v in rows.items()
    )
    warn = "".join(f"<div class='sa3lab-flag'>&#9888; {html.escape(t)}</div>" for t in (flags or {}).values())
    return HTML(f"{warn}<table class='sa3lab-table'>{body}</table>")
