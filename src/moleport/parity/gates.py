"""Parity gates: the ONE place where the pass/fail thresholds live.

``Gates`` is frozen; override fields with ``Gates.from_mapping({...})`` / ``--gates-json FILE`` /
``--gate KEY=VALUE``. A row is judged by the gates of its artifact's precision (MediaPipe rows: the
precision of the .tflite they load). A row whose artifact failed to load or run is always a violation.

fp32 is judged as the reference itself: identical confusion matrix, max |Δp| ≤ 1e-4.

Reduced precisions (fp16, w8 = int8 weights with float compute, int8) are judged on their numerics,
not on which test images happen to sit at the threshold. Each has a tolerance **band** around the
spec threshold:

- a label flip of an image whose reference P(melanoma) lies *outside* the band (|p_ref - t| > band)
  is always a violation: the artifact moved that image by more than the band, which the precision's
  measured error never does;
- flips *inside* the band are expected rounding and count towards a budget,
  ``max(min_band_flips, band_flip_fraction * n)``;
- the 99th percentile of |Δp| (the precision's typical error, robust to one unlucky image) has a limit;
- |Δ accuracy|, |Δ sensitivity| and |Δ specificity| at the threshold, in percentage points, are gated
  with a floor of ``min_images`` images of the class, so the in-band budget alone cannot fail them;
  |Δ AUC| is gated for the whole ranking.

Band and p99 values come from measured |Δp| distributions (README "Parity gates"). On the quick model of
``make export`` (the most sensitive model measured: from scratch, 5 epochs; 200 test images) with the
pre/post-processing in fp32: fp16 backbones (TFLite, Core ML) p99 |Δp| 8.1e-3 / 8.5e-3, max 8.9e-3 / 1.04e-2;
Core ML w8 p99 1.5e-2, max 1.6e-2 (seed 0; seeds 1-2: fp16 p99 up to 1.27e-2, max up to 1.97e-2, w8 p99
up to 1.59e-2). Each band is 1.5-3x the largest |Δp| measured for its precision,
so an image outside it can only flip through an error larger than any that precision showed, and each
p99 limit about 2x the measured p99. The int8 limits are the accuracy a phone app can accept (int8 is
judged like the others and, when it fails, rejected rather than shipped).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moleport.jsonio import read_json_object

REDUCED_PRECISIONS = ("fp16", "w8", "int8")


class GatesError(ValueError):
    """Gate overrides are invalid (unknown field, wrong type)."""


@dataclass(frozen=True)
class ReducedGate:
    """The gates of one reduced precision (a view of the ``<precision>_*`` fields of :class:`Gates`)."""

    precision: str
    band: float
    min_band_flips: int
    band_flip_fraction: float
    p99_abs_dp: float
    max_abs_dacc_pp: float
    max_abs_dsens_pp: float
    max_abs_dspec_pp: float
    max_abs_dauc: float
    min_images: int

    def band_budget(self, n: int) -> int:
        return max(self.min_band_flips, int(math.floor(self.band_flip_fraction * n)))

    def floor_pp(self, limit_pp: float, n_class: int) -> float:
        """``limit_pp``, but never below ``min_images`` images of a class of ``n_class``."""
        return max(limit_pp, 100.0 * self.min_images / n_class) if n_class else limit_pp

    def floor_auc(self, n_melanoma: int, n_nevus: int) -> float:
        """``max_abs_dauc``, but never below ``min_images`` reordered melanoma/nevus pairs: on a small split one
        swap of two nearly tied images moves the AUC by 1 / (n_melanoma * n_nevus) (0.0039 with 17 / 15)."""
        pairs = n_melanoma * n_nevus
        return max(self.max_abs_dauc, self.min_images / pairs) if pairs else self.max_abs_dauc


@dataclass(frozen=True)
class Gates:
    # fp32: the artifact must be the reference, numerically.
    fp32_identical_confusion: bool = True
    fp32_max_abs_dp: float = 1e-4
    # fp16 (backbone in fp16, pre/post-processing fp32).
    fp16_band: float = 0.03
    fp16_min_band_flips: int = 3
    fp16_band_flip_fraction: float = 0.01
    fp16_p99_abs_dp: float = 0.02
    fp16_max_abs_dacc_pp: float = 0.5
    fp16_max_abs_dsens_pp: float = 1.0
    fp16_max_abs_dspec_pp: float = 1.0
    fp16_max_abs_dauc: float = 0.003
    fp16_min_images: int = 3
    # w8: int8 weights, float compute (Core ML weight-only quantization).
    w8_band: float = 0.04
    w8_min_band_flips: int = 3
    w8_band_flip_fraction: float = 0.01
    w8_p99_abs_dp: float = 0.03
    w8_max_abs_dacc_pp: float = 0.5
    w8_max_abs_dsens_pp: float = 1.0
    w8_max_abs_dspec_pp: float = 1.0
    w8_max_abs_dauc: float = 0.005
    w8_min_images: int = 3
    # int8: int8 weights and activations in the backbone.
    int8_band: float = 0.06
    int8_min_band_flips: int = 3
    int8_band_flip_fraction: float = 0.015
    int8_p99_abs_dp: float = 0.04
    int8_max_abs_dacc_pp: float = 1.0
    int8_max_abs_dsens_pp: float = 2.0
    int8_max_abs_dspec_pp: float = 2.0
    int8_max_abs_dauc: float = 0.01
    int8_min_images: int = 3

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, overrides: dict[str, Any] | None, base: "Gates | None" = None) -> "Gates":
        base = base or cls()
        if not overrides:
            return base
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise GatesError(f"unknown gate(s) {unknown}; known: {sorted(fields)}")
        clean = {}
        for key, value in overrides.items():
            kind = type(getattr(base, key))
            if kind is bool and not isinstance(value, bool):
                raise GatesError(f"gate {key} needs true/false, got {value!r}")
            if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise GatesError(f"gate {key} needs a number, got {value!r}")
            if kind in (int, float) and value < 0:
                raise GatesError(f"gate {key} must be >= 0, got {value!r}")
            clean[key] = kind(value)
        return dataclasses.replace(base, **clean)

    @classmethod
    def load(cls, path: str | Path) -> "Gates":
        return cls.from_mapping(read_json_object(path, GatesError, "gates JSON"))

    def reduced(self, precision: str) -> ReducedGate | None:
        """The gates of a reduced precision (None for fp32 / unknown precisions)."""
        if precision not in REDUCED_PRECISIONS:
            return None
        names = [f.name for f in dataclasses.fields(ReducedGate) if f.name != "precision"]
        return ReducedGate(precision=precision, **{k: getattr(self, f"{precision}_{k}") for k in names})

    def describe(self, precision: str, n: int) -> str:
        if precision == "fp32":
            cm = "identical confusion matrix, " if self.fp32_identical_confusion else ""
            return f"{cm}max |Δp| ≤ {self.fp32_max_abs_dp:g}"
        g = self.reduced(precision)
        if g is None:
            return "no gate"
        return (f"no flip outside ±{g.band:g} of the threshold, ≤ {g.band_budget(n)} inside; p99 |Δp| ≤ "
                f"{g.p99_abs_dp:g}; |Δacc| ≤ {g.max_abs_dacc_pp:g} pp, |Δsens|/|Δspec| ≤ "
                f"{g.max_abs_dsens_pp:g}/{g.max_abs_dspec_pp:g} pp (≥ {g.min_images} images), |ΔAUC| ≤ {g.max_abs_dauc:g} "
                f"(≥ {g.min_images} pairs)")


def flip_split(row: dict[str, Any], threshold: float, band: float) -> tuple[int, int]:
    """(flips inside the band, flips outside it) of a compared row."""
    dist = np.array([abs(f["p_reference"] - threshold) for f in row.get("flipped", [])], dtype=float)
    return int(np.sum(dist <= band)), int(np.sum(dist > band))


def _reduced_violations(row: dict[str, Any], g: ReducedGate, threshold: float, who: str) -> list[str]:
    out: list[str] = []
    n = row["n"]
    inside, outside = flip_split(row, threshold, g.band)
    if outside:
        far = max(abs(f["p_reference"] - threshold) for f in row["flipped"])
        out.append(f"{who}: {g.precision} {outside} label flip(s) of images farther than ±{g.band:g} from the "
                   f"threshold (up to {far:.3f} away): an error larger than the precision's band")
    if inside > g.band_budget(n):
        out.append(f"{who}: {g.precision} {inside} flips inside ±{g.band:g} of the threshold > {g.band_budget(n)} (of {n})")
    p99 = row.get("p99_abs_dp")
    if p99 is not None and p99 > g.p99_abs_dp:
        out.append(f"{who}: {g.precision} p99 |Δp| {p99:.3g} > {g.p99_abs_dp:g}")
    counts = row.get("class_counts") or {}
    checks = (("accuracy", "accuracy", g.floor_pp(g.max_abs_dacc_pp, n)),
              ("sensitivity", "recall", g.floor_pp(g.max_abs_dsens_pp, counts.get("melanoma", 0))),
              ("specificity", "specificity", g.floor_pp(g.max_abs_dspec_pp, counts.get("nevus", 0))))
    for label, key, limit in checks:
        d = row["delta"].get(key)
        if d is not None and abs(d) * 100.0 > limit + 1e-9:
            out.append(f"{who}: {g.precision} |Δ {label}| {abs(d) * 100:.2f} pp > {limit:.2f} pp")
    dauc = row["delta"].get("auc")  # None when the split holds one class only (AUC undefined)
    auc_limit = g.floor_auc(counts.get("melanoma", 0), counts.get("nevus", 0))
    if dauc is not None and not abs(dauc) <= auc_limit + 1e-12:
        out.append(f"{who}: {g.precision} |Δ AUC| {abs(dauc):.4f} > {auc_limit:.4g}")
    return out


def judge(row: dict[str, Any], gates: Gates, threshold: float | None = None) -> list[str]:
    """Violations of one comparison row (see :func:`moleport.parity.compare.compare`)."""
    who = f"{row['artifact']} @ {row['runtime']} ({row['implementation']})"
    if row.get("status") != "ok":
        return [f"{who}: {row.get('error') or 'did not run'}"]
    precision = row["precision"]
    if precision == "fp32":
        out: list[str] = []
        if gates.fp32_identical_confusion and not row["confusion_identical"]:
            out.append(f"{who}: fp32 confusion matrix {row['confusion_matrix']} differs from the reference's "
                       f"{row['reference_confusion_matrix']}")
        if row["max_abs_dp"] > gates.fp32_max_abs_dp:
            out.append(f"{who}: fp32 max |Δp| {row['max_abs_dp']:.3g} > {gates.fp32_max_abs_dp:g}")
        return out
    g = gates.reduced(precision)
    if g is None:
        return [f"{who}: unknown precision {precision!r}: no gate applies"]
    t = row.get("threshold") if threshold is None else threshold
    if t is None:
        return [f"{who}: the row records no threshold; reduced-precision gates need it"]
    return _reduced_violations(row, g, float(t), who)
