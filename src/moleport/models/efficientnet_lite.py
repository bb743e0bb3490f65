"""EfficientNet-Lite0 (EfficientNet-B0 without squeeze-excitation, ReLU6, fixed stem 32 / head 1280) with
``features`` (stem, the 16 MBConv blocks, head conv) and ``classifier``, as torchvision's mobile networks have,
so ``freeze_prefix`` and ``set_train_mode`` work on it.

TF 'SAME' padding, as the weights were trained with: stride-1 convs pad k // 2 on every side; stride-2 convs are
preceded by ``ZeroPad2d`` of (k - 2) // 2 before and (k - 1) // 2 after, which is TF 'SAME' for the even input
sizes every stride-2 conv sees from a 224 (or any power-of-two multiple of 32) input; the layers are MobileNetV1's
:class:`~moleport.models.mobilenet_v1.ConvBN`. BatchNorm eps 1e-3.

The shared ImageNet file (``../shared/weights/efficientnet_lite0_imagenet.pth``, see its SOURCES.md) uses the
``efficientnet_lite_pytorch`` names (``_conv_stem``, ``_blocks.{i}._expand_conv`` ...);
:func:`lite_state_dict_to_moleport` maps them onto this module's names. Its input normalisation is TF-Lite's
``(x * 255 - 127) / 128``: :data:`LITE_MEAN` / :data:`LITE_STD` on 0..1 pixels, which the ModelSpec carries.
"""
from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn

from moleport.models.mobilenet_v1 import ConvBN

#: (repeats, kernel, stride, expansion, in channels, out channels) of the seven stages.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
FEATURES = 1280
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


class MBConv(nn.Module):
    """[1x1 expansion ConvBN ReLU6] -> kxk depthwise ConvBN ReLU6 -> 1x1 projection ConvBN, + input when shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.expand = ConvBN(cin, mid, 1, 1) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBN(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBN(mid, cout, 1, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """Input N x 3 x H x W normalised with LITE_MEAN / LITE_STD; output N x num_classes."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        blocks: list[nn.Module] = [ConvBN(3, 32, 3, 2)]
        for repeats, kernel, stride, expansion, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expansion))
        blocks.append(ConvBN(STAGES[-1][-1], FEATURES, 1, 1))
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.avgpool(self.features(x)).flatten(1)))


_BLOCK = re.compile(r"^_blocks\.(\d+)\._(expand_conv|bn0|depthwise_conv|bn1|project_conv|bn2)\.(.+)$")
_BLOCK_PART = {"expand_conv": "expand.conv", "bn0": "expand.bn", "depthwise_conv": "depthwise.conv",
               "bn1": "depthwise.bn", "project_conv": "project.conv", "bn2": "project.bn"}
_TOP = {"_conv_stem": "features.0.conv", "_bn0": "features.0.bn", "_fc": "classifier"}


def is_lite_state_dict(state_dict: dict) -> bool:
    return "_conv_stem.weight" in state_dict


def lite_state_dict_to_moleport(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``efficientnet_lite_pytorch`` names -> :class:`EfficientNetLite0` names (unknown keys raise KeyError)."""
    head = f"features.{1 + sum(s[0] for s in STAGES)}"
    top = {**_TOP, "_conv_head": f"{head}.conv", "_bn1": f"{head}.bn"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = _BLOCK.match(key)
        if m:
            out[f"features.{int(m.group(1)) + 1}.{_BLOCK_PART[m.group(2)]}.{m.group(3)}"] = value
            continue
        module, _, rest = key.partition(".")
        if module not in top:
            raise KeyError(f"unexpected EfficientNet-Lite key {key!r}")
        out[f"{top[module]}.{rest}"] = value
    return out
