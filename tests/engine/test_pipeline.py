"""End-to-end parity: StableAudioModel.generate reproduces every recorded upstream generate() call.

The fixtures were recorded on upstream's CPU attention path, so the models load with
``attention_padding="upstream_fallback"``; seeds, lengths, samplers, guidance, editing and LoRA
strengths are those of each case's JSON.
"""

import pytest
import torch
from loud_model import make_loud
from parity import MODELS, CaseRunner, case_names, fixtures, load_case

from stable_audio_3 import StableAudioModel
from stable_audio_3.parity import GENERATE

GENERATE_CASES = case_names(kinds=(GENERATE,))
RUNNER = CaseRunner(fixtures)  # CPU, float32, upstream_fallback: the recorded path
read_clip = fixtures.clip
generate_kwargs = RUNNER.generate_kwargs


def fixture_model(name: str) -> StableAudioModel:
    return RUNNER.model(name)


@pytest.mark.parametrize("name", GENERATE_CASES)
def test_generate_matches_upstream(name):
    case = load_case(name)
    outputs = RUNNER.run(case)
    assert sorted(outputs) == case.outputs()
    assert fixture_model(case.meta["model"]).last_seed == case.meta["seed"]
    for key, actual in outputs.items():
        assert actual.dtype == torch.float32
        case.assert_output(key, actual)


def test_first_sampler_step_sees_the_recorded_inputs():
    """Bottom-up check of t2a_1s: the DiT input and timestep of every step match the trace."""
    case = load_case("t2a_1s")
    model = fixture_model("small-music")
    seen = []
    model.generate(
        **generate_kwargs(case),
        return_latents=True,
        disable_tqdm=True,
        callback=lambda info: seen.append((info["x"].clone(), info["t"].clone())),
    )
    assert len(seen) == 8
    for i, (x, t) in enumerate(seen):
        torch.testing.assert_close(
            t.float().reshape(-1), case.tensors[f"trace.step{i:02d}.t"], rtol=0, atol=1e-7
        )
        torch.testing.assert_close(
            x, case.tensors[f"trace.step{i:02d}.x"], rtol=0, atol=case.atol("output.latents")
        )


def test_stacked_loras_change_the_output_and_unload_restores_it_exactly():
    model = fixture_model("small-music")
    args = dict(prompt="warm analog synth", duration=1.0, seed=5, return_latents=True, disable_tqdm=True)
    base = model.generate(**args)
    lora = MODELS / "lora" / "lora_a.safetensors"
    model.load_lora([lora])
    one = model.generate(**args)
    model.load_lora([lora])  # stacks: the same adapter twice is twice the delta
    assert model.lora_names and len(model.lora_names) == 2
    two = model.generate(**args)
    model.set_lora_strength(0.0, lora_index=1)
    torch.testing.assert_close(model.generate(**args), one, rtol=0, atol=0)
    model.set_lora_strength(0.0)
    torch.testing.assert_close(model.generate(**args), base, rtol=0, atol=0)
    model.set_lora_strength(1.0)
    model.unload_lora()
    assert torch.equal(model.generate(**args), base)
    assert not torch.equal(one, base) and not torch.equal(two, one)


def test_random_seed_is_reported_and_reproduces():
    model = fixture_model("small-music")
    args = dict(prompt="rain", duration=0.5, return_latents=True, disable_tqdm=True)
    first = model.generate(**args, seed=-1)
    chosen = model.last_seed
    assert chosen is not None and chosen >= 0
    assert torch.equal(model.generate(**args, seed=chosen), first)


def test_batched_inpainting_works_where_upstream_fails():
    model = fixture_model("small-music")
    rate, clip = read_clip("inputs/clip_c.wav")
    args = dict(
        duration=1.2,
        inpaint_audio=(rate, clip),
        inpaint_mask_start_seconds=0.4,
        inpaint_mask_end_seconds=0.9,
        return_latents=True,
        disable_tqdm=True,
    )
    batch = model.generate(prompt=["lo-fi beat", "rain"], batch_size=2, seed=7, **args)
    assert batch.shape[0] == 2 and torch.isfinite(batch).all()
    assert not torch.equal(batch[0], batch[1])


def test_audio_tuple_order_from_torchaudio_load_is_accepted():
    model = fixture_model("small-music")
    rate, clip = read_clip("inputs/clip_a.wav")
    args = dict(
        prompt="rain", duration=1.0, init_noise_level=0.7, seed=3, return_latents=True, disable_tqdm=True
    )
    assert torch.equal(
        model.generate(init_audio=(rate, clip), **args), model.generate(init_audio=(clip, rate), **args)
    )


