"""Tiny image folders for the evaluate-stage tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_images(folder: Path, n: int, seed: int, brightness: float = 128.0, size=(48, 40)) -> list[Path]:
    """``n`` noisy RGB PNGs of mean ``brightness`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = np.clip(rng.normal(brightness, 30.0, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
        p = folder / f"img_{seed}_{i:03d}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def make_imagefolder(root: Path, n_per_class: int = 4, seed: int = 0, brightness: float = 128.0,
                     classes=("melanoma", "nevus")) -> Path:
    for k, cls in enumerate(classes):
        write_images(root / cls, n_per_class, seed * 10 + k, brightness)
    return root
