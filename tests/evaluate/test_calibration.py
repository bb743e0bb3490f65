import numpy as np
import pytest

from moleport.calibration import apply_temperature, fit_temperature, raw_threshold, reliability


def _calibrated(per_bin=200):
    """Each bin's scores equal its exact observed melanoma fraction."""
    ys, ps = [], []
    for v in np.arange(0.05, 1.0, 0.1):
        k = int(round(v * per_bin))
        ys += [1] * k + [0] * (per_bin - k)
        ps += [v] * per_bin
    return np.array(ys), np.array(ps)


def test_ece_zero_when_perfectly_calibrated():
    y, p = _calibrated()
    assert reliability(y, p)["ece"] < 1e-9


def test_ece_of_miscalibrated_scores():
    y = np.array([1, 0] * 100)
    p = np.full(200, 0.9)
    rel = reliability(y, p)
    assert rel["ece"] == pytest.approx(0.4)
    assert sum(b["count"] for b in rel["bins"]) == 200


def test_temperature_softens_overconfident_scores():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    over = 1 / (1 + np.exp(-3 * z))  # logits 3x too large
    fit = fit_temperature(y, over)
    assert fit["temperature"] == pytest.approx(3.0, rel=0.15)
    assert reliability(y, apply_temperature(over, fit["temperature"]))["ece"] < reliability(y, over)["ece"]
    t = fit["temperature"]
    assert apply_temperature([raw_threshold(0.3, t)], t)[0] == pytest.approx(0.3)