def test_exclude_padding_is_the_default_and_differs_from_the_cpu_fallback():
    default = StableAudioModel.from_pretrained(str(MODELS / "small-music"), device="cpu")
    assert default.attention_padding == "exclude"
    args = dict(prompt="rain", duration=1.0, seed=3, return_latents=True, disable_tqdm=True)
    assert not torch.equal(default.generate(**args), fixture_model("small-music").generate(**args))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prompt=""), None),
        (dict(prompt=[]), "empty"),
        (dict(prompt="x", duration=0), "duration"),
        (dict(prompt="x", duration=500), "duration"),
        (dict(prompt="x", steps=0), "steps"),
        (dict(prompt=["a", "b"], batch_size=3), "batch_size"),
        (dict(prompt="x", sampler_type="nope"), "sampler"),
    ],
)
def test_bad_arguments_raise_one_actionable_sentence(kwargs, message):
    model = fixture_model("small-music")
    if message is None:  # an empty prompt is upstream's unconditional generation: allowed
        assert (
            model.generate(**kwargs, duration=0.5, seed=1, return_latents=True, disable_tqdm=True).ndim == 3
        )
        return
    with pytest.raises(ValueError, match=message):
        model.generate(**kwargs, disable_tqdm=True)


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="small-music"):
        StableAudioModel.from_pretrained("large-music")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precisions_load_and_generate_finite_audio(dtype):
    model = StableAudioModel.from_pretrained(
        str(MODELS / "small-music"), device="cpu", dtype=dtype, autoencoder_dtype=torch.float32
    )
    assert model.dtype == dtype and model.model.autoencoder_dtype == torch.float32
    rope = model.model.dit.transformer.rotary_pos_emb.inv_freq
    assert rope.dtype == torch.float32  # rotary tables are never cast
    audio = model.generate("warm analog synth", duration=0.5, steps=2, seed=1, disable_tqdm=True)
    reference = fixture_model("small-music").generate(
        "warm analog synth", duration=0.5, steps=2, seed=1, disable_tqdm=True
    )
    assert audio.dtype == torch.float32 and torch.isfinite(audio).all()
    assert audio.abs().max() > 1e-3 and (audio - reference).abs().mean() < reference.abs().mean()


@pytest.mark.parametrize("name", ["small-music", "medium"])
def test_gated_models_load_by_name_through_the_hub_and_match_the_local_folder(hub, name):
    from hub_fixtures import ACCEPTED_TOKEN

    model = StableAudioModel.from_pretrained(
        name, device="cpu", token=ACCEPTED_TOKEN, attention_padding="upstream_fallback"
    )
    assert model.source.repo_id == f"stabilityai/stable-audio-3-{name}" and model.source.revision
    args = dict(prompt="rain", duration=0.5, steps=2, seed=4, return_latents=True, disable_tqdm=True)
    assert torch.equal(model.generate(**args), fixture_model(name).generate(**args))


def test_a_lora_for_another_model_is_refused_and_generation_is_unchanged(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    source = MODELS / "lora" / "lora_a.safetensors"
    with safe_open(str(source), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    key = next(k for k in tensors if k.endswith("lora_A"))
    tensors[key] = torch.zeros(tensors[key].shape[0], tensors[key].shape[1] * 2, dtype=tensors[key].dtype)
    foreign = tmp_path / "for_a_wider_model.safetensors"
    save_file(tensors, str(foreign), metadata=metadata)
    model = fixture_model("small-music")
    args = dict(prompt="rain", duration=0.5, steps=2, seed=4, return_latents=True, disable_tqdm=True)
    before = model.generate(**args)
    with pytest.raises(ValueError, match="lora_A|shape|model"):
        model.load_lora([foreign])
    assert model.lora_names == [] and torch.equal(model.generate(**args), before)


@pytest.mark.slow
def test_compiled_transformer_reproduces_upstream():
    """compile=True (torch.compile of the DiT transformer; here inductor's C++ backend) stays within
    the recorded case's tolerance."""
    case = load_case("t2a_1s")
    with pytest.warns(UserWarning, match="meant for CUDA"):
        model = StableAudioModel.from_pretrained(
            str(MODELS / "small-music"), device="cpu", attention_padding="upstream_fallback", compile=True
        )
    torch._dynamo.utils.counters.clear()
    latents = model.generate(**generate_kwargs(case), return_latents=True, disable_tqdm=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile
    case.assert_output("output.latents", latents)


def test_clamp_output_false_returns_the_decoders_samples_beyond_full_scale():
    """Upstream clips the decoded audio to [-1, 1] (our default, for parity); ``clamp_output=False``
    keeps what the decoder gave, for a caller that turns loud audio down by one gain (issue 25)."""
    model = make_loud(StableAudioModel.from_pretrained("demo"))
    args = dict(prompt="rain", duration=1.0, steps=2, seed=0, disable_tqdm=True)
    raw = model.generate(**args, clamp_output=False)
    clipped = model.generate(**args)
    assert raw.abs().max() > 1.5 and clipped.abs().max() == 1.0
    assert torch.equal(clipped, raw.clamp(-1, 1))
    with pytest.raises(ValueError, match="clamp_output"):
        model.generate(**args, clamp_output="no")
