"""MODEL_CARD.md pieces: metrics of a training run's checkpoint, and the shipped artifact's performance section."""
from moleport import metrics as M
from moleport.export import card
from moleport.spec import ModelSpec


def _eval(y, p, t):
    return M.evaluate(y, p, t)


def test_metrics_of_a_training_run_are_found_two_levels_deep():
    y, p = [1, 1, 0, 0, 0], [0.9, 0.4, 0.3, 0.2, 0.6]
    run = {"test": {"n": 5, "auc": 0.83, "at_0.5": _eval(y, p, 0.5), "at_threshold": _eval(y, p, 0.35)},
           "threshold": {"threshold": 0.35}}
    text = card._metrics_section(run)
    assert "| test at_threshold | clinical (melanoma positive) |" in text
    assert "| test at_0.5 | paper (nevus positive) |" in text
    assert "carries no evaluation metrics" in card._metrics_section({"threshold": {"threshold": 0.3}})


def _result(auc, lo, sens, spec, n=(10, 20)):
    return {"n": sum(n), "counts": {"melanoma": n[0], "nevus": n[1]}, "auc": auc, "auc_ci": [lo, auc + 0.01],
            "sensitivity": sens, "sensitivity_ci": [sens - 0.05, sens + 0.02], "specificity": spec,
            "specificity_ci": [spec - 0.05, spec + 0.02], "ece": 0.05}


def test_performance_section_checks_the_targets_and_replaces_the_placeholder():
    spec = ModelSpec("mobilenet", threshold=0.1, temperature=1.2, color_constancy="shades-of-gray-p6")
    results = {"test": _result(0.97, 0.965, 0.97, 0.80), "ext": _result(0.80, 0.75, 0.8, 0.5)}
    section = card.performance_section("tflite/model_fp32.tflite", spec, results,
                                       {"test": "in-distribution", "ext": "external"})
    assert "| test (in-distribution) | 30 (10/20) | 0.970 [0.965, 0.980] |" in section
    assert "auc ≥ 0.96 on test: 0.970 — met; demonstrated" in section
    assert "in-distribution AUC ≥ 0.96; in-distribution sensitivity ≥ 0.95" in section
    assert "sensitivity ≥ 0.95 on test: 0.970 — met; not demonstrated" in section  # lower bound 0.92
    assert "auc ≥ 0.85 on ext: 0.800 — **not met**" in section
    text = card.model_card("b", spec, {}, [], [])
    assert card.PERFORMANCE_PENDING in text
    filled = card.with_performance(text, section)
    assert card.PERFORMANCE_PENDING not in filled and section.strip() in filled
    assert filled.index(card.PERFORMANCE_HEADING) < filled.index("## Known limits")
    assert card.with_performance(filled, "again").count(card.PERFORMANCE_HEADING) == 1


def test_a_run_with_a_recipe_record_carries_it_into_the_card(tmp_path, monkeypatch):
    spec = ModelSpec("mobilenet", threshold=0.1)
    assert card.recipe_section(None) == "" and card.recipe_section({"name": "no-such-run"}) == ""
    assert "## How the recipe was chosen" not in card.model_card("b", spec, {"run": {"name": "quick"}}, [], [])
    monkeypatch.setattr(card, "RECIPES_DIR", tmp_path)
    (tmp_path / "r1.md").write_text("| variant | AUC |\n|---|---|\n| a | 0.9 |\n", encoding="utf-8")
    (tmp_path / "r1.json").write_text('{"arch": "mobilenet", "acquisition": 0.7}', encoding="utf-8")
    run = {"name": "r1", "arch": "mobilenet", "acquisition": 0.7, "seed": 3}
    text = card.model_card("b", spec, {"run": run}, [], [])
    assert "## How the recipe was chosen" in text and "| a | 0.9 |" in text
    assert text.index("## How the recipe was chosen") < text.index(card.PERFORMANCE_HEADING)


def test_a_run_trained_with_other_values_does_not_get_the_record(tmp_path, monkeypatch):
    monkeypatch.setattr(card, "RECIPES_DIR", tmp_path)
    (tmp_path / "r1.md").write_text("| variant | AUC |\n|---|---|\n| a | 0.9 |\n", encoding="utf-8")
    (tmp_path / "r1.json").write_text('{"arch": "mobilenet", "acquisition": 0.7}', encoding="utf-8")
    text = card.recipe_section({"name": "r1", "arch": "mobilenet", "acquisition": 0.0})
    assert "| a | 0.9 |" not in text and "acquisition 0.0 (the record's: 0.7)" in text
    (tmp_path / "r1.json").unlink()
    text = card.recipe_section({"name": "r1", "arch": "mobilenet", "acquisition": 0.7})
    assert "| a | 0.9 |" not in text and "r1.json" in text


def test_the_ship_recipe_record_exists_and_names_its_commands():
    from moleport.train.config import get_run

    text = card.recipe_section(get_run("ship").to_dict())
    assert "| variant |" in text and "make ship" in text


def test_the_card_says_how_the_threshold_was_chosen():
    spec = ModelSpec("mobilenet", threshold=0.07)
    point = {"threshold": 0.07, "target_sensitivity": 0.95, "sensitivity": 0.951, "specificity": 0.857,
             "chosen_on": "val"}
    strict = {**point, "confidence": 0.95, "sensitivity_lower_bound": 0.953, "sensitivity": 0.977}
    assert ("chosen on the validation split for melanoma sensitivity >= 0.95; val sensitivity 0.951, specificity "
            "0.857") in card.model_card("b", spec, {"metrics": {"threshold": point}}, [], [])
    assert ("so that the one-sided 0.95 Clopper-Pearson lower bound on melanoma sensitivity is >= 0.95 (val: 0.953)"
            in card.model_card("b", spec, {"metrics": {"threshold": strict}}, [], []))
    fallback = {"threshold": 0.5, "chosen_on": "default", "note": "no melanoma in the data"}
    assert "not chosen on validation data by a moleport training run (no melanoma in the data)" in \
        card.model_card("b", spec, {"metrics": {"threshold": fallback}}, [], [])
    assert "not chosen on validation data" in card.model_card("b", spec, {}, [], [])
