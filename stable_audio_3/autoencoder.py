"""The SAME autoencoders (SAME-S, SAME-L) with the checkpoints' parameter names.

Audio (B, 2, N) is cut into 256-sample patches (B, 512, N/256). Each encoder stage maps the patches
to the transformer width, groups every ``stride`` frames with one learned "new token", runs
transformer blocks over the token sequence and keeps the new tokens: one latent frame per group.
The decoder does the reverse (one latent followed by ``stride`` new tokens, keep the new tokens).
Attention is local: SAME-S runs independent 34-token chunks whose boundaries move by half a chunk
for the second half of the blocks; SAME-L uses a +-17-token band over the whole sequence.
A SoftNorm bottleneck scales the latents; decoding draws noise (latent noise, then new-token noise)
in upstream's order, per chunk when decoding in chunks, from a :class:`~stable_audio_3.noise.Noise`
(default: the global torch RNG, as upstream).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Linear, TransformerBlock
from .noise import GLOBAL_NOISE, Noise

UNSUPPORTED_STAGE_OPTIONS = ("conformer", "layer_scale", "feat_scale", "cross_attn")
SAME_PART_TYPES = {"encoder": "same", "decoder": "same", "bottleneck": "softnorm", "pretransform": "patched"}


def _pad_end(x: torch.Tensor, multiple: int, dim: int) -> torch.Tensor:
    """Zero-pad ``x`` at the end of ``dim`` to a multiple of ``multiple``."""
    extra = -x.shape[dim] % multiple
    if extra == 0:
        return x
    shape = list(x.shape)
    shape[dim] = extra
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


class WeightNormConv1d(nn.Module):
    """Conv1d ('same' padding) with legacy weight norm: ``weight = g * v / ||v||`` per output channel.

    Keeps the checkpoint's ``weight_g`` / ``weight_v`` parameters; the weight is rebuilt on every call,
    in float32 and rounded once to the parameter dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        self.weight_g = nn.Parameter(torch.empty(out_channels, 1, 1))
        self.weight_v = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None

    def weight(self) -> torch.Tensor:
        v = self.weight_v.float()
        norm = torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True)
        return (v * (self.weight_g.float() / norm)).to(self.weight_v.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, padding="same")


