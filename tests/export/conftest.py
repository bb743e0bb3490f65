"""Shared export fixtures: a small *fitted* MobileNet checkpoint, its split manifest, and one full bundle.

A randomly initialised MobileNet answers the same for every image, which would make parity checks
meaningless; here BatchNorm statistics come from real-looking images and the head is fitted on them,
so outputs differ across inputs (and the classes are separable).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import moleport  # noqa: F401  (torch._dynamo before TensorFlow)
from moleport.data.manifest import Item, Manifest
from moleport.preprocess import normalize_batch
from moleport.spec import ModelSpec

CALIB_N = 24  # small for test speed; the product default is 300


def lesion_images(n: int, seed: int, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Skin-toned images with one lesion: dark irregular (melanoma, y=1) or lighter round (nevus, y=0)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    y = (np.arange(n) + seed) % 2
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cx, cy = rng.uniform(0.3 * size, 0.7 * size, 2)
        rx, ry = rng.uniform(0.11 * size, 0.3 * size, 2)
        ang = np.arctan2(yy - cy, xx - cx)
        edge = 1 + (0.35 if y[i] else 0.05) * np.sin(ang * rng.integers(3, 8) + rng.uniform(0, 6))
        mask = ((((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) < edge).astype(np.float32)[..., None]
        tone = rng.uniform([40, 20, 20], [90, 50, 60]) if y[i] else rng.uniform([130, 85, 60], [170, 120, 90])
        skin = rng.uniform([190, 140, 110], [240, 200, 170])
        img = skin * (1 - mask) + tone * mask + rng.normal(0, 6, (size, size, 3))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out, y.astype(np.int64)


def fit_mobilenet(x_u8: np.ndarray, y: np.ndarray, spec: ModelSpec) -> nn.Module:
    """BatchNorm statistics from the images (train-mode passes), then a logistic-regression head fit."""
    from moleport.models import build_model

    torch.manual_seed(0)
    model = build_model(spec.architecture)
    x = normalize_batch(x_u8, spec)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average over all passes
    model.train()
    with torch.no_grad():
        for batch in x.split(16):
            model(batch)
    model.eval()
    with torch.no_grad():
        feats = model.avgpool(model.features(x)).flatten(1)
    target = torch.as_tensor(y, dtype=torch.float32)[:, None]
    opt = torch.optim.Adam(model.classifier.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model.classifier(feats), target).backward()
        opt.step()
    return model.eval()


def write_split_manifest(root: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    items = []
    for split, (x, y) in splits.items():
        for i, (img, label) in enumerate(zip(x, y)):
            f = root / split / f"{split}_{i:03d}.png"
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(f)
            items.append(Item(file=str(f), sha256=hashlib.sha256(img.tobytes()).hexdigest(),
                              label="melanoma" if label else "nevus", split=split, source="synthetic"))
    return Manifest(items=tuple(items), source={"kind": "export-test"}).save(root / "split.json")


@pytest.fixture(scope="session")
def calib_n() -> int:
    return CALIB_N


@pytest.fixture(scope="session")
def source(tmp_path_factory):
    """(checkpoint path, split manifest path, fitted model, spec, held-out test images)."""
    from moleport.data.manifest import load_manifest
    from moleport.models.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("export-src")
    spec = ModelSpec("mobilenet", threshold=0.42)
    train = lesion_images(CALIB_N + 8, seed=0)
    test = lesion_images(6, seed=1)
    manifest = write_split_manifest(root / "data", {"train": train, "test": test})
    model = fit_mobilenet(*train, spec)
    metrics = {"test": {"n": 6, "auc": 0.9, "clinical": {"accuracy": 0.8, "recall": 0.75},
                        "paper": {"accuracy": 0.8, "recall": 0.85}}}
    ckpt = save_checkpoint(root / "run" / "checkpoint.pt", model, spec,
                           manifest_sha256=load_manifest(manifest).sha256, metrics=metrics, epoch=3)
    return {"ckpt": ckpt, "manifest": manifest, "model": model, "spec": spec, "test_x": test[0], "root": root}


@pytest.fixture(scope="session")
def bundle(source, tmp_path_factory):
    """Every format and precision exported once per session."""
    from moleport.export.bundle import export_bundle

    out = tmp_path_factory.mktemp("bundles")
    return export_bundle(source["ckpt"], out, manifest=source["manifest"], calib_n=CALIB_N, name="full")
