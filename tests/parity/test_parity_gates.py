"""Gates and comparison: thresholds per precision, flip counting, overrides."""
from __future__ import annotations

import json

import numpy as np
import pytest

from moleport.parity.compare import compare, flipped
from moleport.parity.gates import Gates, GatesError, judge


def _row(precision: str, y, p_ref, p, status: str = "ok") -> dict:
    files = [f"img{i}.png" for i in range(len(y))]
    row = {"artifact": f"m_{precision}.x", "runtime": "rt", "implementation": "impl", "precision": precision,
           "status": status, "error": None if status == "ok" else "cannot load: truncated"}
    if status == "ok":
        row.update(compare(np.asarray(y), np.asarray(p_ref), np.asarray(p), files, 0.5))
    row["n"] = len(y)
    return row


def _data(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(int)
    p_ref = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.2, n), 0.001, 0.999)
    return y, p_ref


def _flip(p_ref: np.ndarray, k: int) -> np.ndarray:
    """Flip the predicted label of the k images closest to the threshold (mirror around 0.5)."""
    p = p_ref.copy()
    idx = np.argsort(np.abs(p_ref - 0.5))[:k]
    p[idx] = np.where(p_ref[idx] >= 0.5, 0.4999, 0.5001)
    return p


def test_flipped_counts_label_changes_at_threshold():
    p_ref = np.array([0.1, 0.49, 0.5, 0.9])
    p = np.array([0.2, 0.51, 0.49, 0.9])
    assert flipped(p_ref, p, 0.5).tolist() == [1, 2]
    assert flipped(p_ref, p, 0.05).tolist() == []


def test_compare_lists_each_flip_with_both_probabilities():
    y = np.array([1, 0, 1])
    row = compare(y, np.array([0.9, 0.2, 0.6]), np.array([0.9, 0.7, 0.6]), ["a", "b", "c"], 0.5)
    assert row["flips"] == 1
    assert row["flipped"] == [{"file": "b", "label": "nevus", "p_reference": 0.2, "p": 0.7}]
    assert row["confusion_identical"] is False
    assert row["max_abs_dp"] == pytest.approx(0.5)
    assert row["delta"]["accuracy"] == pytest.approx(-1 / 3)


def test_fp32_gate_on_max_dp_and_confusion():
    y, p_ref = _data()
    assert judge(_row("fp32", y, p_ref, p_ref + 5e-5), Gates()) == []
    v = judge(_row("fp32", y, p_ref, p_ref + 3e-4), Gates())
    assert len(v) == 1 and "max |Δp|" in v[0]
    v = judge(_row("fp32", y, p_ref, _flip(p_ref, 1)), Gates(fp32_max_abs_dp=1.0))
    assert len(v) == 1 and "confusion matrix" in v[0]


def _near(p_ref: np.ndarray, k: int, width: float) -> np.ndarray:
    """Reference probabilities with exactly k images inside ±width of 0.5 (the rest pushed out)."""
    p = np.where(np.abs(p_ref - 0.5) <= width, np.where(p_ref >= 0.5, 0.5 + 2 * width, 0.5 - 2 * width), p_ref)
    p[:k] = np.where(np.arange(k) % 2 == 0, 0.5 + width / 2, 0.5 - width / 2)
    return np.clip(p, 0.001, 0.999)


@pytest.mark.parametrize("precision", ["fp16", "w8", "int8"])
def test_flips_inside_the_band_count_towards_a_budget(precision):
    y, p_ref = _data(400)
    g = Gates().reduced(precision)
    p_ref = _near(p_ref, 30, g.band)
    budget = g.band_budget(400)
    loose = Gates.from_mapping({f"{precision}_{k}": 100.0 for k in ("max_abs_dacc_pp", "max_abs_dsens_pp",
                                                                     "max_abs_dspec_pp", "p99_abs_dp")})
    assert judge(_row(precision, y, p_ref, _flip(p_ref, budget)), loose) == []
    v = judge(_row(precision, y, p_ref, _flip(p_ref, budget + 1)), loose)
    assert len(v) == 1 and f"{budget + 1} flips inside" in v[0]


@pytest.mark.parametrize("precision", ["fp16", "w8", "int8"])
def test_one_flip_outside_the_band_is_always_a_violation(precision):
    y, p_ref = _data(400)
    g = Gates().reduced(precision)
    p_ref = _near(p_ref, 0, g.band)  # nothing near the threshold
    far = int(np.argmin(np.abs(p_ref - (0.5 + 2 * g.band))))
    p = p_ref.copy()
    p[far] = 0.4999
    v = judge(_row(precision, y, p_ref, p), Gates())
    assert any("farther than" in s for s in v), v


