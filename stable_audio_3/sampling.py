"""Timestep schedules, distribution shifts and the rectified-flow samplers.

Convention: ``t = 0`` is data, ``t = 1`` is noise, and the network predicts a velocity ``v`` with the
denoised estimate ``x - t * v``. A sampler receives ``model_fn(x, t) -> v`` (``t`` is a (B,) tensor;
the caller wraps the DiT with its conditioning and guidance), the starting ``x`` and a schedule of
shape (B, steps + 1) or (steps + 1,) from :func:`build_schedule`.

Random numbers come from a :class:`~stable_audio_3.noise.Noise` (default: the global torch
generator), in upstream's order: only ``pingpong`` draws, one ``randn_like(x)`` per step including
the last. The optional ``callback`` gets, once per step after
the model call, a dict with ``i`` (0-based step), ``steps``, ``x`` (the step's input), ``t``/``sigma``
((B,) timestep) and ``denoised``; an exception raised there (e.g. a Stop button) ends sampling
between steps and propagates to the caller.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from numbers import Real

import torch
from tqdm.auto import tqdm

from .noise import GLOBAL_NOISE, Noise

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict], None]


# --------------------------------------------------------------------------- distribution shifts


# Each shift maps a grid t in [0, 1] to warped timesteps: ``shift(t, seq_len)`` with seq_len a number
# or a tensor that broadcasts against t (e.g. (B, 1) lengths against a (B, S) grid).


class IdentityShift:
    """No warping: the schedule stays linear."""

    def shift(self, t: torch.Tensor, seq_len) -> torch.Tensor:
        return t


class LogSNRShift:
    """Uniform spacing in log-SNR between ``logsnr_end`` and a length-dependent start.

    ``start = anchor_logsnr - rate * log2(seq_len / anchor_length)``;
    ``t' = sigmoid(-(logsnr_end - t * (logsnr_end - start)))`` with t' = 0 at t <= 0 and 1 at t >= 1.
    With ``rate = 0`` (the sampling default) the result does not depend on the length.
    """

    def __init__(self, anchor_length=2000, anchor_logsnr=-6.2, rate=1.0, logsnr_end=2.0):
        self.anchor_length, self.anchor_logsnr = anchor_length, anchor_logsnr
        self.rate, self.logsnr_end = rate, logsnr_end

    def logsnr_start(self, seq_len):
        if isinstance(seq_len, torch.Tensor):
            return self.anchor_logsnr - self.rate * torch.log2(seq_len.float() / self.anchor_length)
        return self.anchor_logsnr - self.rate * math.log2(seq_len / self.anchor_length)

    def shift(self, t: torch.Tensor, seq_len) -> torch.Tensor:
        start = self.logsnr_start(seq_len)
        out = torch.sigmoid(-(self.logsnr_end - t * (self.logsnr_end - start)))
        out = torch.where(t <= 0, torch.zeros_like(out), out)
        return torch.where(t >= 1, torch.ones_like(out), out)


class FluxShift:
    """``t' = a t / (1 + (a - 1) t)`` with ``a`` log-linear in the clamped length (Flux / SD3 style)."""

    def __init__(self, min_length=256, max_length=4096, alpha_min=1.0, alpha_max=1.0):
        self.min_length, self.max_length = min_length, max_length
        self.log_alpha_min = math.log(max(alpha_min, 1e-8))
        self.log_alpha_max = math.log(max(alpha_max, 1e-8))
        self.log_min, self.log_max = math.log(min_length), math.log(max_length)
        if self.log_max == self.log_min:
            self.log_max += 1e-8

    def alpha(self, seq_len):
        if isinstance(seq_len, torch.Tensor):
            log_len = torch.log(seq_len.float().clamp(self.min_length, self.max_length))
            frac = (log_len - self.log_min) / (self.log_max - self.log_min)
            return torch.exp(self.log_alpha_min + frac * (self.log_alpha_max - self.log_alpha_min))
        log_len = math.log(max(min(seq_len, self.max_length), self.min_length))
        frac = (log_len - self.log_min) / (self.log_max - self.log_min)
        return math.exp(self.log_alpha_min + frac * (self.log_alpha_max - self.log_alpha_min))

    def shift(self, t: torch.Tensor, seq_len) -> torch.Tensor:
        a = self.alpha(seq_len)
        return a * t / (1 + (a - 1.0) * t)


