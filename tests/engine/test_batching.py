"""Exact batching: with one seed per item, item i of a batch is bit for bit its own batch-1 call."""

import functools

import pytest
import torch
from parity import MODELS

from stable_audio_3 import StableAudioModel
from stable_audio_3.batching import batch_size_for, item_bytes, plan_batches

PROMPTS = ["warm analog synth", "rain on a tin roof", "lo-fi beat"]
SEEDS = [3, 11, 2**64 - 1]


@functools.cache
def fixture_model(name: str) -> StableAudioModel:
    return StableAudioModel.from_pretrained(str(MODELS / name), device="cpu")


def assert_items_equal_solo_runs(model, settings, prompts=PROMPTS, seeds=SEEDS, **batch_only):
    batch = model.generate(
        prompt=prompts, seed=seeds, batch_size=len(prompts), return_info=True, **settings, **batch_only
    )
    assert batch.seed == tuple(seeds)
    for i, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True)):
        alone = model.generate(prompt=prompt, seed=seed, **settings)
        assert torch.equal(batch.audio[i : i + 1], alone), f"item {i} differs from its own run"


@pytest.mark.parametrize(
    "name, settings",
    [
        ("small-music", dict(duration=1.0)),  # pingpong: per-step noise; SAME-S: new-token noise
        ("small-music", dict(duration=0.3, duration_padding_sec=0.0)),  # 4 latent frames only
        ("small-music-base", dict(duration=1.0, cfg_scale=4.0)),  # guidance doubles the batch
        ("medium", dict(duration=1.0, cfg_scale=3.0, chunked_decode=True)),  # differential, SAME-L
    ],
)
def test_each_item_of_a_seeded_batch_is_its_solo_run(name, settings):
    assert_items_equal_solo_runs(fixture_model(name), dict(steps=3, disable_tqdm=True, **settings))


def test_per_item_negative_prompts_and_loras_batch_exactly():
    model = StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")
    model.load_lora([MODELS / "lora" / "lora_a.safetensors"])
    settings = dict(duration=0.5, steps=3, cfg_scale=3.0, lora_strengths=0.7, disable_tqdm=True)
    negatives = ["noise", "", "distortion"]
    batch = model.generate(prompt=PROMPTS, negative_prompt=negatives, seed=SEEDS, batch_size=3, **settings)
    for i in range(3):
        alone = model.generate(prompt=PROMPTS[i], negative_prompt=negatives[i], seed=SEEDS[i], **settings)
        assert torch.equal(batch[i : i + 1], alone)


def test_one_seed_still_means_one_stream_for_the_batch():
    model = fixture_model("small-music")
    settings = dict(duration=0.5, steps=2, disable_tqdm=True, return_latents=True)
    shared = model.generate(prompt=PROMPTS[:2], seed=5, batch_size=2, **settings)
    per_item = model.generate(prompt=PROMPTS[:2], seed=[5, 5], batch_size=2, **settings)
    assert not torch.equal(shared[0], per_item[0])  # the same first noise, then the batch's own stream


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seed=[1, 2, 3]), "one seed per item"),
        (dict(seed=[1, 2], duration=[0.5, 0.8]), "one duration"),
        (dict(seed=[1, "2"]), "whole number"),
        (dict(seed=[1, 2**64]), "2\\*\\*64 - 1"),
    ],
)
def test_seed_lists_are_checked(kwargs, message):
    args = dict(prompt=PROMPTS[:2], batch_size=2, duration=0.5, disable_tqdm=True) | kwargs
    with pytest.raises(ValueError, match=message):
        fixture_model("small-music").generate(**args)


def test_plan_groups_items_by_settings_and_its_batches_reproduce_each_item():
    model = fixture_model("small-music")
    base = dict(duration=0.4, steps=2, disable_tqdm=True)
    items = [
        dict(prompt="rain", seed=1, **base),
        dict(prompt="synth", seed=2, **base, cfg_scale=2.0),
        dict(prompt="beat", seed=3, **base),
        dict(prompt="wind", seed=4, **base, cfg_scale=2.0, negative_prompt="hiss"),
        dict(prompt="drums", seed=5, **base),
    ]
    batches = plan_batches(model, items, max_batch=2)
    assert [b.indices for b in batches] == [(0, 2), (4,), (1,), (3,)]
    assert batches[0].kwargs == dict(base, prompt=["rain", "beat"], seed=[1, 3], batch_size=2)
    assert batches[3].kwargs["negative_prompt"] == ["hiss"]
    out = model.generate(**batches[0].kwargs)
    assert torch.equal(out[1:2], model.generate(**items[2]))


def test_plan_refuses_items_that_are_batches_or_lack_a_seed():
    model = fixture_model("small-music")
    with pytest.raises(ValueError, match="prompt and a seed"):
        plan_batches(model, [dict(prompt="rain")])
    with pytest.raises(ValueError, match="batch-1"):
        plan_batches(model, [dict(prompt="rain", seed=[1, 2])])


def test_memory_estimate_grows_with_length_and_guidance_and_sets_the_batch_size():
    model = fixture_model("small-music")
    short, long = item_bytes(model, duration=1.0), item_bytes(model, duration=30.0)
    guided = item_bytes(model, duration=30.0, cfg_scale=4.0)
    assert 0 < short < long < guided < 2.5 * long
    assert batch_size_for(model, duration=30.0, memory=10 * long, fraction=0.5) == 5
    assert batch_size_for(model, duration=30.0, memory=long // 2) == 1
    assert batch_size_for(model, duration=30.0, memory=1000 * long, max_batch=8) == 8
