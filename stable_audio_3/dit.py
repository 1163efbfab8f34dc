"""The diffusion transformer (DiT): predicts the rectified-flow velocity of noisy latents.

``DiffusionTransformer`` holds the checkpoint's ``model.model.*`` weights (prefix stripped): condition
and timestep projections, the residual 1x1 convs around the trunk, and the trunk itself
(``transformer.*``: memory tokens, rotary table, adaLN embedder and the blocks of ``layers.py``).
Its ``forward`` also does classifier-free guidance with APG, as upstream does inside the network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .layers import (
    Linear,
    PreparedConditions,
    RotaryEmbedding,
    TransformerBlock,
    check_attention_padding,
    expo_fourier_features,
)
from .lora import switched_adapters

HEAD_DIM = 64
RF_OBJECTIVES = ("rectified_flow", "rf_denoiser")

# config key: (upstream default, the only value this engine implements)
_FIXED_CONFIG = {
    "patch_size": (1, 1),
    "transformer_type": ("continuous_transformer", "continuous_transformer"),
    "global_cond_type": ("prepend", "adaLN"),
    "timestep_cond_type": ("global", "global"),
    "timestep_features_type": ("learned", "expo"),
    "timestep_features_logsnr": (False, False),
    "project_cond_tokens": (True, True),
    "project_global_cond": (True, True),
    "input_concat_dim": (0, 0),
    "prepend_cond_dim": (0, 0),
    "modular_local_cond_configs": (None, None),
    "causal": (False, False),
    "rotary_pos_emb": (True, True),
    "cross_attn_rotary_pos_emb": (False, False),
    "conformer": (False, False),
    "use_sinusoidal_emb": (False, False),
    "use_abs_pos_emb": (False, False),
    "sliding_window": (None, None),
    "final_cross_attn_ix": (-1, -1),
    "add_rope": (False, False),
    "layer_scale": (False, False),
}
# config keys that only matter for training or for branches fixed above
_IGNORED_CONFIG = ("zero_init_branch_outputs", "abs_pos_emb_max_length", "timestep_embed_dim")
# config key: upstream default
_SIZE_CONFIG = {
    "io_channels": 32,
    "embed_dim": 768,
    "depth": 12,
    "num_heads": 8,
    "cond_token_dim": 0,
    "global_cond_dim": 0,
    "local_add_cond_dim": None,
    "num_memory_tokens": 0,
    "timestep_features_dim": 256,
    "norm_type": "layer_norm",
    "norm_kwargs": {},
    "attn_kwargs": {},
    "ff_kwargs": {},
}
_NORM_KWARGS = {"eps": 1e-5, "force_fp32": False}  # force_fp32: RMSNorm already runs in float32
_ATTN_KWARGS = {"qk_norm": "none", "qk_norm_eps": 1e-6, "differential": False, "feat_scale": False}
_FF_KWARGS = {
    "mult": 4,
    "no_bias": False,
    "glu": True,
    "use_conv": False,
    "conv_kernel_size": 3,
    "sinusoidal": False,
}


def _unsupported(what: str, value, need) -> ValueError:
    return ValueError(f"DiT config {what}={value!r} is not supported: this engine implements only {need!r}.")


def _read(section: str, given: dict, defaults: dict) -> dict:
    """``defaults`` overridden by ``given``; a key not in ``defaults`` is an error."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"DiT config section {section!r} has unknown key(s) {unknown}; it is not a Stable Audio 3 config."
        )
    return {**defaults, **given}


