import math

import numpy as np
import pytest

from moleport.metrics import (Confusion, binary_metrics, binomial_tail, confusion, evaluate, roc,
                              sensitivity_lower_bound, threshold_for_sensitivity)

# Paper Table 3 (MobileNet): rows true [melanoma, nevus] x columns predicted [melanoma, nevus]
TABLE3 = [[469, 259], [0, 992]]


def _table3_arrays():
    (mm, mn), (nm, nn) = TABLE3
    y = np.array([1] * (mm + mn) + [0] * (nm + nn))
    pred = np.array([1] * mm + [0] * mn + [1] * nm + [0] * nn)
    return y, pred


def _4(v: float) -> float:
    """The paper's 4 decimals are truncated, not rounded: precision 992/1251 = 0.79297 is printed .7929."""
    return math.floor(v * 10_000 + 1e-9) / 10_000


def test_table3_paper_convention():
    y, pred = _table3_arrays()
    r = evaluate(y, np.where(pred == 1, 0.9, 0.1), threshold=0.5)
    assert r["confusion_matrix"] == TABLE3 and r["n"] == 1720
    paper = r["paper"]
    assert (paper["tp"], paper["fn"], paper["fp"], paper["tn"]) == (992, 0, 259, 469)  # nevus positive
    assert _4(paper["accuracy"]) == 0.8494
    assert _4(paper["precision"]) == 0.7929
    assert _4(paper["recall"]) == 1.0
    assert _4(paper["specificity"]) == 0.6442
    assert _4(paper["f1"]) == 0.8845


def test_table3_clinical_convention():
    y, pred = _table3_arrays()
    clin = binary_metrics(confusion(y, pred), "melanoma")
    assert (clin["tp"], clin["fn"], clin["fp"], clin["tn"]) == (469, 259, 0, 992)
    assert round(clin["recall"], 4) == 0.6442  # melanoma sensitivity
    assert clin["specificity"] == 1.0 and clin["precision"] == 1.0
    assert round(clin["f1"], 4) == 0.7836 and round(clin["accuracy"], 4) == 0.8494
    assert clin["balanced_accuracy"] == pytest.approx((469 / 728 + 1.0) / 2)
    with pytest.raises(ValueError, match="positive"):
        binary_metrics(Confusion(1, 0, 0, 1), "keratosis")


def test_threshold_and_auc():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.4, 0.3, 0.5, 0.2, 0.1, 0.05])
    t = threshold_for_sensitivity(y, p, 0.75)
    assert t["threshold"] == 0.4 and t["sensitivity"] == 0.75 and t["specificity"] == 0.75
    t = threshold_for_sensitivity(y, p, 1.0)
    assert t["threshold"] == 0.3 and t["sensitivity"] == 1.0 and t["specificity"] == 0.75
    assert threshold_for_sensitivity(y, p, 0.5)["specificity"] == 1.0
    with pytest.raises(ValueError, match="target"):
        threshold_for_sensitivity(y, p, 0.0)
    with pytest.raises(ValueError, match="no melanoma"):
        threshold_for_sensitivity(np.zeros(3), np.ones(3), 0.9)
    assert roc(y, p)["auc"] == pytest.approx(14 / 16)
    assert evaluate(y, np.where(y == 1, 0.7, 0.3))["auc"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        evaluate(y, p[:3])


def test_binomial_tail_is_the_exact_sum():
    for n, k, p in ((10, 7, 0.6), (30, 29, 0.95), (5, 0, 0.3), (5, 6, 0.3), (12, 12, 0.9)):
        exact = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))
        assert binomial_tail(k, n, p) == pytest.approx(exact, rel=1e-12, abs=1e-300)


def test_sensitivity_lower_bound_is_clopper_pearson():
    assert sensitivity_lower_bound(10, 10) == pytest.approx(0.05 ** 0.1, abs=1e-12)
    assert sensitivity_lower_bound(9, 10) == pytest.approx(0.60584, abs=1e-5)  # Beta(0.05; 9, 2)
    assert sensitivity_lower_bound(0, 10) == 0.0
    lb = [sensitivity_lower_bound(k, 50) for k in range(51)]
    assert lb == sorted(lb) and all(b <= k / 50 for k, b in enumerate(lb))
    with pytest.raises(ValueError, match="caught"):
        sensitivity_lower_bound(11, 10)


def test_threshold_with_confidence_keeps_a_lower_bound_at_the_target():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(100, int), np.zeros(300, int)]
    p = np.r_[rng.uniform(0.2, 1.0, 100), rng.uniform(0.0, 0.6, 300)]
    point = threshold_for_sensitivity(y, p, 0.95)
    strict = threshold_for_sensitivity(y, p, 0.95, confidence=0.95)
    mel = np.sort(p[y == 1])[::-1]
    # of 100 melanomas, 99 caught is the fewest whose one-sided 95 % lower bound reaches 0.95 (98: 0.938)
    assert strict["threshold"] == mel[98] and point["threshold"] == mel[94]
    assert strict["sensitivity"] == 0.99 and strict["sensitivity_lower_bound"] >= 0.95 > sensitivity_lower_bound(98, 100)
    assert strict["specificity"] <= point["specificity"] and strict["confidence"] == 0.95
    assert "confidence" not in point
    with pytest.raises(ValueError, match="58 melanomas cannot show .* at least 59 are needed"):
        threshold_for_sensitivity(np.r_[np.ones(58), np.zeros(5)], rng.uniform(size=63), 0.95, confidence=0.95)
    with pytest.raises(ValueError, match="confidence"):
        threshold_for_sensitivity(y, p, 1.0, confidence=0.95)
