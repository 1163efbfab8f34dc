"""The in-place inference paths of the shared layers give exactly the out-of-place numbers."""

import pytest
import torch
import torch.nn.functional as F

from stable_audio_3.layers import FeedForward, RotaryEmbedding, TransformerBlock, apply_rope_, make_norm
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
