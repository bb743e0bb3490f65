"""``python -m moleport.train.qat``: options built from QatConfig, clear errors instead of tracebacks."""
from __future__ import annotations

import argparse

import pytest

from moleport.argtypes import add_dataclass_arguments, dataclass_from_args
from moleport.train.qat import QatConfig, QatError, main


def test_options_come_from_the_config_fields():
    ap = argparse.ArgumentParser()
    add_dataclass_arguments(ap, QatConfig)
    assert dataclass_from_args(QatConfig, ap.parse_args([])) == QatConfig()
    cfg = dataclass_from_args(QatConfig, ap.parse_args(["--steps", "0", "--no-augment", "--optimizer", "sgd"]))
    assert (cfg.steps, cfg.augment, cfg.optimizer) == (0, False, "sgd")
    cfg = dataclass_from_args(QatConfig, ap.parse_args(["--float-blocks", "3", "--no-float-classifier"]))
    assert (cfg.float_blocks, cfg.float_classifier) == (3, False)
    assert QatConfig().bias_correction == "auto"
    assert dataclass_from_args(QatConfig, ap.parse_args(["--bias-correction", "on"])).bias_correction == "on"


def test_the_scope_search_stops_at_the_first_scope_that_meets_the_targets():
    from moleport.train.qat import meets_target

    cfg = QatConfig()
    assert meets_target({"p99_abs_dp": 0.029, "flips": 2, "n": 100}, cfg)
    assert not meets_target({"p99_abs_dp": 0.031, "flips": 0, "n": 100}, cfg)
    assert not meets_target({"p99_abs_dp": 0.01, "flips": 3, "n": 200}, cfg)  # > max(2, 1 % of 200)
    assert meets_target({"p99_abs_dp": 0.01, "flips": 15, "n": 1564}, cfg)


def test_bad_numbers_and_missing_files_are_errors_not_tracebacks(tmp_path, capsys):
    assert main([str(tmp_path / "c.pt"), "--manifest", "m.json", "--out", str(tmp_path), "--lr", "-1"]) == 2
    assert "invalid QAT config" in capsys.readouterr().err
    assert main([str(tmp_path / "c.pt"), "--manifest", "m.json", "--out", str(tmp_path), "--float-blocks", "-2"]) == 2
    assert "invalid QAT config" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's own message names the option and its choices
        main([str(tmp_path / "c.pt"), "--manifest", "m.json", "--out", str(tmp_path), "--bias-correction", "yes"])
    assert "--bias-correction" in capsys.readouterr().err
    with pytest.raises(QatError, match="bias_correction must be one of off, on, auto"):
        QatConfig(bias_correction="yes")
    assert main([str(tmp_path / "c.pt"), "--manifest", "m.json", "--out", str(tmp_path)]) == 2
    assert "c.pt: checkpoint file not found" in capsys.readouterr().err


def test_the_scope_search_bisects_to_the_fewest_fp32_blocks_that_meet_the_targets():
    from moleport.train.qat import smallest_meeting

    p99 = [0.085, 0.068, 0.042, 0.032, 0.019, 0.020, 0.015]  # the seed-0 quick model's val PTQ p99 at N = 0..6
    measured = []

    def measure(k):
        measured.append(k)
        return {"p99_abs_dp": p99[k]}

    k, order = smallest_meeting(measure, 6, lambda row: row["p99_abs_dp"] <= 0.03)
    assert k == 4 and order == measured and len(order) == 3  # 3 PTQs instead of 5
    assert smallest_meeting(measure, 6, lambda row: False)[0] == 6  # none meets: the best one measured
    assert smallest_meeting(measure, 0, lambda row: True) == (0, [0])


def test_help_prints_every_option(capsys):
    import pytest

    from moleport.train.qat import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--bias-correction" in capsys.readouterr().out


def _fake_search(monkeypatch, p99):
    """_choose_scope replaced: the kept row's val p99 by whether it is bias-corrected; the searches made."""
    from moleport.train import qat

    calls = []

    def choose(teacher, calib, val_x, val_t, spec, cfg, correct):
        calls.append(correct)
        row = {"p99_abs_dp": p99[correct], "flips": 0, "n": 200}
        return f"scope-{correct}", f"graph-{correct}", row, [{"float_blocks": 6, "bias_corrected": correct, **row}]

    monkeypatch.setattr(qat, "_choose_scope", choose)
    return calls


@pytest.mark.parametrize("mode, p99, searches, corrected", [
    ("auto", {False: 0.02, True: 0.01}, [False], False),       # plain PTQ meets the targets: no correction
    ("auto", {False: 0.045, True: 0.025}, [False, True], True),  # misses: searched again, the corrected one meets
    ("auto", {False: 0.045, True: 0.05}, [False, True], False),  # the correction does not help: plain kept
    ("on", {False: 0.02, True: 0.025}, [True], True),
    ("off", {False: 0.045, True: 0.01}, [False], False),
])
def test_bias_correction_auto_searches_again_only_when_plain_ptq_meets_no_target(monkeypatch, mode, p99, searches,
                                                                                  corrected):
    from moleport.train.qat import search_scopes

    calls = _fake_search(monkeypatch, p99)
    scope, graph, row, tried, used = search_scopes(None, None, None, None, None, QatConfig(bias_correction=mode))
    assert calls == searches and used is corrected
    assert (scope, graph, row["p99_abs_dp"]) == (f"scope-{corrected}", f"graph-{corrected}", p99[corrected])
    assert [r["bias_corrected"] for r in tried] == searches  # qat.json's scope_search holds both searches