def _block_kwargs(cfg: dict) -> dict:
    """``TransformerBlock`` arguments from the config's norm/attention/feed-forward settings."""
    norm = _read("norm_kwargs", cfg["norm_kwargs"], _NORM_KWARGS)
    attn = _read("attn_kwargs", cfg["attn_kwargs"], _ATTN_KWARGS)
    ff = _read("ff_kwargs", cfg["ff_kwargs"], _FF_KWARGS)
    required = (
        ("attn_kwargs", attn, "feat_scale", False),
        ("ff_kwargs", ff, "no_bias", False),
        ("ff_kwargs", ff, "glu", True),
        ("ff_kwargs", ff, "use_conv", False),
    )
    for section, values, key, need in required:
        if values[key] != need:
            raise _unsupported(f"{section}.{key}", values[key], need)
    return dict(
        norm_type=cfg["norm_type"],
        norm_eps=norm["eps"],
        qk_norm=attn["qk_norm"],
        qk_norm_eps=attn["qk_norm_eps"],
        differential=attn["differential"],
        ff_mult=ff["mult"],
        sinusoidal=ff["sinusoidal"],
    )


def _mlp(dim_in: int, dim: int, *, bias: bool) -> nn.Sequential:
    return nn.Sequential(Linear(dim_in, dim, bias=bias), nn.SiLU(), Linear(dim, dim, bias=bias))


class DiTTrunk(nn.Module):
    """The token transformer (``transformer.*``): project in, memory tokens, adaLN blocks, project out."""

    def __init__(
        self, channels: int, dim: int, depth: int, num_memory_tokens: int, local_cond_dim, block_kwargs: dict
    ):
        super().__init__()
        self.project_in = Linear(channels, dim, bias=False)
        self.project_out = Linear(dim, channels, bias=False)
        self.num_memory_tokens = num_memory_tokens
        self.memory_tokens = nn.Parameter(torch.zeros(num_memory_tokens, dim)) if num_memory_tokens else None
        self.rotary_pos_emb = RotaryEmbedding()
        self.checkpointing = False  # recompute each block in backward (training), as upstream does
        self.global_cond_embedder = nn.Sequential(Linear(dim, dim), nn.SiLU(), Linear(dim, 6 * dim))
        self.layers = nn.ModuleList(
            TransformerBlock(
                dim,
                HEAD_DIM,
                cross_attend=True,
                global_cond_dim=dim,
                local_add_cond_dim=local_cond_dim,
                **block_kwargs,
            )
            for _ in range(depth)
        )

    def prepare(self, context: torch.Tensor, local_cond: torch.Tensor) -> list[PreparedConditions]:
        """Per-block tensors of the (projected) context and the (B, T, L) local conditioning."""
        return [layer.prepare(context, local_cond) for layer in self.layers]

    def forward(self, x, *, prepared, global_cond, padding_mask, padding: str) -> torch.Tensor:
        """(B, T, C) latents → (B, T, C); memory tokens sit at RoPE positions 0..M-1, latents after."""
        x = per_row(self.project_in, x)
        b, m = x.shape[0], self.num_memory_tokens
        if m:
            x = torch.cat([self.memory_tokens.expand(b, -1, -1), x], dim=1)
        angles = self.rotary_pos_emb.angles(x.shape[1], x.device)
        global_cond = per_row(self.global_cond_embedder, global_cond)
        key_mask = keys = None
        if padding_mask is not None:
            key_mask = F.pad(padding_mask, (m, 0), value=True)
            counts = key_mask.sum(-1)
            valid = int(counts[0])
            common_tail = bool((counts == valid).all()) and bool(key_mask[:, :valid].all())
            if padding == "exclude" and common_tail:  # leave the padding out instead of masking it
                key_mask, keys = None, valid
        recompute = self.checkpointing and torch.is_grad_enabled()
        kw = dict(global_cond=global_cond, angles=angles, key_mask=key_mask, padding=padding, keys=keys)
        for layer, conditions in zip(self.layers, prepared, strict=True):
            if recompute:
                x = checkpoint(layer, x, prepared=conditions, use_reentrant=False, **kw)
            else:
                x = layer(x, prepared=conditions, **kw)
        return per_row(self.project_out, x[:, m:])


