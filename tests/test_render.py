"""Rendering (sa3lab.render): display objects, no open figures, the kernel's matplotlib backend left alone."""

import io
import math
import subprocess
import sys

import ipywidgets as widgets
import matplotlib.pyplot as plt
import soundfile as sf
import torch
from IPython.display import Audio, Image

from sa3lab import render

SR = 44100


def _tone(seconds=0.5):
    t = torch.arange(int(SR * seconds)) / SR
    return (0.3 * torch.sin(2 * math.pi * 440 * t)).expand(2, -1).clone()


def test_render_returns_display_objects_and_closes_figures():
    audio = _tone()
    assert isinstance(render.audio_player(audio, SR), Audio)
    long = torch.sin(torch.arange(SR * 61) / 7.0).repeat(2, 1) * 0.5
    player, note = render.audio_player(long, SR, saved_path="outputs/x.wav").children
    assert isinstance(player, widgets.Audio) and player.format == "wav" and "outputs/x.wav" in note.value
    data, rate = sf.read(io.BytesIO(player.value), dtype="int16")  # 16-bit WAV of the whole clip, as is
    assert rate == SR and data.shape == (SR * 61, 2) and abs(int(data.max()) - 16384) < 4
    before = len(plt.get_fignums())
    image = render.spectrogram(audio, SR, title="test")
    assert isinstance(image, Image) and image.data[:4] == b"\x89PNG"
    assert isinstance(render.waveform(audio, SR), Image)
    assert len(plt.get_fignums()) == before
    table = render.metadata_table({"seed": 1, "peak": -3.2}, {"clipped": "clipped <b>"})
    assert "clipped &lt;b&gt;" in table.data and "seed" in table.data


def test_the_inline_backend_survives_import_and_rendering():
    """A user's own plt.show() keeps working in the kernel after sa3lab draws a result."""
    script = (
        "import matplotlib; matplotlib.use('module://matplotlib_inline.backend_inline');"
        "import torch, sa3lab; from sa3lab import render;"
        "render.spectrogram(torch.zeros(2, 44100), 44100); render.waveform(torch.zeros(2, 4410), 44100);"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "module://matplotlib_inline.backend_inline"
