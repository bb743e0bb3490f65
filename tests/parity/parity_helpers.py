"""Test helpers: learnable images, a quickly trained MobileNet, and a bundle built WITHOUT moleport.export.

The ONNX artifact is produced here by ``torch.onnx.export`` of a small raw-pixel wrapper written
for the tests, so the negative tests do not depend on (or reuse) the exporter being judged.
The broken variants are made by ONNX graph surgery on that artifact.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from PIL import Image
from torch import nn

from moleport.data.manifest import Item, Manifest
from moleport.preprocess import load_image
from moleport.spec import ModelSpec

SIZE = 96  # source images are small; load_image resizes them to 224 canonically


def make_images(out_dir: Path, n: int, seed: int = 0) -> Manifest:
    """Skin-coloured images with one blob: melanoma blobs are dark blue-grey, nevus blobs brown."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    items = []
    for i in range(n):
        mel = i % 2 == 0
        skin = np.array([225, 185, 160], np.float32) + rng.normal(0, 12, 3)
        img = np.broadcast_to(skin, (SIZE, SIZE, 3)).copy()
        cx, cy, r = rng.uniform(30, 66, 2).tolist() + [rng.uniform(12, 26)]
        mask = (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r)[..., None]
        t = rng.uniform(0.0, 1.0) * (1 if mel else -1) * 0.5 + 0.5  # overlapping classes
        colour = np.array([140 - 80 * t, 90 - 30 * t, 60 + 70 * t], np.float32) + rng.normal(0, 8, 3)
        img = np.where(mask, colour, img) + rng.normal(0, 6, (SIZE, SIZE, 3))
        path = out_dir / f"img_{i:04d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(path)
        split = ("train", "train", "train", "val", "test")[i % 5] if i >= 10 else ("test" if i < 6 else "train")
        items.append(Item(file=str(path), sha256=hashlib.sha256(load_image(path).tobytes()).hexdigest(),
                          label="melanoma" if mel else "nevus", split=split, lesion_id=f"L{i}", source="test"))
    return Manifest(items=tuple(items), seed=seed, source={"kind": "parity-test-blobs"})


def _features(model: nn.Module, x_u8: np.ndarray, spec: ModelSpec, train_mode: bool = False) -> np.ndarray:
    from moleport.preprocess import normalize_batch

    model.train(train_mode)
    out = []
    with torch.no_grad():
        for i in range(0, len(x_u8), 16):
            x = normalize_batch(np.ascontiguousarray(x_u8[i:i + 16]), spec)
            out.append(model.avgpool(model.features(x)).flatten(1).numpy())
    model.eval()
    return np.concatenate(out).astype(np.float64)


def train_small(x_u8: np.ndarray, y: np.ndarray, spec: ModelSpec) -> nn.Module:
    """A quickly TRAINED MobileNet (CPU-cheap: forward passes only).

    Backbone: ImageNet weights from ../shared when present, else random init whose BatchNorm
    statistics are re-estimated on the images (a random net with default BN statistics gives
    the same output for every input). The 1-logit head is then fitted by logistic regression
    on the pooled features, so outputs depend on the input and separate the classes.
    """
    from sklearn.linear_model import LogisticRegression

    from moleport.models import build_model
    from moleport.paths import shared_path

    torch.manual_seed(0)
    weights = "imagenet" if shared_path("weights", "mobilenet_v1_keras_tflite_qat_imagenet.pth") else None
    model = build_model(spec.architecture, weights)
    if weights is None:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration passes
        _features(model, x_u8, spec, train_mode=True)
    f = _features(model, x_u8, spec)
    # Floor the scale: near-constant (dead) channels must not get huge weights, which would make
    # the head unquantisable (int8 per-tensor weights) for reasons unrelated to the export.
    mu, sd = f.mean(0), np.maximum(f.std(0), 0.1 * f.std(0).mean() + 1e-6)
    clf = LogisticRegression(C=0.05, max_iter=5000).fit((f - mu) / sd, y)
    w = clf.coef_[0] / sd
    b = clf.intercept_[0] - float((clf.coef_[0] * mu / sd).sum())
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(w, dtype=torch.float32).view(1, -1))
        model.classifier.bias.copy_(torch.tensor([b], dtype=torch.float32))
    return model.eval()


