"""The in-place inference paths of the shared layers give exactly the out-of-place numbers, and the
bfloat16 oneDNN paths of the CPU fast mode stay within bfloat16 rounding of float32."""

import copy

import pytest
import torch
import torch.nn.functional as F

from stable_audio_3.layers import (
    FeedForward,
    Linear,
    RotaryEmbedding,
    TransformerBlock,
    _rotated,
    apply_rope_,
    attend,
    make_norm,
    prepack_,
)
from stable_audio_3.random_models import randomize_


def inference_and_autograd(module, *inputs, **kwargs):
    """``module`` at inference (in-place paths) and with autograd on (the plain formulas; nothing
    requires grad, so the same kernels run)."""
    module.requires_grad_(False)
    with torch.inference_mode():
        fast = module(*inputs, **kwargs)
    with torch.enable_grad():
        plain = module(*inputs, **kwargs)
    return fast, plain


@pytest.mark.parametrize("kind", ["rms_norm", "dyt"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_norms(kind, dtype):
    norm = randomize_(make_norm(kind, 64, 1e-6), seed=1).to(dtype)
    x = torch.randn(2, 3, 50, 64, dtype=dtype) * 3
    fast, plain = inference_and_autograd(norm, x)
    assert torch.equal(fast, plain)
    if kind == "rms_norm":
        assert torch.equal(fast, F.rms_norm(x.float(), (64,), norm.gamma.float(), 1e-6).to(dtype))


@pytest.mark.parametrize("sinusoidal", [False, True])
@pytest.mark.parametrize("tokens", [40, 600])  # 600: at inference in pieces of FeedForward.ROWS
def test_glu_feed_forward(sinusoidal, tokens):
    ff = randomize_(FeedForward(32, 3, sinusoidal), seed=2)
    fast, plain = inference_and_autograd(ff, torch.randn(2, tokens, 32))
    assert torch.equal(fast, plain)


def test_rope_in_place_equals_the_rotate_half_formula():
    x = torch.randn(2, 4, 30, 64)
    angles = RotaryEmbedding(32).angles(30, start=7)
    head, tail = x[..., :32], x[..., 32:]
    rotate_half = torch.cat([-head[..., 16:], head[..., :16]], dim=-1)
    expected = torch.cat([head * angles.cos() + rotate_half * angles.sin(), tail], dim=-1)
    assert torch.equal(apply_rope_(x.clone(), angles), expected)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_rope_in_place_gives_the_float32_round_trip(dtype):
    heads = (torch.randn(2, 4, 30, 64) * 3).to(dtype)
    angles = RotaryEmbedding(32).angles(30, start=5)
    expected = apply_rope_(heads.float(), angles).to(dtype)
    with torch.inference_mode():
        assert torch.equal(_rotated(heads.clone(), angles, dtype), expected)


@pytest.mark.parametrize("norm_type", ["rms_norm", "none"])
def test_adaln_block_with_differential_attention(norm_type):
    block = TransformerBlock(
        64, 32, norm_type=norm_type, qk_norm="rms", differential=True, cross_attend=True, global_cond_dim=64
    )
    block = randomize_(block, seed=3)
    x, context, cond = torch.randn(2, 20, 64), torch.randn(2, 7, 64), torch.randn(2, 6 * 64)
    angles = RotaryEmbedding(32).angles(20)
    fast, plain = inference_and_autograd(block, x, context=context, global_cond=cond, angles=angles)
    assert torch.equal(fast, plain)


# ------------------------------------------------------------------ bfloat16 on oneDNN (the CPU fast mode)

needs_onednn = pytest.mark.skipif(
    not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    reason="needs oneDNN with bfloat16 on this CPU",
)


def bf16_close(actual: torch.Tensor, expected: torch.Tensor, rounding: float = 2**-7) -> None:
    """Within a few bfloat16 roundings of the float32 result, relative to its scale."""
    scale = float(expected.abs().max())
    assert float((actual.float() - expected).abs().max()) <= 4 * rounding * scale


@needs_onednn
def test_bfloat16_linear_prepacks_its_weight_once_and_follows_changes():
    linear = randomize_(Linear(64, 96), seed=4).bfloat16().requires_grad_(False)
    x = torch.randn(3, 20, 64).bfloat16()

    def reference():
        return F.linear(x.float(), linear.weight.float(), linear.bias.float())

    with torch.inference_mode():
        bf16_close(linear(x), reference())
        (packed,) = [p for *_, p in linear._packs.values()]
        linear(x)
        assert [p for *_, p in linear._packs.values()] == [packed]  # reused, not reordered again
        linear.weight.mul_(2)  # in place: a new version of the same tensor
        bf16_close(linear(x), reference())
    linear.weight = torch.nn.Parameter(torch.randn(96, 64).bfloat16(), requires_grad=False)
    with torch.inference_mode():
        bf16_close(linear(x), reference())


@needs_onednn
@pytest.mark.parametrize("tokens", [40, 600])
def test_bfloat16_glu_with_the_gate_fused_into_the_products(tokens):
    ff = randomize_(FeedForward(64, 2), seed=5).requires_grad_(False)
    x = torch.randn(2, tokens, 64)
    rounded = copy.deepcopy(ff).bfloat16().float()  # float32 arithmetic on the bfloat16 weights
    ff = prepack_(ff.bfloat16())
    packs = {name: sorted(m._packs, key=str) for name, m in ff.named_modules() if isinstance(m, Linear)}
    assert packs == {"ff.0.proj": [(0, 128), (128, None)], "ff.2": [(0, None)]}  # the GLU as two halves
    with torch.inference_mode():
        expected = rounded(x.bfloat16().float())
        fused = ff(x.bfloat16())
    assert fused.dtype == torch.bfloat16
    bf16_close(fused, expected)
    assert {
        name: sorted(m._packs, key=str) for name, m in ff.named_modules() if isinstance(m, Linear)
    } == packs
    assert Linear(4, 8).silu_glu(torch.randn(1, 4)) is None  # float32 keeps the plain formula


@needs_onednn
@pytest.mark.parametrize("padding", ["exclude", "upstream_fallback"])
def test_bfloat16_attention_over_a_ragged_key_count(padding):
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(1, 4, 45, 64, generator=g) for _ in range(3))
    key_mask = torch.arange(45)[None, :] < 41
    for mask in (None, key_mask):
        expected = attend(q, k, v, key_mask=mask, padding=padding)
        with torch.inference_mode():
            got = attend(q.bfloat16(), k.bfloat16(), v.bfloat16(), key_mask=mask, padding=padding)
        bf16_close(got, expected)
