"""One input contract for every exported artifact: raw RGB pixels in, two probabilities out.

Apps hand the artifact the canonical 224x224 RGB image (:func:`moleport.preprocess.load_image`)
as float32 values 0..255; the graph itself applies the spec's mean/std normalisation and
turns the single logit into ``[P(labels[0]), P(labels[1])]`` (``[P(nevus), P(melanoma)]``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from moleport.spec import ModelSpec

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
LAYOUTS = ("NHWC", "NCHW")


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
        mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
        # (x / 255 - mean) / std  ==  x * scale + shift
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", -mean / std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2) if self.layout == "NHWC" else pixels
        if self.bgr:
            x = x.flip(1)
        logit = self.classifier(x * self.scale + self.shift)
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
