"""Input audio conversion, inpaint masks and local conditioning, against the fixtures where they exist."""

import numpy as np
import pytest
import soundfile as sf
import torch
from parity import INPUTS, input_audio, load_case
from test_lengths import plan_for_case

from stable_audio_3.editing import (
    build_inpaint_mask,
    check_init_noise_level,
    inpaint_regions,
    latent_mask,
    local_conditioning,
    prepare_audio,
    split_audio,
)

SR, DS = 44100, 4096


def test_both_tuple_orders_and_layouts_give_channels_first():
    audio = input_audio("clip_a")  # (2, n)
    data, rate = sf.read(str(INPUTS / "clip_a.wav"), dtype="float32")  # (n, 2), like upstream's numpy input
    for pair in [(rate, audio), (audio, rate), (rate, data), (data, rate), (np.int64(rate), audio[None])]:
        got_rate, got = split_audio(pair)
        assert got_rate == 44100 and torch.equal(got, audio)
    _, mono = split_audio((48000, input_audio("clip_b")[0].numpy()))
    assert mono.shape == (1, 38400)


def test_integer_samples_are_scaled_like_upstream():
    ints = np.array([[32767, -32767], [16384, 0]], dtype=np.int16)  # (samples, channels)
    _, got = split_audio((SR, ints))
    torch.testing.assert_close(got, torch.tensor([[1.0, 16384 / 32767], [-1.0, 0.0]]))
    _, got32 = split_audio((torch.tensor([2147483647, 0], dtype=torch.int32), SR))
    torch.testing.assert_close(got32, torch.tensor([[1.0, 0.0]]))
    _, got64 = split_audio((SR, np.zeros(10, dtype=np.float64)))
    assert got64.dtype == torch.float32


@pytest.mark.parametrize(
    "pair, match",
    [
        ((SR, np.zeros(10, dtype=np.uint8)), "dtype uint8"),
        ((SR, [0.0, 0.1]), "numpy array or a torch tensor"),
        ((SR, SR), "integer sample rate and an array"),
        (torch.zeros(2, 10), "pair"),
        ((0, torch.zeros(2, 10)), "positive"),
        ((SR, torch.zeros(2, 2, 10)), "shape"),
        ((SR, torch.zeros(2, 0)), "shape"),
    ],
)
def test_bad_audio_inputs_raise_one_sentence(pair, match):
    with pytest.raises(ValueError, match=match):
        split_audio(pair)


def test_resampling_and_mono_to_stereo_match_the_encoder_fixture():
    case = load_case("ae_same_s_encode_resample_mono")
    expected = case.tensors["intermediate.preprocessed"]  # resampled, padded to a multiple of 4096, stereo
    got = prepare_audio((48000, input_audio("clip_b")), sample_rate=SR, length=expected.shape[-1], channels=2)
    assert torch.equal(got, expected)


def test_prepare_audio_pads_crops_and_sets_channels():
    audio = input_audio("clip_c")
    padded = prepare_audio((SR, audio), sample_rate=SR, length=60000, channels=2)
    assert padded.shape == (1, 2, 60000)
    assert torch.equal(padded[0, :, : audio.shape[1]], audio) and padded[0, :, audio.shape[1] :].eq(0).all()
    cropped = prepare_audio((audio, SR), sample_rate=SR, length=1000, channels=2)
    assert torch.equal(cropped[0], audio[:, :1000])
    mono = prepare_audio((SR, audio), sample_rate=SR, length=1000, channels=1)
    torch.testing.assert_close(mono[0], audio[:, :1000].mean(0, keepdim=True))
    three = torch.stack([audio[0], audio[1], -audio[0]])
    assert torch.equal(
        prepare_audio((SR, three), sample_rate=SR, length=1000, channels=2)[0], audio[:, :1000]
    )


def case_mask(case):
    """The latent-grid inpaint mask our functions build for a fixture's generate call."""
    args, plan = case.meta["args"], plan_for_case(case)
    mask = build_inpaint_mask(
        length=plan.audio_samples,
        sample_rate=SR,
        durations=plan.durations,
        starts=args["inpaint_mask_start_seconds"],
        ends=args["inpaint_mask_end_seconds"],
    )
    return latent_mask(mask, plan.latent_length), plan


def test_inpaint_mask_and_masked_latents_match_the_trace():
    case = load_case("inpaint_one_region")
    mask, plan = case_mask(case)
    recorded = case.tensors["trace.dit_kwargs.local_add_cond"]
    assert torch.equal(mask, recorded[:, :1])
    masked = recorded[:, 1:]
    assert masked[mask.expand_as(masked) == 0].eq(0).all() and masked[mask.expand_as(masked) == 1].ne(0).all()
    # masked_input = latents * mask: feeding the kept latents back reproduces the recorded tensor exactly
    got_mask, got_masked = local_conditioning(
        mask, masked, batch_size=1, channels=masked.shape[1], latent_length=plan.latent_length
    )
    assert torch.equal(torch.cat([got_mask, got_masked], dim=1), recorded)


