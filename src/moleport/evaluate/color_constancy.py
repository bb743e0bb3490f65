"""Shades-of-Gray colour constancy (Finlayson & Trezzi 2004; Barata et al. 2015 for dermoscopy).

Rule ``shades-of-gray-p6-v1`` — applied to the canonical ``size x size x 3`` uint8 RGB image,
i.e. AFTER :func:`moleport.preprocess.load_image` and BEFORE the spec's mean/std:

1. ``x`` = pixels as float64. Illuminant per channel ``e_c = (mean over pixels of x_c ** 6) ** (1/6)``.
2. ``e = e / ||e||_2`` (Euclidean norm over the 3 channels). If any ``e_c == 0`` (a channel is all
   zero) the image is returned unchanged.
3. ``out_c = x_c / (e_c * sqrt(3))`` — a grey illuminant ``e = (1,1,1)/sqrt(3)`` leaves pixels unchanged.
4. Round ``floor(v + 0.5)`` and clip to [0, 255] -> uint8.

Every step is plain arithmetic, so Java / JavaScript / Swift can reproduce it within ±1 level.
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

NAME = "shades-of-gray-p6-v1"
POWER = 6.0


def shades_of_gray(rgb: np.ndarray, power: float = POWER) -> np.ndarray:
    """Colour-normalise one HxWx3 uint8 RGB image (rule ``shades-of-gray-p6-v1`` for power 6)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8, got shape {rgb.shape} dtype {rgb.dtype}")
    x = rgb.astype(np.float64)
    e = np.power(np.mean(np.power(x, power), axis=(0, 1)), 1.0 / power)
    if np.any(e <= 0):
        return rgb.copy()
    e = e / np.sqrt(np.sum(e * e))
    out = x / (e * np.sqrt(3.0))
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def shades_of_gray_batch(batch: np.ndarray, power: float = POWER) -> np.ndarray:
    """:func:`shades_of_gray` on every image of an NHWC uint8 batch (new array)."""
    if batch.ndim != 4:
        raise ValueError(f"expected NHWC uint8 batch, got shape {batch.shape}")
    out = np.empty_like(batch)
    for i in range(len(batch)):
        out[i] = shades_of_gray(np.asarray(batch[i]), power)
    return out


#: Pixel rules the evaluate stage can reproduce, by spec name.
PIXEL_RULES = MappingProxyType({NAME: shades_of_gray_batch})


def apply_named_rule(name: str | None, batch: np.ndarray) -> np.ndarray:
    """Apply the named post-resize pixel rule (``None``/"none" = identity); unknown names raise."""
    if name in (None, "", "none"):
        return batch
    if name not in PIXEL_RULES:
        raise ValueError(f"unknown colour-constancy rule {name!r}; known: {sorted(PIXEL_RULES)}")
    return PIXEL_RULES[name](batch)
