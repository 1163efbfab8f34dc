"""Argument checks of the public API: each bad value gets one ``ValueError`` sentence saying what to give.

Also :class:`NonFiniteOutputError`, raised instead of returning NaN or infinite audio or latents.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import torch

MAX_SEED = 2**64 - 1  # torch generators take seeds in [0, 2**64)


class NonFiniteOutputError(ValueError):
    """A model produced NaN or infinite values; the message says what to try instead."""


def number(name: str, value, *, low=None, high=None, low_open: bool = False) -> float:
    """``value`` as a finite float within [low, high] (``low_open``: above ``low``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        digits = len(str(value))
        raise ValueError(f"{name} must be a finite number, got an integer of {digits} digits.") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'above' if low_open else 'at least'} {low}, got {value}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high}, got {value}.")
    return value


def whole(name: str, value, *, low=None, high=None) -> int:
    """``value`` as an int within [low, high]: an int, an integral numpy scalar or a whole float
    (8.0 is 8); a bool is not a number."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    if not isinstance(value, Integral):
        as_float = float(value)
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise ValueError(f"{name} must be a whole number, got {value!r}.")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high}, got {value}.")
    return value


def flag(name: str, value) -> bool:
    """``value`` as a bool (True/False only)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return value


def interval(name: str, value) -> tuple[float, float]:
    """A (low, high) pair of finite numbers with low <= high."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}.")
    low, high = (number(name, v) for v in value)
    if low > high:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {value!r}.")
    return low, high


def seed(value) -> int:
    """A seed: -1 (or None) for a random one, else a whole number in [0, 2**64 - 1]."""
    if value is None:
        return -1
    try:
        value = whole("seed", value)
    except ValueError:
        raise ValueError(f"seed must be a whole number (or -1 for a random one), got {value!r}.") from None
    if value != -1 and not 0 <= value <= MAX_SEED:
        raise ValueError(f"seed must be -1 (random) or a whole number from 0 to 2**64 - 1, got {value}.")
    return value


def text(name: str, value) -> str:
    """A ``str``."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}.")
    return value


def path_like(name: str, value) -> str:
    """A file or folder name given as ``str`` or ``os.PathLike``."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError(f"{name} must be a name or a path (a string), got {value!r}.")
    return str(value)


def hub_options(token, revision, cache_dir) -> None:
    """The Hub arguments of ``from_pretrained``: a token string (never echoed), a revision, a folder."""
    if token is not None and not isinstance(token, (str, bool)):
        raise ValueError("token must be a Hugging Face access token (a string) or None.")
    if revision is not None and not isinstance(revision, str):
        raise ValueError(f"revision must be a branch, tag or commit (a string), got {revision!r}.")
    if cache_dir is not None:
        path_like("cache_dir", cache_dir)


def device(value) -> torch.device | None:
    """``value`` (None, a string or a torch.device) as a torch.device that exists on this machine."""
    if value is None:
        return None
    if not isinstance(value, (str, torch.device)):
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda', got {value!r}.")
    try:
        dev = torch.device(value)
    except RuntimeError:
        raise ValueError(
            f"device {value!r} is not a torch device; use 'cpu', 'cuda', 'cuda:1' or 'mps'."
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }.get(dev.type, True)
    if not available:
        raise ValueError(f"device {value!r} is not available on this machine; use 'cpu' or leave it unset.")
    return dev


def finite_output(tensor: torch.Tensor, what: str, hint: str) -> torch.Tensor:
    """``tensor`` unchanged if all finite, else :class:`NonFiniteOutputError` naming ``what`` and ``hint``."""
    if not bool(torch.isfinite(tensor).all()):
        raise NonFiniteOutputError(f"{what} came out with NaN or infinite values; {hint}.")
    return tensor
