"""Source-shortcut audit: can cheap image statistics tell WHICH SOURCE an image came from?

If a data set is assembled from several sources whose class balance differs (the paper's
recipe takes every melanoma from ISIC 2017 and every nevus from a second download, so source
and label coincide), a classifier can score well by recognising the source instead of the
lesion. The audit

1. computes cheap per-image statistics in three groups — ``geometry`` (original width, height,
   aspect, log pixel count, file bytes per pixel; all before any resize), ``colour`` (per-channel
   mean, std and 8-bin histograms of the canonical image at 64 px) and ``border`` (mean
   brightness of the outer 10 % ring, of the four corners, and their ratio to the centre);
2. fits a logistic-regression probe (standardised features) to predict the source, with
   stratified k-fold cross-validation (lesion-grouped when lesion ids exist), per group and all
   together, and on ``pixels`` = colour + border (only what survives the canonical centre crop and
   resize), on an equal number of images per source (chance = 0.5 for two sources), and within
   each diagnosis (same label, different source) so that label prevalence cannot explain it;
3. optionally reports a given classifier's metrics per source (``--model``).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from moleport.evaluate.dataset import EvalItem
from moleport.evaluate.errors import EvaluationError
from moleport.preprocess import ImageError, decode_rgb, resize_canonical

FEATURE_GROUPS = ("geometry", "colour", "border")
STATS_SIZE = 64


def image_features(path: str | Path) -> dict[str, np.ndarray]:
    """The three feature groups of one image file."""
    p = Path(path)
    try:
        rgb = decode_rgb(p)
    except ImageError as exc:
        raise EvaluationError(f"audit: {exc}") from exc
    h, w = rgb.shape[:2]
    geometry = np.array([w, h, w / h, np.log(w * h), p.stat().st_size / (w * h)], dtype=np.float64)
    small = resize_canonical(rgb, STATS_SIZE).astype(np.float64)
    hist = [np.histogram(small[..., c], bins=8, range=(0, 256))[0] / small[..., c].size for c in range(3)]
    colour = np.concatenate([small.mean((0, 1)), small.std((0, 1)), *hist])
    grey = small.mean(axis=2)
    k = max(1, STATS_SIZE // 10)
    ring = np.ones_like(grey, dtype=bool)
    ring[k:-k, k:-k] = False
    centre = grey[STATS_SIZE // 4: -STATS_SIZE // 4, STATS_SIZE // 4: -STATS_SIZE // 4].mean()
    corners = np.array([grey[:k, :k].mean(), grey[:k, -k:].mean(), grey[-k:, :k].mean(), grey[-k:, -k:].mean()])
    border = np.concatenate([[grey[ring].mean(), corners.mean(), corners.min(),
                              grey[ring].mean() / (centre + 1.0), corners.mean() / (centre + 1.0)], corners])
    return {"geometry": geometry, "colour": colour, "border": border}


def feature_matrices(items: list[EvalItem]) -> dict[str, np.ndarray]:
    """Feature group -> N x F matrix, plus ``pixels`` (colour + border) and ``all``."""
    feats = [image_features(it.path) for it in items]
    out = {g: np.stack([f[g] for f in feats]) for g in FEATURE_GROUPS}
    out["pixels"] = np.concatenate([out["colour"], out["border"]], axis=1)  # what survives the canonical resize
    out["all"] = np.concatenate([out[g] for g in FEATURE_GROUPS], axis=1)
    return out


def _splitter(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int):
    n_min = min(Counter(y.tolist()).values())
    k = max(2, min(folds, n_min))
    if groups is not None:
        return StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups)
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)


def probe_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, folds: int = 5,
             seed: int = 0) -> dict[str, float]:
    """Cross-validated logistic-regression probe predicting integer class ``y`` from ``x``."""
    classes = np.unique(y)
    if len(classes) < 2:
        raise EvaluationError("the probe needs at least two sources")
    proba = np.zeros((len(y), len(classes)))
    for train, test in _splitter(y, groups, folds, seed):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        model.fit(x[train], y[train])
        proba[np.ix_(test, np.searchsorted(classes, model.classes_))] = model.predict_proba(x[test])
    pred = classes[proba.argmax(1)]
    if len(classes) == 2:
        auc = roc_auc_score(y == classes[1], proba[:, 1])
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    majority = max(Counter(y.tolist()).values()) / len(y)
    return {"accuracy": float(accuracy_score(y, pred)), "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "auc": float(auc), "chance_accuracy": float(majority), "n": int(len(y))}


def balanced_sample(items: list[EvalItem], per_source: int | None, seed: int) -> list[EvalItem]:
    """At most ``per_source`` images of each source (all sources cut to the smallest when None)."""
    by_source: dict[str, list[EvalItem]] = {}
    for it in items:
        by_source.setdefault(it.source, []).append(it)
    if len(by_source) < 2:
        raise EvaluationError(f"the audit needs images from at least two sources, got {sorted(by_source)}")
    n = min(len(v) for v in by_source.values())
    n = n if per_source is None else min(n, per_source)
    rng = np.random.default_rng(seed)
    out = []
    for name in sorted(by_source):
        members = by_source[name]
        out += [members[i] for i in sorted(rng.choice(len(members), size=n, replace=False))]
    return out


def label_source_table(items: list[EvalItem]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for it in items:
        row = table.setdefault(it.source, {"melanoma": 0, "nevus": 0})
        row[it.label] += 1
    return table


def source_shortcut_audit(items: list[EvalItem], per_source: int | None = 300, folds: int = 5,
                          seed: int = 0) -> dict[str, Any]:
    """Probe results (per feature group, all, and within each diagnosis) for source prediction."""
    from moleport.evaluate.bootstrap import group_ids

    sample = balanced_sample(items, per_source, seed)
    names = sorted({it.source for it in sample})
    s = np.array([names.index(it.source) for it in sample])
    groups, grouping = group_ids([it.lesion_id for it in sample], len(sample))
    feats = feature_matrices(sample)
    probes = {g: probe_cv(x, s, groups, folds, seed) for g, x in feats.items()}
    within = {}
    for label in ("melanoma", "nevus"):
        m = np.array([it.label == label for it in sample])
        counts = Counter(s[m].tolist())
        for g in ("pixels", "all"):
            key = f"{label}/{g}"
            if len(counts) == len(names) and min(counts.values()) >= 5:
                within[key] = probe_cv(feats[g][m], s[m], groups[m], folds, seed)
            else:
                within[key] = {"skipped": f"needs >= 5 {label} images in every source, got {dict(counts)}"}
    return {"sources": names, "label_by_source_all": label_source_table(items),
            "label_by_source_sample": label_source_table(sample), "per_source_sample": int(len(sample) // len(names)),
            "folds": folds, "seed": seed, "cv_grouping": grouping,
            "probe": "StandardScaler + LogisticRegression(C=1), stratified k-fold cross-validated",
            "probes": probes, "within_label": within}


def per_source_metrics(items: list[EvalItem], p: np.ndarray, threshold: float, n_boot: int = 1000,
                       seed: int = 0) -> dict[str, dict[str, Any]]:
    """A classifier's AUC / sensitivity / specificity (with CIs) on each source, and on all together."""
    from moleport.evaluate.evaluation import summarize

    keys = ("n", "counts", "auc", "auc_ci", "sensitivity", "sensitivity_ci", "specificity", "specificity_ci", "ece")
    out = {}
    for name in sorted({it.source for it in items}) + ["(all)"]:
        idx = [i for i, it in enumerate(items) if name == "(all)" or it.source == name]
        y = np.array([items[i].y for i in idx])
        res = summarize(y, p[idx], threshold, [items[i].lesion_id for i in idx], n_boot, seed)
        out[name] = {k: res[k] for k in keys}
    return out


def source_items(paths: list[str | Path], preset: str | None = None) -> list[EvalItem]:
    """Items of every source path, each tagged with a distinct source name."""
    from moleport.evaluate.dataset import open_eval_items

    if len(paths) < 1:
        raise EvaluationError("give at least one source (two, or one --preset paper root)")
    items: list[EvalItem] = []
    taken: dict[str, str] = {}
    for i, path in enumerate(paths):
        for it in open_eval_items(path, preset=preset):
            name = it.source or Path(path).name
            if taken.setdefault(name, str(path)) != str(path):
                name = f"{i}:{name}"
            items.append(EvalItem(it.path, it.label, it.lesion_id, name))
    return items
