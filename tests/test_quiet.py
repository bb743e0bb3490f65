"""moleport.quiet: fd-level and sys-level output go to the log; the terminal handle and everything else survive."""
from __future__ import annotations

import os
import sys

import pytest

from moleport.quiet import QUIET_ENV, format_progress, library_output_to


def _fd_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def test_output_goes_to_log_not_terminal(capfd, tmp_path):
    log = tmp_path / "logs" / "export.log"
    with library_output_to(log, header="tflite") as term:
        os.write(1, b"c-level stdout\n")
        os.write(2, b"c-level stderr\n")
        print("python stdout")
        print("python stderr", file=sys.stderr)
        print("progress line", file=term)
        term.progress(1, 2, "fp32")
        term.stderr.write("raw stderr line\n")
    out, err = capfd.readouterr()
    text = log.read_text()
    for line in ("c-level stdout", "c-level stderr", "python stdout", "python stderr", "===== ", "tflite"):
        assert line in text
    for line in ("c-level", "python"):
        assert line not in out and line not in err
    assert "progress line" in out and "progress line" not in text
    assert "1/2" in err and "fp32" in err and "raw stderr line" in err and "fp32" not in text.split("tflite", 1)[1]


def test_log_is_appended(capfd, tmp_path):
    log = tmp_path / "a.log"
    log.write_text("earlier\n")
    with library_output_to(log):
        print("first")
    with library_output_to(log):
        os.write(1, b"second\n")
    assert log.read_text().splitlines() == ["earlier", "first", "second"]
    capfd.readouterr()


def test_everything_restored_after_exception(capfd, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    before = (_fd_identity(1), _fd_identity(2), sys.stdout, sys.stderr)
    fds = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    log = tmp_path / "x.log"
    with pytest.raises(RuntimeError, match="boom"):
        with library_output_to(log):
            assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == QUIET_ENV["TF_CPP_MIN_LOG_LEVEL"]
            assert os.environ["GRPC_VERBOSITY"] == "ERROR"
            print("inside")
            raise RuntimeError("boom")
    assert (_fd_identity(1), _fd_identity(2), sys.stdout, sys.stderr) == before
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ and os.environ["GRPC_VERBOSITY"] == "DEBUG"
    if fds is not None:
        assert set(os.listdir("/proc/self/fd")) == fds  # no descriptor leaked
    os.write(1, b"after fd\n")
    print("after print")
    out, _ = capfd.readouterr()
    assert "after fd" in out and "after print" in out and "inside" not in out
    assert "inside" in log.read_text() and "after" not in log.read_text()


def test_nested_and_custom_env(capfd, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLEPORT_QUIET_PROBE", "outer")
    with library_output_to(tmp_path / "outer.log", env={"MOLEPORT_QUIET_PROBE": None}) as outer:
        assert "MOLEPORT_QUIET_PROBE" not in os.environ
        with library_output_to(tmp_path / "inner.log") as inner:
            print("inner text")
            print("to outer log via inner terminal", file=inner)
        print("outer text")
        print("real", file=outer)
    assert os.environ["MOLEPORT_QUIET_PROBE"] == "outer"
    assert (tmp_path / "inner.log").read_text() == "inner text\n"
    assert (tmp_path / "outer.log").read_text() == "to outer log via inner terminal\nouter text\n"
    assert capfd.readouterr().out == "real\n"


def test_format_progress():
    assert format_progress(0, 4, "x", width=4) == "[----] 0/4   0%  x"
    assert format_progress(2, 4, "tflite fp16", width=4) == "[##--] 2/4  50%  tflite fp16"
    assert format_progress(9, 4, width=4) == "[####] 4/4 100%"
    assert format_progress(0, 0, width=2) == "[##] 0/0 100%"
