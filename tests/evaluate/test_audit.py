import json

import numpy as np

from eval_helpers import make_imagefolder
from moleport.evaluate.audit import probe_cv, source_items, source_shortcut_audit


def test_probe_detects_brightness_difference(tmp_path):
    a = make_imagefolder(tmp_path / "dark", n_per_class=15, seed=1, brightness=80)
    b = make_imagefolder(tmp_path / "bright", n_per_class=15, seed=2, brightness=170)
    rep = source_shortcut_audit(source_items([a, b]), per_source=None, folds=5, seed=0)
    assert rep["sources"] == ["bright", "dark"]
    assert rep["probes"]["colour"]["accuracy"] > 0.9 and rep["probes"]["all"]["auc"] > 0.95
    assert rep["within_label"]["melanoma/pixels"]["accuracy"] > 0.9


def test_probe_at_chance_for_identical_sources(tmp_path):
    a = make_imagefolder(tmp_path / "one", n_per_class=20, seed=3)
    b = make_imagefolder(tmp_path / "two", n_per_class=20, seed=4)
    rep = source_shortcut_audit(source_items([a, b]), per_source=None, folds=5, seed=0)
    assert 0.25 <= rep["probes"]["all"]["accuracy"] <= 0.75
    assert rep["probes"]["all"]["chance_accuracy"] == 0.5


def test_probe_cv_on_pure_noise_is_near_half():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 10))
    y = np.repeat([0, 1], 200)
    assert abs(probe_cv(x, y, folds=5, seed=0)["accuracy"] - 0.5) < 0.1


def test_audit_cli_with_model(tmp_path, tiny_checkpoint):
    from moleport.cli import main

    a = make_imagefolder(tmp_path / "dark", n_per_class=6, seed=1, brightness=80)
    b = make_imagefolder(tmp_path / "bright", n_per_class=6, seed=2, brightness=170)
    out = tmp_path / "audit"
    assert main(["audit", "source-shortcut", "--sources", str(a), str(b), "--model", str(tiny_checkpoint),
                 "--out", str(out), "--bootstrap", "20", "--folds", "3"]) == 0
    rep = json.loads((out / "audit.json").read_text())
    assert set(rep["per_source"]) == {"dark", "bright", "(all)"} and rep["per_source"]["(all)"]["n"] == 24
    assert (out / "audit.md").read_text().startswith("# Source-shortcut audit")
