"""One input contract for every exported artifact: raw RGB pixels in, two probabilities out.

Apps hand the artifact the canonical 224x224 RGB image (:func:`moleport.preprocess.load_image`)
as float32 values 0..255; the graph itself applies the spec's colour constancy (if any) and
mean/std normalisation, divides the single logit by the spec's temperature and turns it into
``[P(labels[0]), P(labels[1])]`` (``[P(nevus), P(melanoma)]``).

The in-graph colour constancy is written here on its own (not imported from
:mod:`moleport.preprocess`), so the parity harness, whose PyTorch reference uses the
preprocess implementation, compares two independent implementations of the rule.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from moleport.spec import SHADES_OF_GRAY, TTA_RULES, TTA_VIEWS, ModelSpec

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
LAYOUTS = ("NHWC", "NCHW")


def _pool_block(size: int) -> int:
    """The divisor of ``size`` closest to its square root (1 when there is none above 1)."""
    divisors = [b for b in range(2, size) if size % b == 0]
    return min(divisors, key=lambda b: abs(b * b - size)) if divisors else 1


class ShadesOfGray(nn.Module):
    """In-graph ``shades-of-gray-p6`` on NCHW pixels scaled to 0..1.

    Written with ops every target delegates (ExecuTorch's XNNPACK takes neither ``pow(x, 1/6)`` nor a
    channel ``sum``): the 6th power as products, the 6th root as ``exp(log(m) / 6)``, and the sum of
    squares over the 3 channels as a spatial mean of the N x 1 x 1 x 3 view, times 3.

    The mean of x**6 over 224 x 224 pixels is taken in two levels (average pooling over blocks of
    about sqrt(size) pixels, then the mean of the block means): a single fp32 global average pool
    in XNNPACK is ~3e-5 off the float64 value (relative), enough to move P(melanoma) by 3.6e-4 and
    fail the fp32 parity gate; two levels bring it to ~2e-7 (tests/export/test_colour_constancy_precision.py).
    """

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.block = _pool_block(size)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x * x
        x6 = x2 * x2 * x2
        if self.block > 1:
            x6 = nn.functional.avg_pool2d(x6, self.block, self.block)
        moment = torch.mean(x6, dim=(2, 3), keepdim=True)  # N x 3 x 1 x 1
        illum = torch.exp(torch.log(moment + 1e-12) * (1.0 / 6.0))
        sq = (illum * illum).reshape(-1, 1, 1, 3)
        norm = torch.sqrt(torch.mean(sq, dim=(2, 3), keepdim=True) * 3.0)  # N x 1 x 1 x 1
        gain = torch.clamp(norm, min=self.eps) / (torch.clamp(illum, min=self.eps) * 1.7320508075688772)
        return torch.clamp(x * gain, 0.0, 1.0)


class GridViews(nn.Module):
    """In-graph test-time augmentation: the views of NCHW images stacked on the batch (``V*N x C x H x W``), and the
    mean of the classifier's logits over them.

    Written here on its own (the PyTorch reference takes its views from :func:`moleport.preprocess.tta_views` on the
    uint8 NHWC image). The views are built by doubling: ``[x, x^T]`` (dihedral8 only), then that and its up-down
    flip, then all of those and their left-right flips -- the 8 elements of the square's symmetry group with one
    transpose and two flips, concatenations of two. The mean is a linear layer with weights 1/V on ``N x V``: every
    converter keeps a 2-D matrix product as it is (onnx2tf re-lays a 4-D reduction as NHWC and got it wrong) and
    ExecuTorch's XNNPACK delegates it (not a mean over the batch); the flips (gathers, see :meth:`flip`), which
    XNNPACK has no kernel for, are the only ops left to ExecuTorch's portable kernels (exact copies).
    """

    def __init__(self, rule: str, size: int):
        super().__init__()
        if rule not in TTA_RULES:
            raise ValueError(f"test-time augmentation {rule!r} has no in-graph implementation")
        self.rule = rule
        self.count = TTA_VIEWS[rule]
        self.register_buffer("reverse", torch.arange(size - 1, -1, -1))
        self.register_buffer("weight", torch.full((1, self.count), 1.0 / self.count))

    def flip(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """``x.flip(dim)`` as a gather of the reversed indices: onnx2tf re-lays ``flip`` (a negative-step slice)
        on the wrong axis once it moves the tensor to NHWC, a gather it maps right (measured on a small net: |Δp| 0.014-0.081 with flip, <= 6e-8 with gathers)."""
        return torch.index_select(x, dim, self.reverse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rule == "dihedral8":
            x = torch.cat([x, x.transpose(2, 3)], dim=0)
        if self.rule != "flips2":
            x = torch.cat([x, self.flip(x, 2)], dim=0)
        return torch.cat([x, self.flip(x, 3)], dim=0)

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """``V*N x 1`` view-major logits -> ``N x 1``, their mean over the views (a 1/V-weighted linear layer)."""
        per_image = logits.reshape(self.count, -1).transpose(0, 1)  # N x V
        return nn.functional.linear(per_image, self.weight)


class PixelClassifier(nn.Module):
    """``classifier`` (normalised NCHW -> N x 1 logit) behind raw-pixel normalisation and a 2-way softmax-like head."""

    def __init__(self, classifier: nn.Module, spec: ModelSpec, layout: str = "NHWC"):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.classifier = classifier
        self.layout = layout
        self.bgr = spec.color_order == "BGR"
        self.melanoma_first = spec.melanoma_index == 0
        if spec.color_constancy not in (None, SHADES_OF_GRAY):
            raise ValueError(f"colour constancy {spec.color_constancy!r} has no in-graph implementation")
        self.constancy = ShadesOfGray(spec.input_size) if spec.color_constancy else None
        self.inv_temperature = 1.0 / float(spec.temperature)
        self.views = GridViews(spec.tta, spec.input_size) if spec.tta else None
        mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
        # (x / 255 - mean) / std  ==  x * scale + shift; with colour constancy x / 255 comes first
        pre = 1.0 if self.constancy is not None else 255.0
        self.register_buffer("scale", 1.0 / (pre * std))
        self.register_buffer("shift", -mean / std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2) if self.layout == "NHWC" else pixels
        if self.bgr:
            x = x.flip(1)
        if self.constancy is not None:
            x = self.constancy(x * (1.0 / 255.0))
        x = x * self.scale + self.shift
        if self.views is None:
            logit = self.classifier(x)
        else:  # the mean logit over the views: V*N x 1 -> N x 1 (GridViews.mean)
            logit = self.views.mean(self.classifier(self.views(x)))
        if self.inv_temperature != 1.0:
            logit = logit * self.inv_temperature
        p = torch.sigmoid(logit)  # N x 1 = P(melanoma)
        pair = (p, 1.0 - p) if self.melanoma_first else (1.0 - p, p)
        return torch.cat(pair, dim=1)


def wrap(classifier: nn.Module, spec: ModelSpec, layout: str = "NHWC") -> PixelClassifier:
    """An eval-mode :class:`PixelClassifier` around ``classifier``."""
    return PixelClassifier(classifier, spec, layout).eval()


def input_shape(spec: ModelSpec, layout: str = "NHWC") -> tuple[int, int, int, int]:
    s = spec.input_size
    return (1, s, s, 3) if layout == "NHWC" else (1, 3, s, s)


def export_contract(spec: ModelSpec) -> dict[str, Any]:
    """The artifact input/output contract recorded in the spec and manifest.json."""
    s = spec.input_size
    return {
        "name": INPUT_NAME,
        "dtype": "float32",
        "range": [0.0, 255.0],
        "color_order": "RGB",
        "size": [s, s],
        "resize_rule": spec.resize_rule,
        "normalization": "inside the graph: (x / 255 - mean) / std",
        "color_constancy": (f"inside the graph: {spec.color_constancy} on x / 255, before mean/std"
                            if spec.color_constancy else None),
        "temperature": f"inside the graph: P = sigmoid(logit / {spec.temperature:g})",
        "tta": (f"inside the graph: the logit is the mean over the {TTA_VIEWS[spec.tta]} {spec.tta} views of the "
                f"normalised image" if spec.tta else None),
        "layout": {"onnx": "NHWC", "tflite": "NHWC", "executorch": "NHWC", "coreml": "image (RGB pixel buffer)"},
        "shape": {"NHWC": [1, s, s, 3], "NCHW": [1, 3, s, s]},
        "int8_tflite": "int8 input/output tensors: q = round(x / scale) + zero_point (see manifest files[].input.quantization)",
        "output": {"name": OUTPUT_NAME, "shape": [1, 2], "labels": list(spec.labels),
                   "meaning": "probabilities in label order; threshold applies to P(" + spec.positive_class + ")"},
    }


def with_contract(spec: ModelSpec) -> ModelSpec:
    return spec.replace(export_input=export_contract(spec))


@torch.no_grad()
def reference_probabilities(classifier: nn.Module, spec: ModelSpec, pixels_nhwc) -> "torch.Tensor":
    """PyTorch reference ``[P(labels[0]), P(labels[1])]`` for raw 0..255 NHWC pixels (numpy or torch)."""
    x = torch.as_tensor(pixels_nhwc, dtype=torch.float32)
    return wrap(classifier, spec, "NHWC")(x)
