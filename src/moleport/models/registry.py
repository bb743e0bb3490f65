"""The paper's five architectures and three mobile ones, with the paper's Figure 3 revision: the 1000-class top
becomes ONE logit.

``sigmoid(logit) = P(melanoma)``; train with ``BCEWithLogitsLoss``. Weights:

- ``None`` / ``"none"``: random initialisation;
- ``"imagenet"``: for ``mobilenet`` / ``mobilenet_v2`` / ``efficientnet_lite0`` the converted files in
  ``../shared/weights`` (see its SOURCES.md), with the input normalisation each expects (``Architecture.mean``
  / ``std``, which training writes into the ModelSpec); for the torchvision architectures the official
  torchvision file, used only when it is already in the torch hub cache (never downloaded);
- a path to a local state_dict (ImageNet 1000-class, a 1-logit model, Keras-named MobileNetV1,
  ``efficientnet_lite_pytorch``-named EfficientNet-Lite0 or a moleport checkpoint).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn

from moleport.models.efficientnet_lite import (LITE_MEAN, LITE_STD, EfficientNetLite0, is_lite_state_dict,
                                               lite_state_dict_to_moleport)
from moleport.models.mobilenet_v1 import MobileNetV1, is_keras_state_dict, keras_state_dict_to_moleport
from moleport.paths import shared_dir
from moleport.spec import IMAGENET_MEAN, IMAGENET_STD

CHECKPOINT_FORMAT = "moleport-checkpoint-v1"


class ModelError(ValueError):
    """An architecture or weight source cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Architecture:
    """How to build one architecture. Calling it builds the 1-logit model (``weights`` as build_model)."""

    name: str
    backbone: Callable[[], nn.Module]  # the 1000-class ImageNet network
    head: str  # dotted path of the final Linear that is replaced by a 1-logit Linear
    torchvision_weights: str | None = None  # e.g. "AlexNet_Weights" (hub-cache lookup)
    shared_weights: str | None = None  # file name under ../shared/weights
    #: input normalisation (on 0..1 pixels) the ImageNet weights expect; training puts it into the ModelSpec
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, weights: str | Path | None = None) -> nn.Module:
        return build_model(self.name, weights)


def _tv(fn_name: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        return getattr(torchvision.models, fn_name)(weights=None)
    make.__name__ = f"torchvision.models.{fn_name}"
    return make


ARCHITECTURES: dict[str, Architecture] = {
    "alexnet": Architecture("alexnet", _tv("alexnet"), "classifier.6", "AlexNet_Weights"),
    "mobilenet": Architecture("mobilenet", MobileNetV1, "classifier",
                              shared_weights="mobilenet_v1_keras_tflite_qat_imagenet.pth"),
    "mobilenet_v2": Architecture("mobilenet_v2", _tv("mobilenet_v2"), "classifier.1", "MobileNet_V2_Weights",
                                 shared_weights="mobilenet_v2_tflite_qat_imagenet.pth"),
    "efficientnet_lite0": Architecture("efficientnet_lite0", EfficientNetLite0, "classifier",
                                       shared_weights="efficientnet_lite0_imagenet.pth", mean=LITE_MEAN, std=LITE_STD),
    "mobilenet_v3_large": Architecture("mobilenet_v3_large", _tv("mobilenet_v3_large"), "classifier.3",
                                       "MobileNet_V3_Large_Weights"),
    "resnet50": Architecture("resnet50", _tv("resnet50"), "fc", "ResNet50_Weights"),
    "vgg16": Architecture("vgg16", _tv("vgg16"), "classifier.6", "VGG16_Weights"),
    "vgg19": Architecture("vgg19", _tv("vgg19"), "classifier.6", "VGG19_Weights"),
}


def get_architecture(arch: str) -> Architecture:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}") from None


def replace_head(model: nn.Module, head: str, num_outputs: int = 1) -> nn.Module:
    """Swap the Linear at dotted path ``head`` for a fresh ``Linear(in_features, num_outputs)``."""
    parent_path, _, leaf = head.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    old = model.get_submodule(head)
    if not isinstance(old, nn.Linear):
        raise ModelError(f"head {head!r} is a {type(old).__name__}, expected nn.Linear")
    setattr(parent, leaf, nn.Linear(old.in_features, num_outputs))  # works for Sequential indices too
    return model


