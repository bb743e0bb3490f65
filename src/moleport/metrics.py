"""Metrics exactly as the paper defines them (its equations 1-5), in both conventions.

- ``paper`` convention: nevus is the positive class (Keras sorted the class folders
  melanoma, nevus, so the sigmoid gave P(nevus)). Table 3's MobileNet row is reproduced
  from its confusion matrix by :func:`binary_metrics` with this convention.
- ``clinical`` convention: melanoma is the positive class, so sensitivity (recall) is the
  fraction of melanomas caught.

Inputs are label arrays with 1 = melanoma, 0 = nevus, and P(melanoma) scores.
"""
from __future__ import annotations

import math
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


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (exact for the counts of a validation split)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return float(p >= 1.0)
    lp, lq = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
             for i in range(k, n + 1)]
    top = max(terms)
    return float(min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms)))


def sensitivity_lower_bound(caught: int, n: int, confidence: float = 0.95) -> float:
    """One-sided ``confidence`` Clopper-Pearson lower bound on a sensitivity of ``caught`` / ``n``.

    The bound is the ``p`` at which ``P(X >= caught) = 1 - confidence``; found by bisection (the tail grows with
    ``p``). ``caught == n`` gives ``(1 - confidence) ** (1 / n)``.
    """
    if not 0 <= caught <= n or n < 1:
        raise ValueError(f"need 0 <= caught <= n and n >= 1, got {caught} of {n}")
    if caught == 0:
        return 0.0
    alpha, lo, hi = 1.0 - confidence, 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if binomial_tail(caught, n, mid) >= alpha else (mid, hi)
    return lo


def melanomas_needed(target: float, confidence: float) -> int:
    """Fewest melanomas on which a one-sided ``confidence`` lower bound can reach ``target`` sensitivity at all:
    with every one of ``n`` caught the Clopper-Pearson bound is ``(1 - confidence) ** (1 / n)``."""
    return int(math.ceil(math.log(1.0 - confidence) / math.log(target) - 1e-9))


def _caught_needed(n: int, target: float, confidence: float | None) -> int:
    """Fewest melanomas of ``n`` the threshold must catch: ``ceil(target * n)`` (point rule), or with
    ``confidence`` the fewest whose one-sided Clopper-Pearson lower bound is >= ``target``, i.e. the smallest ``k``
    with ``P(X >= k | n, target) <= 1 - confidence`` (so that catching them is evidence of sensitivity >= target)."""
    k = int(np.ceil(target * n))
    if confidence is None:
        return max(k, 1)
    alpha = 1.0 - confidence
    if binomial_tail(n, n, target) > alpha:  # even catching all n is no evidence: too few melanomas
        need = melanomas_needed(target, confidence)
        raise ValueError(f"{n} melanomas cannot show sensitivity >= {target:g} with {confidence:g} confidence "
                         f"(catching all of them gives a lower bound of {alpha ** (1 / n):.4f}); at least {need} "
                         f"are needed")
    lo, hi = max(k, 1), n  # binomial_tail decreases in k: bisect for the first k at or below alpha
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if binomial_tail(mid, n, target) > alpha else (lo, mid)
    return lo


def threshold_for_sensitivity(y_true, p_melanoma, target: float = 0.95,
                              confidence: float | None = None) -> dict[str, float]:
    """Largest threshold whose melanoma sensitivity on (validation) data is >= ``target``.

    With ``confidence`` (e.g. 0.95) the rule is stricter: the largest threshold at which the one-sided
    Clopper-Pearson lower bound on that sensitivity is >= ``target``, so the operating point keeps ``target``
    sensitivity on new data of the same kind with that confidence instead of about half the time. Returns the
    threshold with the sensitivity, its lower bound and the specificity it gives on that data.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    if confidence is not None and not (0.0 < confidence < 1.0 and target < 1.0):
        raise ValueError(f"confidence must be in (0, 1) and the target below 1, got {confidence} for {target}")
    yt = np.asarray(y_true).astype(int)
    p = np.asarray(p_melanoma, dtype=np.float64)
    pos = np.sort(p[yt == MELANOMA])[::-1]
    if len(pos) == 0:
        raise ValueError("no melanoma in the data: cannot choose a threshold for a sensitivity")
    k = _caught_needed(len(pos), target, confidence)  # need at least k melanomas at or above the threshold
    thr = float(pos[k - 1])
    pred = (p >= thr).astype(int)
    cm = confusion(yt, pred)
    m = binary_metrics(cm, "melanoma")
    out = {"threshold": thr, "target_sensitivity": float(target), "sensitivity": m["recall"],
           "specificity": m["specificity"]}
    if confidence is not None:
        out.update(confidence=float(confidence),
                   sensitivity_lower_bound=sensitivity_lower_bound(cm.mel_mel, len(pos), confidence))
    return out
