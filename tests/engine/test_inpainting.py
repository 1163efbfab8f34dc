"""Inpaint masks and local conditioning (stable_audio_3.inpainting), against the fixtures."""

import numpy as np
import pytest
import torch
from parity import load_case, plan_for_case

from stable_audio_3.inpainting import (
    build_inpaint_mask,
    inpaint_regions,
    latent_mask,
    local_conditioning,
)

SR, DS = 44100, 4096


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


def test_a_mask_for_another_batch_is_refused_in_one_sentence():
    """Upstream PR #97 repeats a one-item mask over the batch (as we do); its review asked for a clear
    error when the mask's batch is neither 1 nor the batch size, instead of a shape error later."""
    n = 8 * DS
    for rows in (1, 3):
        mask = build_inpaint_mask(
            length=n, sample_rate=SR, durations=[0.7] * 3, batch_size=3, mask=torch.ones(rows, n)
        )
        assert mask.shape == (rows, n)
    with pytest.raises(
        ValueError, match=r"^inpaint_mask must have shape \(samples,\) or \(3, samples\), got \(2, "
    ):
        build_inpaint_mask(length=n, sample_rate=SR, durations=[0.7] * 3, batch_size=3, mask=torch.ones(2, n))


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
