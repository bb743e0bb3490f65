"""Metrics exactly as the paper defines them (its equations 1-5), in both conventions.

- ``paper`` convention: nevus is the positive class (Keras sorted the class folders
  melanoma, nevus, so the sigmoid gave P(nevus)). Table 3's MobileNet row is reproduced
  from its confusion matrix by :func:`binary_metrics` with this convention.
- ``clinical`` convention: melanoma is the positive class, so sensitivity (recall) is the
  fraction of melanomas caught.

Inputs are label arrays with 1 = melanoma, 0 = nevus, and P(melanoma) scores.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import auc as sk_auc
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score, roc_curve

MELANOMA, NEVUS = 1, 0
CONVENTIONS = {"paper": "nevus", "clinical": "melanoma"}


@dataclass(frozen=True)
class Confusion:
    """2x2 confusion matrix with named cells (true class -> predicted class)."""

    mel_mel: int
    mel_nev: int
    nev_mel: int
    nev_nev: int

    def as_matrix(self) -> list[list[int]]:
        """Rows = true [melanoma, nevus], columns = predicted [melanoma, nevus] (paper Table 3)."""
        return [[self.mel_mel, self.mel_nev], [self.nev_mel, self.nev_nev]]


def confusion(y_true, y_pred) -> Confusion:
    yt, yp = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    cm = confusion_matrix(yt, yp, labels=[MELANOMA, NEVUS])
    return Confusion(int(cm[0, 0]), int(cm[0, 1]), int(cm[1, 0]), int(cm[1, 1]))


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def binary_metrics(cm: Confusion, positive: str) -> dict[str, float]:
    """Equations (1)-(5): accuracy, precision, recall, specificity, F1 for one positive class."""
    if positive == "melanoma":
        tp, fn, fp, tn = cm.mel_mel, cm.mel_nev, cm.nev_mel, cm.nev_nev
    elif positive == "nevus":
        tp, fn, fp, tn = cm.nev_nev, cm.nev_mel, cm.mel_nev, cm.mel_mel
    else:
        raise ValueError(f"positive must be 'melanoma' or 'nevus', got {positive!r}")
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    specificity = _safe_div(tn, tn + fp)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return {
        "accuracy": _safe_div(tp + tn, tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": f1,
        "balanced_accuracy": (recall + specificity) / 2.0,
        "tp": tp, "fn": fn, "fp": fp, "tn": tn,
    }


def roc(y_true, p_melanoma) -> dict[str, list[float] | float]:
    """ROC curve and AUC with melanoma positive (the paper's nevus-positive AUC is identical)."""
    yt = np.asarray(y_true).astype(int)
    p = np.asarray(p_melanoma, dtype=np.float64)
    if len(np.unique(yt)) < 2:
        return {"auc": float("nan"), "fpr": [], "tpr": [], "thresholds": []}
    fpr, tpr, thr = roc_curve(yt, p, pos_label=MELANOMA)
    return {"auc": float(roc_auc_score(yt, p)), "fpr": fpr.tolist(), "tpr": tpr.tolist(),
            "thresholds": [float(t) if np.isfinite(t) else 1.0 for t in thr],
            "auc_trapezoid": float(sk_auc(fpr, tpr))}


def evaluate(y_true, p_melanoma, threshold: float = 0.5) -> dict:
    """Everything the reports need: confusion matrix and both conventions, AUC."""
    yt = np.asarray(y_true).astype(int)
    p = np.asarray(p_melanoma, dtype=np.float64)
    if yt.shape != p.shape:
        raise ValueError(f"labels {yt.shape} and scores {p.shape} differ in shape")
    pred = (p >= threshold).astype(int)
    cm = confusion(yt, pred)
    r = roc(yt, p)
    return {
        "n": int(len(yt)),
        "threshold": float(threshold),
        "confusion": asdict(cm),
        "confusion_matrix": cm.as_matrix(),
        "clinical": binary_metrics(cm, "melanoma"),
        "paper": binary_metrics(cm, "nevus"),
        "balanced_accuracy": float(balanced_accuracy_score(yt, pred)) if len(np.unique(yt)) > 1 else float("nan"),
        "auc": r["auc"],
    }


def threshold_for_sensitivity(y_true, p_melanoma, target: float = 0.95) -> dict[str, float]:
    """Largest threshold whose melanoma sensitivity on (validation) data is >= ``target``.

    Returns the threshold with the sensitivity and specificity it gives on that data.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    yt = np.asarray(y_true).astype(int)
    p = np.asarray(p_melanoma, dtype=np.float64)
    pos = np.sort(p[yt == MELANOMA])[::-1]
    if len(pos) == 0:
        raise ValueError("no melanoma in the data: cannot choose a threshold for a sensitivity")
    k = int(np.ceil(target * len(pos)))  # need at least k melanomas at or above the threshold
    thr = float(pos[k - 1])
    pred = (p >= thr).astype(int)
    m = binary_metrics(confusion(yt, pred), "melanoma")
    return {"threshold": thr, "target_sensitivity": float(target),
            "sensitivity": m["recall"], "specificity": m["specificity"]}
