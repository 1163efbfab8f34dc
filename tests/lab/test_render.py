"""Rendering (sa3lab.render): self-contained HTML, log frequency axis, fixed levels, no backend change."""

import base64
import html
import io
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from sa3lab import quality, render

SR = 44100


def _tone(hz=440.0, seconds=0.5, amp=0.3):
    t = torch.arange(int(SR * seconds)) / SR
    return (amp * torch.sin(2 * math.pi * hz * t)).expand(2, -1).clone()


def _embedded(html_text: str, mime: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(rf"data:{mime};base64,([A-Za-z0-9+/=]+)", html_text)]


def test_a_440_hz_tone_sits_at_440_hz_on_the_log_axis_and_a_full_scale_sine_reads_0_dbfs():
    spec = render.log_spectrogram(_tone(amp=1.0), SR)
    peak_row = int(np.argmax(spec.db.mean(axis=1)))
    assert 400 < spec.freqs[peak_row] < 480
    assert peak_row > render.FREQ_ROWS // 3  # not squashed into the bottom rows as on a linear axis
    assert spec.freqs[-1] == 22050 and -3 < spec.db.max() <= 0
    quiet = render.log_spectrogram(_tone(amp=0.01), SR)
    assert abs(quiet.db.max() - 20 * math.log10(0.01)) < 3  # absolute levels: the same scale for any clip


def test_the_player_embeds_a_compressed_preview_within_its_budget():
    clip = torch.randn(2, SR * 30, generator=torch.Generator().manual_seed(0)) * 0.1
    player = render.audio_html(clip, SR, loop=True)
    (data,) = _embedded(player, "audio/mpeg")
    assert 0.8 * render.PREVIEW_BYTES < len(data) < 1.1 * render.PREVIEW_BYTES and " loop" in player
    decoded, rate = sf.read(io.BytesIO(data))
    assert rate == SR and abs(len(decoded) / rate - 30) < 0.2


def test_a_clip_is_self_contained_html_with_player_images_levels_and_marked_regions():
    audio = _tone(seconds=2.0)
    marked = render.clip_html(
        audio, SR, title="a <b>", quality=quality.assess(audio, SR), regions=[(0.5, 1.0)]
    )
    plain = render.clip_html(audio, SR, saved="outputs/x.wav")
    assert "a &lt;b&gt;" in marked and "peak" in marked and "href='outputs/x.wav'" in plain
    images = _embedded(marked, "image/jpeg") + _embedded(marked, "image/png")
    assert len(images) == 2 and images[0][:2] == b"\xff\xd8" and images[1][:4] == b"\x89PNG"
    unmarked = render.clip_html(audio, SR)
    assert _embedded(marked, "image/png") != _embedded(unmarked, "image/png")  # the regions are drawn
    assert "src='http" not in marked  # nothing to fetch: it shows offline and in static exports


def test_flags_are_spelled_out_under_a_clip():
    silent = quality.assess(torch.zeros(2, SR), SR)
    assert silent["flags"]["silent"] in render.levels_html(silent)
    assert "sa3lab-warning" not in render.levels_html(quality.assess(_tone(), SR))


def test_the_inline_backend_survives_import_and_rendering():
    """A user's own plt.show() keeps working in the kernel after sa3lab draws a result."""
    script = (
        "import matplotlib; matplotlib.use('module://matplotlib_inline.backend_inline');"
        "import torch, sa3lab; from sa3lab import render;"
        "render.clip_html(torch.zeros(2, 44100), 44100);"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "module://matplotlib_inline.backend_inline"


def test_rendered_results_flag_bad_signals_and_leave_music_alone():
    """Under a clip a person sees the flag sentence for silence, clipping and noise; none for a chord."""
    rate = 44100
    t = torch.arange(rate) / rate
    chord = sum(torch.sin(2 * math.pi * f * t) for f in (261.6, 329.6, 392.0)) * 0.2
    signals = {
        "chord": (torch.stack([chord, chord]), None),
        "silence": (torch.zeros(2, rate), "silent"),
        "clipped": ((torch.sin(2 * math.pi * 440 * t) * 3).clamp(-1, 1).expand(2, -1), "clipped"),
        "noise": (torch.randn(2, rate, generator=torch.Generator().manual_seed(0)) * 0.1, "noise_like"),
    }
    for name, (audio, flag) in signals.items():
        assessed = quality.assess(audio, rate, requested_s=1.0)
        shown = render.clip_html(audio, rate, title=name, quality=assessed)
        warnings_shown = shown.count("sa3lab-warning")
        if flag is None:
            assert warnings_shown == 0, name
        else:
            assert warnings_shown == 1 and html.escape(assessed["flags"][flag]) in shown, name


@pytest.mark.parametrize(
    "channels, rate, frames",
    [(6, 8000, 4000), (2, 96000, 9600), (3, 44101, 4410), (8, 192000, 1), (1, 7, 10), (2, 11025, 0)],
)
def test_a_player_takes_any_channels_rate_and_length_and_values(channels, rate, frames):
    """Issue 29: 6 channels at 8 kHz was 'Format not recognised', 96 kHz 'MPEG-1/2/2.5 only supports
    sample rates of ...'. Now mono or stereo at a rate the encoder takes, every sample in range."""
    audio = torch.randn(channels, frames) * 1e30
    mime, data = render.audio_preview(audio, rate)
    decoded, got = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert decoded.shape[1] == min(channels, 2) and np.isfinite(decoded).all()
    if mime == "audio/mpeg":
        assert got in render.MP3_RATES and (rate not in render.MP3_RATES or got == rate)
    wav, got = sf.read(io.BytesIO(render.wav_bytes(audio, rate)), dtype="float32", always_2d=True)
    assert wav.shape[1] == min(channels, 2) and got in render.WAV_RATES and np.abs(wav).max() <= 1
    assert render.spectrogram_jpeg(audio, rate) and (not frames or render.waveform_png(audio, rate))
