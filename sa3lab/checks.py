"""Checks of the values a person gives the lab, built on the engine's (:mod:`stable_audio_3.checks`).

The rules are the engine's: numbers are real numbers (not text, lists or True/False) and finite, a
whole number may come as a whole float (8.0 is 8), a seed is -1 or None (random) or 0 .. 2**64 - 1.
The lab words the sentence for a person: each check takes the rule as the start of its sentence
("Steps must be a whole number from 1 to 1000"), then the value, and ends the sentence with what it
got. Every check takes ``(rule, value)`` in that order.
"""

from __future__ import annotations

import numbers
import os

from stable_audio_3 import checks as engine

SEED_RULE = f"Seed must be -1 (random) or a whole number from 0 to {engine.MAX_SEED}"


def shown(value) -> str:
    """A short, safe description of a value for a message."""
    if isinstance(value, str):
        return f"the text {value[:40] + '...' if len(value) > 40 else value!r}"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        digits = str(int(value))
        return digits if len(digits) <= 30 else f"a number with {len(digits)} digits"
    if isinstance(value, numbers.Real):
        return f"{float(value):g}"
    if isinstance(value, (list, tuple)):
        text = repr(value)
        return f"a {type(value).__name__}: {text[:40] + '...' if len(text) > 40 else text}"
    return f"a {type(value).__name__}"


def _fail(rule: str, value) -> ValueError:
    return ValueError(f"{rule}; got {shown(value)}.")


def real(rule: str, value, *, low=None, high=None, above=None) -> float:
    """``value`` as a float: a finite real number within ``low``/``high`` (inclusive) or above ``above``."""
    if low is not None and above is not None:
        raise TypeError("give low or above, not both")
    try:
        bound = above if above is not None else low
        return engine.number(rule, value, low=bound, high=high, low_open=above is not None)
    except ValueError:
        raise _fail(rule, value) from None


def whole(rule: str, value, *, low=None, high=None) -> int:
    """``value`` as an int: a whole number (8 or 8.0) within ``low``/``high`` (inclusive)."""
    try:
        return engine.whole(rule, value, low=low, high=high)
    except ValueError:
        raise _fail(rule, value) from None


def seed(value) -> int:
    """A seed: -1 or None (a new random one) or 0 .. the engine's :data:`~stable_audio_3.checks.MAX_SEED`."""
    try:
        return engine.seed(value)
    except ValueError:
        raise _fail(SEED_RULE, value) from None


def pair(rule: str, value) -> tuple[float, float]:
    """Two real numbers given as a list or tuple."""
    values = items(rule, value)
    if len(values) != 2:
        raise _fail(rule, value)
    return real(rule, values[0]), real(rule, values[1])


def interval(rule: str, value) -> tuple[float, float]:
    """A (low, high) pair of noise levels with 0 <= low <= high <= 1."""
    low, high = pair(rule, value)
    if not 0 <= low <= high <= 1:
        raise _fail(rule, list(value))
    return low, high


def flag(rule: str, value) -> bool:
    """``value``, which must be True or False (not a string such as "False", which would count as true)."""
    try:
        return engine.flag(rule, value)
    except ValueError:
        raise _fail(rule, value) from None


def text(rule: str, value) -> str:
    """``value``, which must be a string."""
    if not isinstance(value, str):
        raise _fail(rule, value)
    return value


def path(rule: str, value, optional: bool = False) -> str:
    """A path given as a string or a path object, as a string (``optional``: None or "" gives "")."""
    if optional and value is None:
        return ""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not (value.strip() or optional):
        raise _fail(rule, value)
    return value.strip()


def items(rule: str, value) -> list:
    """``value`` as a list: a list or tuple (a single string or number is refused, not split or wrapped)."""
    if not isinstance(value, (list, tuple)):
        raise _fail(rule, value)
    return list(value)
