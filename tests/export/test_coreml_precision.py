"""Core ML reduced precision: mixed fp16 (backbone only) and weight-only int8 (``w8``).

A small MobileNet-style backbone behind the real export wrapper with in-graph
``shades-of-gray-p6`` colour constancy and temperature 1.7, exported by ``to_coreml`` and run
by the independent numpy ML-Program interpreter (``moleport.runtimes.coreml_mil``).

Measured on this model (8 dim images, numpy reference, max |dP(melanoma)| vs PyTorch):
old full-fp16 program 9.5e-3, mixed fp16 5.7e-4 (16.6x closer), w8 2.2e-3, fp32 2.4e-7.
(Full MobileNetV1, quick-default checkpoint, 16 synthetic images: old fp16 5.4e-2, mixed 7.7e-3.)
"""
from __future__ import annotations

import moleport  # noqa: F401  (import-order guard: torch._dynamo before coremltools/TF)
import numpy as np
import pytest
import torch
from torch import nn

from moleport.export import coreml
from moleport.export.coreml import (CoremlExportError, PRECISIONS, precision_map, to_coreml)
from moleport.export.wrapper import INPUT_NAME, wrap
from moleport.runtimes.coreml_mil import CoreMLReferenceRunner
from moleport.spec import ModelSpec

ct = pytest.importorskip("coremltools")

SIZE = 224
SPEC = ModelSpec("mobilenet", color_constancy="shades-of-gray-p6", temperature=1.7, threshold=0.3)
MIXED_FP16_TOL = 1.5e-3  # measured 5.7e-4
W8_TOL = 0.01            # measured 2.2e-3 (int8 per-channel weights of a random model, fp32 compute)
MIN_IMPROVEMENT = 6.0    # old full-fp16 error / mixed fp16 error; measured 16.6
PRE_TYPES = {"avg_pool", "reduce_mean", "log", "exp", "sqrt", "clip", "real_div", "mul", "add", "pad"}
HEAD_TYPES = {"mul", "sigmoid", "sub", "concat"}


#: depthwise-separable blocks (in, out, stride); only the last pointwise conv (192 x 48 = 9216
#: weights) is above coreml.W8_FP32_MAX_ELEMENTS (8192), so w8 quantizes it and keeps the rest fp32.
BLOCKS = [(16, 32, 1), (32, 48, 2), (48, 48, 1), (48, 192, 2)]


