"""MobileNetV1 (alpha 1.0) laid out like Keras-applications ``MobileNet``.

torchvision has no MobileNetV1, and the paper used the Keras one, so it is built here from
plain export-friendly layers (ZeroPad2d, Conv2d, BatchNorm2d, ReLU6, AdaptiveAvgPool2d,
Dropout, Linear) with no Python control flow on tensor values.

Keras details reproduced exactly:
- stride-2 3x3 convs (conv1 and depthwise blocks 2, 4, 6, 12) are preceded by
  ``ZeroPadding2D(((0, 1), (0, 1)))`` and use no padding of their own; stride-1 ones pad 1
  on every side ('same');
- BatchNorm eps 1e-3; no conv biases;
- top: global average pool -> Dropout(1e-3) -> classifier.

:func:`keras_state_dict_to_moleport` maps the Keras layer names used by the shared ImageNet
weights (``conv1``, ``conv1_bn``, ``conv_dw_{i}``, ``conv_dw_{i}_bn``, ``conv_pw_{i}``,
``conv_pw_{i}_bn``, ``conv_preds``) onto this module's names.
"""
from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn

#: Output channels of the 13 pointwise convs, and the depthwise blocks with stride 2.
POINTWISE_CHANNELS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
STRIDE2_BLOCKS = frozenset({2, 4, 6, 12})
BN_EPS = 1e-3
FEATURES = 1024


class ConvBN(nn.Sequential):
    """[ZeroPad2d if stride 2] -> Conv2d (no bias) -> BatchNorm2d(eps 1e-3) [-> ReLU6].

    Stride 2 pads (k - 2) // 2 before and (k - 1) // 2 after (TF/Keras 'SAME' on even inputs: (0, 1) for 3x3,
    (1, 2) for 5x5) and the conv none; stride 1 pads k // 2 on every side. Also EfficientNet-Lite's layer."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: bool = True):
        layers: list[tuple[str, nn.Module]] = []
        if stride == 2:
            layers.append(("pad", nn.ZeroPad2d(((kernel - 2) // 2, (kernel - 1) // 2) * 2)))
            padding = 0
        else:
            padding = kernel // 2
        layers += [
            ("conv", nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)),
            ("bn", nn.BatchNorm2d(cout, eps=BN_EPS)),
        ]
        if act:
            layers.append(("act", nn.ReLU6(inplace=True)))
        super().__init__(OrderedDict(layers))


class DepthwiseSeparable(nn.Sequential):
    """Keras ``_depthwise_conv_block``: 3x3 depthwise ConvBN, then 1x1 pointwise ConvBN."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(OrderedDict([
            ("dw", ConvBN(cin, cin, 3, stride, groups=cin)),
            ("pw", ConvBN(cin, cout, 1, 1)),
        ]))


class MobileNetV1(nn.Module):
    """Keras-applications MobileNet (alpha 1.0). Input N x 3 x H x W normalised; output N x num_classes."""

    def __init__(self, num_classes: int = 1000, dropout: float = 1e-3):
        super().__init__()
        blocks: list[nn.Module] = [ConvBN(3, 32, 3, 2)]
        cin = 32
        for i, cout in enumerate(POINTWISE_CHANNELS, start=1):
            blocks.append(DepthwiseSeparable(cin, cout, 2 if i in STRIDE2_BLOCKS else 1))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


_KERAS_NAME = re.compile(r"^conv_(dw|pw)_(\d+)(_bn)?\.(.+)$")


def _map_keras_key(key: str) -> str:
    if key.startswith("conv1_bn."):
        return "features.0.bn." + key[len("conv1_bn."):]
    if key.startswith("conv1."):
        return "features.0.conv." + key[len("conv1."):]
    if key.startswith("conv_preds."):
        return "classifier." + key[len("conv_preds."):]
    m = _KERAS_NAME.match(key)
    if m is None:
        raise KeyError(f"not a Keras MobileNet layer name: {key!r}")
    kind, idx, bn, rest = m.groups()
    if not 1 <= int(idx) <= len(POINTWISE_CHANNELS):
        raise KeyError(f"Keras MobileNet has blocks 1..13, got {key!r}")
    return f"features.{int(idx)}.{kind}.{'bn' if bn else 'conv'}.{rest}"


def is_keras_state_dict(state_dict: dict) -> bool:
    return "conv1.weight" in state_dict and "conv_dw_1.weight" in state_dict


def keras_state_dict_to_moleport(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename Keras-named MobileNet weights to :class:`MobileNetV1` names.

    ``conv_preds`` (a 1x1 conv, [classes, 1024, 1, 1]) becomes the Linear ``classifier``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = _map_keras_key(key)
        if new == "classifier.weight" and value.ndim == 4:
            value = value.flatten(1)
        out[new] = value
    return out