def test_the_verdict_does_not_depend_on_how_many_images_sit_at_the_threshold():
    """Rounding noise well inside the band passes whether 0 or 40 images lie near the threshold."""
    y, p_ref = _data(400)
    rng = np.random.default_rng(3)
    for k in (0, 10, 40):
        ref = _near(p_ref, k, 0.01)
        noisy = np.clip(ref + rng.normal(0, 0.002, len(ref)), 0, 1)
        assert judge(_row("fp16", y, ref, noisy), Gates()) == [], k


def test_p99_error_gate_catches_a_uniformly_worse_artifact():
    y, p_ref = _data(400)
    p_ref = _near(p_ref, 0, 0.2)
    noisy = np.clip(p_ref + np.random.default_rng(0).normal(0, 0.05, len(p_ref)), 0, 1)
    v = judge(_row("fp16", y, p_ref, noisy), Gates())
    assert any("p99 |Δp|" in s for s in v)


def test_sensitivity_gate_has_a_floor_of_min_images():
    y, p_ref = _data(400)
    g = Gates().reduced("int8")
    p_ref = _near(p_ref, 0, 0.2)
    mel = np.flatnonzero((y == 1) & (p_ref >= 0.5))
    p = p_ref.copy()
    p[mel[:g.min_images]] = 0.5 - 0.001  # within the band? no: far flips are judged separately
    row = _row("int8", y, p_ref, p)
    assert not any("sensitivity" in s for s in judge(row, Gates()))
    p[mel[:g.min_images + 3]] = 0.5 - 0.001
    assert any("sensitivity" in s for s in judge(_row("int8", y, p_ref, p), Gates(int8_max_abs_dacc_pp=100)))


def test_int8_auc_gate():
    y, p_ref = _data(500)
    scrambled = np.where(p_ref >= 0.5, 0.51, 0.49) + np.random.default_rng(1).normal(0, 0.001, len(y))
    row = _row("int8", y, p_ref, scrambled)  # same labels, ranking destroyed -> AUC drops
    v = judge(row, Gates(int8_p99_abs_dp=1.0))
    assert row["flips"] == 0 and len(v) == 1 and "|Δ AUC|" in v[0]


def test_auc_gate_has_a_floor_of_min_images_swapped_pairs():
    """32 images (17 melanoma / 15 nevus): one swap of two tied scores moves the AUC by 1/255 = 0.0039 > 0.003."""
    y = np.array([1] * 17 + [0] * 15)
    p_ref = np.linspace(0.2, 0.8, 32)
    p_ref[0], p_ref[17] = 0.6500, 0.6501  # a melanoma and a nevus, almost tied, far from the threshold 0.5
    swapped = p_ref.copy()
    swapped[0], swapped[17] = 0.6501, 0.6500
    g = Gates().reduced("fp16")
    assert g.floor_auc(17, 15) == pytest.approx(3 / 255) and g.floor_auc(223, 1341) == g.max_abs_dauc
    row = _row("fp16", y, p_ref, swapped)
    assert abs(row["delta"]["auc"]) == pytest.approx(1 / 255) and judge(row, Gates()) == []
    assert any("|Δ AUC|" in s for s in judge(row, Gates(fp16_min_images=0)))


def test_error_row_is_always_a_violation():
    v = judge(_row("fp32", [1], [0.5], [0.5], status="error"), Gates())
    assert v and "truncated" in v[0]


def test_overrides_validate_names_and_types(tmp_path):
    g = Gates.from_mapping({"fp32_max_abs_dp": 1e-5, "fp16_min_band_flips": 3})
    assert g.fp32_max_abs_dp == 1e-5 and g.fp16_min_band_flips == 3 and g.int8_max_abs_dauc == 0.01
    with pytest.raises(GatesError, match="unknown gate"):
        Gates.from_mapping({"fp32_max_dp": 1})
    with pytest.raises(GatesError, match="needs a number"):
        Gates.from_mapping({"fp32_max_abs_dp": "small"})
    f = tmp_path / "g.json"
    f.write_text(json.dumps({"int8_band_flip_fraction": 0.05}))
    assert Gates.load(f).reduced("int8").band_budget(100) == 5
    with pytest.raises(GatesError, match=">= 0"):
        Gates.from_mapping({"int8_band": -1})
    with pytest.raises(Exception):
        Gates().fp32_max_abs_dp = 1  # frozen
