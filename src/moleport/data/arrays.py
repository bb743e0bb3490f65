"""Decode a manifest split once into a uint8 NHWC array, cached as .npy on disk.

Training, export calibration and parity all read images through here, so they see
the identical canonical pixels (:func:`moleport.preprocess.load_image`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moleport.data.manifest import Manifest
from moleport.jsonio import atomic_path
from moleport.paths import artifacts_dir
from moleport.preprocess import load_image
from moleport.spec import RESIZE_RULE

#: Sentinel: ``$MOLEPORT_CACHE`` or ``<artifacts>/cache`` (resolved at call time).
DEFAULT_CACHE = "auto"


def _resolve_cache(cache_dir: str | Path | None) -> Path | None:
    if cache_dir is None:
        return None
    if cache_dir == DEFAULT_CACHE:
        return Path(os.environ.get("MOLEPORT_CACHE", artifacts_dir() / "cache"))
    return Path(cache_dir)


@dataclass(frozen=True)
class SplitArrays:
    x: np.ndarray  # (N, S, S, 3) uint8 RGB
    y: np.ndarray  # (N,) int64, 1 = melanoma, 0 = nevus
    files: tuple[str, ...]


def _progress(it, total: int, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, total=total, desc=desc, unit="img", leave=False, disable=total < 50)


def load_split(manifest: Manifest, split: str, size: int = 224, cache_dir: str | Path | None = DEFAULT_CACHE,
               limit: int | None = None) -> SplitArrays:
    """Canonical pixels of every image of ``split`` (optionally the first ``limit``)."""
    items = manifest.split(split)
    if limit is not None:
        items = items[:limit]
    y = np.array([it.y for it in items], dtype=np.int64)
    files = tuple(it.file for it in items)
    cache = _resolve_cache(cache_dir)
    if cache is not None:
        rule = hashlib.sha256(RESIZE_RULE.encode()).hexdigest()[:6]
        cache = cache / f"{manifest.sha256[:16]}-{rule}-{split}-{size}-{len(items)}.npy"
        if cache.is_file():
            x = np.load(cache, mmap_mode="r")
            if x.shape == (len(items), size, size, 3):
                return SplitArrays(x=x, y=y, files=files)
    x = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for i, it in enumerate(_progress(items, len(items), f"decode {split}")):
        x[i] = load_image(it.file, size)
    if cache is not None:
        with atomic_path(cache, suffix=".npy", what="decoded-image cache") as tmp:
            np.save(tmp, x)
    return SplitArrays(x=x, y=y, files=files)
