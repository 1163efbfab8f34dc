"""bfloat16 and float16 on the CPU stay within their stated bound of float32 and never go non-finite.

The bounds (SNR in dB per dtype and output) are ``HALF_PRECISION_MIN_SNR_DB`` of
``stable_audio_3.parity``, which ``benchmarks/gpu_check.py`` applies on a GPU; here the same
cases run on the CPU, so the float16 path a Colab T4 takes is exercised without one. Random numbers
are drawn in float32 for every dtype (``cpu_random``), so the distance measured is rounding only.
"""

import functools

import pytest
import torch
from parity import MODELS, CaseRunner, fixtures, load_case

from sa3lab.metrics import snr_db
from stable_audio_3.conditioning import NumberConditioner
from stable_audio_3.layers import RMSNorm, attend
from stable_audio_3.parity import ONE_OF_EACH_KIND, cpu_random

HALF = [torch.bfloat16, torch.float16]
RUNNERS = {d: CaseRunner(fixtures, dtype=d, attention_padding="exclude") for d in (torch.float32, *HALF)}


@functools.cache
def float32_outputs(name: str) -> dict[str, torch.Tensor]:
    with cpu_random():
        return RUNNERS[torch.float32].run(load_case(name))


def flat(x: torch.Tensor) -> torch.Tensor:
    return x.float().reshape(-1, x.shape[-1])


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("name", ONE_OF_EACH_KIND)
def test_half_precision_replay_stays_within_its_bound_of_float32(name, dtype):
    case = load_case(name)
    with cpu_random():
        got = RUNNERS[dtype].run(case)
    for output, reference in float32_outputs(name).items():
        assert torch.isfinite(got[output]).all(), f"{name} {output} has NaN/inf in {dtype}"
        assert snr_db(flat(reference), flat(got[output])) >= case.min_snr_db(output, dtype)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_number_embedding_keeps_the_high_frequencies_in_half_precision(dtype):
    """seconds_total's Fourier features run to 10 kHz: their phases need the float32 value."""
    conditioner = NumberConditioner(64, 0, 384)
    torch.nn.init.normal_(conditioner.embedder.embedding[1].weight, std=0.1)
    reference, _ = conditioner([31.7, 117.3], "cpu")
    half, _ = conditioner.to(dtype)([31.7, 117.3], "cpu")
    assert half.dtype == dtype
    assert snr_db(flat(reference), flat(half)) > 30  # from the rounded value: under 10 dB


def test_float16_norm_and_attention_do_not_overflow():
    """Squares and attention scores beyond float16's 65504 are taken in float32."""
    x = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(0)) * 2000
    norm = RMSNorm(64)
    expected = norm(x)
    normed = norm.half()(x.half())
    assert torch.isfinite(normed).all() and (normed.float() - expected).abs().max() < 1e-2
    q, k, v = (
        torch.randn(1, 2, 40, 64, generator=torch.Generator().manual_seed(i)) * s
        for i, s in enumerate((40, 40, 1))
    )
    out = attend(q.half(), k.half(), v.half())  # raw scores about 1e5
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), attend(q, k, v), atol=1e-2, rtol=0)


ONE_STEP_MIN_SNR_DB = {torch.bfloat16: 20.0, torch.float16: 35.0}


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("cfg_scale", [1.0, 7.0])
@pytest.mark.parametrize("name", ["small-music", "medium"])
def test_one_sampler_step_is_close_to_float32(name, cfg_scale, dtype):
    """One network evaluation from the same noise: precision without eight steps compounding it
    (about 25-34 dB in bfloat16 and 39-47 dB in float16 on these fixtures)."""
    args = dict(prompt="rain on a tin roof", duration=1.0, steps=1, seed=3, cfg_scale=cfg_scale)
    args |= dict(negative_prompt="noise" if cfg_scale > 1 else None, return_latents=True, disable_tqdm=True)
    with cpu_random():
        reference = RUNNERS[torch.float32].model(name).generate(**args)
        got = RUNNERS[dtype].model(name).generate(**args)
    assert torch.isfinite(got).all()
    assert snr_db(flat(reference), flat(got)) >= ONE_STEP_MIN_SNR_DB[dtype]


def test_lora_on_a_bfloat16_cpu_model_applies_and_unloads_exactly():
    """Prepacked bfloat16 weights follow LoRA: computed weights while loaded, the base ones after."""
    model = RUNNERS[torch.bfloat16].model("small-music")
    args = dict(prompt="rain", duration=0.5, steps=2, seed=4, return_latents=True, disable_tqdm=True)
    base = model.generate(**args)
    model.load_lora([MODELS / "lora" / "lora_a.safetensors"])
    try:
        with_lora = model.generate(**args)
    finally:
        model.unload_lora()
    assert torch.isfinite(with_lora).all() and not torch.equal(with_lora, base)
    assert torch.equal(model.generate(**args), base)
