"""Building blocks shared by the DiT and the SAME autoencoder, with the checkpoints' parameter names.

Norms (RMSNorm, DynamicTanh), the GLU feed-forward, rotary embeddings, exponential Fourier features,
attention (self/cross, optionally differential, band-limited or with a key padding mask) and the
transformer block that both networks stack. Everything here is plain PyTorch: attention goes
through ``scaled_dot_product_attention``, no flash-attn.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

ROPE_DIMS = 32  # rotary dimensions per 64-wide head (the rest of the head is not rotated)
ATTENTION_PADDING_MODES = ("exclude", "upstream_fallback")  # see attend()


# --------------------------------------------------------------------------- linear

_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
# bfloat16 only where oneDNN runs it on this CPU (AVX-512 or AMX; elsewhere it refuses bfloat16)
_ONEDNN_BF16 = _ONEDNN and bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
_ONEDNN_DTYPES = (torch.float32, torch.bfloat16) if _ONEDNN_BF16 else (torch.float32,)
PREPACK_ROWS = 256  # the activation rows a weight is reordered for (any count from 64 up runs as fast)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and keys) that multiplies through oneDNN on the CPU.

    At inference on the CPU, oneDNN's GEMM runs these shapes about 1.4x faster than the default
    BLAS path, with float32 accumulation in both. In bfloat16 the weight is also reordered once
    into the blocked layout of oneDNN's matrix-unit kernels (:meth:`_prepacked`) instead of on
    every call, and :meth:`silu_glu` fuses a GLU's gate into the products. Anything else (GPU,
    autograd, float16) takes the standard path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight  # computed on each access where LoRA parametrizes it
        if not _on_onednn(x, weight):
            return F.linear(x, weight, self.bias)
        if x.dtype == torch.bfloat16:
            weight = self._prepacked(weight, x.numel() // x.shape[-1])
        return torch.ops.mkldnn._linear_pointwise(x, weight, self.bias, "none", [], "")

    def silu_glu(self, x: torch.Tensor) -> torch.Tensor | None:
        """``value * silu(gate)`` with ``[value | gate] = self(x)`` as two bfloat16 oneDNN products
        whose SiLU and product are applied in float32 as they finish (one rounding, no passes of
        their own); None where this path does not apply (not bfloat16 on oneDNN)."""
        weight = self.weight
        if x.dtype != torch.bfloat16 or not _on_onednn(x, weight):
            return None
        half = self.out_features // 2
        value_bias, gate_bias = (None, None) if self.bias is None else self.bias.split(half)
        rows = x.numel() // x.shape[-1]
        gate_weight, value_weight = (
            self._prepacked(weight, rows, half, None),
            self._prepacked(weight, rows, 0, half),
        )
        gate = torch.ops.mkldnn._linear_pointwise(x, gate_weight, gate_bias, "swish", [], "")
        return torch.ops.mkldnn._linear_pointwise.binary(x, gate, value_weight, value_bias, "mul")

    def prepack(self, halves: bool = False) -> None:
        """Reorder a bfloat16 CPU weight for oneDNN now rather than on the first call: whole, or as
        the two halves :meth:`silu_glu` multiplies by (nothing to do for other weights)."""
        weight = self.weight
        if not (_ONEDNN_BF16 and weight.device.type == "cpu" and weight.dtype == torch.bfloat16):
            return
        half = self.out_features // 2
        for start, stop in ((half, None), (0, half)) if halves else ((0, None),):
            self._prepacked(weight, PREPACK_ROWS, start, stop)

    def _prepacked(self, weight: torch.Tensor, rows: int, start: int = 0, stop: int | None = None):
        """Rows ``start:stop`` of ``weight`` in oneDNN's blocked layout, kept while the weight is
        the same, unchanged tensor (about 1.4x faster bfloat16 products on AMX). A weight that LoRA
        parametrizes is new on every call: its rows are used as they are."""
        if parametrize.is_parametrized(self, "weight"):
            return weight[start:stop]
        packs = self.__dict__.setdefault("_packs", {})
        source, version, packed = packs.get((start, stop), (None, None, None))
        if source is None or source() is not weight or version != weight._version:
            packed = torch.ops.mkldnn._reorder_linear_weight(weight[start:stop].contiguous(), rows)
            packs[(start, stop)] = (weakref.ref(weight), weight._version, packed)
        return packed


def _on_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``x @ weight.T`` takes the oneDNN path: CPU inference in float32 or bfloat16."""
    return (
        _ONEDNN
        and x.device.type == "cpu"
        and x.dtype in _ONEDNN_DTYPES
        and weight.dtype == x.dtype
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.compiler.is_compiling()  # the compiler picks its own GEMM
    )


