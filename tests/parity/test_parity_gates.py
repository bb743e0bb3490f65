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


@pytest.mark.parametrize("n,allowed", [(100, 1), (200, 1), (400, 2), (1000, 5)])
def test_fp16_flip_limit_is_max_of_one_and_half_percent(n, allowed):
    y, p_ref = _data(n)
    gates = Gates(fp16_max_abs_dacc_pp=100.0)
    assert Gates().max_flips("fp16", n) == allowed
    assert judge(_row("fp16", y, p_ref, _flip(p_ref, allowed)), gates) == []
    v = judge(_row("fp16", y, p_ref, _flip(p_ref, allowed + 1)), gates)
    assert len(v) == 1 and f"flips {allowed + 1} > {allowed}" in v[0]


def test_fp16_accuracy_gate():
    y, p_ref = _data(1000)
    p = _flip(p_ref, 5)
    row = _row("fp16", y, p_ref, p)
    assert abs(row["delta"]["accuracy"]) * 100 <= 0.5
    assert judge(row, Gates()) == []
    v = judge(row, Gates(fp16_max_abs_dacc_pp=0.05))
    assert any("|Δ accuracy|" in s for s in v)


def test_int8_gates_accuracy_auc_flips():
    y, p_ref = _data(500)
    assert Gates().max_flips("int8", 500) == 10
    ok = _row("int8", y, p_ref, _flip(p_ref, 4))
    assert abs(ok["delta"]["accuracy"]) <= 0.01
    assert judge(ok, Gates()) == []
    assert judge(_row("int8", y, p_ref, _flip(p_ref, 10)), Gates(int8_max_abs_dacc_pp=100)) == []
    too_many = _row("int8", y, p_ref, _flip(p_ref, 11))
    assert any("flips 11 > 10" in s for s in judge(too_many, Gates(int8_max_abs_dacc_pp=100)))
    scrambled = np.where(p_ref >= 0.5, 0.51, 0.49) + np.random.default_rng(1).normal(0, 0.001, len(y))
    row = _row("int8", y, p_ref, scrambled)  # same labels, ranking destroyed -> AUC drops
    v = judge(row, Gates())
    assert row["flips"] == 0 and len(v) == 1 and "|Δ AUC|" in v[0]


def test_error_row_is_always_a_violation():
    v = judge(_row("fp32", [1], [0.5], [0.5], status="error"), Gates())
    assert v and "truncated" in v[0]


def test_overrides_validate_names_and_types(tmp_path):
    g = Gates.from_mapping({"fp32_max_abs_dp": 1e-5, "fp16_min_flips": 3})
    assert g.fp32_max_abs_dp == 1e-5 and g.fp16_min_flips == 3 and g.int8_max_abs_dauc == 0.01
    with pytest.raises(GatesError, match="unknown gate"):
        Gates.from_mapping({"fp32_max_dp": 1})
    with pytest.raises(GatesError, match="needs a number"):
        Gates.from_mapping({"fp32_max_abs_dp": "small"})
    f = tmp_path / "g.json"
    f.write_text(json.dumps({"int8_max_flip_fraction": 0.05}))
    assert Gates.load(f).max_flips("int8", 100) == 5
    with pytest.raises(Exception):
        Gates().fp32_max_abs_dp = 1  # frozen
