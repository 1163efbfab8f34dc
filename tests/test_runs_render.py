"""Saved outputs (names, atomic writes, sidecars, no token) and rendering (objects, no open figures)."""

import io
import json
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import soundfile as sf
import torch
from IPython.display import Audio, Image

from sa3lab import render
from sa3lab.runs import RunResult, save_result

SR = 44100


def _result(batch=1, seconds=0.5):
    t = torch.arange(int(SR * seconds)) / SR
    audio = (0.3 * torch.sin(2 * math.pi * 440 * t)).expand(batch, 2, -1).clone()
    return RunResult(
        audio,
        SR,
        1234,
        "small-music",
        "stabilityai/stable-audio-3-small-music",
        "abc123",
        "cpu",
        "float32",
        {"sampling": 1.0},
        False,
        2.5,
    )


def test_save_writes_wav_and_sidecar_and_names_never_collide(tmp_path):
    first = save_result(_result(), tmp_path)
    second = save_result(_result(), tmp_path)
    assert len(set(first + second)) == 2
    data, rate = sf.read(first[0])
    assert rate == SR and data.shape == (int(SR * 0.5), 2)
    meta = json.loads(open(first[0].replace(".wav", ".json")).read())
    assert meta["seed"] == 1234 and meta["revision"] == "abc123" and "torch" in meta["versions"]
    assert "token" not in json.dumps(meta).lower()
    assert not list(tmp_path.glob(".tmp-*"))
    batch = save_result(_result(batch=2), tmp_path)
    assert [p.rsplit("-", 1)[1] for p in batch] == ["0.wav", "1.wav"]


def test_render_returns_display_objects_and_closes_figures():
    audio = _result().audio[0]
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
