"""Checks of the values a person gives the lab: a wrong one gets one sentence saying what to give.

Numbers must be real numbers (not text, lists or True/False) and finite; a whole number may come as
a float that is whole (8.0 is 8). Each check takes the rule as the start of its sentence ("Steps
must be a whole number from 1 to 1000") and ends it with what it got.
"""

from __future__ import annotations

import math
import numbers
import os

from stable_audio_3.checks import MAX_SEED

SEED_RULE = f"Seed must be -1 (random) or a whole number from 0 to {MAX_SEED}"


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


def _in_range(number, low, high, above) -> bool:
    return (
        (low is None or number >= low)
        and (high is None or number <= high)
        and (above is None or number > above)
    )


def real(value, rule: str, *, low=None, high=None, above=None) -> float:
    """``value`` as a float: a finite real number within ``low``/``high`` (inclusive) and above ``above``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(rule, value)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise _fail(rule, value) from None
    if not math.isfinite(number) or not _in_range(number, low, high, above):
        raise _fail(rule, value)
    return number


def whole(value, rule: str, *, low=None, high=None) -> int:
    """``value`` as an int: a whole number (8 or 8.0) within ``low``/``high`` (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(rule, value)
    if isinstance(value, numbers.Integral):
        number = int(value)
    else:
        as_float = float(value)
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise _fail(rule, value)
        number = int(as_float)
    if not _in_range(number, low, high, None):
        raise _fail(rule, value)
    return number


def seed(value) -> int:
    """A seed: -1 (a new random one) or 0 .. the engine's :data:`~stable_audio_3.checks.MAX_SEED`."""
    return whole(value, SEED_RULE, low=-1, high=MAX_SEED)


def text(value, rule: str) -> str:
    """``value``, which must be a string."""
    if not isinstance(value, str):
        raise _fail(rule, value)
    return value


def path(value, rule: str, optional: bool = False) -> str:
    """A path given as a string or a path object, as a string (``optional``: None or "" gives "")."""
    if optional and value is None:
        return ""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not (value.strip() or optional):
        raise _fail(rule, value)
    return value.strip()


def flag(value, rule: str) -> bool:
    """``value``, which must be True or False (not a string such as "False", which would count as true)."""
    if not isinstance(value, bool):
        raise _fail(rule, value)
    return value


def items(value, rule: str) -> list:
    """``value`` as a list: a list or tuple (a single string or number is refused, not split or wrapped)."""
    if not isinstance(value, (list, tuple)):
        raise _fail(rule, value)
    return list(value)
