"""The one quiet export front end (``moleport export`` and the pipeline): converter output in the log, one line per
format on the console, clear exits."""
from __future__ import annotations

import pytest

from moleport.cli import main as moleport_main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import torch

    from moleport.models import build_model
    from moleport.models.checkpoint import save_checkpoint
    from moleport.spec import ModelSpec

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "c.pt", build_model("mobilenet").eval(),
                           ModelSpec("mobilenet"), manifest_sha256=None)


def test_export_cli_logs_converters_and_prints_one_line_per_format(ckpt, tmp_path, capfd):
    code = moleport_main(["export", str(ckpt), "--out", str(tmp_path), "--name", "b", "--formats", "onnx"])
    out = capfd.readouterr()
    assert code == 0, out.err
    lines = [ln for ln in out.out.splitlines() if "1/1" in ln]
    assert len(lines) == 1 and "onnx: fp32 ok" in lines[0]
    log = tmp_path / "b.export.log"
    assert log.is_file() and f"converter output: {log}" in out.out
    assert (tmp_path / "b" / "manifest.json").is_file() and "bundle:" in out.out


def test_export_cli_refuses_an_unknown_format_without_writing(ckpt, tmp_path, capfd):
    code = moleport_main(["export", str(ckpt), "--out", str(tmp_path), "--name", "b", "--formats", "onnx,caffe"])
    assert code == 2 and "unknown export format(s) ['caffe']" in capfd.readouterr().err
    assert not (tmp_path / "b").exists()
