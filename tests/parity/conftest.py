"""Session fixtures: a trained small MobileNet and an ONNX bundle made without moleport.export."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from moleport.spec import ModelSpec

import parity_helpers as helpers


@dataclass(frozen=True)
class TrainedBundle:
    root: Path  # pristine bundle: model_fp32.onnx + manifest.json
    checkpoint: Path
    split_manifest: Path
    manifest_sha: str
    spec: ModelSpec
    cache: Path

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.root, dest)
        return dest


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory) -> TrainedBundle:
    import torch

    from moleport.data.arrays import load_split
    from moleport.models.checkpoint import save_checkpoint

    torch.set_num_threads(2)
    base = tmp_path_factory.mktemp("parity")
    manifest = helpers.make_images(base / "images", n=60)
    mpath = manifest.save(base / "split.json")
    cache = base / "cache"
    spec = ModelSpec(architecture="mobilenet")
    train = load_split(manifest, "train", cache_dir=cache)
    model = helpers.train_small(train.x, train.y, spec)
    ckpt = save_checkpoint(base / "checkpoint.pt", model, spec, manifest_sha256=manifest.sha256)
    root = base / "bundle"
    root.mkdir()
    helpers.export_onnx(model, spec, root / "model_fp32.onnx")
    helpers.write_bundle(root, spec, ckpt, mpath, manifest.sha256, [("model_fp32.onnx", "onnx", "fp32")])
    return TrainedBundle(root, ckpt, mpath, manifest.sha256, spec, cache)


@pytest.fixture
def bundle_copy(trained_bundle, tmp_path) -> Path:
    """A fresh, writable copy of the pristine bundle for one test."""
    return trained_bundle.copy(tmp_path / "bundle")