class ResamplingStage(nn.Module):
    """One SAME stage: mapping conv + transformer blocks over [frames..., new tokens] groups.

    Encoder: (B, C_in, L) -> (B, W, L / stride), the mapping before the blocks. Decoder:
    (B, W, T) -> (B, C_out, T * stride), the mapping after them.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        *,
        decoder: bool,
        depth: int,
        dim_heads: int = 128,
        differential: bool = True,
        dyt: bool = True,
        ff_mult: float = 3,
        chunk_size: int = 128,
        chunk_midpoint_shift: bool = False,
        sliding_window=None,
        conv_mapping: bool = False,
        mapping_bias: bool = True,
        mask_noise: float = 0.0,
        variable_stride: bool = False,
        sinusoidal_blocks: int = 0,
    ):
        super().__init__()
        width = in_channels if decoder else out_channels
        self.decoder = decoder
        self.stride = stride
        self.in_seg, self.out_seg = (1, stride) if decoder else (stride, 1)
        self.group = stride + 1
        self.window = None if sliding_window is None else sliding_window[0] * self.group
        self.chunk_size = chunk_size
        self.chunk_tokens = chunk_size + chunk_size // stride
        self.midpoint_shift = chunk_midpoint_shift
        self.mask_noise = mask_noise
        if in_channels != out_channels:
            self.mapping = WeightNormConv1d(in_channels, out_channels, 3 if conv_mapping else 1, mapping_bias)
        else:
            self.mapping = nn.Identity()
        self.transformers = nn.ModuleList(
            TransformerBlock(
                width,
                dim_heads,
                norm_type="dyt" if dyt else "rms_norm",
                norm_eps=1e-3,
                qk_norm="dyt" if dyt else "rms",
                qk_norm_eps=1e-3,
                differential=differential,
                ff_mult=ff_mult,
                sinusoidal=(depth - i) < sinusoidal_blocks,
                add_rope=True,
                rope_dim=dim_heads // 2,
            )
            for i in range(depth)
        )
        self.new_tokens = nn.Parameter(torch.empty(1, 1 if variable_stride else self.out_seg, width))

    def forward(
        self, x: torch.Tensor, span: tuple[int, int] | None = None, noise: Noise = GLOBAL_NOISE
    ) -> torch.Tensor:
        """Run the stage; ``span=(start, total)`` (decoder): ``x`` holds input frames start.. of a
        sequence of ``total`` frames, and gets that sequence's noise (from ``noise``) and positions."""
        if self.decoder:
            return self.mapping(self._tokens(x, span, noise) if len(self.transformers) else x)
        if len(self.transformers):
            # padded before the mapping, so padding frames carry the mapping's response to silence
            x = _pad_end(x, self.chunk_size if self.window is None else self.stride, dim=-1)
            return self._tokens(self.mapping(x))
        return self.mapping(x)

    @property
    def align(self) -> int:
        """Input frames per attention chunk: a crop must start on a multiple to keep the chunks."""
        return 1 if self.window is not None else self.chunk_size // self.stride * self.in_seg

    def reach(self) -> int:
        """Decoder: how many input frames into a crop (cut at a multiple of ``align``) its edges
        change the output, compared with a pass over the whole sequence."""
        if self.window is not None:  # every block sees one window further
            edge = len(self.transformers) * -(-self.window // self.group)
        else:  # only the shifted half's edge chunk differs: it is padded with repeated groups
            edge = -(-(self.chunk_tokens // 2) // self.group) if self.midpoint_shift else 0
        kernel = self.mapping.weight_v.shape[-1] if isinstance(self.mapping, WeightNormConv1d) else 1
        return edge + -(-(kernel // 2) // self.out_seg)

    def _tokens(
        self, x: torch.Tensor, span: tuple[int, int] | None = None, noise: Noise = GLOBAL_NOISE
    ) -> torch.Tensor:
        """(B, W, L) -> (B, W, L_out): group, append new tokens, run the blocks, keep the new tokens."""
        batch, width, frames = x.shape
        start, total = span or (0, frames)
        x = x.transpose(1, 2)
        if self.decoder:  # padded to whole attention chunks
            x, total = _pad_end(x, self.align, dim=1), total + -total % self.align
        groups = x.shape[1] // self.in_seg
        x = x.reshape(batch * groups, self.in_seg, width)
        new = self.new_tokens.expand(batch * groups, self.out_seg, width)
        if self.mask_noise > 0:
            # drawn for the whole sequence (as one pass over it would) and cut to this part
            shape = (batch, total // self.in_seg, self.out_seg, width)
            drawn = noise.randn(shape, dtype=x.dtype, device=x.device)[:, start // self.in_seg :][:, :groups]
            new = new + drawn.reshape_as(new) * self.mask_noise
        x = torch.cat([x, new], dim=1).reshape(batch, -1, width)
        x = self._run_blocks(x, first_token=start // self.in_seg * self.group)
        x = x.reshape(batch * groups, self.group, width)[:, -self.out_seg :]
        return x.reshape(batch, -1, width).transpose(1, 2)

    def _run_blocks(self, x: torch.Tensor, first_token: int = 0) -> torch.Tensor:
        if self.window is not None:
            for block in self.transformers:
                angles = block.rope.angles(x.shape[1], x.device, start=first_token)
                x = block(x, window=self.window, angles=angles)
            return x
        size = self.chunk_tokens
        if not self.midpoint_shift:
            return _in_chunks(x, self.transformers, size)
        split, shift = len(self.transformers) // 2, size // 2
        x = _in_chunks(x, self.transformers[:split], size)
        # second half: chunk boundaries moved by half a chunk, the edge groups repeated as padding
        x = torch.cat([x[:, :shift], x, x[:, -shift:]], dim=1)
        x = _in_chunks(x, self.transformers[split:], size)
        return x[:, shift:-shift]


def _in_chunks(x: torch.Tensor, blocks, size: int) -> torch.Tensor:
    """Run ``blocks`` on (B, N, W) as independent sequences of ``size`` tokens (N divisible by size)."""
    batch, n, width = x.shape
    x = x.reshape(batch * n // size, size, width)
    for block in blocks:
        x = block(x)
    return x.reshape(batch, n, width)


class _SwapLastAxes(nn.Module):
    """(..., a, b) -> (..., b, a): a parameter-free slot in the encoder/decoder layer lists."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-1, -2)


def _stage_options(cfg: dict) -> dict:
    """Keyword arguments of :class:`ResamplingStage` from a SAME encoder/decoder config."""
    unsupported = [k for k in UNSUPPORTED_STAGE_OPTIONS if cfg.get(k)]
    if unsupported:
        raise ValueError(
            f"SAME option(s) {unsupported} are not supported by this engine; released models use none."
        )
    window = cfg.get("sliding_window")
    if window is not None and (len(window) != 2 or window[0] != window[1]):
        raise ValueError(f"Only symmetric SAME sliding windows [w, w] are supported, got {window}.")
    chunk_size = cfg.get("chunk_size", 128)
    if window is None and any(chunk_size % s for s in cfg.get("strides", [2, 4, 8, 8])):
        raise ValueError(f"SAME chunk_size {chunk_size} must be a multiple of every stride.")
    return dict(
        dim_heads=cfg.get("dim_heads", 128),
        differential=cfg.get("differential", True),
        dyt=cfg.get("dyt", True),
        ff_mult=cfg.get("ff_mult", 3),
        chunk_size=chunk_size,
        chunk_midpoint_shift=cfg.get("chunk_midpoint_shift", False),
        sliding_window=window,
        conv_mapping=cfg.get("conv_mapping", False),
        mapping_bias=cfg.get("mapping_bias", True),
        mask_noise=cfg.get("mask_noise", 0.0),
        variable_stride=cfg.get("variable_stride", False),
    )


def _channel_dims(cfg: dict, io_key: str) -> list[int]:
    return [cfg.get(io_key, 2)] + [m * cfg.get("channels", 128) for m in cfg.get("c_mults", [1, 2, 4, 8])]


class SameEncoder(nn.Module):
    """Patches (B, C, L) -> latents (B, latent_dim, L / prod(strides)). Layers: stages, swap, Linear, swap."""

    def __init__(self, cfg: dict):
        super().__init__()
        dims, options = _channel_dims(cfg, "in_channels"), _stage_options(cfg)
        strides, depths = cfg.get("strides", [2, 4, 8, 8]), cfg.get("transformer_depths", [3, 3, 3, 3])
        stages = [
            ResamplingStage(dims[i], dims[i + 1], strides[i], decoder=False, depth=depths[i], **options)
            for i in range(len(dims) - 1)
        ]
        linear = Linear(dims[-1], cfg.get("latent_dim", 32))
        self.layers = nn.ModuleList([*stages, _SwapLastAxes(), linear, _SwapLastAxes()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class SameDecoder(nn.Module):
    """Latents (B, latent_dim, T) -> patches (B, C, T * prod(strides)). Layers: swap, Linear, swap, stages."""

    def __init__(self, cfg: dict):
        super().__init__()
        dims, options = _channel_dims(cfg, "out_channels"), _stage_options(cfg)
        depth = len(dims) - 1
        strides, depths = cfg.get("strides", [2, 4, 8, 8]), cfg.get("transformer_depths", [3, 3, 3, 3])
        sinusoidal = cfg.get("sinusoidal_blocks", [0] * depth)
        linear = Linear(cfg.get("latent_dim", 32), dims[-1])
        stages = [
            ResamplingStage(
                dims[i],
                dims[i - 1],
                strides[i - 1],
                decoder=True,
                depth=depths[i - 1],
                sinusoidal_blocks=sinusoidal[i - 1],
                **options,
            )
            for i in range(depth, 0, -1)
        ]
        self.layers = nn.ModuleList([_SwapLastAxes(), linear, _SwapLastAxes(), *stages])

    def forward(
        self, x: torch.Tensor, keep: tuple[int, int] | None = None, noise: Noise = GLOBAL_NOISE
    ) -> torch.Tensor:
        """Decode all of ``x``, or with ``keep=(lo, hi)`` only latents lo..hi-1; noise from ``noise``.

        The kept part is computed on a crop of ``x`` just wide enough that nothing in it differs
        from a pass over all of ``x``: the same attention chunks, noise and positions.
        """
        frames = x.shape[-1]
        start, stop = (0, frames) if keep is None else self.crop_for(frames, *keep)
        x = x[..., start:stop]
        for layer in self.layers[:3]:
            x = layer(x)
        scale = 1
        for stage in self.layers[3:]:
            x = stage(x, span=(start * scale, frames * scale), noise=noise)
            scale *= stage.stride
        if keep is None:
            return x
        return x[..., (keep[0] - start) * scale : (keep[1] - start) * scale]

    def crop_for(self, frames: int, lo: int, hi: int) -> tuple[int, int]:
        """The latents to run so that outputs lo..hi-1 come out as from a pass over all frames."""
        reach, align = self.reach_and_align()
        start = max(0, lo - reach) // align * align
        stop = -(-(hi + reach) // align) * align
        return start, min(stop, frames)

    def reach_and_align(self) -> tuple[int, int]:
        """How far crop edges change the output, and the multiple crops start on, both in latents."""
        reach, align, scale = 0, 1, 1
        for stage in self.layers[3:]:
            reach += -(-stage.reach() // scale)
            align = math.lcm(align, stage.align // math.gcd(stage.align, scale))
            scale *= stage.stride
        return reach, align


class SoftNormBottleneck(nn.Module):
    """Per-channel affine + division by a scalar running std; decoding adds a little noise."""

    def __init__(
        self,
        dim: int = 32,
        noise_augment_dim: int = 0,
        noise_regularize: bool = False,
        auto_scale: bool = False,
        freeze: bool = False,
    ):
        super().__init__()
        if noise_augment_dim:
            raise ValueError("SoftNorm noise_augment_dim > 0 is not supported; released models use 0.")
        self.noise_regularize = noise_regularize
        self.scaling_factor = nn.Parameter(torch.empty(1, dim, 1))
        self.bias = nn.Parameter(torch.empty(1, dim, 1))
        self.noise_scaling_factor = nn.Parameter(torch.empty(1, noise_augment_dim, 1))
        self.running_std = nn.Parameter(torch.empty(1)) if auto_scale else None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scaling_factor + self.bias
        return x if self.running_std is None else x / self.running_std

    def decode(self, x: torch.Tensor, noise: Noise = GLOBAL_NOISE) -> torch.Tensor:
        """Undo the scaling; with ``noise_regularize`` add N(0, (1e-3 * std)^2) drawn from ``noise``."""
        if self.running_std is not None:
            x = x * self.running_std
        if self.noise_regularize:
            scaling = self.running_std if self.running_std is not None else x.std(dim=-1, keepdim=True)
            x = x + noise.randn_like(x) * scaling * 1e-3
        return x


class PatchedPretransform(nn.Module):
    """(B, C, N) audio <-> (B, C * p, N / p) patches: [c * p + h, l] = sample l * p + h of channel c."""

    def __init__(self, channels: int, patch_size: int, oversampling: int = 1, postfilter_channels: int = 0):
        super().__init__()
        if oversampling != 1 or postfilter_channels:
            raise ValueError(
                "Patched pretransform oversampling / postfilter are not supported; released models use none."
            )
        self.channels, self.patch_size = channels, patch_size

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        audio = _pad_end(audio, self.patch_size, dim=-1)
        b, c, n = audio.shape
        p = self.patch_size
        return audio.reshape(b, c, n // p, p).permute(0, 1, 3, 2).reshape(b, c * p, n // p)

    def decode(self, patches: torch.Tensor) -> torch.Tensor:
        b, _, n = patches.shape
        p = self.patch_size
        return patches.reshape(b, -1, p, n).permute(0, 1, 3, 2).reshape(b, -1, n * p)


def _check_chunking(chunk_size, overlap) -> None:
    ok = isinstance(chunk_size, int) and isinstance(overlap, int) and 0 <= overlap < chunk_size
    if not ok:
        raise ValueError(
            f"chunk_size and overlap are whole numbers of latent frames with 0 <= overlap < chunk_size, "
            f"got chunk_size={chunk_size!r}, overlap={overlap!r}."
        )


def _overlapping_chunks(
    x, run, *, chunk: int, overlap: int, in_per_latent: int, out_per_latent: int, limit: int | None = None
):
    """Apply ``run`` to windows of ``chunk`` latents along the last axis of ``x`` and stitch the results.

    Windows start every ``chunk - overlap`` latents; the last one is anchored to the end. Each window
    gives up ``overlap // 2`` latents on the sides facing a neighbour, later windows overwrite earlier
    ones. ``run(window, (lo, hi))`` returns the output of the window's latents lo..hi-1 only.
    ``in_per_latent`` / ``out_per_latent``: samples per latent of the input / output axis.
    ``limit``: only the output of the first ``limit`` latents is wanted (the rest stays zero).
    """
    total_in = x.shape[-1]
    window, hop = chunk * in_per_latent, (chunk - overlap) * in_per_latent
    starts = list(range(0, total_in - window + 1, hop))
    if starts[-1] != total_in - window:
        starts.append(total_in - window)
    total = total_in // in_per_latent
    half = overlap // 2
    out = None
    for i, start in enumerate(starts):
        last = i == len(starts) - 1
        first_latent = total - chunk if last else start // in_per_latent
        lo, hi = (0 if i == 0 else half), (chunk if last else chunk - half)
        if limit is not None:
            hi = min(hi, limit - first_latent)
            if hi <= lo:
                continue
        y = run(x[..., start : start + window], (lo, hi))
        if out is None:
            out = x.new_zeros(*y.shape[:-1], total * out_per_latent)
        out[..., (first_latent + lo) * out_per_latent : (first_latent + hi) * out_per_latent] = y
    return out


class SameAutoencoder(nn.Module):
    """SAME autoencoder: state-dict keys as the checkpoint's ``pretransform.model.*`` (prefix stripped)."""

    def __init__(self, ae_config: dict):
        super().__init__()
        enc_cfg, dec_cfg = ae_config["encoder"]["config"], ae_config["decoder"]["config"]
        self.encoder = SameEncoder(enc_cfg)
        self.decoder = SameDecoder(dec_cfg)
        self.bottleneck = SoftNormBottleneck(**ae_config["bottleneck"]["config"])
        self.pretransform = PatchedPretransform(**ae_config["pretransform"]["config"])
        self.latent_dim = int(ae_config["latent_dim"])
        self.downsampling_ratio = int(ae_config["downsampling_ratio"])
        self.io_channels = int(ae_config.get("io_channels") or 2)
        self.in_channels = int(ae_config.get("in_channels") or self.io_channels)
        self.soft_clip = bool(ae_config["decoder"].get("soft_clip", False))
        # generate() lengths are multiples of this many latent frames (upstream reads chunk_size, default 32)
        self.latent_align = enc_cfg.get("chunk_size", 32) // enc_cfg["strides"][0]

    @classmethod
    def from_config(cls, ae_config: dict) -> SameAutoencoder:
        """From ``model.pretransform.config`` of a full config or ``model`` of an AE-only config."""
        kinds = {part: (ae_config.get(part) or {}).get("type") for part in SAME_PART_TYPES}
        if kinds != SAME_PART_TYPES:
            raise ValueError(
                f"This engine builds SAME autoencoders (same encoder/decoder, softnorm bottleneck, patched "
                f"pretransform); the config has {kinds}."
            )
        return cls(ae_config)

    # ------------------------------------------------------------------ one pass

    def encode_once(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, N) audio at the model rate -> (B, latent_dim, T) in one pass."""
        return self.bottleneck.encode(self.encoder(self.pretransform.encode(audio)))

    def decode_once(
        self, latents: torch.Tensor, keep: tuple[int, int] | None = None, noise: Noise = GLOBAL_NOISE
    ) -> torch.Tensor:
        """(B, latent_dim, T) -> (B, C, samples) in one pass (decoder noise drawn from ``noise``).

        ``keep=(lo, hi)``: only the audio of latents lo..hi-1, as the full pass gives it, for less work.
        """
        audio = self.pretransform.decode(self.decoder(self.bottleneck.decode(latents, noise), keep, noise))
        return torch.tanh(audio) if self.soft_clip else audio

    # ------------------------------------------------------------------ public

    def encode(self, audio: torch.Tensor, chunked: bool = False, chunk_size: int = 128, overlap: int = 32):
        """(B, C, N) audio -> (B, latent_dim, T); ``chunked``: overlapping windows of chunk_size latents."""
        _check_chunking(chunk_size, overlap)
        if not chunked or audio.shape[-1] < chunk_size * self.downsampling_ratio:
            return self.encode_once(audio)
        return _overlapping_chunks(
            audio,
            lambda window, keep: self.encode_once(window)[..., keep[0] : keep[1]],
            chunk=chunk_size,
            overlap=overlap,
            in_per_latent=self.downsampling_ratio,
            out_per_latent=1,
        )

    def decode(
        self,
        latents: torch.Tensor,
        chunked: bool = False,
        chunk_size: int = 128,
        overlap: int = 32,
        frames: int | None = None,
        noise: Noise = GLOBAL_NOISE,
    ):
        """(B, latent_dim, T) -> (B, C, samples); ``chunked``: windows in order, each with its own noise.

        Noise comes from ``noise`` (default: the global torch RNG) in upstream's order.

        Each window runs only on the latents its kept part depends on (same result, less work).
        ``frames=n``: only the audio of the first n latents is wanted (the decoder reads just past
        them, see :meth:`SameDecoder.reach_and_align`); the audio after it is left zero.
        """
        _check_chunking(chunk_size, overlap)
        total = latents.shape[-1]
        if not chunked or total < chunk_size:
            if frames is None or frames >= total or total % self.decoder.reach_and_align()[1]:
                return self.decode_once(latents, None, noise)  # (an unaligned length is padded: decode all)
            audio = self.decode_once(latents, (0, frames), noise)
            return F.pad(audio, (0, (total - frames) * self.downsampling_ratio))
        return _overlapping_chunks(
            latents,
            lambda window, keep: self.decode_once(window, keep, noise),
            chunk=chunk_size,
            overlap=overlap,
            in_per_latent=1,
            out_per_latent=self.downsampling_ratio,
            limit=frames,
        )
