"""argparse ``type=`` functions that range-check every user-supplied number with a message saying why."""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def probability(text: str) -> float:
    """A threshold or sensitivity: strictly between 0 and 1."""
    v = _number(text, float, "a number")
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"{v:g} is outside (0, 1): a threshold on P(melanoma) must be "
                                         f"strictly between 0 and 1")
    return v


def fraction(text: str) -> float:
    """A share such as a split ratio: 0 to 1 inclusive."""
    v = _number(text, float, "a number")
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v:g} is outside [0, 1]")
    return v


def positive_float(text: str) -> float:
    """A temperature or another scale: > 0."""
    v = _number(text, float, "a number")
    if v <= 0.0:
        raise argparse.ArgumentTypeError(f"{v:g} must be > 0")
    return v


def positive_int(text: str) -> int:
    """A count or a limit: an integer >= 1."""
    v = _number(text, int, "an integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be an integer >= 1")
    return v


def non_negative_int(text: str) -> int:
    v = _number(text, int, "an integer")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be an integer >= 0")
    return v
