"""Display objects for a result: audio player, spectrogram, waveform, timing/metadata table.

Pure functions: they return IPython display objects and keep no figures open.
"""

from __future__ import annotations

import html
import io
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from IPython.display import HTML, Audio, Image  # noqa: E402

EMBED_LIMIT_S = 60.0  # longer clips are linked from the saved file instead of embedded
SPECTRO_RATE = 22050  # the spectrogram shows 0..11 kHz of a mono mix


def audio_player(audio: torch.Tensor, sample_rate: int, saved_path: str | None = None):
    """A player for one (channels, samples) clip at its true level (no peak normalisation).

    Clips longer than ``EMBED_LIMIT_S`` are not embedded in the notebook (they would make it tens of
    MB): the player streams the saved file instead, and a note says so.
    """
    seconds = audio.shape[-1] / sample_rate
    if seconds > EMBED_LIMIT_S and saved_path:
        # JupyterLab and Notebook 7 serve a path relative to the notebook's folder (the kernel's cwd)
        src = (
            Path(os.path.relpath(saved_path))
            if Path(saved_path).resolve().is_relative_to(Path.cwd())
            else None
        )
        player = f'<audio controls src="{html.escape(src.as_posix())}"></audio>' if src else ""
        return HTML(
            f"{player}<div>{seconds:.0f} s clip: not embedded in the notebook; the full file is "
            f"{html.escape(saved_path)}.</div>"
        )
    data = audio.detach().to("cpu", torch.float32).clamp(-1, 1).numpy()
    return Audio(data=data, rate=sample_rate, normalize=False)


def _figure_png(fig) -> Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
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
    fig, ax = plt.subplots(figsize=(8, 2.6))
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
    fig, ax = plt.subplots(figsize=(8, 1.6))
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