class DiffusionTransformer(nn.Module):
    """The DiT of a Stable Audio 3 checkpoint (``model.model.*``), with upstream's CFG/APG forward."""

    def __init__(
        self,
        *,
        io_channels: int,
        embed_dim: int,
        depth: int,
        cond_token_dim: int,
        global_cond_dim: int,
        local_add_cond_dim: int | None,
        num_memory_tokens: int,
        timestep_features_dim: int,
        block_kwargs: dict,
    ):
        super().__init__()
        self.timestep_features_dim = timestep_features_dim
        self.to_timestep_embed = _mlp(timestep_features_dim, embed_dim, bias=True)
        self.to_cond_embed = _mlp(cond_token_dim, embed_dim, bias=False)
        self.to_global_embed = _mlp(global_cond_dim, embed_dim, bias=False)
        self.preprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(io_channels, io_channels, 1, bias=False)
        self.transformer = DiTTrunk(
            io_channels, embed_dim, depth, num_memory_tokens, local_add_cond_dim, block_kwargs
        )

    @classmethod
    def from_config(cls, diffusion: dict) -> DiffusionTransformer:
        """Build from the ``model.diffusion`` block of a ``model_config.json``."""
        objective = diffusion.get("diffusion_objective")
        if objective not in RF_OBJECTIVES:
            raise _unsupported("diffusion_objective", objective, RF_OBJECTIVES)
        cfg = dict(diffusion["config"])
        for key, (default, need) in _FIXED_CONFIG.items():
            value = cfg.pop(key, default)
            if value != need:
                raise _unsupported(key, value, need)
        for key in _IGNORED_CONFIG:
            cfg.pop(key, None)
        cfg = _read("config", cfg, _SIZE_CONFIG)
        if cfg["embed_dim"] != HEAD_DIM * cfg["num_heads"]:
            raise _unsupported("embed_dim / num_heads", cfg["embed_dim"] / cfg["num_heads"], HEAD_DIM)
        for key in ("cond_token_dim", "global_cond_dim"):
            if cfg[key] <= 0:
                raise _unsupported(key, cfg[key], "a positive width")
        return cls(
            io_channels=cfg["io_channels"],
            embed_dim=cfg["embed_dim"],
            depth=cfg["depth"],
            cond_token_dim=cfg["cond_token_dim"],
            global_cond_dim=cfg["global_cond_dim"],
            local_add_cond_dim=cfg["local_add_cond_dim"],
            num_memory_tokens=cfg["num_memory_tokens"],
            timestep_features_dim=cfg["timestep_features_dim"],
            block_kwargs=_block_kwargs(cfg),
        )

    @property
    def dtype(self) -> torch.dtype:
        """The working dtype (read from a norm gain, which LoRA never parametrizes)."""
        return self.transformer.layers[0].pre_norm.gamma.dtype

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cross_attn_cond: torch.Tensor,
        global_cond: torch.Tensor,
        local_add_cond: torch.Tensor,
        *,
        padding_mask: torch.Tensor | None = None,
        cfg_scale: float = 1.0,
        negative_cross_attn_cond: torch.Tensor | None = None,
        negative_cross_attn_mask: torch.Tensor | None = None,
        apg_scale: float = 1.0,
        attention_padding: str = "exclude",
        cfg_interval: tuple[float, float] = (0, 1),
        scale_phi: float = 0.0,
        cfg_norm_threshold: float = 0.0,
        lora_interval: tuple[float, float] = (0, 1),
        lora_layer_filter: str = "",
        lora_configs: list[dict] | None = None,
        conditions_cache: dict | None = None,
        **unsupported,
    ) -> torch.Tensor:
        """Velocity (B, C, T) for latents ``x`` (B, C, T) at flow times ``t`` (B,).

        ``cross_attn_cond`` (B, S, K) is attended in full (upstream ignores its mask),
        ``global_cond`` (B, G), ``local_add_cond`` (B, L, T); ``padding_mask`` (B, T) is True on valid
        frames. Guidance runs when ``cfg_scale != 1`` and ``t[0]`` lies in ``cfg_interval``: the
        unconditional branch sees zeros (or the negative condition with its padded tokens zeroed) and
        the positive global condition; the result is then float32. ``attention_padding`` is
        ``"exclude"`` (padded keys out of the softmax) or ``"upstream_fallback"`` (upstream's CPU path).
        ``lora_interval``/``lora_layer_filter`` switch attached LoRA adapters per call, as upstream;
        ``lora_configs`` (upstream's per-file form: ``[{"lora_index", "interval", "layer_filter"}]``)
        gives the files it names their own.
        ``conditions_cache``: a dict the caller keeps for one generation, in which the per-block work
        that depends only on the conditions is done once (the conditions must not change meanwhile).

        Each item's velocity is what a batch of that item alone gives, bit for bit on the CPU: the
        work that is small per item (condition preparation, timestep and global MLPs, projections in
        and out of the trunk, guidance) runs item by item (see :func:`per_row`); the trunk's blocks
        run on the whole batch, where every matrix product has at least 65 rows per item.
        """
        if unsupported:
            raise TypeError(
                f"DiffusionTransformer.forward got unsupported argument(s) {sorted(unsupported)}; it takes "
                "padding_mask, cfg_scale, negative_cross_attn_cond/mask, apg_scale, attention_padding, "
                "cfg_interval, scale_phi, cfg_norm_threshold, lora_interval, lora_layer_filter, "
                "lora_configs and conditions_cache."
            )
        check_attention_padding(attention_padding)
        dtype = self.dtype
        x, t = x.to(dtype), t.float()
        conds = (cross_attn_cond.to(dtype), global_cond.to(dtype), local_add_cond.to(dtype))
        if padding_mask is not None:
            padding_mask = padding_mask.to(torch.bool)
        sigma0 = t[0]  # rectified flow: the noise level is the flow time; compared in float32 as upstream
        guided = cfg_scale != 1.0 and bool(cfg_interval[0] <= sigma0 <= cfg_interval[1])
        if guided:
            uncond = torch.zeros_like(conds[0])
            if negative_cross_attn_cond is not None:
                uncond = negative_cross_attn_cond.to(dtype)
                if negative_cross_attn_mask is not None:
                    keep = negative_cross_attn_mask.to(torch.bool)[..., None]
                    uncond = torch.where(keep, uncond, torch.zeros_like(uncond))
        with switched_adapters(self, sigma0, lora_interval, lora_layer_filter, lora_configs) as loras_on:
            if not guided:
                return self._evaluate(
                    x, t, *conds, padding_mask, attention_padding, conditions_cache, ("plain", loras_on)
                )
            v_cond, v_uncond = self._evaluate_pair(
                x, t, *conds, uncond, padding_mask, attention_padding, conditions_cache, ("guided", loras_on)
            )
        masks = [None] * x.shape[0] if padding_mask is None else padding_mask.split(1)
        items = zip(x.split(1), t.split(1), v_cond.split(1), v_uncond.split(1), masks, strict=True)
        settings = (cfg_scale, apg_scale, cfg_norm_threshold, scale_phi)
        return torch.cat([_guided_velocity(*item, *settings) for item in items])

    def _evaluate_pair(self, x, t, cross, global_, local, uncond, padding_mask, padding: str, store, key):
        """Conditional and unconditional velocities from one evaluation on the doubled batch."""
        mask = None if padding_mask is None else padding_mask.repeat(2, 1)
        both = self._evaluate(
            x.repeat(2, 1, 1),
            t.repeat(2),
            torch.cat([cross, uncond]),
            global_.repeat(2, 1),
            local.repeat(2, 1, 1),
            mask,
            padding,
            store,
            key,
        )
        return both.chunk(2)

    def _evaluate(self, x, t, cross, global_, local, padding_mask, padding: str, store, key) -> torch.Tensor:
        """One network evaluation (no guidance); output in the model dtype.

        The per-block conditions are taken from ``store[key]`` if there, else computed (and stored).
        The key names the branch and the LoRA state, as both change what the blocks derive.
        """
        prepared = None if store is None else store.get(key)
        if prepared is None:
            prepared = self._prepare(cross, local)
            if store is not None:
                store[key] = prepared
        features = expo_fourier_features(t, self.timestep_features_dim).to(x.dtype)
        global_ = per_row(self.to_global_embed, global_) + per_row(self.to_timestep_embed, features)
        x = per_row(self.preprocess_conv, x) + x
        out = self.transformer(
            x.transpose(1, 2),
            prepared=prepared,
            global_cond=global_,
            padding_mask=padding_mask,
            padding=padding,
        ).transpose(1, 2)
        return per_row(self.postprocess_conv, out) + out

    def _prepare(self, cross: torch.Tensor, local: torch.Tensor) -> list[PreparedConditions]:
        """The blocks' condition-only tensors, computed item by item (once per generation)."""
        items = [
            self.transformer.prepare(self.to_cond_embed(c), l.transpose(1, 2))
            for c, l in zip(cross.split(1), local.split(1), strict=True)
        ]
        return [_cat_prepared(parts) for parts in zip(*items, strict=True)]


