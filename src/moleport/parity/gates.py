"""Parity gates: the ONE place where the pass/fail thresholds live.

``Gates`` is frozen; override fields with ``Gates.from_mapping({...})`` / ``--gates-json FILE``.
A row is judged by the gates of its artifact's precision (MediaPipe rows: the precision of
the .tflite they load). A row whose artifact failed to load or run is always a violation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moleport.jsonio import read_json_object


class GatesError(ValueError):
    """Gate overrides are invalid (unknown field, wrong type)."""


@dataclass(frozen=True)
class Gates:
    # fp32: the artifact must be the reference, numerically.
    fp32_identical_confusion: bool = True
    fp32_max_abs_dp: float = 1e-4
    # fp16: at most max(min_flips, fraction * n) label flips and |delta accuracy| in percentage points.
    fp16_min_flips: int = 1
    fp16_max_flip_fraction: float = 0.005
    fp16_max_abs_dacc_pp: float = 0.5
    # int8: accuracy, AUC and flips.
    int8_max_abs_dacc_pp: float = 1.0
    int8_max_abs_dauc: float = 0.01
    int8_max_flip_fraction: float = 0.02

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
            clean[key] = kind(value)
        return dataclasses.replace(base, **clean)

    @classmethod
    def load(cls, path: str | Path) -> "Gates":
        return cls.from_mapping(read_json_object(path, GatesError, "gates JSON"))

    def max_flips(self, precision: str, n: int) -> int | None:
        """Largest number of label flips allowed for ``n`` images (None: no flip gate for the precision)."""
        if precision == "fp16":
            return max(self.fp16_min_flips, int(math.floor(self.fp16_max_flip_fraction * n)))
        if precision == "int8":
            return int(math.floor(self.int8_max_flip_fraction * n))
        return None

    def describe(self, precision: str, n: int) -> str:
        if precision == "fp32":
            cm = "identical confusion matrix, " if self.fp32_identical_confusion else ""
            return f"{cm}max |Δp| ≤ {self.fp32_max_abs_dp:g}"
        if precision == "fp16":
            return f"flips ≤ {self.max_flips('fp16', n)}, |Δacc| ≤ {self.fp16_max_abs_dacc_pp:g} pp"
        if precision == "int8":
            return (f"|Δacc| ≤ {self.int8_max_abs_dacc_pp:g} pp, |ΔAUC| ≤ {self.int8_max_abs_dauc:g}, "
                    f"flips ≤ {self.max_flips('int8', n)}")
        return "no gate"


def judge(row: dict[str, Any], gates: Gates) -> list[str]:
    """Violations of one comparison row (see :func:`moleport.parity.compare.compare`)."""
    who = f"{row['artifact']} @ {row['runtime']} ({row['implementation']})"
    if row.get("status") != "ok":
        return [f"{who}: {row.get('error') or 'did not run'}"]
    precision, n = row["precision"], row["n"]
    out: list[str] = []
    dacc_pp = abs(row["delta"]["accuracy"]) * 100.0
    if precision == "fp32":
        if gates.fp32_identical_confusion and not row["confusion_identical"]:
            out.append(f"{who}: fp32 confusion matrix {row['confusion_matrix']} differs from the reference's "
                       f"{row['reference_confusion_matrix']}")
        if row["max_abs_dp"] > gates.fp32_max_abs_dp:
            out.append(f"{who}: fp32 max |Δp| {row['max_abs_dp']:.3g} > {gates.fp32_max_abs_dp:g}")
    elif precision in ("fp16", "int8"):
        limit = gates.max_flips(precision, n)
        if row["flips"] > limit:
            out.append(f"{who}: {precision} label flips {row['flips']} > {limit} (of {n})")
        max_dacc = gates.fp16_max_abs_dacc_pp if precision == "fp16" else gates.int8_max_abs_dacc_pp
        if dacc_pp > max_dacc:
            out.append(f"{who}: {precision} |Δ accuracy| {dacc_pp:.2f} pp > {max_dacc:g} pp")
    else:
        out.append(f"{who}: unknown precision {precision!r}: no gate applies")
    if precision == "int8":
        dauc = row["delta"]["auc"]  # None when the split holds one class only (AUC undefined)
        if dauc is not None and not abs(dauc) <= gates.int8_max_abs_dauc:
            out.append(f"{who}: int8 |Δ AUC| {abs(dauc):.4f} > {gates.int8_max_abs_dauc:g}")
    return out