class FullShift:
    """The training shift (config type "full"): ``t' = 1 - e^mu / (e^mu + 1/(1-t) - 1)``."""

    def __init__(self, base_shift=0.5, max_shift=1.15, max_length=4096, min_length=256, use_sine=False):
        self.base_shift, self.max_shift = base_shift, max_shift
        self.max_length, self.min_length, self.use_sine = max_length, min_length, use_sine

    def mu(self, seq_len):
        span = self.max_shift - self.base_shift
        if isinstance(seq_len, torch.Tensor):
            clamped = seq_len.float().clamp(self.min_length, self.max_length)
        else:
            clamped = min(max(seq_len, self.min_length), self.max_length)
        return -(self.base_shift + span * (clamped - self.min_length) / (self.max_length - self.min_length))

    def shift(self, t: torch.Tensor, seq_len) -> torch.Tensor:
        mu = self.mu(seq_len)
        e = torch.exp(mu) if isinstance(mu, torch.Tensor) else math.exp(mu)
        out = 1 - e / (e + (1 / (1 - t) - 1))
        return torch.sin(out * math.pi / 2) if self.use_sine else out


_SHIFT_TYPES = {"logsnr": LogSNRShift, "flux": FluxShift, "full": FullShift, "none": IdentityShift}


def default_sampling_shift() -> LogSNRShift:
    """The shift used when a config has no ``sampling_distribution_shift_options``: sigmoid(8.2 t - 2)."""
    return LogSNRShift(rate=0.0, anchor_logsnr=-6.2, logsnr_end=2.0)


