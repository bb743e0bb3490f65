"""Compare one runtime's P(melanoma) with the reference's on the same images."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from moleport.metrics import evaluate

#: Metrics reported with their deltas (clinical convention = melanoma positive).
METRICS = ("accuracy", "precision", "recall", "specificity", "f1")


def summary(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """``moleport.metrics.evaluate`` plus the flat metric dict the rows use."""
    ev = evaluate(y, p, threshold)
    flat = {k: float(ev["clinical"][k]) for k in METRICS}
    flat["auc"] = _num(ev["auc"])
    flat["balanced_accuracy"] = _num(ev["balanced_accuracy"])
    return {"evaluation": ev, "metrics": flat}


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def flipped(p_ref: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """Indices whose predicted label (P(melanoma) >= threshold) differs from the reference's."""
    return np.flatnonzero((np.asarray(p_ref) >= threshold) != (np.asarray(p) >= threshold))


def compare(y: np.ndarray, p_ref: np.ndarray, p: np.ndarray, files: Sequence[str], threshold: float,
            reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a report row needs about ``p`` versus ``p_ref`` (both P(melanoma), same images)."""
    y, p_ref, p = np.asarray(y), np.asarray(p_ref, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if not (len(y) == len(p_ref) == len(p) == len(files)):
        raise ValueError(f"lengths differ: y {len(y)}, reference {len(p_ref)}, p {len(p)}, files {len(files)}")
    reference = reference or summary(y, p_ref, threshold)
    mine = summary(y, p, threshold)
    dp = np.abs(p - p_ref)
    idx = flipped(p_ref, p, threshold)
    ref_m, m = reference["metrics"], mine["metrics"]
    delta = {k: (None if ref_m[k] is None or m[k] is None else m[k] - ref_m[k]) for k in ref_m}
    return {
        "n": int(len(y)),
        "max_abs_dp": float(dp.max()) if len(dp) else 0.0,
        "mean_abs_dp": float(dp.mean()) if len(dp) else 0.0,
        "p99_abs_dp": float(np.quantile(dp, 0.99)) if len(dp) else 0.0,
        "threshold": float(threshold),
        "class_counts": {"melanoma": int(np.sum(y == 1)), "nevus": int(np.sum(y == 0))},
        "flips": int(len(idx)),
        "flipped": [{"file": str(files[i]), "label": "melanoma" if y[i] == 1 else "nevus",
                     "p_reference": float(p_ref[i]), "p": float(p[i])} for i in idx],
        "confusion_matrix": mine["evaluation"]["confusion_matrix"],
        "reference_confusion_matrix": reference["evaluation"]["confusion_matrix"],
        "confusion_identical": mine["evaluation"]["confusion_matrix"] == reference["evaluation"]["confusion_matrix"],
        "metrics": m,
        "delta": delta,
        "evaluation": mine["evaluation"],
    }