def _hub_file(arch: Architecture) -> Path:
    """The torchvision ImageNet file for ``arch`` if it is in the torch hub cache, else ModelError."""
    enum = getattr(torchvision.models, arch.torchvision_weights)
    ckpt_dir = Path(torch.hub.get_dir()) / "checkpoints"
    names = [Path(w.url).name for w in enum]  # IMAGENET1K_V1 first
    for name in names:
        if (ckpt_dir / name).is_file():
            return ckpt_dir / name
    raise ModelError(f"{arch.name}: ImageNet weights are not in the torch hub cache and are never downloaded here. "
                     f"Put one of {names} into {ckpt_dir} (or pass --weights PATH/none).")


def _imagenet_file(arch: Architecture) -> Path:
    if arch.shared_weights:
        base = shared_dir()
        p = base / "weights" / arch.shared_weights if base else None
        if p is None or not p.is_file():
            raise ModelError(f"{arch.name}: ImageNet weights expected at ../shared/weights/{arch.shared_weights} "
                             "(or $MOLEPORT_SHARED/weights); that file is absent")
        return p
    return _hub_file(arch)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a file: plain dict of tensors or a moleport checkpoint; Keras names are mapped."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: weights file not found")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises many types for bad files)
        raise ModelError(f"{p}: cannot read weights ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{p}: not a state_dict (a dict of tensors)")
    if is_keras_state_dict(obj):
        return keras_state_dict_to_moleport(obj)
    if is_lite_state_dict(obj):
        try:
            return lite_state_dict_to_moleport(obj)
        except KeyError as exc:
            raise ModelError(f"{p}: not an EfficientNet-Lite0 state_dict ({exc.args[0]})") from exc
    return obj


def build_backbone(arch: str, weights: str | Path | None = None) -> nn.Module:
    """The unmodified 1000-class network, optionally with ImageNet weights (for checks)."""
    a = get_architecture(arch)
    model = a.backbone()
    if weights is None or str(weights).lower() == "none":
        return model
    path = _imagenet_file(a) if str(weights).lower() == "imagenet" else Path(weights)
    _load_strict(model, read_state_dict(path), f"{path} into {arch} (1000-class)")
    return model


def _load_strict(model: nn.Module, sd: dict, what: str) -> None:
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"cannot load {what}: {str(exc).splitlines()[0]} ...") from exc


def build_model(arch: str, weights: str | Path | None = None) -> nn.Module:
    """``arch`` with a 1-logit head. N x 3 x S x S normalised input -> N x 1 logit."""
    a = get_architecture(arch)
    if weights is None or str(weights).lower() in ("none", "imagenet"):
        return replace_head(build_backbone(arch, weights), a.head)
    path = Path(weights)
    sd = read_state_dict(path)
    model = replace_head(a.backbone(), a.head)
    if _fits(model, sd):
        model.load_state_dict(sd, strict=True)
        return model
    backbone = a.backbone()
    _load_strict(backbone, sd, f"{path} into {arch} (neither the 1-logit nor the 1000-class layout fits)")
    return replace_head(backbone, a.head)


def _fits(model: nn.Module, sd: dict[str, torch.Tensor]) -> bool:
    own = model.state_dict()
    return own.keys() == sd.keys() and all(own[k].shape == sd[k].shape for k in own)


def freeze_prefix(model: nn.Module, blocks: int) -> list[nn.Parameter]:
    """Freeze ``model.features[:blocks]`` (no gradients); returns the parameters left trainable.

    Keep the frozen part's BatchNorm in eval mode while training with :func:`set_train_mode`.
    """
    if blocks <= 0:
        return [p for p in model.parameters() if p.requires_grad]
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ModelError(f"{type(model).__name__} has no 'features' block sequence to freeze a prefix of")
    if blocks > len(features):
        raise ModelError(f"cannot freeze {blocks} blocks: {type(model).__name__}.features has {len(features)}")
    for p in features[:blocks].parameters():
        p.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def set_train_mode(model: nn.Module, frozen_blocks: int = 0) -> nn.Module:
    """``model.train()`` with the first ``frozen_blocks`` feature blocks (and their BatchNorm) in eval mode."""
    model.train()
    if frozen_blocks > 0:
        model.features[:frozen_blocks].eval()
    return model
