"""Length arithmetic against the generate fixtures (latent lengths, padding masks, trimmed audio)."""

import pytest
import torch
from parity import generate_cases, load_case, model_lengths, plan_for_case

from stable_audio_3.lengths import (
    audio_length,
    batch_values,
    check_steps,
    plan_lengths,
    zero_padding,
)

GENERATE_CASES = generate_cases()


@pytest.mark.parametrize("name", GENERATE_CASES)
def test_latent_length_matches_fixture(name):
    case = load_case(name)
    plan = plan_for_case(case)
    assert plan.latent_length == case.tensors["output.latents"].shape[-1]
    assert plan.padding_mask.shape == (case.tensors["output.latents"].shape[0], plan.latent_length)


@pytest.mark.parametrize("name", generate_cases("trace.dit_kwargs.padding_mask"))
def test_padding_mask_matches_trace(name):
    case = load_case(name)
    assert torch.equal(plan_for_case(case).padding_mask, case.tensors["trace.dit_kwargs.padding_mask"])


@pytest.mark.parametrize("name", generate_cases("output.audio"))
def test_output_trim_matches_fixture_audio(name):
    case = load_case(name)
    assert plan_for_case(case).output_samples == case.tensors["output.audio"].shape[-1]


def test_mixed_durations_are_not_trimmed_and_get_their_own_valid_region():
    plan = plan_for_case(load_case("batch2_mixed_durations"))
    assert plan.output_samples is None
    short, long = plan.valid_lengths.tolist()
    assert short < long <= plan.latent_length
    assert plan.padding_mask.sum(1).tolist() == [short, long]


def test_audio_length_rounds_up_aligns_and_caps():
    kw = dict(sample_rate=44100, downsampling_ratio=4096, latent_align=2)
    for seconds in (0.1, 1.0, 3.3, 10.0, 30.0):
        n = audio_length([seconds], max_samples=10**9, **kw)
        assert n % 8192 == 0
        assert int((seconds + 6.0) * 44100) <= n < int((seconds + 6.0) * 44100) + 8192
    assert audio_length([115.0], max_samples=5292032, **kw) == 5292032
    assert audio_length([0.0], max_samples=5292032, **kw) == 5292032


def test_cap_comes_from_the_caller_not_a_constant():
    medium = model_lengths("medium")
    assert medium["max_samples"] > model_lengths("small-music")["max_samples"]
    plan = plan_lengths(200.0, batch_size=1, **medium)
    assert plan.audio_samples > 5292032
    assert plan.latent_length == plan.audio_samples // medium["downsampling_ratio"]


def test_valid_length_is_clamped_to_the_sequence():
    small = model_lengths("small-music")
    max_seconds = small["max_samples"] / small["sample_rate"]
    plan = plan_lengths(max_seconds, batch_size=1, **small)
    assert plan.valid_lengths.item() == plan.latent_length
    assert plan.padding_mask.all()


@pytest.mark.parametrize(
    "duration, batch_size, match",
    [
        (0.0, 1, "more than 0"),
        (-1.0, 1, "more than 0"),
        (500.0, 1, "at most 120"),
        (float("nan"), 1, "number"),
        ("5", 1, "number"),
        ([1.0, 2.0, 3.0], 2, "3 entries but batch_size is 2"),
        (1.0, 0, "batch_size"),
    ],
)
def test_bad_durations_raise_one_sentence(duration, batch_size, match):
    with pytest.raises(ValueError, match=match):
        plan_lengths(duration, batch_size=batch_size, **model_lengths("small-music"))


def test_bad_padding_and_steps_raise():
    with pytest.raises(ValueError, match="duration_padding_sec"):
        plan_lengths(1.0, batch_size=1, padding_sec=-1.0, **model_lengths("small-music"))
    for steps in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            check_steps(steps)
    assert check_steps(8) == 8


def test_batch_values_repeats_scalars_and_checks_lists():
    assert batch_values("a", 3, "prompt") == ["a", "a", "a"]
    assert batch_values(["a", "b"], 2, "prompt") == ["a", "b"]
    with pytest.raises(ValueError, match="prompt has 1 entries"):
        batch_values(["a"], 2, "prompt")


def test_zero_padding_zeroes_samples_of_padded_frames():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    audio = torch.ones(2, 2, 3 * 4 + 2)  # decoded audio may be a little longer than L * ds
    out = zero_padding(audio, mask, 4)
    assert out[0, :, :8].eq(1).all() and out[0, :, 8:].eq(0).all()
    assert out[1, :, :4].eq(1).all() and out[1, :, 4:].eq(0).all()
