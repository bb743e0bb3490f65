"""ModelSpec: the one description of a model's input/output contract.

It travels from training into every checkpoint and exported artifact (as timm's
``pretrained_cfg`` does), so that apps and the parity harness feed each model
exactly what it was trained on.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Name of the canonical resize rule implemented in :mod:`moleport.preprocess`.
RESIZE_RULE = "center-square-crop+triangle-antialias-v1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LABELS = ("nevus", "melanoma")
#: Colour-constancy rules a spec may name; each is implemented by ``moleport.preprocess.normalize_batch``
#: (training and the PyTorch reference) and, independently, inside every exported graph.
SHADES_OF_GRAY = "shades-of-gray-p6"
COLOR_CONSTANCY_RULES = (SHADES_OF_GRAY,)
#: Test-time augmentation rules a spec may name: the exact symmetries of the square pixel grid whose logits the
#: model averages (``moleport.preprocess.tta_views`` for the PyTorch reference; written again inside every exported
#: graph). flips2 = identity + left-right flip; flips4 = those and their up-down flips; dihedral8 = the 4 quarter
#: turns and the left-right flip of each.
TTA_RULES = ("flips2", "flips4", "dihedral8")
TTA_VIEWS = {"flips2": 2, "flips4": 4, "dihedral8": 8}


class SpecError(ValueError):
    """A ModelSpec (or its JSON) is invalid."""


@dataclass(frozen=True)
class ModelSpec:
    """Frozen description of a classifier's contract.

    The network emits one logit; ``sigmoid(logit)`` is P(``labels[1]``), i.e.
    P(melanoma) with the default labels. Clinically melanoma is the positive class;
    the paper's (Keras) convention treats nevus as positive — :mod:`moleport.metrics`
    reports both.
    """

    architecture: str
    input_size: int = 224
    color_order: str = "RGB"
    resize_rule: str = RESIZE_RULE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    labels: tuple[str, str] = LABELS
    positive_class: str = "melanoma"
    threshold: float = 0.5
    #: Optional colour constancy applied to the 0..1 pixels before mean/std (see COLOR_CONSTANCY_RULES).
    color_constancy: str | None = None
    #: Temperature T of the output: P(melanoma) = sigmoid(logit / T); fitted on validation data when
    #: the run calibrates (1.0 = uncalibrated). ``threshold`` applies to that (calibrated) probability.
    temperature: float = 1.0
    #: Optional test-time augmentation (one of TTA_RULES): P(melanoma) = sigmoid(mean over the views of the logit / T).
    #: Part of what the model computes from pixels, so exports carry it in-graph and ``threshold`` is chosen through it.
    tta: str | None = None
    #: Contract of exported artifacts (filled by export): layout, value range, outputs.
    export_input: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    version: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.input_size < 32:
            raise SpecError(f"input_size must be >= 32, got {self.input_size}")
        if self.color_order not in ("RGB", "BGR"):
            raise SpecError(f"color_order must be RGB or BGR, got {self.color_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise SpecError("mean and std need exactly 3 values (one per channel)")
        if any(s <= 0 for s in self.std):
            raise SpecError(f"std values must be > 0, got {self.std}")
        if len(self.labels) != 2 or len(set(self.labels)) != 2:
            raise SpecError(f"labels must be two distinct names, got {self.labels}")
        if self.positive_class not in self.labels:
            raise SpecError(f"positive_class {self.positive_class!r} is not one of labels {self.labels}")
        if not 0.0 <= self.threshold <= 1.0:
            raise SpecError(f"threshold must be within [0, 1], got {self.threshold}")
        if self.color_constancy is not None and self.color_constancy not in COLOR_CONSTANCY_RULES:
            raise SpecError(f"color_constancy must be None or one of {COLOR_CONSTANCY_RULES}, "
                            f"got {self.color_constancy!r}")
        if self.tta is not None and self.tta not in TTA_RULES:
            raise SpecError(f"tta must be None or one of {TTA_RULES}, got {self.tta!r}")
        if not (isinstance(self.temperature, (int, float)) and 0.01 <= self.temperature <= 100.0):
            raise SpecError(f"temperature must be a number within [0.01, 100], got {self.temperature!r}")

    # --- helpers -------------------------------------------------------------
    @property
    def melanoma_index(self) -> int:
        return self.labels.index("melanoma")

    def replace(self, **changes: Any) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["mean"], d["std"], d["labels"] = list(self.mean), list(self.std), list(self.labels)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "ModelSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"{source}: unknown ModelSpec field(s) {unknown}")
        if "architecture" not in data:
            raise SpecError(f"{source}: ModelSpec is missing 'architecture'")
        kw = dict(data)
        for key in ("mean", "std", "labels"):
            if key in kw:
                kw[key] = tuple(kw[key])
        try:
            return cls(**kw)
        except TypeError as exc:
            raise SpecError(f"{source}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> "ModelSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{source}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise SpecError(f"{source}: ModelSpec JSON must be an object")
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path) -> "ModelSpec":
        p = Path(path)
        if not p.is_file():
            raise SpecError(f"{p}: spec file not found")
        return cls.from_json(p.read_text(encoding="utf-8"), str(p))

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_json() + "\n", encoding="utf-8")
        return p