class RawPixelNet(nn.Module):
    """Test-side artifact graph: NHWC RGB 0..255 -> [P(nevus), P(melanoma)]."""

    def __init__(self, classifier: nn.Module, spec: ModelSpec):
        super().__init__()
        self.classifier = classifier
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.permute(0, 3, 1, 2) - self.mean) / self.std
        p = torch.sigmoid(self.classifier(x))
        return torch.cat([1.0 - p, p], dim=1)


def export_onnx(model: nn.Module, spec: ModelSpec, path: Path) -> Path:
    net = RawPixelNet(model, spec).eval()
    dummy = torch.zeros(1, spec.input_size, spec.input_size, 3)
    torch.onnx.export(net, (dummy,), str(path), input_names=["pixels"], output_names=["probabilities"],
                      opset_version=17, dynamo=False)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(root: Path, spec: ModelSpec, checkpoint: Path, split_manifest: Path, manifest_sha: str,
                 files: list[tuple[str, str, str]]) -> Path:
    """manifest.json for ``files`` = [(relative path, format, precision)] already inside ``root``."""
    entries = [{"path": rel, "format": fmt, "precision": prec, "sha256": sha256(root / rel),
                "bytes": (root / rel).stat().st_size, "input": {"layout": "NHWC"}, "output": {}}
               for rel, fmt, prec in files]
    spec.save(root / "spec.json")
    (root / "labels.txt").write_text("\n".join(spec.labels) + "\n", encoding="utf-8")
    documents = [{"path": rel, "sha256": sha256(root / rel), "bytes": (root / rel).stat().st_size}
                 for rel in ("labels.txt", "spec.json")]
    data = {"spec": spec.to_dict(), "checkpoint": str(checkpoint), "checkpoint_sha256": sha256(checkpoint),
            "split_manifest": str(split_manifest), "split_manifest_sha256": manifest_sha, "files": entries,
            "documents": documents}
    (root / "manifest.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return root


# --- deliberately broken ONNX artifacts ------------------------------------------------------------
def perturb_weight(src: Path, dst: Path, scale: float = 1.02) -> Path:
    """Multiply the largest initializer (a conv weight) by ``scale``."""
    m = onnx.load(str(src))
    init = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = numpy_helper.to_array(init) * np.float32(scale)
    init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
    onnx.save(m, str(dst))
    return dst


def _prepend(src: Path, dst: Path, nodes_for) -> Path:
    """Rename the graph input to 'raw', let ``nodes_for(raw, out)`` compute the old input from it."""
    m = onnx.load(str(src))
    old = m.graph.input[0].name
    raw = old + "_raw"
    for node in m.graph.node:
        node.input[:] = [raw + "_fed" if i == old else i for i in node.input]
    new_nodes, inits = nodes_for(raw, raw + "_fed")
    m.graph.input[0].name = raw
    m.graph.initializer.extend(inits)
    for n in reversed(new_nodes):
        m.graph.node.insert(0, n)
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))
    return dst


def channel_swap(src: Path, dst: Path) -> Path:
    """RGB -> BGR inside the graph: a Gather on the channel axis of the NHWC input."""
    def nodes(inp, out):
        idx = numpy_helper.from_array(np.array([2, 1, 0], np.int64), "bgr_idx")
        return [helper.make_node("Gather", [inp, "bgr_idx"], [out], axis=3)], [idx]
    return _prepend(src, dst, nodes)


def double_normalisation(src: Path, dst: Path, spec: ModelSpec) -> Path:
    """Normalise the pixels before the graph normalises them again."""
    def nodes(inp, out):
        mean = numpy_helper.from_array(np.array(spec.mean, np.float32) * 255, "dn_mean")
        std = numpy_helper.from_array(np.array(spec.std, np.float32) * 255, "dn_std")
        return [helper.make_node("Sub", [inp, "dn_mean"], ["dn_c"]),
                helper.make_node("Div", ["dn_c", "dn_std"], [out])], [mean, std]
    return _prepend(src, dst, nodes)


def truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst
