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

from moleport.runtimes.coreml_mil import (
    IMPLEMENTATION, CoreMLPackageError, CoreMLReferenceRunner, MILExecutionError)
from moleport.runtimes.coreml_ops import (UnsupportedOpError, constexpr_affine_dequantize, gather,
                                                  constexpr_blockwise_shift_scale)

ct = pytest.importorskip("coremltools")

LABELS = ["nevus", "melanoma"]
SIZE = 224
N_IMAGES = 4
FP32_TOL = 1e-4
FP16_TOL = 0.05
# int8 per-channel weights (fp32 compute) of the small random model: measured max |dp| 8.9e-3
W8_TOL = 0.03


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


# --------------------------------------------------------------------------- compressed weights

def test_affine_dequantize_kernel():
    q = np.array([[-128, 0, 127], [5, -5, 10]], np.int8)
    scale = np.array([0.5, 2.0], np.float32)
    out = constexpr_affine_dequantize(q, np.int8(0), scale, np.int32(0))
    np.testing.assert_array_equal(out, [[-64.0, 0.0, 63.5], [10.0, -10.0, 20.0]])
    zp = np.array([128, 0, 10], np.uint8)  # uint8 data, zero point along axis 1 (= -1)
    u = np.array([[0, 0, 10], [255, 3, 20]], np.uint8)
    out = constexpr_affine_dequantize(u, zp, np.float32(0.25), np.int32(-1))
    np.testing.assert_array_equal(out, [[-32.0, 0.0, 0.0], [31.75, 0.75, 2.5]])
    with pytest.raises(ValueError, match="scale has 3 values"):
        constexpr_affine_dequantize(q, np.int8(0), np.ones(3, np.float32), np.int32(0))
    with pytest.raises(ValueError, match="axis 2"):
        constexpr_affine_dequantize(q, np.int8(0), np.float32(1), np.int32(2))
    with pytest.raises(UnsupportedOpError, match="int16"):
        constexpr_affine_dequantize(q.astype(np.int16), 0, np.float32(1), np.int32(0))


def test_blockwise_shift_scale_kernel():
    data = np.arange(8, dtype=np.int8).reshape(2, 4)
    scale = np.array([[1.0, 10.0], [100.0, 1000.0]], np.float32)  # blocks of 1 x 2
    offset = np.array([[0, 1], [2, 3]], np.int8)
    out = constexpr_blockwise_shift_scale(data, scale, offset)
    np.testing.assert_array_equal(out, [[0, 1, 10, 20], [200, 300, 3000, 4000]])
    np.testing.assert_array_equal(constexpr_blockwise_shift_scale(data, scale[:, :1]),
                                  data * np.array([[1.0], [100.0]]))
    with pytest.raises(ValueError, match="does not tile"):
        constexpr_blockwise_shift_scale(data, np.ones((2, 3), np.float32))


def _quantized(packages, key, tmp_path, name, config):
    ml = ct.models.MLModel(str(packages[key]), skip_model_load=True)
    path = tmp_path / f"{name}.mlpackage"
    config(ml).save(str(path))
    return path


def _w8(ml):
    op = ct.optimize.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0)
    return ct.optimize.coreml.linear_quantize_weights(ml, ct.optimize.coreml.OptimizationConfig(global_config=op))


@pytest.mark.parametrize("target,constexpr", [("iOS16", "constexpr_affine_dequantize"),
                                              ("iOS18", "constexpr_blockwise_shift_scale")])
def test_int8_weight_programs_match_torch(target, constexpr, models, packages, x, tmp_path):
    """coremltools' own weight quantizer (not moleport's export), run by the reference: iOS16
    stores int8 weights as constexpr_affine_dequantize, iOS18 as constexpr_blockwise_shift_scale."""
    fp32 = convert(models["small"], tmp_path / "fp32.mlpackage", ct.precision.FLOAT32,
                   getattr(ct.target, target))
    path = _quantized({"m": fp32}, "m", tmp_path, "w8", _w8)
    runner = CoreMLReferenceRunner(path)
    assert runner.weight_compression == (constexpr,)
    assert runner.precision == "fp32"
    assert CoreMLReferenceRunner(fp32).weight_compression == ()
    want = torch_p(models["small"], x)
    err = np.abs(runner.predict(x) - want).max()
    exact = np.abs(CoreMLReferenceRunner(fp32).predict(x) - want).max()
    print(f"small w8 ({target}): max |dp| = {err:.2e} (fp32 {exact:.1e})")
    assert exact <= FP32_TOL < err <= W8_TOL  # quantized weights change the output, boundedly


def test_unsupported_constexpr_is_named(packages, tmp_path):
    def palettize(ml):
        op = ct.optimize.coreml.OpPalettizerConfig(mode="uniform", nbits=4, weight_threshold=0)
        return ct.optimize.coreml.palettize_weights(ml, ct.optimize.coreml.OptimizationConfig(global_config=op))

    path = _quantized(packages, ("small", "fp32"), tmp_path, "lut", palettize)
    with pytest.raises(UnsupportedOpError,
                       match=r"unsupported MIL op 'constexpr_lut_to_dense' \(producing '\w+'\)"):
        CoreMLReferenceRunner(path)


def test_truncated_int8_weights_are_named(packages, tmp_path):
    path = _quantized(packages, ("small", "fp32"), tmp_path, "w8", _w8)
    blob = _weights(path)
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])
    with pytest.raises(CoreMLPackageError, match=r"weight\.bin: cannot read (INT8|FLOAT32) weights at offset \d+ for "
                       r"op 'constexpr_affine_dequantize' .*truncated or corrupt"):
        CoreMLReferenceRunner(path)


def test_constexpr_failure_is_an_execution_error(packages, tmp_path, monkeypatch):
    from moleport.runtimes import coreml_mil

    path = _quantized(packages, ("small", "fp32"), tmp_path, "w8", _w8)

    def broken(quantized_data, zero_point, scale, axis):
        raise ValueError("boom")

    monkeypatch.setattr(coreml_mil, "CONSTEXPR_OPS", {"constexpr_affine_dequantize": broken})
    with pytest.raises(MILExecutionError, match=r"op 'constexpr_affine_dequantize' producing '\w+' failed: boom"):
        CoreMLReferenceRunner(path)


def test_gather_kernel():
    """MIL gather (the in-graph test-time augmentation's flips): np.take, negative indices from the end."""
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(gather(x, np.array([3, 2, 1, 0]), axis=3), x[..., ::-1])
    np.testing.assert_array_equal(gather(x, np.array([-1, 0]), axis=2), x[:, :, [2, 0]])
    with pytest.raises(ValueError, match="outside"):
        gather(x, np.array([4]), axis=3)
    with pytest.raises(UnsupportedOpError, match="batch_dims"):
        gather(x, np.array([0]), axis=3, batch_dims=1)
