"""The pipeline's options reach the stages they configure (no training: the stage is replaced by a recorder)."""
from pathlib import Path

import pytest

from moleport import pipeline
from moleport.train.qat import QatConfig


def _config(argv):
    """The PipelineConfig ``python -m moleport.pipeline ARGV`` would run (run_pipeline replaced)."""
    seen = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "run_pipeline", lambda cfg: seen.setdefault("cfg", cfg) and 0)
        pipeline.main(argv)
    return seen["cfg"]


@pytest.mark.parametrize("argv, steps, lr, correction", [
    ([], QatConfig().steps, QatConfig().lr, "auto"),
    (["--qat-steps", "0", "--qat-bias-correction", "off"], 0, QatConfig().lr, "off"),
    (["--qat-steps", "7", "--qat-lr", "1e-4", "--qat-bias-correction", "on"], 7, 1e-4, "on"),
])
def test_qat_options_reach_the_int8_step(monkeypatch, tmp_path, argv, steps, lr, correction):
    seen = {}

    def record(ckpt, manifest, out, qcfg):
        seen["cfg"] = qcfg
        return type("R", (), {"program": Path(out) / "program.pt2"})()

    monkeypatch.setattr("moleport.train.qat.quantize_checkpoint", record)
    pipeline.quantize_int8(_config(argv), tmp_path / "ckpt" / "checkpoint.pt", tmp_path / "m.json")
    assert (seen["cfg"].steps, seen["cfg"].lr, seen["cfg"].bias_correction) == (steps, lr, correction)


def test_a_bad_qat_rate_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        _config(["--qat-lr", "0"])
    assert "--qat-lr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _config(["--qat-bias-correction", "yes"])
    assert "--qat-bias-correction" in capsys.readouterr().err


def test_a_partial_parity_run_is_printed_from_its_own_report(tmp_path):
    """make ship EXPORT_ARGS="--limit 300" used to stop after parity, reading a parity.md that a partial run
    never writes."""
    assert pipeline.parity_markdown(tmp_path, {"partial": True}) == tmp_path / "parity-partial.md"
    assert pipeline.parity_markdown(tmp_path, {"partial": False}) == tmp_path / "parity.md"


def test_a_missing_checkpoint_or_manifest_is_refused_by_the_parser(tmp_path, capsys):
    for argv, flag in ((["--ckpt", str(tmp_path / "nope.pt")], "--ckpt"),
                       (["--manifest", str(tmp_path / "nope.json")], "--manifest")):
        with pytest.raises(SystemExit):
            pipeline.main(argv)
        assert f"{flag} {tmp_path}" in capsys.readouterr().err


def test_a_stage_input_error_is_one_line_not_a_traceback(monkeypatch, tmp_path, capsys):
    """make export with a manifest that is not one used to end in a ManifestError traceback."""
    from moleport.data.manifest import ManifestError

    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")

    def stage(cfg):
        raise ManifestError(f"{cfg.manifest}: expected an object with a 'items' list")

    monkeypatch.setattr(pipeline, "run_pipeline", stage)
    assert pipeline.main(["--manifest", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m moleport.pipeline: error: ") and f"{bad}:" in err and "Traceback" not in err
    monkeypatch.setattr(pipeline, "run_pipeline", lambda cfg: 1 / 0)  # a bug is still a traceback
    with pytest.raises(ZeroDivisionError):
        pipeline.main([])