@pytest.mark.parametrize(
    "name", ["inpaint_one_region", "inpaint_two_regions", "continuation", "medium_inpaint"]
)
def test_latent_frame_is_generated_iff_its_first_sample_is(name):
    case = load_case(name)
    mask, plan = case_mask(case)
    args = case.meta["args"]
    starts, ends = args["inpaint_mask_start_seconds"], args["inpaint_mask_end_seconds"]
    regions = list(zip(starts, ends, strict=True)) if isinstance(starts, list) else [(starts, ends)]
    end_of_audio = int(max(plan.durations) * SR)
    for j in range(plan.latent_length):
        sample = j * DS
        generate = sample >= end_of_audio or any(int(s * SR) <= sample < int(e * SR) for s, e in regions)
        assert mask[0, 0, j].item() == (0.0 if generate else 1.0), j
    assert mask.shape[-1] == case.tensors["output.latents"].shape[-1]


@pytest.mark.parametrize("name", ["t2a_1s", "a2a_noise0p7", "base_cfg7_steps50", "medium_t2a"])
def test_no_inpainting_means_zero_local_conditioning(name):
    case = load_case(name)
    recorded = case.tensors["trace.dit_kwargs.local_add_cond"]
    mask, masked = local_conditioning(
        None, None, batch_size=1, channels=recorded.shape[1] - 1, latent_length=recorded.shape[-1]
    )
    assert torch.equal(torch.cat([mask, masked], dim=1), recorded)


def test_inpainting_works_for_a_batch():
    n = 8 * DS
    mask = build_inpaint_mask(
        length=n, sample_rate=SR, durations=[0.7, 0.7], batch_size=2, starts=0.2, ends=0.5
    )
    lat = latent_mask(mask, 8)
    latents = torch.randn(1, 4, 8)
    got_mask, masked = local_conditioning(lat, latents, batch_size=2, channels=4, latent_length=8)
    assert got_mask.shape == (2, 1, 8) and masked.shape == (2, 4, 8)
    assert torch.equal(masked[0], masked[1]) and torch.equal(masked[0], latents[0] * lat[0])


def test_explicit_masks_keep_sample_positions():
    n = 10 * DS
    short = torch.ones(3 * DS)
    mask = build_inpaint_mask(length=n, sample_rate=SR, durations=[5.0], mask=short)
    assert mask.shape == (1, n) and mask[0, : 3 * DS].eq(1).all() and mask[0, 3 * DS :].eq(0).all()
    long = np.ones((2, 12 * DS), dtype=bool)
    mask = build_inpaint_mask(length=n, sample_rate=SR, durations=[0.5, 0.5], batch_size=2, mask=long)
    assert (
        mask.shape == (2, n) and mask[:, : int(0.5 * SR)].eq(1).all() and mask[:, int(0.5 * SR) :].eq(0).all()
    )
    assert build_inpaint_mask(length=n, sample_rate=SR, durations=[1.0]) is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(starts=0.5, ends=0.5), "start must come before the end"),
        (dict(starts=0.8, ends=0.2), "start must come before the end"),
        (dict(starts=-0.1, ends=0.2), "outside the audio"),
        (dict(starts=0.1, ends=1.5), "outside the audio"),
        (dict(starts=[0.1, 0.5], ends=[0.2]), "2 inpaint start times but 1 end"),
        (dict(starts=0.1, ends=None), "inpaint_mask_end_seconds is missing"),
        (dict(starts=None, ends=0.3), "inpaint_mask_start_seconds is missing"),
        (dict(starts=[0.1], ends=0.3), "both as numbers or both as lists"),
        (dict(starts=[], ends=[]), "at least one"),
        (dict(starts="0.1", ends=0.3), "numbers of seconds"),
    ],
)
def test_bad_regions_raise_one_sentence(kwargs, match):
    with pytest.raises(ValueError, match=match):
        inpaint_regions(kwargs["starts"], kwargs["ends"], 1.0)


@pytest.mark.parametrize(
    "mask, kwargs, match",
    [
        (torch.ones(3, 100), dict(batch_size=2), "shape"),
        (torch.full((100,), 0.5), dict(batch_size=1), "only 1"),
        (torch.ones(100), dict(batch_size=1, starts=0.1, ends=0.2), "not both"),
    ],
)
def test_bad_explicit_masks_raise(mask, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_inpaint_mask(length=DS, sample_rate=SR, durations=[1.0], mask=mask, **kwargs)


def test_init_noise_level_range():
    assert check_init_noise_level(1) == 1.0 and check_init_noise_level(0.3) == 0.3
    for bad in (0, 0.0, -0.2, 1.01, float("nan"), "0.5", None):
        with pytest.raises(ValueError, match="init_noise_level"):
            check_init_noise_level(bad)
