"""Generations that overlap in one process: own random streams, own LoRA strengths, own results.

Two generations run at once in two threads are forced to interleave step by step (a barrier in the
sampler callback), and each must equal, bit for bit, the same generation run alone.
"""

import functools
import threading

import pytest
import torch
from parity import MODELS

from stable_audio_3 import AutoencoderModel, StableAudioModel
from stable_audio_3.noise import Noise

LORA = MODELS / "lora" / "lora_a.safetensors"
ARGS = dict(duration=0.5, steps=3, disable_tqdm=True)


@functools.cache
def shared_model() -> StableAudioModel:
    return StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")


@pytest.fixture
def model():
    model = shared_model()
    yield model
    model.unload_lora()


def in_lockstep(*calls):
    """Run the calls (each taking a callback) in threads that take every sampler step together."""
    barrier = threading.Barrier(len(calls), timeout=120)
    results, errors = [None] * len(calls), []

    def step(_info):
        barrier.wait()

    def run(i, call):
        try:
            results[i] = call(step)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_noise_streams_equal_global_seeding():
    shape = (3, 32, 50)
    torch.manual_seed(7)
    expected = torch.randn(shape)
    assert torch.equal(Noise.seeded(7, "cpu").randn(shape), expected)
    like = torch.empty(50, 32, 3).transpose(0, 2)  # randn_like fills in memory order, not index order
    torch.manual_seed(7)
    assert torch.equal(Noise.seeded(7, "cpu").randn_like(like), torch.randn_like(like))
    per_item = Noise.seeded([7, 8], "cpu").randn((2, 32, 50))
    torch.manual_seed(8)
    assert torch.equal(per_item[0], expected[0]) and torch.equal(per_item[1:], torch.randn(1, 32, 50))


def test_generate_leaves_the_global_generator_alone(model):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model.generate("rain", seed=5, **ARGS)
    assert torch.equal(torch.get_rng_state(), before)


def test_two_runs_on_one_model_with_different_lora_strengths_equal_their_solo_runs(model):
    solo_base = model.generate("rain on a tin roof", seed=12, **ARGS)  # no LoRA loaded yet
    model.load_lora([LORA])
    solo_lora = model.generate("warm analog synth", seed=11, lora_strengths=1.0, **ARGS)
    with_lora, without = in_lockstep(
        lambda cb: model.generate("warm analog synth", seed=11, lora_strengths=1.0, callback=cb, **ARGS),
        lambda cb: model.generate("rain on a tin roof", seed=12, lora_strengths={}, callback=cb, **ARGS),
    )
    assert torch.equal(with_lora, solo_lora) and torch.equal(without, solo_base)
    assert not torch.equal(
        solo_lora, model.generate("warm analog synth", seed=11, lora_strengths=0.0, **ARGS)
    )


def test_strength_changed_during_a_run_applies_to_later_runs_only(model):
    model.load_lora([LORA])
    model.set_lora_strength(1.0)
    solo = model.generate("warm analog synth", seed=3, **ARGS)

    def change_midway(info):
        if info["i"] == 0:
            model.set_lora_strength(0.0)

    assert torch.equal(model.generate("warm analog synth", seed=3, callback=change_midway, **ARGS), solo)
    assert torch.equal(
        model.generate("warm analog synth", seed=3, **ARGS),
        model.generate("warm analog synth", seed=3, lora_strengths=0.0, **ARGS),
    )


def test_loading_a_lora_waits_for_the_running_generation(model):
    solo = model.generate("rain", seed=4, **ARGS)
    started, order = threading.Event(), []
    result = {}

    def slow_start(info):
        order.append("step")  # recorded inside the generation, before its lock is released
        if info["i"] == 0:
            started.set()
            threading.Event().wait(0.5)  # leave the other thread time to try loading

    def run():
        result["audio"] = model.generate("rain", seed=4, callback=slow_start, **ARGS)

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(60)
    model.load_lora([LORA])
    order.append("loaded")
    thread.join()
    assert order[-1] == "loaded" and order.count("step") == len(order) - 1 > 1
    assert torch.equal(result["audio"], solo)  # the LoRA loaded meanwhile did not leak into the run


def test_loading_a_lora_from_inside_a_generation_is_refused(model):
    def load_now(_info):
        model.load_lora([LORA])

    with pytest.raises(RuntimeError, match="inside a generation"):
        model.generate("rain", seed=1, callback=load_now, **ARGS)
    assert model.lora_names == []


def test_random_seeds_are_returned_per_run_and_reproduce(model):
    first, second = in_lockstep(
        lambda cb: model.generate("rain", seed=-1, callback=cb, return_info=True, **ARGS),
        lambda cb: model.generate("synth", seed=-1, callback=cb, return_info=True, **ARGS),
    )
    assert isinstance(first.seed, int) and set(first.timings) >= {"text_encoding", "sampling", "decoding"}
    assert torch.equal(model.generate("rain", seed=first.seed, **ARGS), first.audio)
    assert torch.equal(model.generate("synth", seed=second.seed, **ARGS), second.audio)
    assert first.lora_strengths == () and first.sample_rate == 44100


def test_the_run_reports_the_lora_strengths_it_used(model):
    model.load_lora([LORA, LORA])
    info = model.generate("rain", seed=2, lora_strengths={0: 0.5}, return_info=True, **ARGS)
    assert info.lora_strengths == ((str(LORA), 0.5), (str(LORA), 0.0))
    by_path = model.generate("rain", seed=2, lora_strengths={LORA: 0.25}, return_info=True, **ARGS)
    assert [s for _, s in by_path.lora_strengths] == [0.25, 0.25]
    with pytest.raises(ValueError, match="one strength per loaded file"):
        model.generate("rain", seed=2, lora_strengths=[1.0], **ARGS)


def test_two_model_instances_in_two_threads_equal_their_solo_runs():
    a = StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")
    b = StableAudioModel.from_pretrained(str(MODELS / "small-music-base"), device="cpu")
    solo_a = a.generate("rain", seed=21, **ARGS)
    solo_b = b.generate("synth", seed=22, **ARGS)
    out_a, out_b = in_lockstep(
        lambda cb: a.generate("rain", seed=21, callback=cb, **ARGS),
        lambda cb: b.generate("synth", seed=22, callback=cb, **ARGS),
    )
    assert torch.equal(out_a, solo_a) and torch.equal(out_b, solo_b)


def test_autoencoder_decode_takes_a_generator_that_equals_global_seeding():
    ae = AutoencoderModel.from_pretrained(MODELS / "same-s", device="cpu")
    latents = torch.randn(1, ae.latent_dim, 40, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(9)
    expected = ae.decode(latents)
    before = torch.get_rng_state()
    assert torch.equal(ae.decode(latents, generator=torch.Generator().manual_seed(9)), expected)
    assert torch.equal(torch.get_rng_state(), before)
    with pytest.raises(ValueError, match="torch.Generator"):
        ae.decode(latents, generator=9)