# --------------------------------------------------------------------------- norms


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * gamma``, evaluated in float32 and rounded once."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return F.rms_norm(x.float(), (x.shape[-1],), self.gamma.float(), self.eps).to(x.dtype)
        # the same operations as F.rms_norm's, in place where that saves a pass over memory
        x32 = x.float()
        scale = x32.pow(2).mean(-1, keepdim=True).add_(self.eps).rsqrt_()
        return (x32 * scale).mul_(self.gamma.float()).to(x.dtype)


class DynamicTanh(nn.Module):
    """DyT: ``gamma * tanh(alpha * x) + beta`` with a scalar ``alpha`` (no eps)."""

    def __init__(self, dim: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.mul(x, self.alpha)
        if torch.is_grad_enabled() or not y.dtype == self.gamma.dtype == self.beta.dtype:
            return self.gamma * torch.tanh(y) + self.beta
        return y.tanh_().mul_(self.gamma).add_(self.beta)  # same numbers, fewer passes over memory


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    """A norm by its config name: ``rms``/``rms_norm`` or ``dyt``; ``none`` gives the identity."""
    if kind in ("rms", "rms_norm"):
        return RMSNorm(dim, eps)
    if kind == "dyt":
        return DynamicTanh(dim)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"Unsupported norm type {kind!r}: this engine knows 'rms_norm', 'rms' and 'dyt'.")


# --------------------------------------------------------------------------- feed-forward