def shift_parameters(kind: str) -> dict:
    """Each parameter of a shift type with its default: the default sampling shift's own value where
    it is of that type (as upstream's interface shows them), else the type's constructor default."""
    shift_type = _SHIFT_TYPES[kind]
    params = {
        name: p.default
        for name, p in inspect.signature(shift_type.__init__).parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    default = default_sampling_shift()
    if type(default) is shift_type:
        params = {name: getattr(default, name, value) for name, value in params.items()}
    return params


def shift_from_options(options: dict | None):
    """A shift object from a config's shift options (``type`` defaults to "full"); None -> the default."""
    if options is None:
        return default_sampling_shift()
    params = dict(options)
    kind = params.pop("type", "full")
    if kind not in _SHIFT_TYPES:
        raise ValueError(f"Unknown distribution shift type {kind!r}; use one of {sorted(_SHIFT_TYPES)}.")
    return _SHIFT_TYPES[kind](**params)


# --------------------------------------------------------------------------- schedules


A2A_SCHEDULES = ("upstream", "corrected")
"""How a schedule below full noise (audio-to-audio, sigma_max < 1) is built: see :func:`build_schedule`."""


def check_a2a_schedule(name) -> str:
    """``name`` if it is one of :data:`A2A_SCHEDULES`."""
    if not isinstance(name, str) or name not in A2A_SCHEDULES:
        raise ValueError(f"a2a_schedule must be one of {', '.join(A2A_SCHEDULES)}, got {name!r}.")
    return name


def build_schedule(
    steps: int,
    sigma_max: float = 1.0,
    shift=None,
    seq_len: torch.Tensor | int | None = None,
    device=None,
    a2a_schedule: str = "upstream",
) -> torch.Tensor:
    """``steps + 1`` timesteps from ``sigma_max`` down to 0, warped by ``shift``.

    ``a2a_schedule`` says how ``sigma_max < 1`` combines with the shift:

    * ``"upstream"`` (upstream at 636f906, the default): ``linspace(sigma_max, 0, steps + 1)``
      warped by the shift, first entry set to sigma_max. The shift acts on already scaled times,
      so with sigma_max < 1 the schedule rises after step 0 and its interior points can exceed
      sigma_max (at 0.5, 8 steps and the default shift the second point is about 0.83).
    * ``"corrected"`` (upstream's open PR #94): ``linspace(1, 0, steps + 1)`` warped by the shift,
      then scaled by sigma_max, first entry set to sigma_max: monotone non-increasing, within
      [0, sigma_max], ending at 0. At sigma_max = 1 it is bit for bit the upstream schedule.

    ``seq_len`` is what the shift sees: a (B,) tensor of effective latent lengths gives one row per
    item, (B, steps + 1) (also when B == steps + 1, where upstream pairs them up instead); an int
    gives a 1-D schedule. It is required with a shift and clamped to >= 1.
    """
    check_a2a_schedule(a2a_schedule)
    corrected = a2a_schedule == "corrected"
    t = torch.linspace(1.0 if corrected else sigma_max, 0, steps + 1, device=device)
    if shift is None and not corrected:
        return t
    if shift is not None:
        if seq_len is None:
            raise ValueError("build_schedule needs seq_len (a latent length) when a shift is given.")
        if isinstance(seq_len, torch.Tensor):
            rows = seq_len.to(t.device).clamp(min=1).unsqueeze(1)
            t = shift.shift(t.unsqueeze(0).expand(rows.shape[0], -1), rows).expand(rows.shape[0], -1).clone()
        else:
            t = shift.shift(t, max(int(seq_len), 1))
    if corrected:
        t = t * sigma_max
    t[..., 0] = sigma_max
    return t


def check_init_noise_level(level) -> float:
    """``init_noise_level`` as a float in (0, 1]."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level <= 1:
        raise ValueError(f"init_noise_level must be a number above 0 and at most 1, got {level!r}.")
    return float(level)


def start_from_init(init: torch.Tensor, noise: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """Audio-to-audio start: ``init * (1 - sigma_max) + noise * sigma_max``, contiguous.

    Encoded latents are a transposed view, and ``randn_like`` fills in memory order: a sampler state
    in that layout would draw upstream's numbers in a different order.
    """
    return (init * (1 - sigma_max) + noise * sigma_max).contiguous()


def _rows(schedule: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The schedule as (B, steps + 1) on x's device (a 1-D schedule is shared by every item)."""
    schedule = schedule.to(x.device)
    if schedule.dim() == 1:
        return schedule.unsqueeze(0).expand(x.shape[0], -1)
    if schedule.dim() != 2 or schedule.shape[0] != x.shape[0]:
        raise ValueError(
            f"The schedule has shape {tuple(schedule.shape)}; expected (steps+1,) or ({x.shape[0]}, steps+1)."
        )
    return schedule


def _col(t: torch.Tensor) -> torch.Tensor:
    return t.view(-1, 1, 1)


def _steps(n: int, disable_tqdm: bool, name: str):
    return tqdm(range(n), desc=name, disable=disable_tqdm, leave=False)


# --------------------------------------------------------------------------- samplers


def sample_pingpong(
    model_fn: ModelFn,
    x,
    schedule,
    callback: Callback | None = None,
    disable_tqdm=False,
    noise: Noise = GLOBAL_NOISE,
):
    """Ping-pong sampling: jump to the denoised estimate, re-noise to the next t with fresh noise."""
    t = _rows(schedule, x)
    steps = t.shape[1] - 1
    for i in _steps(steps, disable_tqdm, "pingpong"):
        t_cur, t_next = t[:, i].to(x.dtype), t[:, i + 1].to(x.dtype)
        denoised = x - _col(t_cur) * model_fn(x, t_cur)
        if callback is not None:
            callback({"i": i, "steps": steps, "x": x, "t": t_cur, "sigma": t_cur, "denoised": denoised})
        x = (1 - _col(t_next)) * denoised + _col(t_next) * noise.randn_like(x)
    return x


def sample_euler(model_fn: ModelFn, x, schedule, callback: Callback | None = None, disable_tqdm=False):
    """Explicit Euler steps along the velocity: ``x += (t_next - t) * v``."""
    t = _rows(schedule, x)
    steps = t.shape[1] - 1
    for i in _steps(steps, disable_tqdm, "euler"):
        t_cur, t_next = t[:, i].to(x.dtype), t[:, i + 1].to(x.dtype)
        v = model_fn(x, t_cur)
        if callback is not None:
            denoised = x - _col(t_cur) * v
            callback({"i": i, "steps": steps, "x": x, "t": t_cur, "sigma": t_cur, "denoised": denoised})
        x = x + _col(t_next - t_cur) * v
    return x


def _log_snr(t: torch.Tensor) -> torch.Tensor:
    return ((1 - t).clamp(min=1e-10) / t.clamp(min=1e-10)).log()


def sample_dpmpp(model_fn: ModelFn, x, schedule, callback: Callback | None = None, disable_tqdm=False):
    """DPM-Solver++(2M) for flow: first order on the first and last steps, second order between.

    Timesteps stay float32 (they are not cast to x's dtype).
    """
    t = _rows(schedule, x)
    steps = t.shape[1] - 1
    previous = None
    for i in _steps(steps, disable_tqdm, "dpmpp"):
        t_cur, t_next = t[:, i], t[:, i + 1]
        tc, tn = _col(t_cur), _col(t_next)
        denoised = x - tc * model_fn(x, t_cur)
        if callback is not None:
            callback({"i": i, "steps": steps, "x": x, "t": t_cur, "sigma": t_cur, "denoised": denoised})
        coeff = (tn - tc) / ((1 - tn).clamp(min=1e-10) * tc.clamp(min=1e-10))
        target = denoised
        if previous is not None and not bool((tn == 0).all()):
            tp = _col(t[:, i - 1])
            r = (_log_snr(tc) - _log_snr(tp)) / (_log_snr(tn) - _log_snr(tc))
            target = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
        x = (tn / tc.clamp(min=1e-10)) * x - (1 - tn) * coeff * target
        previous = denoised
    return x


def sample_rk4(
    model_fn: ModelFn,
    x,
    schedule,
    callback: Callback | None = None,
    disable_tqdm=False,
    upstream_compat=False,
):
    """Classical 4th-order Runge-Kutta on the velocity field (4 model calls per step).

    The last stage is evaluated at ``max(t_next, 1e-5)`` rather than exactly 0. With
    ``upstream_compat=True`` a per-item (2-D) schedule reproduces upstream's bug instead: for one item
    no step runs and the starting ``x`` comes back unchanged (upstream fails for larger batches, so
    that raises ValueError here).
    """
    if upstream_compat and schedule.dim() == 2:
        if x.shape[0] != 1:
            raise ValueError(
                "Upstream-compatible rk4 only exists for batch_size 1; turn rk4_upstream_compat off."
            )
        return x
    t = _rows(schedule, x)
    steps = t.shape[1] - 1
    for i in _steps(steps, disable_tqdm, "rk4"):
        t_cur, t_next = t[:, i], t[:, i + 1]
        dt = _col(t_next - t_cur)
        half = t_cur + (t_next - t_cur) / 2
        k1 = model_fn(x, t_cur)
        if callback is not None:
            denoised = x - _col(t_cur) * k1
            callback({"i": i, "steps": steps, "x": x, "t": t_cur, "sigma": t_cur, "denoised": denoised})
        k2 = model_fn(x + dt / 2 * k1, half)
        k3 = model_fn(x + dt / 2 * k2, half)
        k4 = model_fn(x + dt * k3, t_next.clamp(min=1e-5))
        x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


SAMPLERS = {"pingpong": sample_pingpong, "euler": sample_euler, "dpmpp": sample_dpmpp, "rk4": sample_rk4}
# What each diffusion objective samples with by default (upstream's interface): post-trained models
# (rf_denoiser) are distilled for 8 pingpong steps without guidance; base models (rectified_flow)
# take 50 euler steps with CFG 7.
OBJECTIVE_DEFAULTS = {
    "rf_denoiser": {"steps": 8, "cfg_scale": 1.0, "sampler": "pingpong"},
    "rectified_flow": {"steps": 50, "cfg_scale": 7.0, "sampler": "euler"},
}
DEFAULT_SAMPLER = {objective: d["sampler"] for objective, d in OBJECTIVE_DEFAULTS.items()}


def resolve_sampler(sampler_type: str | None, objective: str) -> str:
    """The sampler name to use: ``sampler_type`` if given, else the objective's default."""
    if objective not in DEFAULT_SAMPLER:
        raise ValueError(
            f"Unknown diffusion objective {objective!r}; expected one of {sorted(DEFAULT_SAMPLER)}."
        )
    name = DEFAULT_SAMPLER[objective] if sampler_type is None else sampler_type
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler_type!r}; choose one of: {', '.join(SAMPLERS)}.")
    return name


def sample(
    sampler_type: str,
    model_fn: ModelFn,
    x: torch.Tensor,
    schedule: torch.Tensor,
    callback: Callback | None = None,
    disable_tqdm: bool = False,
    rk4_upstream_compat: bool = False,
    noise: Noise = GLOBAL_NOISE,
) -> torch.Tensor:
    """Run the named sampler (see :data:`SAMPLERS`) from ``x`` along ``schedule``.

    ``noise``: where ``pingpong`` draws its per-step noise (the others draw nothing).
    """
    if sampler_type not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler_type!r}; choose one of: {', '.join(SAMPLERS)}.")
    if sampler_type == "pingpong":
        return sample_pingpong(model_fn, x, schedule, callback, disable_tqdm, noise)
    if sampler_type == "rk4":
        return sample_rk4(model_fn, x, schedule, callback, disable_tqdm, upstream_compat=rk4_upstream_compat)
    return SAMPLERS[sampler_type](model_fn, x, schedule, callback, disable_tqdm)
