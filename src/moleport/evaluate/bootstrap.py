"""Percentile bootstrap confidence intervals, resampling whole lesions where lesion ids exist.

Several HAM10000 images can show the same lesion; their predictions are correlated, so
resampling images one by one understates the uncertainty. :func:`group_ids` maps every
image to a resampling unit (its lesion, or itself when it has no lesion id) and
:func:`bootstrap_metrics` draws units with replacement.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from moleport.metrics import MELANOMA

Statistic = Callable[[np.ndarray, np.ndarray], float]


def group_ids(lesion_ids: Sequence[str | None] | None, n: int) -> tuple[np.ndarray, str]:
    """Integer resampling unit per image and the grouping used (``"lesion"`` or ``"image"``)."""
    if lesion_ids is None or all(g in (None, "") for g in lesion_ids):
        return np.arange(n), "image"
    if len(lesion_ids) != n:
        raise ValueError(f"{len(lesion_ids)} lesion ids for {n} images")
    keys = [f"lesion:{g}" if g not in (None, "") else f"image:{i}" for i, g in enumerate(lesion_ids)]
    _, inverse = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    return inverse.astype(np.int64), "lesion"


def auc_stat(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def sensitivity_stat(threshold: float) -> Statistic:
    def stat(y: np.ndarray, p: np.ndarray) -> float:
        pos = y == MELANOMA
        return float(np.mean(p[pos] >= threshold)) if pos.any() else float("nan")
    return stat


def specificity_stat(threshold: float) -> Statistic:
    def stat(y: np.ndarray, p: np.ndarray) -> float:
        neg = y != MELANOMA
        return float(np.mean(p[neg] < threshold)) if neg.any() else float("nan")
    return stat


def resample_indices(groups: np.ndarray, n_boot: int, seed: int):
    """Yield ``n_boot`` index arrays, each the members of units drawn with replacement."""
    order = np.argsort(groups, kind="stable")
    uniq, starts, counts = np.unique(groups[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        sizes = counts[pick]
        offsets = np.repeat(starts[pick] - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
        yield order[offsets]


def bootstrap_metrics(y, p, stats: dict[str, Statistic], groups: np.ndarray | None = None,
                      n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, dict]:
    """Point estimate and percentile ``1 - alpha`` CI for each statistic.

    Returns ``{name: {"point", "ci": [lo, hi], "n_valid"}}``; draws where a statistic is
    undefined (e.g. AUC of a one-class resample) are left out and counted by ``n_valid``.
    """
    yt = np.asarray(y).astype(int)
    ps = np.asarray(p, dtype=np.float64)
    if yt.shape != ps.shape or yt.ndim != 1:
        raise ValueError(f"labels {yt.shape} and scores {ps.shape} must be equal-length 1-D arrays")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    g = np.arange(len(yt)) if groups is None else np.asarray(groups)
    draws = {name: np.empty(n_boot) for name in stats}
    for b, idx in enumerate(resample_indices(g, n_boot, seed)):
        for name, fn in stats.items():
            draws[name][b] = fn(yt[idx], ps[idx])
    out = {}
    for name, fn in stats.items():
        valid = draws[name][np.isfinite(draws[name])]
        lo, hi = (np.quantile(valid, [alpha / 2, 1 - alpha / 2]).tolist() if len(valid) else [float("nan")] * 2)
        out[name] = {"point": fn(yt, ps), "ci": [float(lo), float(hi)], "n_valid": int(len(valid))}
    return out


def clinical_cis(y, p, threshold: float, groups: np.ndarray | None = None, n_boot: int = 1000,
                 seed: int = 0) -> dict[str, dict]:
    """AUC, melanoma sensitivity and specificity at ``threshold`` with 95 % bootstrap CIs."""
    stats = {"auc": auc_stat, "sensitivity": sensitivity_stat(threshold),
             "specificity": specificity_stat(threshold)}
    return bootstrap_metrics(y, p, stats, groups=groups, n_boot=n_boot, seed=seed)
