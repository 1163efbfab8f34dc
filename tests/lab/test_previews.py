"""Step previews (sa3lab.previews): when they come, what they show, and that they leave the result alone."""

import math

import numpy as np
import pytest
import torch

from sa3lab import catalog, render
from sa3lab.generation import GenerationRequest
from sa3lab.lab import Lab
from sa3lab.previews import MIN_FIT_FRAMES, LatentSpectrogram, StepPreviews

PNG = b"\x89PNG\r\n\x1a\n"
HOP, RATE = 4096, 44100


@pytest.fixture(scope="module")
def lab():
    return Lab()


def request(tmp_path, **kw):
    base = dict(model="demo", prompt="rain", duration=8.0, steps=4, seed=5, output_dir=str(tmp_path))
    return GenerationRequest(**{**base, **kw})


def driven_audio(latents: torch.Tensor, seed: int) -> torch.Tensor:
    """Noise whose level in each latent frame follows channel 0 (6 dB per unit) and tilts with channel 1."""
    gen = torch.Generator().manual_seed(seed)
    frames = []
    for z in latents.T:
        noise = torch.randn(HOP, generator=gen)
        low = torch.cumsum(noise, 0)
        low = (low - low.mean()) / (low.std() + 1e-6)
        tilt = torch.sigmoid(z[1])
        frame = (1 - tilt) * noise + tilt * low
        frames.append(frame / frame.std() * 10 ** ((6 * float(z[0]) - 30) / 20))
    return torch.cat(frames).expand(2, -1)


def test_the_latent_spectrogram_learns_how_latents_set_the_levels():
    """Fitted on one clip, it tracks the frame levels of another from its latents alone."""
    gen = torch.Generator().manual_seed(0)
    train, held_out = torch.randn(8, 300, generator=gen), torch.randn(8, 120, generator=gen)
    fit = LatentSpectrogram(channels=8)
    assert not fit.ready
    fit.add(train, driven_audio(train, 1), RATE, HOP)
    assert fit.ready and fit.frames == 300 >= MIN_FIT_FRAMES
    actual = render.log_spectrogram(driven_audio(held_out, 2), RATE, frame=HOP, rows=fit.rows).db
    estimate = fit.predict(held_out)
    assert estimate.shape == actual.shape == (fit.rows, 120)
    loudness = np.corrcoef(estimate.mean(axis=0), actual.mean(axis=0))[0, 1]
    mean_only = np.abs(actual.mean(axis=1, keepdims=True) - actual).mean()
    assert loudness > 0.95 and np.abs(estimate - actual).mean() < 0.5 * mean_only


def test_frame_columns_line_up_with_latent_frames():
    t = torch.arange(HOP * 4) / RATE
    tone = torch.sin(2 * math.pi * 1000 * t) * torch.tensor([0.0, 1.0, 0.0, 0.1]).repeat_interleave(HOP)
    spec = render.log_spectrogram(tone.expand(2, -1), RATE, frame=HOP, rows=64)
    levels = spec.db.max(axis=0)
    assert spec.db.shape == (64, 4) and levels[0] == render.DB_RANGE[0]
    assert -3 < levels[1] <= 0 and abs(levels[3] - levels[1] + 20) < 1  # 0.1 of full scale: -20 dB


def test_previews_come_every_n_steps_with_an_image_and_cost_nothing_in_the_result(lab, tmp_path):
    plain = lab.generate(request(tmp_path))
    shown = []
    result = lab.generate(request(tmp_path), on_preview=shown.append, preview_every=2, preview_listen=True)
    assert torch.equal(
        plain.audio, result.audio
    )  # the listening decode leaves the run's random numbers alone
    assert [(p.step, p.steps) for p in shown] == [(2, 4), (4, 4)]
    assert all(p.image.startswith(PNG) for p in shown)
    assert shown[0].audio.shape == (2, 32 * HOP) and shown[0].sample_rate == RATE
    assert 0 < result.timings["previews"] < result.timings["total"]
    assert shown[0].sigma > shown[1].sigma


def test_after_a_run_the_previews_estimate_a_spectrogram(tmp_path):
    lab = Lab()  # a model this kernel has not run with previews yet
    model, _, _ = lab.load_generator("demo", catalog.get("demo"), None)
    assert model not in lab.preview_fits
    first, second = [], []
    lab.generate(request(tmp_path, steps=2), on_preview=first.append, preview_every=1)
    lab.generate(request(tmp_path, steps=2, seed=6), on_preview=second.append, preview_every=1)
    assert [p.kind for p in first] == ["latents", "latents"] and "latents" in first[0].caption
    assert [p.kind for p in second] == ["estimate", "estimate"] and "spectrogram estimated" in second[
        0
    ].caption


@pytest.mark.parametrize("every", [0, 2.5, "2", True])
def test_a_bad_preview_interval_is_one_sentence(every):
    with pytest.raises(
        ValueError, match="Previews come every N steps: N must be a whole number from 1 to 1000"
    ):
        StepPreviews(print, every=every)


def test_a_non_finite_estimate_shows_its_image_without_audio(lab):
    """Issue 25: audio with NaN is never handed to a player; the sampler's own check ends such a run."""
    model = lab.core.load("demo").model
    shown = []
    on_step = StepPreviews(shown.append, every=1, listen=True).watch(model, 1.0)
    latents = torch.full((1, model.model.autoencoder.latent_dim, 16), float("nan"))
    on_step({"denoised": latents, "i": 0, "steps": 2, "sigma": torch.tensor(1.0)})
    assert len(shown) == 1 and shown[0].audio is None and shown[0].image.startswith(PNG)
