"""``python -m moleport.train.qat``: options built from QatConfig, clear errors instead of tracebacks."""
from __future__ import annotations

import argparse

from moleport.argtypes import add_dataclass_arguments, dataclass_from_args
from moleport.train.qat import QatConfig, main


def test_options_come_from_the_config_fields():
    ap = argparse.ArgumentParser()
    add_dataclass_arguments(ap, QatConfig)
    assert dataclass_from_args(QatConfig, ap.parse_args([])) == QatConfig()
    cfg = dataclass_from_args(QatConfig, ap.parse_args(["--steps", "0", "--no-augment", "--optimizer", "sgd"]))
    assert (cfg.steps, cfg.augment, cfg.optimizer) == (0, False, "sgd")


def test_bad_numbers_and_missing_files_are_errors_not_tracebacks(tmp_path, capsys):
    assert main([str(tmp_path / "c.pt"), "--manifest", "m.json", "--out", str(tmp_path), "--lr", "-1"]) == 2
    assert "invalid QAT config" in capsys.readouterr().err
    assert main([str(tmp_path / "c.pt"), "--manifest", "m.json", "--out", str(tmp_path)]) == 2
    assert "c.pt: checkpoint file not found" in capsys.readouterr().err
