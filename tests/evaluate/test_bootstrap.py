import numpy as np
import pytest

from moleport.evaluate.bootstrap import bootstrap_metrics, clinical_cis, group_ids, resample_indices


def _clustered(n_lesions=40, per=10, seed=0):
    """Images of one lesion share label and (nearly) score: strong within-lesion correlation."""
    rng = np.random.default_rng(seed)
    y_l = np.arange(n_lesions) % 2
    s_l = rng.normal(y_l * 1.0, 1.0)
    y = np.repeat(y_l, per)
    p = 1 / (1 + np.exp(-(np.repeat(s_l, per) + rng.normal(0, 0.01, n_lesions * per))))
    lesions = [f"L{i}" for i in np.repeat(np.arange(n_lesions), per)]
    return y, p, lesions


def test_group_ids_lesion_and_image():
    g, how = group_ids(["a", "b", "a", None], 4)
    assert how == "lesion" and g[0] == g[2] and len(set(g.tolist())) == 3
    g2, how2 = group_ids(None, 3)
    assert how2 == "image" and g2.tolist() == [0, 1, 2]


def test_resample_keeps_lesions_whole():
    groups = np.array([0, 0, 0, 1, 2, 2])
    for idx in resample_indices(groups, 50, seed=1):
        counts = np.bincount(groups[idx], minlength=3)
        assert counts[0] % 3 == 0 and counts[2] % 2 == 0
        assert len(idx) == sum(c for c in counts)


def test_grouped_ci_is_wider_than_ungrouped():
    y, p, lesions = _clustered()
    groups, _ = group_ids(lesions, len(y))
    grouped = clinical_cis(y, p, 0.5, groups=groups, n_boot=400, seed=0)
    flat = clinical_cis(y, p, 0.5, groups=None, n_boot=400, seed=0)
    for k in ("auc", "sensitivity", "specificity"):
        w_g = grouped[k]["ci"][1] - grouped[k]["ci"][0]
        w_f = flat[k]["ci"][1] - flat[k]["ci"][0]
        assert w_g > 1.5 * w_f, (k, w_g, w_f)


def test_ci_contains_point_and_is_deterministic():
    y, p, lesions = _clustered(seed=3)
    groups, _ = group_ids(lesions, len(y))
    a = clinical_cis(y, p, 0.4, groups=groups, n_boot=300, seed=7)
    b = clinical_cis(y, p, 0.4, groups=groups, n_boot=300, seed=7)
    c = clinical_cis(y, p, 0.4, groups=groups, n_boot=300, seed=8)
    assert a == b and a != c
    for v in a.values():
        assert v["ci"][0] <= v["point"] <= v["ci"][1]


def test_undefined_draws_are_dropped():
    y = np.array([1, 0, 0, 0, 0, 0])
    p = np.linspace(0.9, 0.1, 6)
    res = bootstrap_metrics(y, p, {"auc": lambda a, b: float("nan") if a.sum() in (0, len(a)) else 1.0},
                            n_boot=200, seed=0)
    assert 0 < res["auc"]["n_valid"] < 200


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        bootstrap_metrics([0, 1], [0.1], {})
