"""The numpy ML Program interpreter against PyTorch, on packages converted here by coremltools.

Models: a small Keras-MobileNetV1-like net (ZeroPad2d((0,1,0,1)) + stride-2 conv, BN,
ReLU6, depthwise conv, pointwise conv, global average pool, linear) and torchvision's
mobilenet_v2(num_classes=1), both with non-trivial BatchNorm statistics, behind a wrapper
that takes 0..255 NCHW pixels, applies ImageNet mean/std and returns [1 - p, p].
"""
from __future__ import annotations

import shutil
import time

import moleport  # noqa: F401  (import-order guard: torch._dynamo before coremltools/TF)
import numpy as np
import pytest
import torch
from torch import nn

from moleport.parity.runners.coreml_mil import (
    IMPLEMENTATION, CoreMLPackageError, CoreMLReferenceRunner)
from moleport.parity.runners.coreml_ops import UnsupportedOpError

ct = pytest.importorskip("coremltools")

LABELS = ["nevus", "melanoma"]
SIZE = 224
N_IMAGES = 4
FP32_TOL = 1e-4
FP16_TOL = 0.05


class PixelWrapper(nn.Module):
    """0..255 NCHW pixels -> ImageNet normalisation -> net -> [1 - p, p], p = sigmoid(logit)."""

    def __init__(self, net: nn.Module, pixel_scale: float = 1.0, pixel_bias: float = 0.0):
        super().__init__()
        self.net = net
        # Undo an ImageType scale/bias so the net still sees (pixel/255 - mean) / std.
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        self.register_buffer("mean", (mean * 255.0 * pixel_scale + pixel_bias))
        self.register_buffer("std", std * 255.0 * pixel_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.net((x - self.mean) / self.std)[:, :1])
        return torch.cat([1.0 - p, p], dim=1)


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> list[nn.Module]:
    pad = [nn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
    return pad + [nn.Conv2d(cin, cout, k, stride, 0 if stride == 2 else k // 2, groups=groups,
                            bias=False), nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU6()]


def small_mobilenet() -> nn.Module:
    layers = _conv_bn(3, 16, 3, 2)
    for cin, cout, stride in [(16, 32, 1), (32, 48, 2), (48, 48, 1)]:
        layers += _conv_bn(cin, cin, 3, stride, groups=cin) + _conv_bn(cin, cout, 1, 1)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(1e-3),
                         nn.Linear(48, 1))