def _cat_prepared(parts) -> PreparedConditions:
    """One block's per-item :class:`PreparedConditions` joined along the batch."""
    first = parts[0]
    kv = local = None
    if first.cross_kv is not None:
        keys = tuple(torch.cat(k) for k in zip(*(p.cross_kv[0] for p in parts), strict=True))
        kv = (keys, torch.cat([p.cross_kv[1] for p in parts]))
    if first.local is not None:
        local = torch.cat([p.local for p in parts])
    return PreparedConditions(kv, local)


def per_row(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module`` applied to each row of ``x`` (B, ...) on its own.

    CPU matrix kernels are chosen by the number of rows, and below about 65 rows the choice changes
    the rounding; work that is small per item is done item by item, so that an item's numbers never
    depend on the rest of the batch (for these small products it costs next to nothing).
    """
    return torch.cat([module(row) for row in x.split(1)])


def _guided_velocity(x, t, v_cond, v_uncond, padding_mask, cfg_scale, apg_scale, norm_threshold, scale_phi):
    """The guided velocity of one item (reductions over a whole item would be split across CPU
    threads differently in a batch)."""
    sigma = t[:, None, None]
    denoised_cond = x - v_cond * sigma
    diff = denoised_cond - (x - v_uncond * sigma)
    guided = denoised_cond + (cfg_scale - 1) * _guidance(
        denoised_cond, diff, padding_mask, apg_scale, norm_threshold
    )
    v = (x - guided) / sigma
    if scale_phi != 0.0:
        ratio = v_cond.std(dim=1, keepdim=True) / v.std(dim=1, keepdim=True)
        v = scale_phi * (v * ratio) + (1 - scale_phi) * v
    return v


def _guidance(denoised_cond, diff, padding_mask, apg_scale: float, norm_threshold: float) -> torch.Tensor:
    """The CFG direction: ``diff`` (maybe norm-capped) mixed with its part orthogonal to ``denoised_cond``.

    Norms and inner products run over (C, T) per item, over valid frames only when a mask is given.
    """
    mask = None if padding_mask is None else padding_mask[:, None, :].float()
    if norm_threshold > 0:
        norm = (diff if mask is None else diff * mask).norm(p=2, dim=(-1, -2), keepdim=True)
        diff = diff * torch.minimum(torch.ones_like(diff), norm_threshold / norm)
    if apg_scale == 0.0:
        return diff
    orthogonal = _orthogonal_part(diff, denoised_cond, mask)
    return apg_scale * orthogonal + (1 - apg_scale) * diff


def _orthogonal_part(v: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``v`` minus its projection on ``ref`` (float32); with a (B, 1, T) mask, zero on padded frames."""
    v, ref = v.float(), ref.float()
    if mask is None:
        unit = F.normalize(ref, dim=(-1, -2))
        return v - (v * unit).sum(dim=(-1, -2), keepdim=True) * unit
    ref = ref * mask
    unit = ref / ref.norm(dim=(-1, -2), keepdim=True).clamp(min=1e-8)
    return (v - (v * unit).sum(dim=(-1, -2), keepdim=True) * unit) * mask
