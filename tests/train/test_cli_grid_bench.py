"""CLI wiring, the paper grid table and the throughput bench (all tiny)."""
import argparse
import json

import pytest

from moleport.train import cli
from moleport.train.bench import bench_train, projected_grid_hours
from moleport.train.config import ConfigError, RunConfig
from moleport.train.grid import run_grid


def _parse(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train", *argv])


def test_cli_trains_from_a_manifest_file(tmp_path, tiny_manifest, monkeypatch):
    path = tiny_manifest.save(tmp_path / "m.json")
    # the quick profile at 64 px and 1 epoch: same code path, seconds instead of minutes
    from moleport.train import config

    quick = config.get_run("quick").replace(input_size=64)
    monkeypatch.setattr(config, "get_run", lambda name: quick)
    args = _parse(["--run", "quick", "--data", str(path), "--out", str(tmp_path / "out"), "--epochs", "1",
                   "--device", "cpu"])
    assert args.func(args) == 0
    m = json.loads((tmp_path / "out" / "quick" / "metrics.json").read_text())
    assert m["epochs_run"] == 1 and m["config"]["device"] == "cpu" and not m["paper_run"]


def test_cli_flags_override_the_spec_options_of_a_profile(tmp_path):
    from moleport.train.cli import _overrides
    from moleport.train.config import get_run

    ship = get_run("ship")
    assert ship.color_constancy == "shades-of-gray-p6" and ship.calibrate and ship.freeze_blocks == 8
    args = _parse(["--run", "ship", "--data", "x", "--color-constancy", "none", "--no-calibrate", "--jitter", "0",
                   "--freeze-blocks", "4", "--target-sensitivity", "0.97", "--arch", "mobilenet_v2"])
    cfg = _overrides(args, ship, tmp_path)
    assert (cfg.color_constancy, cfg.calibrate, cfg.jitter, cfg.freeze_blocks, cfg.target_sensitivity, cfg.arch) == \
        (None, False, 0.0, 4, 0.97, "mobilenet_v2")
    untouched = _overrides(_parse(["--run", "ship", "--data", "x"]), ship, tmp_path)
    assert untouched.replace(out_dir=None, device="auto") == ship.replace(out_dir=None, device="auto")
    with pytest.raises(SystemExit):
        _parse(["--run", "ship", "--data", "x", "--color-constancy", "retinex"])
    with pytest.raises(SystemExit):
        _parse(["--run", "ship", "--data", "x", "--arch", "mobilenet_v9"])
    strict = _overrides(_parse(["--run", "ship", "--data", "x", "--sensitivity-confidence", "0.9"]), ship, tmp_path)
    assert strict.sensitivity_confidence == 0.9 and strict.target_sensitivity == ship.target_sensitivity
    with pytest.raises(ConfigError, match="sensitivity_confidence"):
        ship.replace(sensitivity_confidence=1.0)


def test_cli_errors_are_clean(tmp_path, capsys):
    args = _parse(["--run", "nope", "--data", str(tmp_path / "missing.json")])
    assert args.func(args) == 1
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["--run", "quick", "--grid", "paper", "--data", "x"])


def test_grid_picks_winner_by_validation_and_records_failures(tmp_path, tiny_manifest):
    base = dict(arch="mobilenet", epochs=1, batch_size=6, lr=1e-3, input_size=64, device="cpu",
                early_stop_train_acc=None, paper=True, paper_accuracy=0.8)
    cfgs = [RunConfig(name="a", out_dir=tmp_path / "a", **base),
            RunConfig(name="b", out_dir=tmp_path / "b", weights=str(tmp_path / "no-such.pth"), **base)]
    result = run_grid(cfgs, tiny_manifest, tmp_path)
    assert result["winner"] == "a" and result["winner_chosen_by"].startswith("validation")
    assert "error" in result["rows"][1] and "not found" in result["rows"][1]["error"]
    md = (tmp_path / "paper_grid.md").read_text()
    assert "VALIDATION" in md and "| **a** |" in md and "FAILED" in md


def test_bench_reports_throughput_and_skips_huge_cpu_batches():
    from moleport.train.loop import cpu_supports_bf16

    rows = bench_train(["mobilenet"], batch_sizes=(2, 256), steps=1, device="cpu", warmup=0, input_size=64)
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    assert fp32[0]["img_per_s"] > 0 and fp32[0]["paper_epochs"] == 20 and fp32[0]["projected_paper_min"] > 0
    assert "skipped" in fp32[1]
    # bf16 side by side with fp32 where the CPU has it, absent where it has not
    assert [r["precision"] for r in rows if r["batch_size"] == 2] == (["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"])
    assert projected_grid_hours(rows) > 0