class _GLU(nn.Module):
    """``value * act(gate)`` with ``[value | gate] = proj(x)`` (the value is the first half)."""

    def __init__(self, dim: int, inner: int, sinusoidal: bool):
        super().__init__()
        self.proj = Linear(dim, inner * 2)
        self.sinusoidal = sinusoidal

    def prepack(self) -> None:
        self.proj.prepack(halves=not self.sinusoidal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = None if self.sinusoidal else self.proj.silu_glu(x)
        if fused is not None:
            return fused
        value, gate = self.proj(x).chunk(2, dim=-1)
        if torch.is_grad_enabled():
            return value * (torch.sin(3.14159265359 * gate) if self.sinusoidal else F.silu(gate))
        # at inference the gate half of the projection is ours to overwrite: saves two passes
        return value * (gate.mul_(3.14159265359).sin_() if self.sinusoidal else F.silu(gate, inplace=True))


def prepack_(module: nn.Module) -> nn.Module:
    """Reorder every bfloat16 CPU weight of ``module``'s Linears for oneDNN now, in the layout each
    call will use, so the first generation does not pay for it (it costs a second copy of them)."""
    glu_projections = set()
    for part in module.modules():
        if isinstance(part, _GLU):
            part.prepack()
            glu_projections.add(part.proj)
    for part in module.modules():
        if isinstance(part, Linear) and part not in glu_projections:
            part.prepack()
    return module


class FeedForward(nn.Module):
    """GLU feed-forward ``ff.0`` (projection + gating) → ``ff.2`` (output Linear)."""

    ROWS = 256  # at least this many tokens per piece at inference on the CPU

    def __init__(self, dim: int, mult: float = 4, sinusoidal: bool = False):
        super().__init__()
        inner = int(dim * mult)
        self.ff = nn.Sequential(_GLU(dim, inner, sinusoidal), nn.Identity(), Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu" or x.shape[-2] <= 2 * self.ROWS:
            return self.ff(x)
        # token by token the same numbers; in pieces the wide intermediate stays in the CPU's cache.
        # Near-equal pieces of ROWS..2*ROWS-1 tokens: a short last piece would get other GEMM kernels,
        # whose rounding differs from the same rows in a batch (see dit.per_row).
        pieces = x.tensor_split(x.shape[-2] // self.ROWS, dim=-2)
        return torch.cat([self.ff(part) for part in pieces], dim=-2)


# --------------------------------------------------------------------------- positions


class RotaryEmbedding(nn.Module):
    """The ``inv_freq`` table (a checkpoint buffer) and the angle table for ``n`` positions."""

    def __init__(self, dim: int = ROPE_DIMS, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)

    def angles(self, n: int, device=None, start: int = 0) -> torch.Tensor:
        """(n, dim) float32 angles ``[theta, theta]`` for positions start..start+n-1."""
        device = device or self.inv_freq.device
        positions = torch.arange(start, start + n, device=device, dtype=torch.float32)
        theta = positions[:, None] * self.inv_freq.float()[None, :]
        return torch.cat([theta, theta], dim=-1)


def apply_rope_(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``angles.shape[-1]`` channels of float32 ``x`` (half-split layout) in place.

    Per pair ``(a, b)`` of the two halves: ``(a cos - b sin, b cos + a sin)``, rounded as the
    ``x * cos + rotate_half(x) * sin`` form is.
    """
    half = angles.shape[-1] // 2
    cos, sin = angles[:, :half].cos(), angles[:, :half].sin()  # the table repeats [theta, theta]
    first, second = x[..., :half], x[..., half : 2 * half]
    first_sin, second_sin = first * sin, second * sin
    first.mul_(cos).sub_(second_sin)
    second.mul_(cos).add_(first_sin)
    return x


def expo_fourier_features(t: torch.Tensor, dim: int, min_freq: float = 0.5, max_freq: float = 10000.0):
    """``[cos, sin]`` of ``2 pi t f`` with ``dim/2`` frequencies log-spaced in [min, max], float32 math.

    ``t`` is (B,) or (B, 1); the result has ``t``'s dtype and shape (B, dim).
    """
    dtype = t.dtype
    t = t.float()
    if t.ndim == 1:
        t = t[:, None]
    ramp = torch.linspace(0, 1, dim // 2, device=t.device, dtype=torch.float32)
    freqs = torch.exp(ramp * (math.log(max_freq) - math.log(min_freq)) + math.log(min_freq))
    args = ((t * freqs) * 2) * math.pi
    return torch.cat([args.cos(), args.sin()], dim=-1).to(dtype)


# --------------------------------------------------------------------------- attention


def check_attention_padding(mode) -> None:
    """ValueError unless ``mode`` is one of :data:`ATTENTION_PADDING_MODES`."""
    if mode not in ATTENTION_PADDING_MODES:
        raise ValueError(f"attention_padding must be one of {ATTENTION_PADDING_MODES}, got {mode!r}.")


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    key_mask: torch.Tensor | None = None,
    padding: str = "exclude",
    window: int | None = None,
    block: int = 128,
    keys: int | None = None,
) -> torch.Tensor:
    """Softmax attention over (B, H, N, D) tensors with scale 1/sqrt(D).

    ``key_mask`` (B, N) bool marks valid keys. ``padding="exclude"`` leaves padded keys out of the
    softmax; ``"upstream_fallback"`` zeroes their values but keeps them in the softmax (upstream's
    behaviour without flash-attn). ``window=w`` limits query i to keys j with |i - j| <= w; it is
    evaluated in query blocks of ``block`` rows against only the keys those rows can see (no N x N
    mask; blocks of a few windows are fastest on CPU). ``keys=n``: only the first n keys exist (the
    rest is padding left out, the same as excluding it with ``key_mask``, but cheaper).
    """
    if keys is not None:
        k, v = k[..., :keys, :], v[..., :keys, :]
    mask = None
    if key_mask is not None:
        if padding == "upstream_fallback":
            v = v * key_mask[:, None, :, None].to(v.dtype)
        else:
            mask = key_mask[:, None, None, :]
    if window is None:
        return _sdpa(q, k, v, mask)
    n = q.shape[-2]
    out = []
    for start in range(0, n, block):
        stop = min(start + block, n)
        lo, hi = max(0, start - window), min(n, stop + window)
        rows = torch.arange(start, stop, device=q.device)[:, None]
        cols = torch.arange(lo, hi, device=q.device)[None, :]
        band = (cols - rows).abs() <= window
        if mask is not None:
            band = band & mask[..., lo:hi]
        rows_q, keys, values = q[..., start:stop, :], k[..., lo:hi, :], v[..., lo:hi, :]
        out.append(F.scaled_dot_product_attention(rows_q, keys, values, attn_mask=band))
    return torch.cat(out, dim=-2)


_CPU_BF16_KEYS = 16  # key counts the CPU kernel runs fastest in bfloat16 are multiples of this


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``scaled_dot_product_attention``; on the CPU in bfloat16 at inference, a ragged key count is
    zero-padded to a multiple of 16 and the padding masked out where that adds at most an eighth
    more keys: the kernel runs 451 keys in 5 ms, 464 (13 masked) in 3.7 ms."""
    keys = k.shape[-2]
    extra = -keys % _CPU_BF16_KEYS
    if (
        0 < 8 * extra <= keys
        and q.device.type == "cpu"
        and q.dtype == torch.bfloat16
        and not torch.is_grad_enabled()
    ):
        valid = torch.ones(1, 1, 1, keys, dtype=torch.bool, device=q.device)
        mask = F.pad(valid if mask is None else mask, (0, extra), value=False)
        k, v = F.pad(k, (0, 0, 0, extra)), F.pad(v, (0, 0, 0, extra))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class Attention(nn.Module):
    """Multi-head attention with 64-wide heads, optional q/k norm, RoPE and differential heads.

    Self-attention uses one ``to_qkv`` projection split q, k, v (differential: q, k, v, q_diff,
    k_diff); cross-attention uses ``to_q`` (q[, q_diff]) and ``to_kv`` (k, v or k, k_diff, v).
    Differential attention returns ``attn(q, k, v) - attn(q_diff, k_diff, v)``.
    """

    def __init__(
        self,
        dim: int,
        dim_heads: int = 64,
        dim_context: int | None = None,
        qk_norm: str = "none",
        qk_norm_eps: float = 1e-6,
        differential: bool = False,
    ):
        super().__init__()
        self.heads = dim // dim_heads
        self.dim_heads = dim_heads
        self.differential = differential
        self.cross = dim_context is not None
        n_q = 2 if differential else 1
        if self.cross:
            self.to_q = Linear(dim, dim * n_q, bias=False)
            self.to_kv = Linear(dim_context, dim_context * (n_q + 1), bias=False)
        else:
            self.to_qkv = Linear(dim, dim * (2 * n_q + 1), bias=False)
        self.to_out = Linear(dim, dim, bias=False)
        if qk_norm != "none":
            self.q_norm = make_norm(qk_norm, dim_heads, qk_norm_eps)
            self.k_norm = make_norm(qk_norm, dim_heads, qk_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, -1, self.dim_heads).transpose(1, 2)

    def _normed(self, norm, parts, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        return tuple(self._heads(t) if norm is None else norm(self._heads(t)).to(dtype) for t in parts)

    def context_kv(self, context: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Cross-attention keys (plain[, diff], k-normed) and values of ``context``.

        They depend only on the context, so a caller running many steps on one context may compute
        them once and pass them to :meth:`forward` as ``kv``.
        """
        parts = self.to_kv(context).chunk(3 if self.differential else 2, dim=-1)
        v = self._heads(parts[-1])
        return self._normed(self.k_norm, parts[:-1], v.dtype), v

    def _project(self, x: torch.Tensor, context: torch.Tensor | None, kv):
        """Queries and keys (plain[, diff], normed) and values, heads as (B, H, N, D)."""
        if self.cross:
            qs = self.to_q(x).chunk(2 if self.differential else 1, dim=-1)
            ks, v = kv if kv is not None else self.context_kv(context)
        else:
            parts = self.to_qkv(x).chunk(5 if self.differential else 3, dim=-1)
            if self.differential:
                qs, ks, v = (parts[0], parts[3]), (parts[1], parts[4]), self._heads(parts[2])
            else:
                qs, ks, v = parts[:1], parts[1:2], self._heads(parts[2])
            ks = self._normed(self.k_norm, ks, v.dtype)
        return self._normed(self.q_norm, qs, v.dtype), ks, v

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        angles: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        padding: str = "exclude",
        window: int | None = None,
        kv: tuple[tuple[torch.Tensor, ...], torch.Tensor] | None = None,
        keys: int | None = None,
    ) -> torch.Tensor:
        """Attend from ``x`` to itself, or to ``context`` (or its precomputed ``kv``) when cross."""
        qs, ks, v = self._project(x, context, kv)
        if angles is not None:
            qs, ks = ([_rotated(t, angles, v.dtype) for t in group] for group in (qs, ks))
        pairs = zip(qs, ks, strict=True)
        kw = dict(key_mask=key_mask, padding=padding, window=window, keys=keys)
        outs = [attend(q, k, v, **kw) for q, k in pairs]
        out = outs[0] - outs[1] if self.differential else outs[0]
        b, _, n, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


def _rotated(heads: torch.Tensor, angles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``heads`` RoPE-rotated in float32, in ``dtype``. At inference heads are rotated in place:
    they are this call's own projection (or norm) output, read by nothing else; in half precision
    only the rotated channels make the round trip through float32 (the same numbers)."""
    if heads.dtype != torch.float32 and not torch.is_grad_enabled():
        rotated = heads[..., : angles.shape[-1]]
        rotated.copy_(apply_rope_(rotated.float(), angles))
        return heads.to(dtype)
    x = heads.float()
    if x is heads and torch.is_grad_enabled():
        x = x.clone()
    return apply_rope_(x, angles).to(dtype)


# --------------------------------------------------------------------------- transformer block


@dataclass(frozen=True)
class PreparedConditions:
    """A block's tensors that depend only on the conditions, not on the latents or the time step.

    Sampling runs every block many times on the same conditions: computing these once per
    generation gives the same numbers with less work.
    """

    cross_kv: tuple[torch.Tensor, torch.Tensor] | None
    local: torch.Tensor | None


class TransformerBlock(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention and local conditioning, GLU FF.

    With ``global_cond_dim`` set (the DiT) the self-attention and FF branches are modulated by
    adaLN: ``to_scale_shift_gate + global`` gives scale, shift and gate for each branch, and the
    branch output is multiplied by ``sigmoid(1 - gate)``. ``add_rope`` (SAME) makes the block build
    its own rotary angles (``rope_dim`` of them, SAME uses ``dim_heads // 2``) for positions 0..N-1
    of its input.
    """

    def __init__(
        self,
        dim: int,
        dim_heads: int = 64,
        *,
        norm_type: str = "rms_norm",
        norm_eps: float = 1e-5,
        qk_norm: str = "none",
        qk_norm_eps: float = 1e-6,
        differential: bool = False,
        ff_mult: float = 4,
        sinusoidal: bool = False,
        cross_attend: bool = False,
        global_cond_dim: int | None = None,
        local_add_cond_dim: int | None = None,
        add_rope: bool = False,
        rope_dim: int = ROPE_DIMS,
    ):
        super().__init__()
        attn = dict(dim_heads=dim_heads, qk_norm=qk_norm, qk_norm_eps=qk_norm_eps, differential=differential)
        self.pre_norm = make_norm(norm_type, dim, norm_eps)
        self.self_attn = Attention(dim, **attn)
        if cross_attend:
            self.cross_attend_norm = make_norm(norm_type, dim, norm_eps)
            self.cross_attn = Attention(dim, dim_context=dim, **attn)
        self.ff_norm = make_norm(norm_type, dim, norm_eps)
        self.ff = FeedForward(dim, ff_mult, sinusoidal)
        if global_cond_dim is not None:
            self.to_scale_shift_gate = nn.Parameter(torch.zeros(6 * dim))
        if local_add_cond_dim is not None:
            self.to_local_embed = nn.Sequential(Linear(local_add_cond_dim, dim), nn.SiLU(), Linear(dim, dim))
        self.rope = RotaryEmbedding(rope_dim) if add_rope else None

    def prepare(self, context: torch.Tensor | None, local_cond: torch.Tensor | None) -> PreparedConditions:
        """What this block derives from the conditions alone (cross-attention keys/values, local term)."""
        kv = local = None
        if context is not None and hasattr(self, "cross_attn"):
            kv = self.cross_attn.context_kv(context)
        if local_cond is not None and hasattr(self, "to_local_embed"):
            local = self.to_local_embed(local_cond)
        return PreparedConditions(kv, local)

    def forward(
        self,
        x: torch.Tensor,
        *,
        context: torch.Tensor | None = None,
        global_cond: torch.Tensor | None = None,
        local_cond: torch.Tensor | None = None,
        prepared: PreparedConditions | None = None,
        angles: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        padding: str = "exclude",
        window: int | None = None,
        keys: int | None = None,
    ) -> torch.Tensor:
        """One block; ``prepared`` (from :meth:`prepare`) replaces ``context`` and ``local_cond``."""
        if prepared is None:
            prepared = self.prepare(context, local_cond)
        if angles is None and self.rope is not None:
            angles = self.rope.angles(x.shape[1], x.device)
        attn_kw = dict(angles=angles, key_mask=key_mask, padding=padding, window=window, keys=keys)
        if global_cond is not None:
            mod = (self.to_scale_shift_gate + global_cond)[:, None, :]
            scale_sa, shift_sa, gate_sa, scale_ff, shift_ff, gate_ff = mod.chunk(6, dim=-1)
            h = self.self_attn(_modulated(self.pre_norm(x), scale_sa, shift_sa, x), **attn_kw)
            x = x + _gated(h, gate_sa)
        else:
            x = x + self.self_attn(self.pre_norm(x), **attn_kw)
        if prepared.cross_kv is not None:
            x = x + self.cross_attn(self.cross_attend_norm(x), kv=prepared.cross_kv)
        if prepared.local is not None:
            x = x + F.pad(prepared.local, (0, 0, x.shape[1] - prepared.local.shape[1], 0))
        if global_cond is not None:
            return x + _gated(self.ff(_modulated(self.ff_norm(x), scale_ff, shift_ff, x)), gate_ff)
        return x + self.ff(self.ff_norm(x))


def _modulated(normed: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, x: torch.Tensor):
    """adaLN ``normed * (1 + scale) + shift``; at inference in place on the norm's output (unless
    the norm is the identity and that is the block input ``x``)."""
    if torch.is_grad_enabled() or normed is x or normed.dtype != torch.result_type(normed, scale):
        return normed * (1 + scale) + shift
    return normed.mul_(1 + scale).add_(shift)


def _gated(branch: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """A branch output scaled by ``sigmoid(1 - gate)``; at inference in place (it is fresh)."""
    if torch.is_grad_enabled() or branch.dtype != torch.result_type(branch, gate):
        return branch * torch.sigmoid(1 - gate)
    return branch.mul_(torch.sigmoid(1 - gate))