def _conv_bn(cin, cout, k, stride, groups=1):
    pad = [nn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
    return pad + [nn.Conv2d(cin, cout, k, stride, 0 if stride == 2 else k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU6()]


def backbone(seed: int = 1) -> nn.Module:
    """Tiny MobileNetV1 (depthwise-separable) with BN statistics from images and a spread-out logit."""
    torch.manual_seed(seed)
    layers = _conv_bn(3, 16, 3, 2)
    for cin, cout, stride in BLOCKS:
        layers += _conv_bn(cin, cin, 3, stride, groups=cin) + _conv_bn(cin, cout, 1, 1)
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(BLOCKS[-1][1], 1))
    x = torch.from_numpy(images(8, seed + 100)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / 0.225
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.2)
    net.train()
    with torch.no_grad():
        net(x)
        # logits of the calibration images: mean 0, std 2 * temperature (p spread over ~0.1..0.9)
        nn.init.normal_(net[-1].weight, 0.0, 1.0)
        net[-1].bias.zero_()
        net.eval()
        logit = net(x)
        net[-1].weight.mul_(2.0 * SPEC.temperature / logit.std())
        net[-1].bias.fill_(-float(logit.mean() * 2.0 * SPEC.temperature / logit.std()))
    return net.eval()


def images(n: int, seed: int, gain: float = 1.0) -> np.ndarray:
    """Skin-toned images with a dark lesion, gradients and noise; ``gain`` < 1 dims them (dark
    dermoscopy corners and lesions are where fp16 x**6 colour-constancy moments lose precision)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = []
    for _ in range(n):
        a, b = rng.uniform(-0.4, 0.4, (2, 3))
        img = rng.uniform([150, 100, 80], [240, 200, 170]) * (1 + a * xx[..., None] + b * yy[..., None])
        cy, cx, r = rng.uniform(0.3, 0.7, 3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < (0.35 * r) ** 2
        img[blob] = rng.uniform([30, 15, 15], [140, 90, 80])
        img += rng.normal(0, rng.uniform(4, 25), img.shape)
        out.append(np.clip(img * gain, 0, 255).astype(np.uint8))
    return np.stack(out)


def _old_full_fp16(net, spec, path):
    """The previous fp16 export: every op (colour constancy and head included) in fp16."""
    traced = torch.jit.trace(wrap(net, spec, "NCHW"), torch.zeros(1, 3, SIZE, SIZE))
    image = ct.ImageType(name=INPUT_NAME, shape=(1, 3, SIZE, SIZE), scale=1.0, bias=[0.0] * 3,
                         color_layout=ct.colorlayout.RGB)
    ml = ct.convert(traced, convert_to="mlprogram", inputs=[image],
                    classifier_config=ct.ClassifierConfig(list(spec.labels), predicted_feature_name="classLabel"),
                    compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS16,
                    skip_model_load=True, pass_pipeline=coreml._pass_pipeline(ct))
    ml.save(str(path))
    return path


def program_ops(package):
    """[(op type, [output dtype names], {input name: [argument names]})] of ``main``, consts excluded."""
    from coremltools.proto import MIL_pb2, Model_pb2

    spec = Model_pb2.Model()
    spec.ParseFromString((package / "Data" / "com.apple.CoreML" / "model.mlmodel").read_bytes())
    fn = spec.mlProgram.functions["main"]
    out = []
    for op in fn.block_specializations[fn.opset].operations:
        if op.type == "const":
            continue
        dtypes = [MIL_pb2.DataType.Name(o.type.tensorType.dataType) for o in op.outputs
                  if o.type.WhichOneof("type") == "tensorType"]
        out.append((op.type, dtypes, {k: [a.name for a in v.arguments] for k, v in op.inputs.items()},
                    [o.name for o in op.outputs]))
    inputs = [MIL_pb2.DataType.Name(i.type.tensorType.dataType) for i in fn.inputs]
    return inputs, out


def _weights_bytes(package) -> int:
    return (package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").stat().st_size


@pytest.fixture(scope="module")
def net():
    return backbone()


@pytest.fixture(scope="module")
def packages(net, tmp_path_factory):
    root = tmp_path_factory.mktemp("coreml_precision")
    out = {p: to_coreml(net, SPEC, root, p) for p in PRECISIONS}
    out["old_fp16"] = _old_full_fp16(net, SPEC, root / "old_fp16.mlpackage")
    return out


@pytest.fixture(scope="module")
def x():
    return images(8, seed=3, gain=0.3)


@pytest.fixture(scope="module")
def want(net, x):
    with torch.no_grad():
        return wrap(net, SPEC, "NHWC")(torch.from_numpy(x).float())[:, 1].double().numpy()


def _split(ops):
    """(pre, backbone, head) ops of a program: before the first conv / through the last linear / after."""
    types = [t for t, *_ in ops]
    first = types.index("conv")
    last = len(types) - 1 - types[::-1].index("linear")
    return ops[:first], ops[first:last + 1], ops[last + 1:]


def test_precision_map():
    assert precision_map("fp32") == {"preprocess": "fp32", "backbone": "fp32", "head": "fp32",
                                     "io": "fp32 image in, fp32 probabilities out"}
    assert precision_map("fp16")["backbone"] == "fp16"
    assert precision_map("w8")["backbone"] == "int8 weights, fp32 compute"
    assert {precision_map(p)["preprocess"] for p in PRECISIONS} == {"fp32"}
    assert {precision_map(p)["head"] for p in PRECISIONS} == {"fp32"}
    with pytest.raises(ValueError, match="w4"):
        precision_map("w4")
    with pytest.raises(ValueError, match="int8"):
        to_coreml(nn.Identity(), SPEC, "/nonexistent", "int8")


def test_fp16_keeps_preprocessing_and_head_fp32(packages):
    inputs, ops = program_ops(packages["fp16"])
    assert inputs == ["FLOAT32"]
    pre, body, head = _split(ops)
    assert PRE_TYPES <= {t for t, *_ in pre}, "colour constancy / normalisation ops missing"
    assert HEAD_TYPES <= {t for t, *_ in head}
    # pre-processing: fp32 throughout, then exactly one cast to fp16 feeding the first conv
    assert [d for t, d, *_ in pre[:-1]] == [["FLOAT32"]] * (len(pre) - 1), pre
    assert pre[-1][0] == "cast" and pre[-1][1] == ["FLOAT16"]
    # backbone: every op fp16 (convs, activations, padding, pooling, the logit linear)
    assert all(d == ["FLOAT16"] for t, d, *_ in body), [(t, d) for t, d, *_ in body]
    assert sum(t == "conv" for t, *_ in body) == 2 * len(BLOCKS) + 1 and body[-1][0] == "linear"
    # head: cast back to fp32 first, then temperature / sigmoid / 1-p / concat in fp32
    assert head[0][0] == "cast" and head[0][1] == ["FLOAT32"]
    assert all(d == ["FLOAT32"] for t, d, *_ in head if t != "classify"), head
    probs = next(i["probabilities"][0] for t, _, i, _ in head if t == "classify")
    assert next(d for t, d, _, names in head if probs in names) == ["FLOAT32"]  # fp32 probabilities out


def test_old_full_fp16_program_would_fail_those_checks(packages):
    """The structural checks above can fail: the former export runs colour constancy and head in fp16."""
    _, ops = program_ops(packages["old_fp16"])
    pre, _, head = _split(ops)
    assert any(d == ["FLOAT16"] for t, d, *_ in pre if t in ("log", "exp", "avg_pool"))
    assert any(d == ["FLOAT16"] for t, d, *_ in head if t == "sigmoid")


def test_w8_dequantizes_large_backbone_weights_only(packages):
    inputs, ops = program_ops(packages["w8"])
    assert inputs == ["FLOAT32"]
    dequant = {names[0] for t, _, _, names in ops if t == "constexpr_affine_dequantize"}
    weight_ops = [(t, i["weight"][0]) for t, _, i, _ in ops if t in ("conv", "linear")]
    assert len(weight_ops) == 2 * len(BLOCKS) + 2
    # with this model's sizes, exactly the 192 x 48 pointwise conv is above W8_FP32_MAX_ELEMENTS
    large = [w for t, w in weight_ops if w in dequant]
    assert len(large) == len(dequant) == 1 and weight_ops[-2] == ("conv", large[0])
    # nothing else reads a dequantized tensor; biases and pre-processing scale/shift stay fp32 consts
    for t, _, i, _ in ops:
        others = [a for k, args in i.items() if not (t in ("conv", "linear") and k == "weight") for a in args]
        assert not dequant & set(others), (t, i)
    assert all(d == ["FLOAT32"] for t, d, *_ in ops if t != "classify")  # fp32 compute everywhere
    assert "batch_norm" not in {t for t, *_ in ops}  # the normalisation is not re-fused (SKIPPED_PASSES)


def test_w8_threshold_selects_weights(net, tmp_path, monkeypatch):
    """With the threshold at 0 every backbone conv/linear weight is int8 (the policy is the threshold)."""
    monkeypatch.setattr(coreml, "W8_FP32_MAX_ELEMENTS", 0)
    _, ops = program_ops(to_coreml(net, SPEC, tmp_path, "w8"))
    dequant = {names[0] for t, _, _, names in ops if t == "constexpr_affine_dequantize"}
    assert {i["weight"][0] for t, _, i, _ in ops if t in ("conv", "linear")} == dequant
    monkeypatch.setattr(coreml, "W8_FP32_MAX_ELEMENTS", 10 ** 9)
    with pytest.raises(CoremlExportError, match="nothing to quantize"):
        to_coreml(net, SPEC, tmp_path, "w8")


def test_weight_file_sizes(packages):
    """Each int8 weight saves 3 of its 4 bytes (less per-channel scales and zero points).

    Full MobileNetV1 (3.19M weights): weight.bin fp32 12,791,808 / fp16 6,397,696 / w8 3,406,208
    bytes (w8 = 26.6% of fp32, with 47,552 small-layer weights kept fp32)."""
    sizes = {p: _weights_bytes(packages[p]) for p in PRECISIONS}
    print("weight.bin bytes:", sizes)  # measured 65152 / 33536 / 38592
    quantized = BLOCKS[-1][0] * BLOCKS[-1][1]  # the one weight above W8_FP32_MAX_ELEMENTS
    assert sizes["fp16"] < 0.55 * sizes["fp32"]
    assert 0.95 * 3 * quantized <= sizes["fp32"] - sizes["w8"] <= 3 * quantized


def test_w8_dequantized_weights_match_fp32_weights(packages):
    """The interpreter's constexpr_affine_dequantize gives back each weight within half an int8 step."""
    def weights(runner):
        return [dict(s.inputs["weight"][1])["const"] for s in runner._steps if s.op_type in ("conv", "linear")]

    w32 = weights(CoreMLReferenceRunner(packages["fp32"]))
    w8 = weights(CoreMLReferenceRunner(packages["w8"]))
    assert len(w32) == len(w8) == 2 * len(BLOCKS) + 2
    for a, b in zip(w32, w8):
        assert a.shape == b.shape and b.dtype == np.float32
        if a.size <= coreml.W8_FP32_MAX_ELEMENTS:
            np.testing.assert_array_equal(a, b)  # kept fp32
            continue
        step = np.abs(a).reshape(a.shape[0], -1).max(axis=1) / 127.0  # per output channel
        err = np.abs(a - b).reshape(a.shape[0], -1).max(axis=1)
        assert np.all(err <= step * 0.5 + 1e-7), (err / step).max()
        assert np.any(a != b)  # really quantized


def test_outputs_match_torch(packages, x, want):
    assert np.ptp(want) > 0.1, f"degenerate test model: p = {want}"
    err = {}
    for p in (*PRECISIONS, "old_fp16"):
        runner = CoreMLReferenceRunner(packages[p])
        proba = runner.predict_proba(x)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6 if p != "old_fp16" else 2e-3)
        err[p] = float(np.abs(proba[:, 1] - want).max())
    print("max |dp| vs torch:", {k: f"{v:.2e}" for k, v in err.items()})
    assert err["fp32"] <= 1e-5
    assert err["fp16"] <= MIXED_FP16_TOL
    assert err["old_fp16"] >= MIN_IMPROVEMENT * err["fp16"], err
    assert 1e-5 < err["w8"] <= W8_TOL, err  # int8 weights do change the output, within tolerance


def test_fp16_without_a_conv_is_refused(tmp_path):
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 1)).eval()
    with pytest.raises(CoremlExportError, match="no conv"):
        to_coreml(net, SPEC, tmp_path, "fp16")