def images(n: int, seed: int) -> np.ndarray:
    """Varied N x H x W x 3 uint8 images: random colour gradients, blobs and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(-1, 1, (3, 3))
        img = 128 + 100 * (a * xx[..., None] + b * yy[..., None] + c * xx[..., None] * yy[..., None])
        cy, cx, r = rng.uniform(0.2, 0.8, 3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < (0.3 * r) ** 2
        img[blob] = rng.uniform(0, 255, 3)
        img += rng.normal(0, rng.uniform(5, 40), img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def nontrivial(net: nn.Module, seed: int) -> nn.Module:
    """BN running stats from train-mode passes on varied images, random BN affine, and a
    classifier scaled so p spreads across images."""
    torch.manual_seed(seed)
    x = torch.from_numpy(images(8, seed + 100)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / 0.225
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0  # running stats := this batch's stats
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.2)
    net.train()
    with torch.no_grad():
        net(x)
        linear = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.normal_(linear.weight, 0.0, 4.0 / linear.in_features ** 0.5)
    return net.eval()


def convert(model: nn.Module, path, precision, target=None, scale=1.0, bias=0.0):
    example = torch.rand(1, 3, SIZE, SIZE) * 255.0
    traced = torch.jit.trace(model.eval(), example)
    ml = ct.convert(
        traced,
        inputs=[ct.ImageType(name="image", shape=(1, 3, SIZE, SIZE),
                             color_layout=ct.colorlayout.RGB, scale=scale, bias=[bias] * 3)],
        classifier_config=ct.ClassifierConfig(LABELS), convert_to="mlprogram",
        compute_precision=precision, minimum_deployment_target=target or ct.target.iOS15)
    ml.save(str(path))
    return path


def torch_p(model: nn.Module, x_uint8: np.ndarray, scale=1.0, bias=0.0) -> np.ndarray:
    x = torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float() * scale + bias
    with torch.no_grad():
        return model.eval()(x)[:, 1].double().numpy()


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return images(N_IMAGES, seed=0)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    import torchvision

    return {
        "small": PixelWrapper(nontrivial(small_mobilenet(), seed=1)).eval(),
        "mobilenet_v2": PixelWrapper(
            nontrivial(torchvision.models.mobilenet_v2(num_classes=1), seed=2)).eval(),
    }


@pytest.fixture(scope="module")
def packages(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("coreml_mil")
    plan = {  # (model, precision, deployment target)
        ("small", "fp32"): (ct.precision.FLOAT32, ct.target.iOS15),
        ("small", "fp16"): (ct.precision.FLOAT16, ct.target.iOS15),
        ("mobilenet_v2", "fp32"): (ct.precision.FLOAT32, ct.target.iOS16),
        ("mobilenet_v2", "fp16"): (ct.precision.FLOAT16, ct.target.iOS17),
    }
    return {key: convert(models[key[0]], root / f"{key[0]}_{key[1]}.mlpackage", prec, target)
            for key, (prec, target) in plan.items()}


@pytest.mark.parametrize("name", ["small", "mobilenet_v2"])
@pytest.mark.parametrize("precision,tol", [("fp32", FP32_TOL), ("fp16", FP16_TOL)])
def test_matches_torch(name, precision, tol, models, packages, x):
    runner = CoreMLReferenceRunner(packages[name, precision])
    assert runner.precision == precision
    assert runner.labels == tuple(LABELS)
    assert runner.implementation == IMPLEMENTATION
    proba = runner.predict_proba(x)
    p = runner.predict(x)
    want = torch_p(models[name], x)
    assert proba.shape == (N_IMAGES, 2) and p.shape == (N_IMAGES,)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=2e-3)
    np.testing.assert_array_equal(p, proba[:, 1])
    assert np.ptp(want) > 0.1, f"degenerate test model: torch p = {want}"
    err = np.abs(p - want).max()
    print(f"{name} {precision}: max |dp| = {err:.2e} (p = {np.round(want, 3)})")
    assert err <= tol


def test_single_image_and_uint8_or_float_inputs(packages, x):
    runner = CoreMLReferenceRunner(packages["small", "fp32"])
    one = runner.predict(x[0])
    assert one.shape == (1,)
    np.testing.assert_allclose(runner.predict(x[:1].astype(np.float32)), one)
    with pytest.raises(ValueError, match="224 x 224 x 3"):
        runner.predict(x[:, :200])


def test_imagetype_scale_and_bias_are_applied(models, tmp_path, x):
    """ImageType scale/bias live as ops at the head of an ML Program; running it applies them."""
    scale, bias = 1.0 / 255.0, -0.5
    model = PixelWrapper(models["small"].net, pixel_scale=scale, pixel_bias=bias).eval()
    path = convert(model, tmp_path / "scaled.mlpackage", ct.precision.FLOAT32,
                   scale=scale, bias=bias)
    runner = CoreMLReferenceRunner(path)
    assert {"mul", "add"} <= set(runner.op_types[:2])
    want = torch_p(model, x, scale, bias)
    np.testing.assert_allclose(want, torch_p(models["small"], x), atol=1e-4)
    assert np.abs(runner.predict(x) - want).max() <= FP32_TOL


def test_unknown_op_is_named(tmp_path):
    class Gelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 2)
            self.fc = nn.Linear(4, 1)

        def forward(self, x):
            return self.fc(nn.functional.gelu(self.conv(x)).mean(dim=(2, 3)))

    path = convert(PixelWrapper(Gelu()), tmp_path / "gelu.mlpackage", ct.precision.FLOAT32)
    with pytest.raises(UnsupportedOpError, match=r"unsupported MIL op 'gelu' \(producing '\w+'\)"):
        CoreMLReferenceRunner(path)


def _weights(pkg):
    return pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"


def test_missing_weights_file_is_named(packages, tmp_path):
    pkg = shutil.copytree(packages["small", "fp32"], tmp_path / "broken.mlpackage")
    _weights(pkg).unlink()
    with pytest.raises(CoreMLPackageError, match=r"weight\.bin: weights file is missing"):
        CoreMLReferenceRunner(pkg)


def test_truncated_weights_file_is_named(packages, tmp_path):
    pkg = shutil.copytree(packages["small", "fp32"], tmp_path / "broken.mlpackage")
    blob = _weights(pkg)
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])
    with pytest.raises(CoreMLPackageError, match=r"weight\.bin: .*truncated or corrupt"):
        CoreMLReferenceRunner(pkg)


def test_truncated_or_missing_spec_is_named(packages, tmp_path):
    pkg = shutil.copytree(packages["small", "fp32"], tmp_path / "broken.mlpackage")
    spec = pkg / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec.write_bytes(spec.read_bytes()[: spec.stat().st_size // 2])
    with pytest.raises(CoreMLPackageError, match=r"model\.mlmodel"):
        CoreMLReferenceRunner(pkg)
    spec.unlink()
    with pytest.raises(CoreMLPackageError, match=r"model\.mlmodel: model specification file"):
        CoreMLReferenceRunner(pkg)
    with pytest.raises(CoreMLPackageError, match="not an .mlpackage directory"):
        CoreMLReferenceRunner(tmp_path / "nowhere.mlpackage")


def test_mobilenet_v2_speed(packages, x):
    runner = CoreMLReferenceRunner(packages["mobilenet_v2", "fp32"])
    runner.predict(x[:1])  # warm-up
    t0 = time.perf_counter()
    runner.predict(x[:2])
    ms = (time.perf_counter() - t0) / 2 * 1e3
    print(f"mobilenet_v2 fp32 reference: {ms:.0f} ms/image")
    assert ms < 3000  # generous: a shared, loaded CI core; ~100-250 ms when quiet
