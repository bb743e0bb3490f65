"""Calibration of P(melanoma): reliability bins, expected calibration error, temperature scaling.

ECE here is the binary (positive-class) form: equal-width bins of P(melanoma) in [0, 1];
``ECE = sum_b n_b / N * |frac_melanoma_b - mean_p_b|``.

Temperature scaling divides the logit by ``T`` (``p' = sigmoid(logit / T)``), fitted by
minimising the validation negative log-likelihood. It is monotone, so AUC and the ranking
do not change; only the probabilities (and the threshold that gives a sensitivity) move.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

EPS = 1e-7


def reliability(y, p, n_bins: int = 10) -> dict:
    """Reliability-diagram bins and the expected calibration error of P(melanoma)."""
    yt = np.asarray(y, dtype=np.float64)
    ps = np.asarray(p, dtype=np.float64)
    if yt.shape != ps.shape or len(yt) == 0:
        raise ValueError(f"need equal-length non-empty labels and scores, got {yt.shape} and {ps.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(ps, edges[1:-1], right=False), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        m = idx == b
        count = int(m.sum())
        conf = float(ps[m].mean()) if count else float("nan")
        frac = float(yt[m].mean()) if count else float("nan")
        if count:
            ece += count / len(yt) * abs(frac - conf)
        bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count,
                     "mean_p": conf, "frac_melanoma": frac})
    return {"ece": float(ece), "n_bins": n_bins, "bins": bins}


def logit(p) -> np.ndarray:
    ps = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(ps) - np.log1p(-ps)


def sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def nll(y, p) -> float:
    yt = np.asarray(y, dtype=np.float64)
    ps = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return float(-np.mean(yt * np.log(ps) + (1 - yt) * np.log1p(-ps)))


def apply_temperature(p, temperature: float) -> np.ndarray:
    """``sigmoid(logit(p) / T)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return sigmoid(logit(p) / temperature)


def fit_temperature(y, p) -> dict:
    """Temperature minimising the NLL of ``y`` under ``sigmoid(logit(p) / T)`` (T in [0.05, 20])."""
    yt = np.asarray(y, dtype=np.float64)
    if len(np.unique(yt)) < 2:
        raise ValueError("temperature scaling needs both classes in the fitting data")
    z = logit(p)

    def loss(log_t: float) -> float:
        return nll(yt, sigmoid(z / np.exp(log_t)))

    res = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                          options={"xatol": 1e-6})
    t = float(np.exp(res.x))
    return {"temperature": t, "nll_before": nll(yt, p), "nll_after": float(res.fun)}


def raw_threshold(calibrated_threshold: float, temperature: float) -> float:
    """The threshold on uncalibrated P(melanoma) equivalent to one on calibrated P."""
    return float(sigmoid(temperature * logit(calibrated_threshold)))
