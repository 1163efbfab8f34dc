"""The audio-to-audio schedule choice: upstream's (the default, for parity) and the corrected one.

The matrix is upstream PR #94's (as DEMON#320 ran it): sigma_max {0, .1, .25, .5, .75, 1} x steps
{1, 4, 8, 16} x shifts (none, and each shift type the engine has, one of them length-dependent and
batched over several lengths).
"""

import itertools

import pytest
import torch
from parity import MODELS, input_audio

from stable_audio_3 import StableAudioModel
from stable_audio_3.sampling import (
    A2A_SCHEDULES,
    FluxShift,
    FullShift,
    LogSNRShift,
    build_schedule,
    check_a2a_schedule,
    default_sampling_shift,
)

SIGMAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
STEPS = (1, 4, 8, 16)
SHIFTS = {  # name -> (shift, seq_len)
    "none": (None, None),
    "logsnr default": (default_sampling_shift(), 40),
    # (lengths where this shift itself rises: below 2000 * 2**-8.2 ~ 7 latents its log-SNR start
    # passes its end, and even the full-noise schedule is not monotone)
    "logsnr by length, batched": (LogSNRShift(rate=1.0), torch.tensor([8.0, 40.0, 900.0])),
    "flux": (FluxShift(alpha_min=1.0, alpha_max=3.0), 500),
    "full": (FullShift(), 300),
    "full sine": (FullShift(use_sine=True), torch.tensor([10.0, 4000.0])),
}
CELLS = list(itertools.product(SIGMAS, STEPS, SHIFTS))


def problems(schedule: torch.Tensor, sigma_max: float) -> list[str]:
    """What is wrong with a schedule: not monotone, out of [0, sigma_max], inexact endpoints."""
    top = torch.tensor(sigma_max, dtype=schedule.dtype)
    found = []
    if not (schedule[..., 1:] <= schedule[..., :-1]).all():
        found.append("rises")
    if not ((schedule >= 0) & (schedule <= top)).all():
        found.append("leaves [0, sigma_max]")
    if not (schedule[..., 0] == top).all():
        found.append("first != sigma_max")
    if not (schedule[..., -1] == 0).all():
        found.append("last != 0")
    return found


def schedule(sigma, steps, shift_name, a2a_schedule):
    shift, seq_len = SHIFTS[shift_name]
    return build_schedule(steps, sigma, shift, seq_len, a2a_schedule=a2a_schedule)


@pytest.mark.parametrize("sigma, steps, shift_name", CELLS)
def test_the_corrected_schedule_is_monotone_bounded_and_exact_at_both_ends(sigma, steps, shift_name):
    out = schedule(sigma, steps, shift_name, "corrected")
    assert out.shape[-1] == steps + 1
    assert problems(out, sigma) == []


@pytest.mark.parametrize("steps, shift_name", list(itertools.product(STEPS, SHIFTS)))
def test_at_full_noise_the_corrected_schedule_is_bit_identical_to_upstreams(steps, shift_name):
    corrected, upstream = (schedule(1.0, steps, shift_name, name) for name in ("corrected", "upstream"))
    assert torch.equal(corrected, upstream)


def test_upstreams_schedule_fails_cells_of_the_matrix_and_the_default_is_upstreams():
    failed = [cell for cell in CELLS if problems(schedule(*cell, "upstream"), cell[0])]
    assert len(failed) >= len(CELLS) // 3  # every shifted cell below full noise with interior points
    assert (0.5, 8, "logsnr default") in failed
    assert all(sigma not in (0.0, 1.0) and name != "none" for sigma, _, name in failed)
    shift, seq_len = SHIFTS["logsnr default"]
    assert torch.equal(build_schedule(8, 0.5, shift, seq_len), schedule(0.5, 8, "logsnr default", "upstream"))
    assert schedule(0.5, 8, "logsnr default", "upstream")[1] > 0.8  # asked 0.5, reaches ~0.83


def test_an_unknown_schedule_name_is_refused_in_one_sentence():
    assert check_a2a_schedule("corrected") == "corrected" and A2A_SCHEDULES == ("upstream", "corrected")
    for bad in ("Corrected", None, 1):
        with pytest.raises(ValueError, match="a2a_schedule must be one of upstream, corrected"):
            check_a2a_schedule(bad)


# ------------------------------------------------------------------ through generate


def tiny_model() -> StableAudioModel:
    return StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")


def run(model, a2a_schedule, noise_level):
    seen = []
    latents = model.generate(
        prompt="rain",
        duration=0.4,
        steps=4,
        seed=5,
        init_audio=(44100, input_audio("clip_a")),
        init_noise_level=noise_level,
        a2a_schedule=a2a_schedule,
        callback=lambda info: seen.append(float(info["t"][0])),
        return_latents=True,
        disable_tqdm=True,
    )
    return latents, seen


def test_generate_samples_along_the_chosen_schedule_and_the_default_is_upstreams():
    model = tiny_model()
    upstream, upstream_t = run(model, "upstream", 0.5)
    corrected, corrected_t = run(model, "corrected", 0.5)
    default_call = model.generate(
        prompt="rain", duration=0.4, steps=4, seed=5, init_audio=(44100, input_audio("clip_a")),
        init_noise_level=0.5, return_latents=True, disable_tqdm=True,
    )  # fmt: skip
    assert torch.equal(default_call, upstream)
    assert max(upstream_t) > 0.5  # upstream's rises past the noise level asked for
    assert corrected_t[0] == pytest.approx(0.5) and max(corrected_t) == pytest.approx(0.5)
    assert corrected_t == sorted(corrected_t, reverse=True)
    assert not torch.equal(upstream, corrected)
    full_up, _ = run(model, "upstream", 1.0)
    full_corrected, _ = run(model, "corrected", 1.0)
    assert torch.equal(full_up, full_corrected)
    with pytest.raises(ValueError, match="a2a_schedule must be one of"):
        run(model, "fixed", 0.5)
